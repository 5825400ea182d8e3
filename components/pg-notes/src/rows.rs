//! Reading the typed rows of `SELECT id, text, created FROM notes`.

use crate::bindings::wasmcloud::postgres::types::{
    Date, Offset, PgValue, ResultRowEntry, Time, Timestamp, TimestampTz,
};

/// `<id> <created> <text>` of one row.
pub fn note_line(row: &[ResultRowEntry]) -> Result<String, String> {
    let column = |name: &str| {
        row.iter()
            .find(|e| e.column_name == name)
            .map(|e| &e.value)
            .ok_or_else(|| format!("the row has no column '{name}'"))
    };
    let id = match column("id")? {
        PgValue::Int8(id) | PgValue::BigInt(id) | PgValue::BigSerial(id) => *id,
        other => return Err(format!("id is {other:?}, not an int8")),
    };
    let text = match column("text")? {
        PgValue::Text(text) => text.as_str(),
        other => return Err(format!("text is {other:?}, not a text")),
    };
    let created = match column("created")? {
        PgValue::TimestampTz(at) => utc(at),
        other => return Err(format!("created is {other:?}, not a timestamp-tz")),
    };
    Ok(format!("{id} {created} {text}"))
}

/// `2025-01-02T03:04:05.678901Z` (the provider gives timestamps in UTC).
fn utc(at: &TimestampTz) -> String {
    let TimestampTz {
        timestamp: Timestamp { date, time },
        offset,
    } = at;
    let Time {
        hour,
        min,
        sec,
        micro,
    } = time;
    let date = match date {
        Date::Ymd((y, m, d)) => format!("{y:04}-{m:02}-{d:02}"),
        Date::PositiveInfinity => "infinity".to_owned(),
        Date::NegativeInfinity => "-infinity".to_owned(),
    };
    let zone = match offset {
        Offset::EasternHemisphereSecs(0) | Offset::WesternHemisphereSecs(0) => "Z".to_owned(),
        Offset::EasternHemisphereSecs(s) => format!("+{}", hh_mm(*s)),
        Offset::WesternHemisphereSecs(s) => format!("-{}", hh_mm(*s)),
    };
    format!("{date}T{hour:02}:{min:02}:{sec:02}.{micro:06}{zone}")
}

fn hh_mm(secs: i32) -> String {
    format!("{:02}:{:02}", secs / 3600, secs % 3600 / 60)
}
