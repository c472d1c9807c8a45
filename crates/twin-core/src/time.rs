//! Simulation time: integer microseconds, so that event order never depends on
//! floating-point rounding and runs are bit-reproducible.

use std::fmt;

use serde::{Deserialize, Deserializer};

/// Simulation time or a span of it, in microseconds since the start of the run.
pub type Micros = u64;

/// Microseconds in one second.
pub const SECOND: Micros = 1_000_000;
/// Microseconds in one minute.
pub const MINUTE: Micros = 60 * SECOND;
/// Microseconds in one hour.
pub const HOUR: Micros = 60 * MINUTE;
/// Microseconds in one day.
pub const DAY: Micros = 24 * HOUR;

/// The longest span one random draw may produce (about 100 years): a cap that keeps
/// `now + span` far from overflow even for wild distribution parameters.
pub const MAX_SPAN: Micros = 100 * 365 * DAY;

/// Converts microseconds to seconds for reports.
pub fn to_secs(t: Micros) -> f64 {
    t as f64 / SECOND as f64
}

/// Converts microseconds to hours for rates.
pub fn to_hours(t: Micros) -> f64 {
    t as f64 / HOUR as f64
}

/// A duration as written in scene files: `"90s"`, `"1m 30s"`, `"8h"`, `"7d"`, `"250ms"`,
/// or with a decimal number of one unit, `"1.5h"`.
///
/// Scene files never hold bare numbers for time, so that the unit is always visible.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub Micros);

impl Duration {
    /// Microseconds in this duration.
    pub fn micros(self) -> Micros {
        self.0
    }

    /// Parses the scene-file spelling of a duration.
    pub fn parse(text: &str) -> Result<Duration, String> {
        let text = text.trim();
        if text.starts_with('-') {
            return Err(format!("duration `{text}` is negative"));
        }
        if let Some(d) = parse_decimal(text) {
            return d;
        }
        humantime::parse_duration(text)
            .map_err(|e| {
                format!("invalid duration `{text}`: {e} (write e.g. \"90s\", \"1m 30s\", \"1.5h\", \"7d\")")
            })
            .and_then(|d| match u64::try_from(d.as_micros()) {
                Ok(micros) if micros <= MAX_SPAN => Ok(Duration(micros)),
                _ => Err(format!("duration `{text}` is longer than 100 years")),
            })
    }
}

/// Accepts `<decimal><unit>` such as `1.5h` or `0.25s`, which humantime does not.
fn parse_decimal(text: &str) -> Option<Result<Duration, String>> {
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(split);
    if !number.contains('.') {
        return None;
    }
    let value: f64 = number.parse().ok()?;
    let scale = match unit.trim() {
        "us" | "µs" => 1,
        "ms" => 1_000,
        "s" | "sec" => SECOND,
        "m" | "min" => MINUTE,
        "h" | "hr" => HOUR,
        "d" | "day" | "days" => DAY,
        _ => {
            return Some(Err(format!("invalid duration `{text}`: unknown unit `{}`", unit.trim())));
        }
    };
    let micros = (value * scale as f64).round();
    if !micros.is_finite() || micros > MAX_SPAN as f64 {
        return Some(Err(format!("duration `{text}` is longer than 100 years")));
    }
    Some(Ok(Duration(micros as u64)))
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.0;
        if t == 0 {
            return f.write_str("0s");
        }
        let units = [(DAY, "d"), (HOUR, "h"), (MINUTE, "m"), (SECOND, "s"), (1_000, "ms"), (1, "us")];
        let mut rest = t;
        let mut first = true;
        for (scale, name) in units {
            if rest >= scale {
                if !first {
                    f.write_str(" ")?;
                }
                write!(f, "{}{name}", rest / scale)?;
                rest %= scale;
                first = false;
            }
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Duration::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_spellings_scene_files_use() {
        assert_eq!(Duration::parse("90s").unwrap().0, 90 * SECOND);
        assert_eq!(Duration::parse("1m 30s").unwrap().0, 90 * SECOND);
        assert_eq!(Duration::parse("1.5h").unwrap().0, 90 * MINUTE);
        assert_eq!(Duration::parse("7d").unwrap().0, 7 * DAY);
        assert_eq!(Duration::parse("250ms").unwrap().0, 250_000);
        assert!(Duration::parse("-5s").unwrap_err().contains("negative"));
        assert!(Duration::parse("5 parsecs").is_err());
        assert!(Duration::parse("1.5 furlongs").is_err());
        assert!(Duration::parse("500years").unwrap_err().contains("100 years"));
        assert!(Duration::parse("99999999999999999d").is_err());
    }

    #[test]
    fn display_round_trips() {
        for text in ["0s", "90s", "1h 30m", "7d", "250ms", "1d 2h 3m 4s 5ms 6us"] {
            let d = Duration::parse(text).unwrap();
            assert_eq!(Duration::parse(&d.to_string()).unwrap(), d, "{text}");
        }
    }
}
