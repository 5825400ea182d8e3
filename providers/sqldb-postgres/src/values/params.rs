//! Query parameters: `pg-value`s read into [`Param`]s, which encode themselves as
//! whatever type PostgreSQL inferred for their `$n` (an `int4` value fits an
//! `int8` parameter, a `text` value a `varchar` or `jsonb` one, ...), or explain
//! why they do not fit.

use super::{datetime, floats, numeric, read};
use bytes::{BufMut, BytesMut};
use lattice_provider::WitValue;
use std::error::Error;
use tokio_postgres::types::{IsNull, Kind, ToSql, Type};

type BoxError = Box<dyn Error + Sync + Send>;

/// One parameter: the `pg-value` case it came as (for messages) and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub case: String,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// Every integer case.
    Int(i64),
    Float(f64),
    /// Decimal text.
    Numeric(String),
    /// `text`, `name`, `xml`, `char`, `varchar`.
    Text(String),
    Bytes(Vec<u8>),
    Json(String),
    Uuid(String),
    /// Days since 2000-01-01.
    Date(i32),
    /// Microseconds since midnight.
    Time(i64),
    /// Microseconds since 2000-01-01 00:00 (a `timestamp` or the UTC of a
    /// `timestamp-tz`).
    Timestamp(i64),
    Array(Vec<Value>),
}

/// Read the `list<pg-value>` argument.
pub fn params(list: &WitValue) -> Result<Vec<Param>, String> {
    read::list(list)?
        .iter()
        .enumerate()
        .map(|(i, v)| param(v).map_err(|e| format!("parameter ${}: {e}", i + 1)))
        .collect()
}

/// Read one `pg-value`.
pub fn param(value: &WitValue) -> Result<Param, String> {
    let WitValue::Variant(case, payload) = value else {
        return Err(format!("expected a pg-value, got a {}", value.kind()));
    };
    let payload = payload.as_deref();
    let scalar = |f: fn(&WitValue) -> Result<Value, String>| {
        payload
            .ok_or_else(|| format!("pg-value {case} has no value"))
            .and_then(f)
    };
    let array = |f: fn(&WitValue) -> Result<Value, String>| {
        let items = read::list(payload.ok_or_else(|| format!("pg-value {case} has no value"))?)?;
        items
            .iter()
            .map(f)
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array)
    };
    let value = match case.as_str() {
        "null" => Ok(Value::Null),
        "big-int" | "int8" | "big-serial" | "serial8" | "integer" | "int" | "int4" | "serial"
        | "serial4" | "small-int" | "int2" | "small-serial" | "serial2" => scalar(int),
        "int8-array" | "int4-array" | "int2-array" => array(int),
        "bool" | "boolean" => scalar(boolean),
        "bool-array" => array(boolean),
        "double" | "float8" => scalar(float8),
        "float8-array" => array(float8),
        "real" | "float4" => scalar(float4),
        "float4-array" => array(float4),
        "numeric" | "decimal" => scalar(|v| read::string(v).map(|s| Value::Numeric(s.into()))),
        "numeric-array" => array(|v| read::string(v).map(|s| Value::Numeric(s.into()))),
        "bytea" => scalar(|v| read::bytes(v).map(Value::Bytes)),
        "bytea-array" => array(|v| read::bytes(v).map(Value::Bytes)),
        "char" | "varchar" => scalar(sized_text),
        "char-array" | "varchar-array" => array(sized_text),
        "json" | "jsonb" => scalar(|v| read::string(v).map(|s| Value::Json(s.into()))),
        "json-array" | "jsonb-array" => array(|v| read::string(v).map(|s| Value::Json(s.into()))),
        "name" | "text" | "xml" => scalar(|v| read::string(v).map(|s| Value::Text(s.into()))),
        "name-array" | "text-array" | "xml-array" => {
            array(|v| read::string(v).map(|s| Value::Text(s.into())))
        }
        "uuid" => scalar(|v| read::string(v).map(|s| Value::Uuid(s.into()))),
        "uuid-array" => array(|v| read::string(v).map(|s| Value::Uuid(s.into()))),
        "date" => scalar(|v| datetime::pg_date(v).map(Value::Date)),
        "date-array" => array(|v| datetime::pg_date(v).map(Value::Date)),
        "time" => scalar(|v| datetime::pg_time(v).map(Value::Time)),
        "time-array" => array(|v| datetime::pg_time(v).map(Value::Time)),
        "timestamp" => scalar(|v| datetime::pg_timestamp(v).map(Value::Timestamp)),
        "timestamp-array" => array(|v| datetime::pg_timestamp(v).map(Value::Timestamp)),
        "timestamp-tz" => scalar(|v| datetime::pg_timestamp_tz(v).map(Value::Timestamp)),
        "timestamp-tz-array" => array(|v| datetime::pg_timestamp_tz(v).map(Value::Timestamp)),
        other => Err(format!(
            "pg-value {other} is not supported as a parameter by sqldb-postgres; pass it as text \
             and cast it in the query (e.g. $1::{})",
            other.trim_end_matches("-array")
        )),
    }?;
    Ok(Param {
        case: case.clone(),
        value,
    })
}

fn int(v: &WitValue) -> Result<Value, String> {
    read::int(v).map(Value::Int)
}

fn boolean(v: &WitValue) -> Result<Value, String> {
    match v {
        WitValue::Bool(b) => Ok(Value::Bool(*b)),
        other => Err(format!("expected a bool, got a {}", other.kind())),
    }
}

fn float8(v: &WitValue) -> Result<Value, String> {
    floats::from_hashable(v).map(|t| Value::Float(floats::encode64(t)))
}

fn float4(v: &WitValue) -> Result<Value, String> {
    floats::from_hashable(v).map(|t| Value::Float(f64::from(floats::encode32(t))))
}

/// `char(tuple<u32, list<u8>>)` and `varchar(tuple<option<u32>, list<u8>>)`: the
/// bytes are the (UTF-8) text; the length or limit is left to the column.
fn sized_text(v: &WitValue) -> Result<Value, String> {
    let bytes = match v {
        WitValue::Tuple(parts) if parts.len() == 2 => read::bytes(&parts[1])?,
        other => {
            return Err(format!(
                "expected a (length, bytes) tuple, got a {}",
                other.kind()
            ))
        }
    };
    String::from_utf8(bytes)
        .map(Value::Text)
        .map_err(|_| "the characters are not UTF-8".to_owned())
}

/// Types that take text as it is.
fn is_text(ty: &Type) -> bool {
    [
        Type::TEXT,
        Type::VARCHAR,
        Type::BPCHAR,
        Type::NAME,
        Type::UNKNOWN,
        Type::XML,
    ]
    .contains(ty)
}

impl Value {
    /// Encode as a parameter of type `ty`.
    fn encode(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        let unfit = || -> BoxError { Box::new(Unfit) };
        match (self, ty.kind()) {
            (Value::Null, _) => return Ok(IsNull::Yes),
            (Value::Array(items), Kind::Array(_)) => return items.to_sql(ty, out),
            (Value::Array(_), _) | (_, Kind::Array(_)) => return Err(unfit()),
            _ => {}
        }
        match self {
            Value::Bool(b) if *ty == Type::BOOL => out.put_u8(u8::from(*b)),
            Value::Int(n) => match *ty {
                Type::INT2 => out.put_i16(i16::try_from(*n).map_err(|_| out_of_range(n, ty))?),
                Type::INT4 => out.put_i32(i32::try_from(*n).map_err(|_| out_of_range(n, ty))?),
                Type::INT8 => out.put_i64(*n),
                Type::OID => out.put_u32(u32::try_from(*n).map_err(|_| out_of_range(n, ty))?),
                Type::FLOAT4 => out.put_f32(*n as f32),
                Type::FLOAT8 => out.put_f64(*n as f64),
                Type::NUMERIC => out.put_slice(&numeric::from_text(&n.to_string())?),
                _ => return Err(unfit()),
            },
            Value::Float(f) => match *ty {
                Type::FLOAT4 => out.put_f32(*f as f32),
                Type::FLOAT8 => out.put_f64(*f),
                Type::NUMERIC => out.put_slice(&numeric::from_text(&float_text(*f))?),
                _ => return Err(unfit()),
            },
            Value::Numeric(s) => match *ty {
                Type::NUMERIC => out.put_slice(&numeric::from_text(s)?),
                Type::INT2 | Type::INT4 | Type::INT8 => {
                    let n: i64 = s
                        .trim()
                        .parse()
                        .map_err(|_| format!("'{s}' is not an integer"))?;
                    return Value::Int(n).encode(ty, out);
                }
                Type::FLOAT4 | Type::FLOAT8 => {
                    let f: f64 = s
                        .trim()
                        .parse()
                        .map_err(|_| format!("'{s}' is not a number"))?;
                    return Value::Float(f).encode(ty, out);
                }
                _ if is_text(ty) => out.put_slice(s.as_bytes()),
                _ => return Err(unfit()),
            },
            Value::Text(s) | Value::Json(s) if is_text(ty) || *ty == Type::JSON => {
                out.put_slice(s.as_bytes())
            }
            Value::Text(s) | Value::Json(s) if *ty == Type::JSONB => {
                out.put_u8(1);
                out.put_slice(s.as_bytes());
            }
            Value::Text(s) | Value::Uuid(s) if *ty == Type::UUID => out.put_slice(&uuid(s)?),
            Value::Uuid(s) if is_text(ty) => out.put_slice(s.as_bytes()),
            Value::Bytes(b) if *ty == Type::BYTEA => out.put_slice(b),
            Value::Date(d) if *ty == Type::DATE => out.put_i32(*d),
            Value::Time(t) if *ty == Type::TIME => out.put_i64(*t),
            Value::Timestamp(t) if *ty == Type::TIMESTAMP || *ty == Type::TIMESTAMPTZ => {
                out.put_i64(*t)
            }
            _ => return Err(unfit()),
        }
        Ok(IsNull::No)
    }
}

/// A value of a case that a parameter's type does not take; [`Param`] says which.
#[derive(Debug)]
struct Unfit;

impl std::fmt::Display for Unfit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the value does not fit the parameter's type")
    }
}

impl Error for Unfit {}

fn out_of_range(n: &i64, ty: &Type) -> BoxError {
    format!("{n} is out of range for {ty}").into()
}

fn float_text(f: f64) -> String {
    match f {
        f if f.is_nan() => "NaN".into(),
        f64::INFINITY => "Infinity".into(),
        f64::NEG_INFINITY => "-Infinity".into(),
        f => format!("{f}"),
    }
}

/// The 16 bytes of a UUID in hex, with or without hyphens and braces.
fn uuid(text: &str) -> Result<[u8; 16], String> {
    let hex: Vec<u8> = text
        .bytes()
        .filter(|b| !matches!(b, b'-' | b'{' | b'}'))
        .collect();
    let bad = || format!("'{text}' is not a UUID");
    if hex.len() != 32 {
        return Err(bad());
    }
    let mut out = [0u8; 16];
    for (i, pair) in hex.chunks(2).enumerate() {
        let pair = std::str::from_utf8(pair).map_err(|_| bad())?;
        out[i] = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
    }
    Ok(out)
}

impl ToSql for Value {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        self.encode(ty, out)
    }

    /// Every type: [`Value::encode`] says which values fit which types, with a
    /// message a caller can act on.
    fn accepts(_: &Type) -> bool {
        true
    }

    tokio_postgres::types::to_sql_checked!();
}

impl ToSql for Param {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        self.value.encode(ty, out).map_err(|e| -> BoxError {
            if e.is::<Unfit>() {
                format!(
                    "a pg-value {} does not fit a parameter of type {ty}; pass another case or \
                     cast the parameter in the query",
                    self.case
                )
                .into()
            } else {
                e
            }
        })
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    tokio_postgres::types::to_sql_checked!();
}

/// Check that `params` fit the statement's parameter types, before anything is
/// sent: the message names the parameter and what does not fit.
pub fn check(params: &[Param], types: &[Type]) -> Result<(), String> {
    if params.len() != types.len() {
        return Err(format!(
            "the statement takes {} parameter(s) but {} were given",
            types.len(),
            params.len()
        ));
    }
    let mut scratch = BytesMut::new();
    for (i, (param, ty)) in params.iter().zip(types).enumerate() {
        scratch.clear();
        param
            .to_sql(ty, &mut scratch)
            .map_err(|e| format!("parameter ${}: {e}", i + 1))?;
    }
    Ok(())
}
