//! Building metrics of one Sparkplug type and reading them back by name, so that the
//! publisher and the ingest agree on which oneof member carries which type (see the
//! notes at the top of `sparkplug_b.proto`).

use super::Payload;
use super::datatype;
use super::payload::Metric;
use super::payload::metric::Value;

/// A metric's value, read according to its datatype (or, where a data message leaves the
/// datatype out, according to the oneof member that is set).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MetricValue<'a> {
    /// `is_null` is set, or no value member is.
    Null,
    Bool(bool),
    /// Int8, Int16, Int32, Int64 (sign restored from the two's-complement bits).
    Int(i64),
    /// UInt8, UInt16, UInt32, UInt64, DateTime.
    UInt(u64),
    /// Float or Double.
    Float(f64),
    /// String, Text, UUID.
    Str(&'a str),
    /// A type this helper does not read (datasets, templates, bytes, arrays); the
    /// datatype number.
    Unsupported(u32),
}

impl Metric {
    fn typed(name: &str, datatype: u32, value: Value) -> Metric {
        Metric {
            name: Some(name.to_owned()),
            datatype: Some(datatype),
            value: Some(value),
            ..Default::default()
        }
    }

    /// A UInt64 metric.
    pub fn uint64(name: &str, value: u64) -> Metric {
        Metric::typed(name, datatype::UINT64, Value::LongValue(value))
    }

    /// A UInt32 metric.
    pub fn uint32(name: &str, value: u32) -> Metric {
        Metric::typed(name, datatype::UINT32, Value::IntValue(value))
    }

    /// An Int64 metric (two's complement in `long_value`).
    pub fn int64(name: &str, value: i64) -> Metric {
        Metric::typed(name, datatype::INT64, Value::LongValue(value as u64))
    }

    /// A Double metric.
    pub fn double(name: &str, value: f64) -> Metric {
        Metric::typed(name, datatype::DOUBLE, Value::DoubleValue(value))
    }

    /// A Boolean metric.
    pub fn boolean(name: &str, value: bool) -> Metric {
        Metric::typed(name, datatype::BOOLEAN, Value::BooleanValue(value))
    }

    /// A String metric.
    pub fn string(name: &str, value: &str) -> Metric {
        Metric::typed(name, datatype::STRING, Value::StringValue(value.to_owned()))
    }

    /// The same metric with its timestamp (ms since the Unix epoch) set.
    pub fn at(mut self, timestamp_ms: u64) -> Metric {
        self.timestamp = Some(timestamp_ms);
        self
    }

    /// The value, read by its datatype; `Unsupported` when the datatype and the member
    /// set disagree (e.g. a Boolean datatype with a string value).
    pub fn read(&self) -> MetricValue<'_> {
        if self.is_null == Some(true) {
            return MetricValue::Null;
        }
        let Some(value) = &self.value else { return MetricValue::Null };
        let dt = self.datatype;
        let fits = |allowed: &[u32]| dt.is_none_or(|d| allowed.contains(&d));
        use datatype::*;
        match value {
            Value::IntValue(v) if fits(&[UINT8, UINT16, UINT32]) && dt.is_some() => {
                MetricValue::UInt(u64::from(*v))
            }
            Value::IntValue(v) => match dt {
                Some(INT8) => MetricValue::Int(i64::from(*v as u8 as i8)),
                Some(INT16) => MetricValue::Int(i64::from(*v as u16 as i16)),
                Some(INT32) => MetricValue::Int(i64::from(*v as i32)),
                None => MetricValue::UInt(u64::from(*v)),
                Some(other) => MetricValue::Unsupported(other),
            },
            Value::LongValue(v) => match dt {
                Some(INT64) => MetricValue::Int(*v as i64),
                Some(UINT64 | DATETIME) | None => MetricValue::UInt(*v),
                Some(other) => MetricValue::Unsupported(other),
            },
            Value::FloatValue(v) if fits(&[FLOAT]) => MetricValue::Float(f64::from(*v)),
            Value::DoubleValue(v) if fits(&[DOUBLE]) => MetricValue::Float(*v),
            Value::BooleanValue(v) if fits(&[BOOLEAN]) => MetricValue::Bool(*v),
            Value::StringValue(v) if fits(&[STRING, TEXT, UUID]) => MetricValue::Str(v),
            _ => MetricValue::Unsupported(dt.unwrap_or(UNKNOWN)),
        }
    }

    /// An unsigned value (UInt8..UInt64, DateTime; a non-negative Int*), else `None`.
    pub fn as_u64(&self) -> Option<u64> {
        match self.read() {
            MetricValue::UInt(v) => Some(v),
            MetricValue::Int(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// A signed value (Int*, or a UInt* that fits), else `None`.
    pub fn as_i64(&self) -> Option<i64> {
        match self.read() {
            MetricValue::Int(v) => Some(v),
            MetricValue::UInt(v) => i64::try_from(v).ok(),
            _ => None,
        }
    }

    /// A Float or Double value, else `None`.
    pub fn as_f64(&self) -> Option<f64> {
        match self.read() {
            MetricValue::Float(v) => Some(v),
            _ => None,
        }
    }

    /// A Boolean value, else `None`.
    pub fn as_bool(&self) -> Option<bool> {
        match self.read() {
            MetricValue::Bool(v) => Some(v),
            _ => None,
        }
    }

    /// A String, Text or UUID value, else `None`.
    pub fn as_str(&self) -> Option<&str> {
        match self.read() {
            MetricValue::Str(v) => Some(v),
            _ => None,
        }
    }
}

impl Payload {
    /// The first metric named `name`.
    pub fn metric(&self, name: &str) -> Option<&Metric> {
        self.metrics.iter().find(|m| m.name.as_deref() == Some(name))
    }

    /// Every metric named `name`, in payload order (a DDATA may carry several
    /// `Cycle/Duration` metrics).
    pub fn metrics_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Metric> + 'a {
        self.metrics.iter().filter(move |m| m.name.as_deref() == Some(name))
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    #[test]
    fn built_metrics_read_back_through_the_wire() {
        let payload = Payload {
            timestamp: Some(1_700_000_000_000),
            seq: Some(7),
            metrics: vec![
                Metric::uint64("bdSeq", 3),
                Metric::boolean("Node Control/Rebirth", false),
                Metric::string("State", "busy").at(1_700_000_000_500),
                Metric::uint32("Buffer/Level", 4),
                Metric::double("Battery", 0.75),
                Metric::int64("Delta", -5),
                Metric::uint64("Cycle/Duration", 10),
                Metric::uint64("Cycle/Duration", 20),
            ],
            ..Default::default()
        };
        let decoded = Payload::decode(payload.encode_to_vec().as_slice()).expect("decodes");
        assert_eq!(decoded, payload);
        assert_eq!(decoded.metric("bdSeq").and_then(Metric::as_u64), Some(3));
        assert_eq!(decoded.metric("Node Control/Rebirth").and_then(Metric::as_bool), Some(false));
        let state = decoded.metric("State").expect("State");
        assert_eq!(state.as_str(), Some("busy"));
        assert_eq!(state.timestamp, Some(1_700_000_000_500));
        assert_eq!(decoded.metric("Buffer/Level").and_then(Metric::as_u64), Some(4));
        assert_eq!(decoded.metric("Battery").and_then(Metric::as_f64), Some(0.75));
        assert_eq!(decoded.metric("Delta").and_then(Metric::as_i64), Some(-5));
        assert_eq!(decoded.metric("Delta").and_then(Metric::as_u64), None);
        let cycles: Vec<u64> = decoded.metrics_named("Cycle/Duration").filter_map(Metric::as_u64).collect();
        assert_eq!(cycles, [10, 20]);
        assert!(decoded.metric("missing").is_none());
    }

    #[test]
    fn mismatched_datatype_and_member_is_unsupported() {
        let mut m = Metric::string("State", "busy");
        m.datatype = Some(datatype::BOOLEAN);
        assert_eq!(m.read(), MetricValue::Unsupported(datatype::BOOLEAN));
        assert_eq!(m.as_bool(), None);
        let mut signed = Metric::uint32("x", 0xff);
        signed.datatype = Some(datatype::INT8);
        assert_eq!(signed.as_i64(), Some(-1));
        let mut null = Metric::uint64("x", 1);
        null.is_null = Some(true);
        assert_eq!(null.read(), MetricValue::Null);
    }
}
