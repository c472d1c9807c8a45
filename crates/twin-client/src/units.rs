//! Units a person reads: durations in h / min, rates per hour, money with its currency,
//! fractions as percentages. Pure functions, shared by every panel so that one figure
//! reads the same everywhere.

/// Seconds per minute, hour and day.
const MINUTE_S: f64 = 60.0;
const HOUR_S: f64 = 3600.0;
const DAY_S: f64 = 86_400.0;

/// A duration in seconds as a person says it: "42 s", "12 min", "3 h 05 min",
/// "2 d 4 h". Negative or not finite: "—".
pub fn duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "—".to_owned();
    }
    if seconds < MINUTE_S {
        return format!("{seconds:.0} s");
    }
    if seconds < HOUR_S {
        return format!("{:.0} min", (seconds / MINUTE_S).round());
    }
    // Round to whole minutes first so that 1 h 59.7 min reads "2 h 00 min".
    let minutes = (seconds / MINUTE_S).round() as u64;
    if seconds < DAY_S {
        return format!("{} h {:02} min", minutes / 60, minutes % 60);
    }
    let hours = (seconds / HOUR_S).round() as u64;
    format!("{} d {} h", hours / 24, hours % 24)
}

/// A duration in microseconds (the wire's unit), as [`duration`].
pub fn duration_us(us: u64) -> String {
    duration(us as f64 / 1e6)
}

/// A rate per hour: "12.5 /h" (one decimal below 100, none above). Not finite: "—".
pub fn per_hour(rate: f64) -> String {
    if !rate.is_finite() {
        return "—".to_owned();
    }
    if rate.abs() < 100.0 { format!("{rate:.1} /h") } else { format!("{rate:.0} /h") }
}

/// A fraction as a percentage: "28.4 %". Not finite: "—".
pub fn percent(fraction: f64) -> String {
    if fraction.is_finite() { format!("{:.1} %", fraction * 100.0) } else { "—".to_owned() }
}

/// Money in major units with its ISO 4217 code and thousands separators:
/// "1,234,567 KRW", "12.50 EUR". Currencies without minor units (KRW, JPY) and large
/// sums show no decimals. An empty code shows the bare number. Not finite: "—".
pub fn money(amount: f64, currency: &str) -> String {
    if !amount.is_finite() {
        return "—".to_owned();
    }
    let decimals = if matches!(currency, "KRW" | "JPY" | "VND" | "CLP" | "ISK") || amount.abs() >= 10_000.0 {
        0
    } else {
        2
    };
    let text = format!("{:.*}", decimals, amount.abs());
    let (whole, fraction) = text.split_once('.').map_or((text.as_str(), None), |(w, f)| (w, Some(f)));
    let mut grouped = String::with_capacity(whole.len() + whole.len() / 3 + 8);
    for (i, digit) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    let sign = if amount < 0.0 && text.bytes().any(|b| b.is_ascii_digit() && b != b'0') { "-" } else { "" };
    let number = match fraction {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    };
    if currency.is_empty() { number } else { format!("{number} {currency}") }
}

/// Money per hour: "45,000 KRW/h".
pub fn money_per_hour(amount: f64, currency: &str) -> String {
    let text = money(amount, currency);
    if text == "—" { text } else { format!("{text}/h") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_in_hours_and_minutes() {
        assert_eq!(duration(42.4), "42 s");
        assert_eq!(duration(720.0), "12 min");
        assert_eq!(duration(3.0 * 3600.0 + 5.0 * 60.0), "3 h 05 min");
        assert_eq!(duration(2.0 * 3600.0 - 10.0), "2 h 00 min");
        assert_eq!(duration(2.0 * 86_400.0 + 4.0 * 3600.0), "2 d 4 h");
        assert_eq!(duration(f64::NAN), "—");
        assert_eq!(duration_us(90_000_000), "2 min");
    }

    #[test]
    fn rates_and_percentages() {
        assert_eq!(per_hour(12.46), "12.5 /h");
        assert_eq!(per_hour(1234.4), "1234 /h");
        assert_eq!(per_hour(f64::INFINITY), "—");
        assert_eq!(percent(0.284), "28.4 %");
    }

    #[test]
    fn money_carries_its_currency() {
        assert_eq!(money(1_234_567.4, "KRW"), "1,234,567 KRW");
        assert_eq!(money(12.5, "EUR"), "12.50 EUR");
        assert_eq!(money(-1500.0, "EUR"), "-1,500.00 EUR");
        assert_eq!(money(-0.001, "EUR"), "0.00 EUR");
        assert_eq!(money(999.0, ""), "999.00");
        assert_eq!(money(45_000.0, "KRW"), "45,000 KRW");
        assert_eq!(money_per_hour(45_000.0, "KRW"), "45,000 KRW/h");
        assert_eq!(money(f64::NAN, "EUR"), "—");
    }
}
