//! The Sparkplug `DataType` numbers (`Metric.datatype`, `DataSet.types`, ...) as plain
//! `u32` constants, since the wire fields are `uint32` rather than the enum.

pub const UNKNOWN: u32 = 0;
pub const INT8: u32 = 1;
pub const INT16: u32 = 2;
pub const INT32: u32 = 3;
pub const INT64: u32 = 4;
pub const UINT8: u32 = 5;
pub const UINT16: u32 = 6;
pub const UINT32: u32 = 7;
pub const UINT64: u32 = 8;
pub const FLOAT: u32 = 9;
pub const DOUBLE: u32 = 10;
pub const BOOLEAN: u32 = 11;
pub const STRING: u32 = 12;
/// Milliseconds since the Unix epoch, in `long_value`.
pub const DATETIME: u32 = 13;
pub const TEXT: u32 = 14;
pub const UUID: u32 = 15;
pub const DATASET: u32 = 16;
pub const BYTES: u32 = 17;
pub const FILE: u32 = 18;
pub const TEMPLATE: u32 = 19;
pub const PROPERTY_SET: u32 = 20;
pub const PROPERTY_SET_LIST: u32 = 21;
pub const INT8_ARRAY: u32 = 22;
pub const INT16_ARRAY: u32 = 23;
pub const INT32_ARRAY: u32 = 24;
pub const INT64_ARRAY: u32 = 25;
pub const UINT8_ARRAY: u32 = 26;
pub const UINT16_ARRAY: u32 = 27;
pub const UINT32_ARRAY: u32 = 28;
pub const UINT64_ARRAY: u32 = 29;
pub const FLOAT_ARRAY: u32 = 30;
pub const DOUBLE_ARRAY: u32 = 31;
pub const BOOLEAN_ARRAY: u32 = 32;
pub const STRING_ARRAY: u32 = 33;
pub const DATETIME_ARRAY: u32 = 34;

/// The standard's name of a data type number (for error messages), `None` if unknown.
pub fn name(datatype: u32) -> Option<&'static str> {
    super::DataType::try_from(datatype as i32).ok().map(|t| t.as_str_name())
}

#[cfg(test)]
mod tests {
    use super::super::DataType;

    #[test]
    fn constants_match_the_generated_enum() {
        assert_eq!(super::UINT64, DataType::UInt64 as u32);
        assert_eq!(super::BOOLEAN, DataType::Boolean as u32);
        assert_eq!(super::STRING, DataType::String as u32);
        assert_eq!(super::DATETIME_ARRAY, DataType::DateTimeArray as u32);
        assert_eq!(super::name(super::DOUBLE), Some("Double"));
        assert_eq!(super::name(99), None);
    }
}
