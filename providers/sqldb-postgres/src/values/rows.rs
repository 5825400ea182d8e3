//! Result rows: each column becomes the `pg-value` case of its PostgreSQL type.
//! The columns are checked when the statement is prepared, before it runs, so a
//! query returning a type that has no conversion here fails without side effects
//! and names the column and its type.
//!
//! | PostgreSQL | pg-value |
//! |---|---|
//! | `bool` | `bool` |
//! | `int2`, `int4`, `int8` | `int2`, `int4`, `int8` |
//! | `float4`, `float8` | `float4`, `float8` (`integer_decode` tuples) |
//! | `numeric` | `numeric` (decimal text, `NaN`, `Infinity`) |
//! | `text`, `name`, `xml` | `text`, `name`, `xml` |
//! | `varchar` | `varchar((none, utf-8 bytes))` |
//! | `char(n)`, `"char"` | `char((byte length, utf-8 bytes))` |
//! | `bytea` | `bytea` |
//! | `json`, `jsonb` | `json`, `jsonb` (text) |
//! | `uuid` | `uuid` (lowercase, hyphenated) |
//! | `date`, `time`, `timestamp` | `date`, `time`, `timestamp` |
//! | `timestamptz` | `timestamp-tz` (UTC, offset 0) |
//! | one-dimensional arrays of these | the `-array` case (no NULL elements) |
//! | NULL of any of these | `null` |

use super::{datetime, floats, numeric, read::to_list};
use lattice_provider::WitValue;
use std::error::Error;
use tokio_postgres::types::{FromSql, Kind, Type};
use tokio_postgres::Row;

/// How one column converts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Scalar(Scalar),
    Array(Scalar),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scalar {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Numeric,
    Text,
    Name,
    Xml,
    Varchar,
    Char,
    Bytea,
    Json,
    Jsonb,
    Uuid,
    Date,
    Time,
    Timestamp,
    TimestampTz,
}

impl Scalar {
    fn of(ty: &Type) -> Option<Self> {
        use Scalar::*;
        Some(match *ty {
            Type::BOOL => Bool,
            Type::INT2 => Int2,
            Type::INT4 => Int4,
            Type::INT8 => Int8,
            Type::FLOAT4 => Float4,
            Type::FLOAT8 => Float8,
            Type::NUMERIC => Numeric,
            Type::TEXT | Type::UNKNOWN => Text,
            Type::NAME => Name,
            Type::XML => Xml,
            Type::VARCHAR => Varchar,
            Type::BPCHAR | Type::CHAR => Char,
            Type::BYTEA => Bytea,
            Type::JSON => Json,
            Type::JSONB => Jsonb,
            Type::UUID => Uuid,
            Type::DATE => Date,
            Type::TIME => Time,
            Type::TIMESTAMP => Timestamp,
            Type::TIMESTAMPTZ => TimestampTz,
            _ => return None,
        })
    }

    /// The `pg-value` case of a value.
    fn case(self) -> &'static str {
        use Scalar::*;
        match self {
            Bool => "bool",
            Int2 => "int2",
            Int4 => "int4",
            Int8 => "int8",
            Float4 => "float4",
            Float8 => "float8",
            Numeric => "numeric",
            Text => "text",
            Name => "name",
            Xml => "xml",
            Varchar => "varchar",
            Char => "char",
            Bytea => "bytea",
            Json => "json",
            Jsonb => "jsonb",
            Uuid => "uuid",
            Date => "date",
            Time => "time",
            Timestamp => "timestamp",
            TimestampTz => "timestamp-tz",
        }
    }

    /// The payload of a value of this type.
    fn decode(self, raw: &[u8]) -> Result<WitValue, String> {
        use Scalar::*;
        let text = |raw: &[u8]| {
            std::str::from_utf8(raw)
                .map(|s| WitValue::String(s.to_owned()))
                .map_err(|_| "the text is not UTF-8".to_owned())
        };
        Ok(match self {
            Bool => WitValue::Bool(fixed::<1>(raw)?[0] != 0),
            Int2 => WitValue::S16(i16::from_be_bytes(fixed(raw)?)),
            Int4 => WitValue::S32(i32::from_be_bytes(fixed(raw)?)),
            Int8 => WitValue::S64(i64::from_be_bytes(fixed(raw)?)),
            Float4 => floats::hashable(floats::decode32(f32::from_be_bytes(fixed(raw)?))),
            Float8 => floats::hashable(floats::decode64(f64::from_be_bytes(fixed(raw)?))),
            Numeric => WitValue::String(numeric::to_text(raw)?),
            Text | Name | Xml | Json => text(raw)?,
            Jsonb => match raw.split_first() {
                Some((1, json)) => text(json)?,
                _ => return Err("unknown jsonb format".into()),
            },
            Varchar => WitValue::Tuple(vec![WitValue::Option(None), to_list(raw)]),
            Char => WitValue::Tuple(vec![WitValue::U32(raw.len() as u32), to_list(raw)]),
            Bytea => to_list(raw),
            Uuid => WitValue::String(uuid_text(&fixed::<16>(raw)?)),
            Date => datetime::date(i32::from_be_bytes(fixed(raw)?)),
            Time => datetime::time(i64::from_be_bytes(fixed(raw)?)),
            Timestamp => datetime::timestamp(i64::from_be_bytes(fixed(raw)?)),
            TimestampTz => datetime::timestamp_tz(i64::from_be_bytes(fixed(raw)?)),
        })
    }
}

fn fixed<const N: usize>(raw: &[u8]) -> Result<[u8; N], String> {
    raw.try_into()
        .map_err(|_| format!("expected {N} bytes, got {}", raw.len()))
}

fn uuid_text(b: &[u8; 16]) -> String {
    let hex: String = b.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// How a column of type `ty` converts; `None` when it does not.
pub fn column(ty: &Type) -> Option<Column> {
    match ty.kind() {
        Kind::Array(member) => Scalar::of(member).map(Column::Array),
        _ => Scalar::of(ty).map(Column::Scalar),
    }
}

/// How each column of a statement converts, or which one does not.
pub fn columns(columns: &[tokio_postgres::Column]) -> Result<Vec<Column>, String> {
    columns
        .iter()
        .map(|c| {
            column(c.type_()).ok_or_else(|| {
                format!(
                    "column '{}' has type {}, which sqldb-postgres does not return; cast it in \
                     the query (e.g. {}::text)",
                    c.name(),
                    c.type_(),
                    c.name()
                )
            })
        })
        .collect()
}

/// A column's bytes as PostgreSQL sent them (`None`: NULL).
struct Raw<'a>(Option<&'a [u8]>);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn Error + Sync + Send>> {
        Ok(Raw(Some(raw)))
    }

    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn Error + Sync + Send>> {
        Ok(Raw(None))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// `result-row` (`list<result-row-entry>`) of a row whose columns are `kinds`.
pub fn row(row: &Row, kinds: &[Column]) -> Result<WitValue, String> {
    let mut entries = Vec::with_capacity(kinds.len());
    for (i, (column, kind)) in row.columns().iter().zip(kinds).enumerate() {
        let name = column.name();
        let value = value(row, i, *kind)
            .map_err(|e| format!("column '{name}' ({}): {e}", column.type_()))?;
        entries.push(WitValue::Record(vec![
            ("column-name".into(), WitValue::String(name.to_owned())),
            ("value".into(), value),
        ]));
    }
    Ok(WitValue::List(entries))
}

fn value(row: &Row, i: usize, kind: Column) -> Result<WitValue, String> {
    let case = |case: String, payload: WitValue| WitValue::Variant(case, Some(Box::new(payload)));
    match kind {
        Column::Scalar(scalar) => match row.try_get::<_, Raw>(i).map_err(|e| e.to_string())?.0 {
            None => Ok(WitValue::Variant("null".into(), None)),
            Some(raw) => Ok(case(scalar.case().into(), scalar.decode(raw)?)),
        },
        Column::Array(scalar) => {
            let Some(items) = row
                .try_get::<_, Option<Vec<Raw>>>(i)
                .map_err(|e| e.to_string())?
            else {
                return Ok(WitValue::Variant("null".into(), None));
            };
            let items = items
                .into_iter()
                .map(|item| match item.0 {
                    Some(raw) => scalar.decode(raw),
                    None => Err("a NULL element, which pg-value arrays cannot carry".into()),
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(case(
                format!("{}-array", scalar.case()),
                WitValue::List(items),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_map_to_cases() {
        assert_eq!(column(&Type::INT8), Some(Column::Scalar(Scalar::Int8)));
        assert_eq!(column(&Type::TEXT_ARRAY), Some(Column::Array(Scalar::Text)));
        assert_eq!(column(&Type::INET), None);
        assert_eq!(column(&Type::INET_ARRAY), None);
    }

    #[test]
    fn values_decode() {
        let d = |s: Scalar, raw: &[u8]| s.decode(raw).unwrap();
        assert_eq!(d(Scalar::Int4, &[0, 0, 1, 0]), WitValue::S32(256));
        assert_eq!(d(Scalar::Bool, &[1]), WitValue::Bool(true));
        assert_eq!(
            d(Scalar::Jsonb, b"\x01{\"a\":1}"),
            WitValue::String("{\"a\":1}".into())
        );
        assert_eq!(
            d(Scalar::Uuid, &[0xab; 16]),
            WitValue::String("abababab-abab-abab-abab-abababababab".into())
        );
        assert!(Scalar::Int8.decode(&[1, 2]).is_err());
        assert!(Scalar::Text.decode(&[0xff]).is_err());
    }
}
