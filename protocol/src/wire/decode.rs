//! Bytes to values, validated against the type at every step.
//!
//! Bytes come from the network: nothing here panics, recursion follows the type and
//! stops at [`MAX_DEPTH`], and nothing is allocated for a length the input cannot
//! hold (every element takes at least one byte, so a list never reserves more
//! elements than there are bytes left). The `_within` forms also bound the
//! memory the decoded values take, which can exceed the input's size many times
//! (an array of a million one-byte integers is a million values): a call's
//! arguments and results are decoded within [`decoded_limit`] of the call limit.

use super::error::{Problem, Segment, WireError};
use super::msgpack::{Float, ReadError, Reader};
use super::types::{WitType, WitValue};
use super::MAX_DEPTH;

/// How many times its call limit a call's arguments (or results) may take in
/// memory once decoded.
pub const DECODED_PER_CALL_BYTE: usize = 16;

/// The memory the decoded arguments or results of a call limited to
/// `max_call_bytes` may take: [`DECODED_PER_CALL_BYTE`] times it.
pub fn decoded_limit(max_call_bytes: usize) -> usize {
    max_call_bytes.saturating_mul(DECODED_PER_CALL_BYTE)
}

/// What decoded values may still take: every value costs its `WitValue`, every
/// string, byte list and name it carries its length besides.
struct Budget {
    left: usize,
    limit: usize,
}

/// What one decoded value costs besides what it owns.
const VALUE_SIZE: usize = std::mem::size_of::<WitValue>();

impl Budget {
    fn unbounded() -> Self {
        Self::new(usize::MAX)
    }

    fn new(limit: usize) -> Self {
        Self { left: limit, limit }
    }

    fn take(&mut self, bytes: usize) -> Result<(), WireError> {
        match self.left.checked_sub(bytes) {
            Some(left) => {
                self.left = left;
                Ok(())
            }
            None => Err(self.exceeded()),
        }
    }

    /// Whether `bytes` more would still fit, without taking them.
    fn check(&self, bytes: usize) -> Result<(), WireError> {
        match bytes <= self.left {
            true => Ok(()),
            false => Err(self.exceeded()),
        }
    }

    fn exceeded(&self) -> WireError {
        WireError::here(Problem::TooLarge { limit: self.limit })
    }
}

/// Decode one value of type `ty`; the bytes must hold exactly that value.
pub fn decode(ty: &WitType, bytes: &[u8]) -> Result<WitValue, WireError> {
    let mut r = Reader::new(bytes);
    let value = read(ty, &mut r, 0, &mut Budget::unbounded())
        .and_then(|v| end(&r).map(|()| v))
        .map_err(|e| e.within(Segment::Root("value")))?;
    Ok(value)
}

/// Decode a call's arguments (an array with one element per parameter).
pub fn decode_args(types: &[WitType], bytes: &[u8]) -> Result<Vec<WitValue>, WireError> {
    decode_all("args", "arguments", types, bytes, &mut Budget::unbounded())
}

/// Decode a call's results (an array with one element per result).
pub fn decode_results(types: &[WitType], bytes: &[u8]) -> Result<Vec<WitValue>, WireError> {
    decode_all("results", "results", types, bytes, &mut Budget::unbounded())
}

/// [`decode_args`], refusing with [`Problem::TooLarge`] arguments whose values
/// would take more than `max_decoded` bytes of memory.
pub fn decode_args_within(
    types: &[WitType],
    bytes: &[u8],
    max_decoded: usize,
) -> Result<Vec<WitValue>, WireError> {
    decode_all(
        "args",
        "arguments",
        types,
        bytes,
        &mut Budget::new(max_decoded),
    )
}

/// [`decode_results`] within `max_decoded` bytes of memory, as
/// [`decode_args_within`].
pub fn decode_results_within(
    types: &[WitType],
    bytes: &[u8],
    max_decoded: usize,
) -> Result<Vec<WitValue>, WireError> {
    decode_all(
        "results",
        "results",
        types,
        bytes,
        &mut Budget::new(max_decoded),
    )
}

fn decode_all(
    root: &'static str,
    what: &'static str,
    types: &[WitType],
    bytes: &[u8],
    budget: &mut Budget,
) -> Result<Vec<WitValue>, WireError> {
    let mut r = Reader::new(bytes);
    let at_root = |e: WireError| e.within(Segment::Root(root));
    let len = r
        .array()
        .map_err(|e| wrong(e, || format!("an array of {} {what}", types.len())))
        .map_err(at_root)?;
    count(what, types.len(), len).map_err(at_root)?;
    let mut values = Vec::with_capacity(len);
    for (i, ty) in types.iter().enumerate() {
        let value = read(ty, &mut r, 0, budget);
        values.push(value.map_err(|e| e.within(Segment::RootIndex(root, i)))?);
    }
    end(&r).map_err(at_root)?;
    Ok(values)
}

fn end(r: &Reader<'_>) -> Result<(), WireError> {
    match r.remaining() {
        0 => Ok(()),
        count => Err(WireError::here(Problem::TrailingBytes { count })),
    }
}

fn read(
    ty: &WitType,
    r: &mut Reader<'_>,
    depth: usize,
    b: &mut Budget,
) -> Result<WitValue, WireError> {
    use WitType as T;
    use WitValue as V;
    if depth > MAX_DEPTH {
        return Err(WireError::here(Problem::TooDeep { max: MAX_DEPTH }));
    }
    b.take(VALUE_SIZE)?;
    let expected = || expected(ty);
    Ok(match ty {
        T::Resource { interface, name } => {
            return Err(WireError::here(Problem::Resource {
                interface: interface.clone(),
                name: name.clone(),
            }))
        }
        T::Bool => V::Bool(r.bool().map_err(|e| wrong(e, expected))?),
        T::S8 => V::S8(int(r, ty)?),
        T::S16 => V::S16(int(r, ty)?),
        T::S32 => V::S32(int(r, ty)?),
        T::S64 => V::S64(int(r, ty)?),
        T::U8 => V::U8(int(r, ty)?),
        T::U16 => V::U16(int(r, ty)?),
        T::U32 => V::U32(int(r, ty)?),
        T::U64 => V::U64(int(r, ty)?),
        T::F32 => match r.float().map_err(|e| wrong(e, expected))? {
            Float::F32(v) => V::Float32(v),
            // Accepted from encoders that only write float64, when nothing is lost.
            Float::F64(v) if v.is_nan() || f64::from(v as f32) == v => V::Float32(v as f32),
            Float::F64(value) => return Err(WireError::here(Problem::InexactF32 { value })),
        },
        T::F64 => match r.float().map_err(|e| wrong(e, expected))? {
            Float::F32(v) => V::Float64(f64::from(v)),
            Float::F64(v) => V::Float64(v),
        },
        T::Char => {
            let s = r.str().map_err(|e| wrong(e, expected))?;
            b.take(s.len())?;
            let mut chars = s.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => V::Char(c),
                _ => {
                    let count = s.chars().count();
                    return Err(WireError::here(Problem::NotOneChar { count }));
                }
            }
        }
        T::String => {
            let s = r.str().map_err(|e| wrong(e, expected))?;
            b.take(s.len())?;
            V::String(s.to_owned())
        }
        T::List(element) if **element == T::U8 => {
            let bytes = r.bin().map_err(|e| wrong(e, expected))?;
            b.take(bytes.len())?;
            V::Bytes(bytes.to_vec())
        }
        T::List(element) => {
            // `array()` refused any length beyond the remaining bytes; the items
            // pay for themselves as they are read, but not before the list
            // reserves room for them.
            let len = r.array().map_err(|e| wrong(e, expected))?;
            b.check(len.saturating_mul(VALUE_SIZE))?;
            let mut items = Vec::with_capacity(len);
            for i in 0..len {
                let item =
                    read(element, r, depth + 1, b).map_err(|e| e.within(Segment::Element(i)))?;
                items.push(item);
            }
            V::List(items)
        }
        T::Record(fields) => {
            let len = r.array().map_err(|e| wrong(e, expected))?;
            count("fields", fields.len(), len)?;
            let mut values = Vec::with_capacity(len);
            for (name, ty) in fields {
                b.take(name.len())?;
                let value = read(ty, r, depth + 1, b).map_err(|e| e.within(Segment::Name(name)))?;
                values.push((name.clone(), value));
            }
            V::Record(values)
        }
        T::Tuple(types) => {
            let len = r.array().map_err(|e| wrong(e, expected))?;
            count("elements", types.len(), len)?;
            let mut values = Vec::with_capacity(len);
            for (i, ty) in types.iter().enumerate() {
                let value = read(ty, r, depth + 1, b);
                values.push(value.map_err(|e| e.within(Segment::Position(i)))?);
            }
            V::Tuple(values)
        }
        T::Variant(cases) => {
            let (index, has_payload) = case_header(r, ty, "variant", cases.len())?;
            let (name, payload_ty) = &cases[index];
            b.take(name.len())?;
            let payload = read_payload(r, name, payload_ty.as_ref(), has_payload, depth, b)?;
            V::Variant(name.clone(), payload)
        }
        T::Enum(names) => {
            let index = r.int().map_err(|e| wrong(e, expected))?;
            let name = &names[case_index(index, "enum", names.len())?];
            b.take(name.len())?;
            V::Enum(name.clone())
        }
        T::Option(some) => {
            if r.nil() {
                V::Option(None)
            } else {
                let len = r.array().map_err(|e| wrong(e, expected))?;
                if len != 1 {
                    return Err(WireError::here(Problem::Mismatch {
                        expected: expected(),
                        found: format!("an array of {len}"),
                    }));
                }
                let value =
                    read(some, r, depth + 1, b).map_err(|e| e.within(Segment::Name("some")))?;
                V::Option(Some(Box::new(value)))
            }
        }
        T::Result { ok, err } => {
            let (index, has_payload) = case_header(r, ty, "result", 2)?;
            if index == 0 {
                V::Result(Ok(read_payload(
                    r,
                    "ok",
                    ok.as_deref(),
                    has_payload,
                    depth,
                    b,
                )?))
            } else {
                V::Result(Err(read_payload(
                    r,
                    "err",
                    err.as_deref(),
                    has_payload,
                    depth,
                    b,
                )?))
            }
        }
        T::Flags(names) => {
            let set = read_flags(r, ty, names)?;
            b.take(set.iter().map(String::len).sum())?;
            V::Flags(set)
        }
    })
}

/// An integer of the range of `T`, in any MessagePack integer format.
fn int<T: TryFrom<i128>>(r: &mut Reader<'_>, ty: &WitType) -> Result<T, WireError> {
    let value = r.int().map_err(|e| wrong(e, || expected(ty)))?;
    T::try_from(value).map_err(|_| {
        WireError::here(Problem::OutOfRange {
            value,
            ty: ty.kind(),
        })
    })
}

/// `[index]` or `[index, payload]`: the case index, and whether a payload follows.
fn case_header(
    r: &mut Reader<'_>,
    ty: &WitType,
    kind: &'static str,
    cases: usize,
) -> Result<(usize, bool), WireError> {
    let len = r.array().map_err(|e| wrong(e, || expected(ty)))?;
    if !(1..=2).contains(&len) {
        return Err(WireError::here(Problem::Mismatch {
            expected: expected(ty),
            found: format!("an array of {len}"),
        }));
    }
    let index = r
        .int()
        .map_err(|e| wrong(e, || format!("a case index ({kind})")))?;
    Ok((case_index(index, kind, cases)?, len == 2))
}

fn case_index(index: i128, kind: &'static str, count: usize) -> Result<usize, WireError> {
    usize::try_from(index)
        .ok()
        .filter(|i| *i < count)
        .ok_or(WireError::here(Problem::CaseIndex { index, kind, count }))
}

fn read_payload(
    r: &mut Reader<'_>,
    case: &str,
    ty: Option<&WitType>,
    present: bool,
    depth: usize,
    b: &mut Budget,
) -> Result<Option<Box<WitValue>>, WireError> {
    match (ty, present) {
        (None, false) => Ok(None),
        (Some(ty), true) => {
            let value = read(ty, r, depth + 1, b).map_err(|e| e.within(Segment::Name(case)))?;
            Ok(Some(Box::new(value)))
        }
        (ty, _) => Err(WireError::here(Problem::Payload {
            case: case.to_owned(),
            expects_payload: ty.is_some(),
        })),
    }
}

fn read_flags(
    r: &mut Reader<'_>,
    ty: &WitType,
    names: &[String],
) -> Result<Vec<String>, WireError> {
    let words = names.len().div_ceil(64).max(1);
    if names.len() > 64 {
        let len = r.array().map_err(|e| wrong(e, || expected(ty)))?;
        count("flag words", words, len)?;
    }
    let mut set = Vec::new();
    for word_index in 0..words {
        let value = r.int().map_err(|e| wrong(e, || expected(ty)))?;
        let word = u64::try_from(value).map_err(|_| {
            WireError::here(Problem::OutOfRange {
                value,
                ty: "a flags word (u64)",
            })
        })?;
        for bit in (0..64).filter(|b| word & (1 << b) != 0) {
            let flag = word_index * 64 + bit;
            match names.get(flag) {
                Some(name) => set.push(name.clone()),
                None => {
                    return Err(WireError::here(Problem::UnknownFlagBit {
                        bit: flag as u64,
                        count: names.len(),
                    }))
                }
            }
        }
    }
    Ok(set)
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

/// What the wire should hold for `ty`, for messages: `string`, `integer (u8)`.
fn expected(ty: &WitType) -> String {
    use WitType as T;
    let wire = match ty {
        T::Bool => "boolean",
        T::S8 | T::S16 | T::S32 | T::S64 | T::U8 | T::U16 | T::U32 | T::U64 => "integer",
        T::F32 | T::F64 => "float",
        T::Char | T::String => "string",
        T::List(t) if **t == T::U8 => "binary",
        T::List(_) | T::Tuple(_) | T::Record(_) => "array",
        T::Variant(_) | T::Result { .. } => "array of 1 or 2",
        T::Enum(_) => "integer",
        T::Option(_) => "nil or array of 1",
        T::Flags(names) if names.len() > 64 => "array",
        T::Flags(_) => "integer",
        T::Resource { .. } => "resource",
    };
    if wire == ty.kind() {
        wire.to_owned()
    } else {
        format!("{wire} ({})", ty.kind())
    }
}

fn wrong(e: ReadError, expected: impl FnOnce() -> String) -> WireError {
    WireError::here(match e {
        ReadError::Found(found) => Problem::Mismatch {
            expected: expected(),
            found: found.to_owned(),
        },
        ReadError::Bad(problem) => problem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(ty: &WitType, bytes: &[u8]) -> String {
        decode(ty, bytes).unwrap_err().to_string()
    }

    /// `[list]`: one argument, an array of `n` one-byte integers (or a bin of
    /// `n` bytes).
    fn one_list(n: usize, bin: bool) -> Vec<u8> {
        let mut out = vec![0x91, if bin { 0xc6 } else { 0xdd }];
        out.extend_from_slice(&(n as u32).to_be_bytes());
        out.extend(std::iter::repeat_n(7u8, n));
        out
    }

    #[test]
    fn a_small_payload_that_decodes_huge_is_refused_within_its_bound() {
        let n = 100_000;
        let ints = [WitType::list(WitType::U32)];
        let payload = one_list(n, false);
        let limit = decoded_limit(payload.len());
        // A value per byte: VALUE_SIZE times the payload, over 16 times it.
        const { assert!(VALUE_SIZE > DECODED_PER_CALL_BYTE) };
        let refused = decode_args_within(&ints, &payload, limit).unwrap_err();
        assert_eq!(refused.problem(), &Problem::TooLarge { limit });
        assert_eq!(
            refused.to_string(),
            format!("args[0]: decoded, the value would take more than {limit} bytes of memory")
        );
        assert_eq!(decode_args(&ints, &payload).unwrap().len(), 1, "unbounded");
        // The same bytes as a list<u8> decode to bytes: within the bound.
        let bytes = [WitType::list(WitType::U8)];
        let payload = one_list(n, true);
        let decoded = decode_args_within(&bytes, &payload, decoded_limit(payload.len())).unwrap();
        assert_eq!(decoded, vec![WitValue::Bytes(vec![7; n])]);
        // Strings pay for their length.
        let strings = [WitType::String];
        let mut payload = vec![0x91, 0xda, 0x03, 0xe8];
        payload.extend(std::iter::repeat_n(b'a', 1000));
        assert!(decode_args_within(&strings, &payload, 1000).is_err());
        assert!(decode_args_within(&strings, &payload, 1000 + VALUE_SIZE).is_ok());
    }

    #[test]
    fn integers_accept_any_width_in_range() {
        assert_eq!(
            decode(&WitType::U8, &[0xcf, 0, 0, 0, 0, 0, 0, 0, 200]).unwrap(),
            WitValue::U8(200)
        );
        assert_eq!(
            decode(&WitType::S16, &[0xd0, 0x80]).unwrap(),
            WitValue::S16(-128)
        );
        assert_eq!(
            err(&WitType::U8, &[0xcd, 1, 0]),
            "value: 256 is out of range for u8"
        );
        assert_eq!(
            err(&WitType::U32, &[0xff]),
            "value: -1 is out of range for u32"
        );
        assert_eq!(
            err(&WitType::S8, &[0xa1, b'x']),
            "value: expected integer (s8), found string"
        );
    }

    #[test]
    fn floats_widen_and_narrow_only_exactly() {
        let one = [0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0];
        assert_eq!(decode(&WitType::F32, &one).unwrap(), WitValue::Float32(1.0));
        let tenth = 0.1f64.to_bits().to_be_bytes();
        let mut bytes = vec![0xcb];
        bytes.extend(tenth);
        assert_eq!(
            err(&WitType::F32, &bytes),
            "value: float64 0.1 is not exactly representable as f32"
        );
        assert_eq!(
            decode(&WitType::F64, &[0xca, 0x3f, 0x80, 0, 0]).unwrap(),
            WitValue::Float64(1.0)
        );
        assert_eq!(
            err(&WitType::F64, &[1]),
            "value: expected float (f64), found integer"
        );
    }

    #[test]
    fn chars_and_strings() {
        assert_eq!(
            decode(&WitType::Char, &[0xa1, b'x']).unwrap(),
            WitValue::Char('x')
        );
        assert_eq!(
            err(&WitType::Char, &[0xa2, b'x', b'y']),
            "value: a char is exactly one Unicode scalar value; found 2"
        );
        assert_eq!(
            err(&WitType::Char, &[0xa0]),
            "value: a char is exactly one Unicode scalar value; found 0"
        );
        assert_eq!(
            err(&WitType::String, &[0xa2, 0xc3, 0x28]),
            "value: the string is not valid UTF-8 (from byte 0 on)"
        );
        assert_eq!(
            decode(&WitType::String, &[0xd9, 1, b'a']).unwrap(),
            WitValue::String("a".into())
        );
    }

    #[test]
    fn structure_is_checked() {
        let bytes = WitType::list(WitType::U8);
        assert_eq!(
            err(&bytes, &[0x91, 1]),
            "value: expected binary (list<u8>), found array"
        );
        let rec = WitType::record([("a", WitType::U8), ("b", WitType::String)]);
        assert_eq!(err(&rec, &[0x91, 1]), "value: expected 2 fields, found 1");
        assert_eq!(
            err(&rec, &[0x92, 1, 2]),
            "value.b: expected string, found integer"
        );
        let v = WitType::variant([("a", None), ("b", Some(WitType::U8))]);
        assert_eq!(
            err(&v, &[0x91, 2]),
            "value: case index 2 is out of range: the variant has 2 cases"
        );
        assert_eq!(
            err(&v, &[0x91, 1]),
            "value: case `b` carries a payload, but the value has none"
        );
        assert_eq!(
            err(&v, &[0x92, 0, 0]),
            "value: case `a` carries no payload, but the value has one"
        );
        assert_eq!(
            err(&v, &[0x93, 0, 0, 0]),
            "value: expected array of 1 or 2 (variant), found an array of 3"
        );
        let e = WitType::enumeration(["a"]);
        assert_eq!(
            err(&e, &[0xff]),
            "value: case index -1 is out of range: the enum has 1 cases"
        );
        let o = WitType::option(WitType::U8);
        assert_eq!(
            err(&o, &[0x92, 1, 1]),
            "value: expected nil or array of 1 (option), found an array of 2"
        );
        let f = WitType::flags(["a", "b"]);
        assert_eq!(
            err(&f, &[4]),
            "value: flag bit 2 is set, but the flags type has only 2 flags"
        );
        assert_eq!(
            decode(&f, &[3]).unwrap(),
            WitValue::Flags(vec!["a".into(), "b".into()])
        );
    }

    #[test]
    fn trailing_and_missing_bytes() {
        assert_eq!(
            err(&WitType::U8, &[1, 2]),
            "value: 1 byte(s) follow the end of the value"
        );
        assert_eq!(
            err(&WitType::U8, &[]),
            "value: expected integer (u8), found the end of the input"
        );
        assert_eq!(
            err(&WitType::U16, &[0xcd, 1]),
            "value: the input ends early: at least 1 more byte(s) needed"
        );
        let args = [WitType::U8, WitType::Bool];
        assert_eq!(
            decode_args(&args, &[0x91, 1]).unwrap_err().to_string(),
            "args: expected 2 arguments, found 1"
        );
        assert_eq!(
            decode_args(&args, &[0x92, 1, 1]).unwrap_err().to_string(),
            "args[1]: expected boolean (bool), found integer"
        );
        assert_eq!(
            decode_results(&[], &[0x90, 0x90]).unwrap_err().to_string(),
            "results: 1 byte(s) follow the end of the value"
        );
    }

    #[test]
    fn huge_declared_lengths_allocate_nothing() {
        let ty = WitType::list(WitType::U64);
        assert_eq!(
            err(&ty, &[0xdd, 0xff, 0xff, 0xff, 0xff, 1]),
            "value: the input ends early: at least 4294967294 more byte(s) needed"
        );
    }

    #[test]
    fn deep_types_stop_at_the_depth_limit() {
        let mut ty = WitType::U8;
        for _ in 0..1000 {
            ty = WitType::list(ty);
        }
        let bytes = vec![0x91; 1000];
        assert!(err(&ty, &bytes).ends_with("the value nests deeper than 64 levels"));
    }
}
