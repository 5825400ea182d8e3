//! Decode arbitrary bytes against a type that the first bytes of the input describe.
//! The decoder must never panic, and whatever it accepts must be well typed and
//! survive another encode/decode unchanged.

#![no_main]

use lattice_protocol::wire::{
    decode, decode_args, decode_args_within, encode, typecheck, Problem, WitType,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    let ty = type_from(&mut rest, 0);
    if let Ok(value) = decode(&ty, rest) {
        typecheck(&ty, &value).expect("decoded values are well typed");
        let again = encode(&ty, &value).expect("decoded values encode");
        let back = decode(&ty, &again).expect("re-encoded values decode");
        assert!(back.bits_eq(&value), "{ty}: {value:?} became {back:?}");
    }
    // Within a bound, the same answer or `too-large`, never anything else.
    let types = [ty.clone(), ty];
    let unbounded = decode_args(&types, rest);
    match decode_args_within(&types, rest, rest.len().saturating_mul(16)) {
        Ok(values) => assert!(values
            .iter()
            .zip(unbounded.as_ref().expect("bounded decoding accepted more"))
            .all(|(a, b)| a.bits_eq(b))),
        Err(e) if matches!(e.problem(), Problem::TooLarge { .. }) => {}
        Err(e) => assert_eq!(Err(e), unbounded.map(|_| ())),
    }
});

/// A type read from the front of the input: one byte picks the kind, containers
/// recurse up to 6 levels, counts come from the next byte.
fn type_from(data: &mut &[u8], depth: usize) -> WitType {
    let pick = byte_of(data);
    let count = usize::from(byte_of(data) % 5) + 1;
    let names = |prefix: &str, n: usize| (0..n).map(|i| format!("{prefix}{i}")).collect();
    let leaf = depth >= 6;
    match pick % 24 {
        0 => WitType::Bool,
        1 => WitType::S8,
        2 => WitType::S16,
        3 => WitType::S32,
        4 => WitType::S64,
        5 => WitType::U8,
        6 => WitType::U16,
        7 => WitType::U32,
        8 => WitType::U64,
        9 => WitType::F32,
        10 => WitType::F64,
        11 => WitType::Char,
        12 => WitType::String,
        13 => WitType::Enum(names("e", count)),
        14 => WitType::Flags(names("f", count * 30)),
        _ if leaf => WitType::U8,
        15 => WitType::list(WitType::U8),
        16 => WitType::list(type_from(data, depth + 1)),
        17 => WitType::option(type_from(data, depth + 1)),
        18 => WitType::Record(
            (0..count)
                .map(|i| (format!("r{i}"), type_from(data, depth + 1)))
                .collect(),
        ),
        19 => WitType::Tuple((0..count).map(|_| type_from(data, depth + 1)).collect()),
        20 | 21 => WitType::Variant(
            (0..count)
                .map(|i| {
                    let payload = (byte_of(data) % 2 == 0).then(|| type_from(data, depth + 1));
                    (format!("c{i}"), payload)
                })
                .collect(),
        ),
        _ => {
            let ok = (byte_of(data) % 2 == 0).then(|| type_from(data, depth + 1));
            let err = (byte_of(data) % 2 == 0).then(|| type_from(data, depth + 1));
            WitType::result(ok, err)
        }
    }
}

fn byte_of(data: &mut &[u8]) -> u8 {
    match data.split_first() {
        Some((b, tail)) => {
            *data = tail;
            *b
        }
        None => 0,
    }
}
