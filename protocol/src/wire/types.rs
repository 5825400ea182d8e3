//! The component-model types and values the wire encoding works on.
//!
//! [`WitType`] is the shape of a parameter or result as the component declares it;
//! [`WitValue`] mirrors wasmtime's `component::Val` so the host converts between the
//! two with one `match` each way. Names live in the type, never on the wire.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A component-model value type.
///
/// Records, variants, enums and flags are structural here: the type carries the field,
/// case and flag names in declaration order, and that order fixes the wire encoding.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WitType {
    /// `bool`.
    Bool,
    /// `s8`.
    S8,
    /// `s16`.
    S16,
    /// `s32`.
    S32,
    /// `s64`.
    S64,
    /// `u8`.
    U8,
    /// `u16`.
    U16,
    /// `u32`.
    U32,
    /// `u64`.
    U64,
    /// `f32`.
    F32,
    /// `f64`.
    F64,
    /// `char`.
    Char,
    /// `string`.
    String,
    /// `list<T>`.
    List(Box<WitType>),
    /// Fields `(name, type)` in declaration order.
    Record(Vec<(String, WitType)>),
    /// `tuple<T1, ...>`.
    Tuple(Vec<WitType>),
    /// Cases `(name, payload type)` in declaration order.
    Variant(Vec<(String, Option<WitType>)>),
    /// Case names in declaration order.
    Enum(Vec<String>),
    /// `option<T>`.
    Option(Box<WitType>),
    /// `result<T, E>`; either side may be absent.
    Result {
        /// The `ok` payload type, if any.
        ok: Option<Box<WitType>>,
        /// The `err` payload type, if any.
        err: Option<Box<WitType>>,
    },
    /// Flag names in declaration order.
    Flags(Vec<String>),
    /// An `own<R>` or `borrow<R>` handle to resource `name` of `interface`
    /// (`namespace:package/interface`). Handles are only meaningful inside one
    /// instance, so they never cross hosts: encoding or decoding one is refused.
    Resource {
        /// The resource's interface (`namespace:package/interface`).
        interface: String,
        /// The resource's name.
        name: String,
    },
}

/// A function's parameter and result types, as a host describes an export to the
/// CLI (`lattice call`, header `lattice-describe`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// Parameter names and types, in order.
    pub params: Vec<(String, WitType)>,
    /// Result types, in order.
    pub results: Vec<WitType>,
}

impl WitType {
    /// `list<element>`.
    pub fn list(element: WitType) -> Self {
        WitType::List(Box::new(element))
    }

    /// `option<some>`.
    pub fn option(some: WitType) -> Self {
        WitType::Option(Box::new(some))
    }

    /// `result<ok, err>`.
    pub fn result(ok: Option<WitType>, err: Option<WitType>) -> Self {
        WitType::Result {
            ok: ok.map(Box::new),
            err: err.map(Box::new),
        }
    }

    /// `record { fields }`, in declaration order.
    pub fn record<'a>(fields: impl IntoIterator<Item = (&'a str, WitType)>) -> Self {
        WitType::Record(fields.into_iter().map(|(n, t)| (n.to_owned(), t)).collect())
    }

    /// `variant { cases }`, in declaration order.
    pub fn variant<'a>(cases: impl IntoIterator<Item = (&'a str, Option<WitType>)>) -> Self {
        WitType::Variant(cases.into_iter().map(|(n, t)| (n.to_owned(), t)).collect())
    }

    /// `enum { names }`, in declaration order.
    pub fn enumeration<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        WitType::Enum(names.into_iter().map(str::to_owned).collect())
    }

    /// `flags { names }`, in declaration order.
    pub fn flags<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        WitType::Flags(names.into_iter().map(str::to_owned).collect())
    }

    /// The first resource handle anywhere inside this type, as `(interface, name)`:
    /// a host refuses to link a function across hosts when this is `Some` for any of
    /// its parameters or results.
    pub fn find_resource(&self) -> Option<(&str, &str)> {
        match self {
            WitType::Resource { interface, name } => Some((interface, name)),
            WitType::List(t) | WitType::Option(t) => t.find_resource(),
            WitType::Record(fields) => fields.iter().find_map(|(_, t)| t.find_resource()),
            WitType::Tuple(types) => types.iter().find_map(WitType::find_resource),
            WitType::Variant(cases) => cases
                .iter()
                .find_map(|(_, t)| t.as_ref().and_then(WitType::find_resource)),
            WitType::Result { ok, err } => ok
                .as_deref()
                .and_then(WitType::find_resource)
                .or_else(|| err.as_deref().and_then(WitType::find_resource)),
            _ => None,
        }
    }

    /// The type's kind in WIT words (`u8`, `list`, `record`), for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            WitType::Bool => "bool",
            WitType::S8 => "s8",
            WitType::S16 => "s16",
            WitType::S32 => "s32",
            WitType::S64 => "s64",
            WitType::U8 => "u8",
            WitType::U16 => "u16",
            WitType::U32 => "u32",
            WitType::U64 => "u64",
            WitType::F32 => "f32",
            WitType::F64 => "f64",
            WitType::Char => "char",
            WitType::String => "string",
            WitType::List(t) if **t == WitType::U8 => "list<u8>",
            WitType::List(_) => "list",
            WitType::Record(_) => "record",
            WitType::Tuple(_) => "tuple",
            WitType::Variant(_) => "variant",
            WitType::Enum(_) => "enum",
            WitType::Option(_) => "option",
            WitType::Result { .. } => "result",
            WitType::Flags(_) => "flags",
            WitType::Resource { .. } => "resource",
        }
    }
}

/// The canonical text of a type, close to WIT: `list<u8>`, `result<_, string>`,
/// `record { id: u64, tags: list<string> }`, `variant { a(u8), b }`,
/// `resource<wasi:io/streams.input-stream>`. Call signatures hash this text (see
/// [`signature`](super::signature)), so it must not change.
impl fmt::Display for WitType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WitType::List(t) => write!(f, "list<{t}>"),
            WitType::Option(t) => write!(f, "option<{t}>"),
            WitType::Tuple(types) => {
                f.write_str("tuple<")?;
                comma_separated(f, types.iter(), |f, t| write!(f, "{t}"))?;
                f.write_str(">")
            }
            WitType::Result { ok, err } => match (ok, err) {
                (None, None) => f.write_str("result"),
                (Some(ok), None) => write!(f, "result<{ok}>"),
                (None, Some(err)) => write!(f, "result<_, {err}>"),
                (Some(ok), Some(err)) => write!(f, "result<{ok}, {err}>"),
            },
            WitType::Record(fields) => braced(f, "record", fields.iter(), |f, (n, t)| {
                write!(f, "{n}: {t}")
            }),
            WitType::Variant(cases) => braced(f, "variant", cases.iter(), |f, (n, t)| match t {
                Some(t) => write!(f, "{n}({t})"),
                None => f.write_str(n),
            }),
            WitType::Enum(names) => braced(f, "enum", names.iter(), |f, n| f.write_str(n)),
            WitType::Flags(names) => braced(f, "flags", names.iter(), |f, n| f.write_str(n)),
            WitType::Resource { interface, name } => write!(f, "resource<{interface}.{name}>"),
            scalar => f.write_str(scalar.kind()),
        }
    }
}

fn braced<T>(
    f: &mut fmt::Formatter<'_>,
    keyword: &str,
    items: impl ExactSizeIterator<Item = T>,
    item: impl Fn(&mut fmt::Formatter<'_>, T) -> fmt::Result,
) -> fmt::Result {
    if items.len() == 0 {
        return write!(f, "{keyword} {{}}");
    }
    write!(f, "{keyword} {{ ")?;
    comma_separated(f, items, item)?;
    f.write_str(" }")
}

fn comma_separated<T>(
    f: &mut fmt::Formatter<'_>,
    items: impl Iterator<Item = T>,
    item: impl Fn(&mut fmt::Formatter<'_>, T) -> fmt::Result,
) -> fmt::Result {
    for (i, t) in items.enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        item(f, t)?;
    }
    Ok(())
}

/// A component-model value, shaped like wasmtime's `component::Val` (without
/// resources, futures and streams, which never cross hosts).
///
/// `PartialEq` follows `f32`/`f64` (`NaN != NaN`); [`WitValue::bits_eq`] compares
/// floats by their bits, which is what "the same value arrived" means.
#[derive(Debug, Clone, PartialEq)]
pub enum WitValue {
    /// A `bool`.
    Bool(bool),
    /// An `s8`.
    S8(i8),
    /// A `u8`.
    U8(u8),
    /// An `s16`.
    S16(i16),
    /// A `u16`.
    U16(u16),
    /// An `s32`.
    S32(i32),
    /// A `u32`.
    U32(u32),
    /// An `s64`.
    S64(i64),
    /// A `u64`.
    U64(u64),
    /// An `f32`.
    Float32(f32),
    /// An `f64`.
    Float64(f64),
    /// A `char`.
    Char(char),
    /// A `string`.
    String(String),
    /// A `list` (`list<u8>` too, though [`WitValue::Bytes`] is the cheap form).
    List(Vec<WitValue>),
    /// A `list<u8>` as bytes: what decoding gives for one, and the way to build
    /// one without a value per byte. The encoder takes either form;
    /// [`WitValue::bits_eq`] holds the two equal.
    Bytes(Vec<u8>),
    /// Fields `(name, value)` in the type's declaration order.
    Record(Vec<(String, WitValue)>),
    /// A `tuple`.
    Tuple(Vec<WitValue>),
    /// The case name and its payload.
    Variant(String, Option<Box<WitValue>>),
    /// The case name.
    Enum(String),
    /// An `option`.
    Option(Option<Box<WitValue>>),
    /// A `result`: `Ok`/`Err` with the payload, if the type has one.
    Result(Result<Option<Box<WitValue>>, Option<Box<WitValue>>>),
    /// The names of the flags that are set. The encoder takes them in any order; the
    /// decoder returns them in declaration order.
    Flags(Vec<String>),
}

impl WitValue {
    /// The bytes of a `list<u8>` value in either form; `None` for any other value
    /// (a `List` holding anything but `U8`s included).
    pub fn as_bytes(&self) -> Option<std::borrow::Cow<'_, [u8]>> {
        match self {
            WitValue::Bytes(b) => Some(std::borrow::Cow::Borrowed(b)),
            WitValue::List(items) => items
                .iter()
                .map(|v| match v {
                    WitValue::U8(b) => Some(*b),
                    _ => None,
                })
                .collect::<Option<Vec<u8>>>()
                .map(std::borrow::Cow::Owned),
            _ => None,
        }
    }

    /// [`WitValue::as_bytes`], taking the value (no copy of a `Bytes`).
    pub fn into_bytes(self) -> Option<Vec<u8>> {
        match self {
            WitValue::Bytes(b) => Some(b),
            other => other.as_bytes().map(std::borrow::Cow::into_owned),
        }
    }

    /// The value's kind in WIT words (`u8`, `list`, `record`), for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            WitValue::Bool(_) => "bool",
            WitValue::S8(_) => "s8",
            WitValue::U8(_) => "u8",
            WitValue::S16(_) => "s16",
            WitValue::U16(_) => "u16",
            WitValue::S32(_) => "s32",
            WitValue::U32(_) => "u32",
            WitValue::S64(_) => "s64",
            WitValue::U64(_) => "u64",
            WitValue::Float32(_) => "f32",
            WitValue::Float64(_) => "f64",
            WitValue::Char(_) => "char",
            WitValue::String(_) => "string",
            WitValue::List(_) | WitValue::Bytes(_) => "list",
            WitValue::Record(_) => "record",
            WitValue::Tuple(_) => "tuple",
            WitValue::Variant(..) => "variant",
            WitValue::Enum(_) => "enum",
            WitValue::Option(_) => "option",
            WitValue::Result(_) => "result",
            WitValue::Flags(_) => "flags",
        }
    }

    /// Equality with floats compared bit for bit (so a NaN equals the same NaN, and
    /// `0.0` differs from `-0.0`).
    pub fn bits_eq(&self, other: &WitValue) -> bool {
        use WitValue as V;
        let boxed = |a: &Option<Box<V>>, b: &Option<Box<V>>| match (a, b) {
            (Some(a), Some(b)) => a.bits_eq(b),
            (None, None) => true,
            _ => false,
        };
        match (self, other) {
            (V::Float32(a), V::Float32(b)) => a.to_bits() == b.to_bits(),
            (V::Float64(a), V::Float64(b)) => a.to_bits() == b.to_bits(),
            (V::List(a), V::List(b)) | (V::Tuple(a), V::Tuple(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(a, b)| a.bits_eq(b))
            }
            (V::Bytes(_), V::List(_)) | (V::List(_), V::Bytes(_)) => {
                self.as_bytes().is_some() && self.as_bytes() == other.as_bytes()
            }
            (V::Record(a), V::Record(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .zip(b)
                        .all(|((na, a), (nb, b))| na == nb && a.bits_eq(b))
            }
            (V::Variant(ca, a), V::Variant(cb, b)) => ca == cb && boxed(a, b),
            (V::Option(a), V::Option(b)) => boxed(a, b),
            (V::Result(Ok(a)), V::Result(Ok(b))) | (V::Result(Err(a)), V::Result(Err(b))) => {
                boxed(a, b)
            }
            (V::Result(_), V::Result(_)) => false,
            (a, b) => a == b,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_wit_like() {
        let t = WitType::record([
            ("id", WitType::U64),
            ("tags", WitType::list(WitType::String)),
            (
                "state",
                WitType::variant([("ok", None), ("failed", Some(WitType::String))]),
            ),
            ("r", WitType::result(None, Some(WitType::Char))),
            (
                "t",
                WitType::Tuple(vec![WitType::U8, WitType::option(WitType::F32)]),
            ),
            ("e", WitType::Enum(vec![])),
        ]);
        assert_eq!(
            t.to_string(),
            "record { id: u64, tags: list<string>, state: variant { ok, failed(string) }, \
             r: result<_, char>, t: tuple<u8, option<f32>>, e: enum {} }"
        );
    }

    #[test]
    fn finds_resources_anywhere() {
        let stream = WitType::Resource {
            interface: "wasi:io/streams".into(),
            name: "input-stream".into(),
        };
        let t = WitType::record([(
            "x",
            WitType::result(Some(WitType::U8), Some(WitType::list(stream))),
        )]);
        assert_eq!(t.find_resource(), Some(("wasi:io/streams", "input-stream")));
        assert_eq!(WitType::list(WitType::U8).find_resource(), None);
    }

    #[test]
    fn bits_eq_compares_nan_by_bits() {
        let nan = WitValue::List(vec![WitValue::Float64(f64::NAN)]);
        assert_ne!(nan, nan.clone());
        assert!(nan.bits_eq(&nan.clone()));
        assert!(!WitValue::Float32(0.0).bits_eq(&WitValue::Float32(-0.0)));
        assert!(!WitValue::Result(Ok(None)).bits_eq(&WitValue::Result(Err(None))));
    }

    #[test]
    fn bytes_equal_the_same_list_of_u8() {
        let bytes = WitValue::Bytes(vec![1, 2]);
        let list = WitValue::List(vec![WitValue::U8(1), WitValue::U8(2)]);
        assert!(bytes.bits_eq(&list) && list.bits_eq(&bytes));
        assert!(!bytes.bits_eq(&WitValue::List(vec![WitValue::U8(1)])));
        let not_bytes = WitValue::List(vec![WitValue::U16(1), WitValue::U16(2)]);
        assert!(!bytes.bits_eq(&not_bytes));
        assert_eq!(list.into_bytes(), Some(vec![1, 2]));
        assert_eq!(not_bytes.as_bytes(), None);
        assert_eq!(WitValue::Bytes(vec![]).kind(), "list");
    }
}
