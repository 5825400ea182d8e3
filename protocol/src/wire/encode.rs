//! Values to bytes, checking each value against its type on the way. Type checking
//! is the same walk with the output thrown away, so the two can never disagree.

use super::error::{known_names, Problem, Segment, WireError};
use super::msgpack::{self as mp, Discard, Sink};
use super::types::{WitType, WitValue};
use super::MAX_DEPTH;

/// Check that `value` is of type `ty`: exactly the checks [`encode`] makes.
pub fn typecheck(ty: &WitType, value: &WitValue) -> Result<(), WireError> {
    walk(ty, value, &mut Discard, 0).map_err(|e| e.within(Segment::Root("value")))
}

/// Encode one value of type `ty`.
pub fn encode(ty: &WitType, value: &WitValue) -> Result<Vec<u8>, WireError> {
    let mut out = Vec::new();
    walk(ty, value, &mut out, 0).map_err(|e| e.within(Segment::Root("value")))?;
    Ok(out)
}

/// Encode a call's arguments: an array with one element per parameter.
pub fn encode_args(types: &[WitType], values: &[WitValue]) -> Result<Vec<u8>, WireError> {
    encode_all("args", "arguments", types, values)
}

/// Encode a call's results: an array with one element per result.
pub fn encode_results(types: &[WitType], values: &[WitValue]) -> Result<Vec<u8>, WireError> {
    encode_all("results", "results", types, values)
}

fn encode_all(
    root: &'static str,
    what: &'static str,
    types: &[WitType],
    values: &[WitValue],
) -> Result<Vec<u8>, WireError> {
    let at_root = |p: Problem| WireError::here(p).within(Segment::Root(root));
    if types.len() != values.len() {
        return Err(at_root(Problem::Count {
            what,
            expected: types.len(),
            found: values.len(),
        }));
    }
    let mut out = Vec::new();
    mp::write_array_header(&mut out, values.len()).map_err(at_root)?;
    for (i, (ty, value)) in types.iter().zip(values).enumerate() {
        walk(ty, value, &mut out, 0).map_err(|e| e.within(Segment::RootIndex(root, i)))?;
    }
    Ok(out)
}

fn walk(
    ty: &WitType,
    value: &WitValue,
    out: &mut impl Sink,
    depth: usize,
) -> Result<(), WireError> {
    use WitType as T;
    use WitValue as V;
    let here = WireError::here;
    if depth > MAX_DEPTH {
        return Err(here(Problem::TooDeep { max: MAX_DEPTH }));
    }
    match (ty, value) {
        (T::Resource { interface, name }, _) => {
            return Err(here(Problem::Resource {
                interface: interface.clone(),
                name: name.clone(),
            }))
        }
        (T::Bool, V::Bool(b)) => mp::write_bool(out, *b),
        (T::S8, V::S8(v)) => mp::write_sint(out, i64::from(*v)),
        (T::S16, V::S16(v)) => mp::write_sint(out, i64::from(*v)),
        (T::S32, V::S32(v)) => mp::write_sint(out, i64::from(*v)),
        (T::S64, V::S64(v)) => mp::write_sint(out, *v),
        (T::U8, V::U8(v)) => mp::write_uint(out, u64::from(*v)),
        (T::U16, V::U16(v)) => mp::write_uint(out, u64::from(*v)),
        (T::U32, V::U32(v)) => mp::write_uint(out, u64::from(*v)),
        (T::U64, V::U64(v)) => mp::write_uint(out, *v),
        (T::F32, V::Float32(v)) => mp::write_f32(out, *v),
        (T::F64, V::Float64(v)) => mp::write_f64(out, *v),
        (T::Char, V::Char(c)) => mp::write_str(out, c.encode_utf8(&mut [0; 4])).map_err(here)?,
        (T::String, V::String(s)) => mp::write_str(out, s).map_err(here)?,
        (T::List(element), V::Bytes(bytes)) if **element == T::U8 => {
            mp::write_bin_header(out, bytes.len()).map_err(here)?;
            out.put(bytes);
        }
        (T::List(element), V::List(items)) if **element == T::U8 => {
            mp::write_bin_header(out, items.len()).map_err(here)?;
            for (i, item) in items.iter().enumerate() {
                match item {
                    V::U8(b) => out.put(&[*b]),
                    other => return Err(mismatch(element, other).within(Segment::Element(i))),
                }
            }
        }
        (T::List(element), V::List(items)) => {
            mp::write_array_header(out, items.len()).map_err(here)?;
            for (i, item) in items.iter().enumerate() {
                walk(element, item, out, depth + 1).map_err(|e| e.within(Segment::Element(i)))?;
            }
        }
        (T::Record(fields), V::Record(values)) => {
            count("fields", fields.len(), values.len())?;
            mp::write_array_header(out, values.len()).map_err(here)?;
            for (index, ((name, ty), (given, value))) in fields.iter().zip(values).enumerate() {
                if name != given {
                    return Err(here(Problem::FieldName {
                        index,
                        expected: name.clone(),
                        found: given.clone(),
                    }));
                }
                walk(ty, value, out, depth + 1).map_err(|e| e.within(Segment::Name(name)))?;
            }
        }
        (T::Tuple(types), V::Tuple(values)) => {
            count("elements", types.len(), values.len())?;
            mp::write_array_header(out, values.len()).map_err(here)?;
            for (i, (ty, value)) in types.iter().zip(values).enumerate() {
                walk(ty, value, out, depth + 1).map_err(|e| e.within(Segment::Position(i)))?;
            }
        }
        (T::Variant(cases), V::Variant(case, payload)) => {
            let Some(index) = cases.iter().position(|(name, _)| name == case) else {
                return Err(here(Problem::UnknownName {
                    what: "case",
                    name: case.clone(),
                    known: known_names("cases", cases.iter().map(|(n, _)| n)),
                }));
            };
            let payload_ty = cases[index].1.as_ref();
            write_case(out, index, case, payload_ty, payload.as_deref(), depth)?;
        }
        (T::Enum(names), V::Enum(case)) => {
            let Some(index) = names.iter().position(|name| name == case) else {
                return Err(here(Problem::UnknownName {
                    what: "case",
                    name: case.clone(),
                    known: known_names("cases", names.iter()),
                }));
            };
            mp::write_uint(out, index as u64);
        }
        (T::Option(_), V::Option(None)) => mp::write_nil(out),
        (T::Option(some), V::Option(Some(value))) => {
            mp::write_array_header(out, 1).map_err(here)?;
            walk(some, value, out, depth + 1).map_err(|e| e.within(Segment::Name("some")))?;
        }
        (T::Result { ok, .. }, V::Result(Ok(payload))) => {
            write_case(out, 0, "ok", ok.as_deref(), payload.as_deref(), depth)?;
        }
        (T::Result { err, .. }, V::Result(Err(payload))) => {
            write_case(out, 1, "err", err.as_deref(), payload.as_deref(), depth)?;
        }
        (T::Flags(names), V::Flags(set)) => write_flags(out, names, set).map_err(here)?,
        (ty, value) => return Err(mismatch(ty, value)),
    }
    Ok(())
}

/// `[index]` or `[index, payload]`: variant cases and results.
fn write_case(
    out: &mut impl Sink,
    index: usize,
    case: &str,
    ty: Option<&WitType>,
    payload: Option<&WitValue>,
    depth: usize,
) -> Result<(), WireError> {
    match (ty, payload) {
        (None, None) => {
            mp::write_array_header(out, 1).map_err(WireError::here)?;
            mp::write_uint(out, index as u64);
        }
        (Some(ty), Some(payload)) => {
            mp::write_array_header(out, 2).map_err(WireError::here)?;
            mp::write_uint(out, index as u64);
            walk(ty, payload, out, depth + 1).map_err(|e| e.within(Segment::Name(case)))?;
        }
        (ty, _) => {
            return Err(WireError::here(Problem::Payload {
                case: case.to_owned(),
                expects_payload: ty.is_some(),
            }))
        }
    }
    Ok(())
}

/// Up to 64 flags: one unsigned integer, bit `i` for flag `i`. More: an array of
/// ceil(n / 64) such integers, the first holding flags 0..=63.
fn write_flags(out: &mut impl Sink, names: &[String], set: &[String]) -> Result<(), Problem> {
    let mut words = vec![0u64; names.len().div_ceil(64).max(1)];
    for flag in set {
        let Some(bit) = names.iter().position(|n| n == flag) else {
            return Err(Problem::UnknownName {
                what: "flag",
                name: flag.clone(),
                known: known_names("flags", names.iter()),
            });
        };
        let (word, mask) = (bit / 64, 1u64 << (bit % 64));
        if words[word] & mask != 0 {
            return Err(Problem::DuplicateFlag { name: flag.clone() });
        }
        words[word] |= mask;
    }
    if names.len() > 64 {
        mp::write_array_header(out, words.len())?;
    }
    for word in words {
        mp::write_uint(out, word);
    }
    Ok(())
}

fn count(what: &'static str, expected: usize, found: usize) -> Result<(), WireError> {
    if expected == found {
        Ok(())
    } else {
        Err(WireError::here(Problem::Count {
            what,
            expected,
            found,
        }))
    }
}

fn mismatch(ty: &WitType, value: &WitValue) -> WireError {
    WireError::here(Problem::Mismatch {
        expected: ty.kind().to_owned(),
        found: value.kind().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(ty: &WitType, v: WitValue) -> Vec<u8> {
        encode(ty, &v).unwrap()
    }

    fn err(ty: &WitType, v: WitValue) -> String {
        encode(ty, &v).unwrap_err().to_string()
    }

    #[test]
    fn scalars() {
        assert_eq!(enc(&WitType::Bool, WitValue::Bool(true)), [0xc3]);
        assert_eq!(enc(&WitType::S8, WitValue::S8(-1)), [0xff]);
        assert_eq!(enc(&WitType::U16, WitValue::U16(300)), [0xcd, 1, 44]);
        assert_eq!(enc(&WitType::S64, WitValue::S64(5)), [0x05]);
        assert_eq!(
            enc(&WitType::F32, WitValue::Float32(1.0)),
            [0xca, 0x3f, 0x80, 0, 0]
        );
        assert_eq!(
            enc(&WitType::F64, WitValue::Float64(-0.0))[..2],
            [0xcb, 0x80]
        );
        assert_eq!(enc(&WitType::Char, WitValue::Char('é')), [0xa2, 0xc3, 0xa9]);
        assert_eq!(enc(&WitType::String, WitValue::String("".into())), [0xa0]);
    }

    #[test]
    fn bytes_travel_as_bin_and_other_lists_as_arrays() {
        let bytes = WitValue::List(vec![WitValue::U8(1), WitValue::U8(2)]);
        assert_eq!(enc(&WitType::list(WitType::U8), bytes), [0xc4, 2, 1, 2]);
        let shorts = WitValue::List(vec![WitValue::U16(1), WitValue::U16(2)]);
        assert_eq!(enc(&WitType::list(WitType::U16), shorts), [0x92, 1, 2]);
        let bad = WitValue::List(vec![WitValue::U8(1), WitValue::S8(2)]);
        assert_eq!(
            err(&WitType::list(WitType::U8), bad),
            "value[1]: expected u8, found s8"
        );
    }

    #[test]
    fn records_check_names_and_order() {
        let ty = WitType::record([("a", WitType::U8), ("b", WitType::Bool)]);
        let ok = WitValue::Record(vec![
            ("a".into(), WitValue::U8(1)),
            ("b".into(), WitValue::Bool(false)),
        ]);
        assert_eq!(enc(&ty, ok), [0x92, 1, 0xc2]);
        let swapped = WitValue::Record(vec![
            ("b".into(), WitValue::Bool(false)),
            ("a".into(), WitValue::U8(1)),
        ]);
        assert_eq!(
            err(&ty, swapped),
            "value: field 0 is named `b`, but the record's field 0 is `a`"
        );
        let short = WitValue::Record(vec![("a".into(), WitValue::U8(1))]);
        assert_eq!(err(&ty, short), "value: expected 2 fields, found 1");
    }

    #[test]
    fn variants_enums_options_results() {
        let v = WitType::variant([("none", None), ("some", Some(WitType::U8))]);
        let some = |p: Option<WitValue>| WitValue::Variant("some".into(), p.map(Box::new));
        assert_eq!(enc(&v, WitValue::Variant("none".into(), None)), [0x91, 0]);
        assert_eq!(enc(&v, some(Some(WitValue::U8(7)))), [0x92, 1, 7]);
        assert_eq!(
            err(&v, some(None)),
            "value: case `some` carries a payload, but the value has none"
        );
        assert_eq!(
            err(&v, WitValue::Variant("other".into(), None)),
            "value: unknown case `other`; the type has cases none, some"
        );
        let e = WitType::enumeration(["a", "b", "c"]);
        assert_eq!(enc(&e, WitValue::Enum("c".into())), [2]);
        let o = WitType::option(WitType::option(WitType::U8));
        assert_eq!(enc(&o, WitValue::Option(None)), [0xc0]);
        let some_none = WitValue::Option(Some(Box::new(WitValue::Option(None))));
        assert_eq!(enc(&o, some_none), [0x91, 0xc0]);
        let r = WitType::result(None, Some(WitType::String));
        assert_eq!(enc(&r, WitValue::Result(Ok(None))), [0x91, 0]);
        let fail = WitValue::Result(Err(Some(Box::new(WitValue::String("x".into())))));
        assert_eq!(enc(&r, fail), [0x92, 1, 0xa1, b'x']);
    }

    #[test]
    fn flags_are_bitmasks() {
        let f = WitType::flags(["r", "w", "x"]);
        let set = |names: &[&str]| WitValue::Flags(names.iter().map(|n| n.to_string()).collect());
        assert_eq!(enc(&f, set(&[])), [0]);
        assert_eq!(enc(&f, set(&["x", "r"])), [0b101]);
        assert_eq!(err(&f, set(&["w", "w"])), "value: flag `w` is given twice");
        assert_eq!(
            err(&f, set(&["z"])),
            "value: unknown flag `z`; the type has flags r, w, x"
        );
        let names: Vec<String> = (0..65).map(|i| format!("f{i}")).collect();
        let wide = WitType::Flags(names);
        assert_eq!(enc(&wide, set(&["f0", "f64"])), [0x92, 1, 1]);
    }

    #[test]
    fn resources_are_refused_with_their_name() {
        let ty = WitType::record([(
            "stream",
            WitType::Resource {
                interface: "wasi:io/streams".into(),
                name: "input-stream".into(),
            },
        )]);
        let v = WitValue::Record(vec![("stream".into(), WitValue::U32(1))]);
        let e = err(&ty, v);
        assert!(
            e.starts_with("value.stream: resource `input-stream` of `wasi:io/streams`: resource handles cannot cross hosts"),
            "{e}"
        );
    }

    #[test]
    fn args_are_an_array_and_name_their_index() {
        let types = [WitType::String, WitType::U8];
        let values = [WitValue::String("a".into()), WitValue::U8(2)];
        assert_eq!(encode_args(&types, &values).unwrap(), [0x92, 0xa1, b'a', 2]);
        assert_eq!(encode_results(&[], &[]).unwrap(), [0x90]);
        assert_eq!(
            encode_args(&types, &values[..1]).unwrap_err().to_string(),
            "args: expected 2 arguments, found 1"
        );
        let wrong = [WitValue::String("a".into()), WitValue::Bool(true)];
        assert_eq!(
            encode_args(&types, &wrong).unwrap_err().to_string(),
            "args[1]: expected u8, found bool"
        );
        assert!(typecheck(&types[1], &wrong[1]).is_err());
        assert!(typecheck(&types[1], &values[1]).is_ok());
    }

    #[test]
    fn depth_is_bounded() {
        let mut ty = WitType::U8;
        let mut v = WitValue::U8(1);
        for _ in 0..MAX_DEPTH {
            ty = WitType::option(ty);
            v = WitValue::Option(Some(Box::new(v)));
        }
        assert!(encode(&ty, &v).is_ok());
        let ty = WitType::option(ty);
        let v = WitValue::Option(Some(Box::new(v)));
        assert!(err(&ty, v).ends_with("the value nests deeper than 64 levels"));
    }
}
