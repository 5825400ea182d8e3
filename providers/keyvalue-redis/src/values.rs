//! WIT values of the `wrpc:keyvalue` functions, in and out.

use lattice_provider::WitValue;

/// `ok(value)` of a `result<T, error>`.
pub fn ok(value: Option<WitValue>) -> WitValue {
    WitValue::Result(Ok(value.map(Box::new)))
}

/// `err(other(message))` of a `result<T, error>`.
pub fn other(message: impl Into<String>) -> WitValue {
    WitValue::Result(Err(Some(Box::new(WitValue::Variant(
        "other".to_owned(),
        Some(Box::new(WitValue::String(message.into()))),
    )))))
}

/// A `list<u8>`.
pub fn bytes(bytes: Vec<u8>) -> WitValue {
    WitValue::Bytes(bytes)
}

/// An `option<T>`.
pub fn option(value: Option<WitValue>) -> WitValue {
    WitValue::Option(value.map(Box::new))
}

// Readers of decoded arguments. The SDK decoded them with the function's types, so
// a mismatch is a bug here; it is an error, never a panic.

pub fn arg(args: &[WitValue], i: usize) -> Result<&WitValue, String> {
    args.get(i)
        .ok_or_else(|| format!("argument {i} is missing"))
}

pub fn string(value: &WitValue) -> Result<&str, String> {
    match value {
        WitValue::String(s) => Ok(s),
        other => Err(format!("expected a string, got a {}", other.kind())),
    }
}

pub fn u64(value: &WitValue) -> Result<u64, String> {
    match value {
        WitValue::U64(n) => Ok(*n),
        other => Err(format!("expected a u64, got a {}", other.kind())),
    }
}

pub fn list(value: &WitValue) -> Result<&[WitValue], String> {
    match value {
        WitValue::List(items) => Ok(items),
        other => Err(format!("expected a list, got a {}", other.kind())),
    }
}

pub fn to_bytes(value: &WitValue) -> Result<Vec<u8>, String> {
    value
        .as_bytes()
        .map(std::borrow::Cow::into_owned)
        .ok_or_else(|| format!("expected a list<u8>, got a {}", value.kind()))
}

pub fn strings(value: &WitValue) -> Result<Vec<&str>, String> {
    list(value)?.iter().map(string).collect()
}

/// `option<u64>`.
pub fn optional_u64(value: &WitValue) -> Result<Option<u64>, String> {
    match value {
        WitValue::Option(None) => Ok(None),
        WitValue::Option(Some(v)) => u64(v).map(Some),
        other => Err(format!("expected an option, got a {}", other.kind())),
    }
}

/// `tuple<string, list<u8>>`.
pub fn key_value(value: &WitValue) -> Result<(&str, Vec<u8>), String> {
    match value {
        WitValue::Tuple(parts) if parts.len() == 2 => {
            Ok((string(&parts[0])?, to_bytes(&parts[1])?))
        }
        other => Err(format!(
            "expected a (key, value) tuple, got a {}",
            other.kind()
        )),
    }
}
