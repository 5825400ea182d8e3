//! Readers of decoded arguments. The SDK decoded them with the function's types,
//! so a mismatch is a bug here or a hand-made call; it is an error, never a panic.

use lattice_provider::WitValue;

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

pub fn list(value: &WitValue) -> Result<&[WitValue], String> {
    match value {
        WitValue::List(items) => Ok(items),
        other => Err(format!("expected a list, got a {}", other.kind())),
    }
}

pub fn bytes(value: &WitValue) -> Result<Vec<u8>, String> {
    value
        .as_bytes()
        .map(std::borrow::Cow::into_owned)
        .ok_or_else(|| format!("expected a list<u8>, got a {}", value.kind()))
}

/// Any integer type, widened.
pub fn int(value: &WitValue) -> Result<i64, String> {
    match *value {
        WitValue::S8(n) => Ok(n.into()),
        WitValue::S16(n) => Ok(n.into()),
        WitValue::S32(n) => Ok(n.into()),
        WitValue::S64(n) => Ok(n),
        WitValue::U8(n) => Ok(n.into()),
        WitValue::U16(n) => Ok(n.into()),
        WitValue::U32(n) => Ok(n.into()),
        WitValue::U64(n) => i64::try_from(n).map_err(|_| format!("{n} is over {}", i64::MAX)),
        ref other => Err(format!("expected an integer, got a {}", other.kind())),
    }
}

/// `list<u8>` of bytes.
pub fn to_list(bytes: &[u8]) -> WitValue {
    WitValue::Bytes(bytes.to_vec())
}
