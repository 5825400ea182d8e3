//! Property tests of the wire encoding: random types (nesting bounded) with random
//! values of them round-trip; random and damaged bytes never panic the decoder, and
//! whatever it accepts is a well-typed value.

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

use lattice_protocol::wire::{
    decode, decode_args, decode_args_within, decoded_limit, encode, encode_args, typecheck,
    Problem, WitType, WitValue,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{select, subsequence};
use proptest::strategy::Union;

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

fn scalar_type() -> impl Strategy<Value = WitType> {
    prop_oneof![
        Just(WitType::Bool),
        Just(WitType::S8),
        Just(WitType::S16),
        Just(WitType::S32),
        Just(WitType::S64),
        Just(WitType::U8),
        Just(WitType::U16),
        Just(WitType::U32),
        Just(WitType::U64),
        Just(WitType::F32),
        Just(WitType::F64),
        Just(WitType::Char),
        Just(WitType::String),
        (1..=5usize).prop_map(|n| WitType::Enum(names("e", n))),
        (0..=8usize).prop_map(|n| WitType::Flags(names("f", n))),
        // Past one 64-bit word.
        (60..=140usize).prop_map(|n| WitType::Flags(names("f", n))),
    ]
}

/// Types nested up to 4 levels.
fn wit_type() -> impl Strategy<Value = WitType> {
    scalar_type().prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(WitType::list),
            Just(WitType::list(WitType::U8)),
            inner.clone().prop_map(WitType::option),
            vec(inner.clone(), 1..4).prop_map(|types| {
                WitType::Record(names("r", types.len()).into_iter().zip(types).collect())
            }),
            vec(inner.clone(), 1..4).prop_map(WitType::Tuple),
            vec(proptest::option::of(inner.clone()), 1..4).prop_map(|payloads| {
                WitType::Variant(
                    names("c", payloads.len())
                        .into_iter()
                        .zip(payloads)
                        .collect(),
                )
            }),
            (
                proptest::option::of(inner.clone()),
                proptest::option::of(inner)
            )
                .prop_map(|(ok, err)| WitType::result(ok, err)),
        ]
    })
}

/// Integers of `T`: uniform over the range, and often next to a power of two, where
/// MessagePack switches formats.
fn int<T: TryFrom<i128> + Arbitrary + std::fmt::Debug + Clone + 'static>() -> BoxedStrategy<T> {
    prop_oneof![
        any::<T>(),
        (0..64u32, -1i128..=1, any::<bool>()).prop_filter_map(
            "out of range",
            |(shift, delta, negative)| {
                let v = (1i128 << shift) + delta;
                T::try_from(if negative { -v } else { v }).ok()
            }
        ),
    ]
    .boxed()
}

/// String and binary lengths where MessagePack switches formats.
fn format_length() -> impl Strategy<Value = usize> {
    prop_oneof![
        9 => select(vec![15, 16, 31, 32, 33, 255, 256, 257]),
        1 => select(vec![65535, 65536, 65537]),
    ]
}

/// Any value of `ty`, floats over all bit patterns (NaNs included).
fn value_of(ty: &WitType) -> BoxedStrategy<WitValue> {
    use WitValue as V;
    match ty {
        WitType::Bool => any::<bool>().prop_map(V::Bool).boxed(),
        WitType::S8 => int().prop_map(V::S8).boxed(),
        WitType::S16 => int().prop_map(V::S16).boxed(),
        WitType::S32 => int().prop_map(V::S32).boxed(),
        WitType::S64 => int().prop_map(V::S64).boxed(),
        WitType::U8 => int().prop_map(V::U8).boxed(),
        WitType::U16 => int().prop_map(V::U16).boxed(),
        WitType::U32 => int().prop_map(V::U32).boxed(),
        WitType::U64 => int().prop_map(V::U64).boxed(),
        WitType::F32 => any::<u32>()
            .prop_map(|b| V::Float32(f32::from_bits(b)))
            .boxed(),
        WitType::F64 => any::<u64>()
            .prop_map(|b| V::Float64(f64::from_bits(b)))
            .boxed(),
        WitType::Char => any::<char>().prop_map(V::Char).boxed(),
        WitType::String => prop_oneof![
            9 => vec(any::<char>(), 0..40).prop_map(|cs| cs.into_iter().collect()),
            1 => format_length().prop_map(|n| "x".repeat(n)),
        ]
        .prop_map(V::String)
        .boxed(),
        // Either form of a list<u8>: the encoder takes both.
        WitType::List(element) if **element == WitType::U8 => (
            prop_oneof![
                9 => vec(any::<u8>(), 0..40),
                1 => format_length().prop_map(|n| vec![7; n]),
            ],
            any::<bool>(),
        )
            .prop_map(|(bytes, as_bytes)| match as_bytes {
                true => V::Bytes(bytes),
                false => V::List(bytes.into_iter().map(V::U8).collect()),
            })
            .boxed(),
        WitType::List(element) => vec(value_of(element), 0..18).prop_map(V::List).boxed(),
        WitType::Record(fields) => fields
            .iter()
            .map(|(name, ty)| {
                let name = name.clone();
                value_of(ty).prop_map(move |v| (name.clone(), v))
            })
            .collect::<Vec<_>>()
            .prop_map(V::Record)
            .boxed(),
        WitType::Tuple(types) => types
            .iter()
            .map(value_of)
            .collect::<Vec<_>>()
            .prop_map(V::Tuple)
            .boxed(),
        WitType::Variant(cases) => Union::new(cases.iter().map(|(name, payload)| {
            let name = name.clone();
            payload_of(payload.as_ref())
                .prop_map(move |p| V::Variant(name.clone(), p))
                .boxed()
        }))
        .boxed(),
        WitType::Enum(names) => select(names.clone()).prop_map(V::Enum).boxed(),
        WitType::Option(some) => proptest::option::of(value_of(some))
            .prop_map(|v| V::Option(v.map(Box::new)))
            .boxed(),
        WitType::Result { ok, err } => prop_oneof![
            payload_of(ok.as_deref()).prop_map(|p| V::Result(Ok(p))),
            payload_of(err.as_deref()).prop_map(|p| V::Result(Err(p))),
        ]
        .boxed(),
        WitType::Flags(names) => subsequence(names.clone(), 0..=names.len())
            .prop_map(V::Flags)
            .boxed(),
        WitType::Resource { .. } => unreachable!("the generator makes no resources"),
    }
}

fn payload_of(ty: Option<&WitType>) -> BoxedStrategy<Option<Box<WitValue>>> {
    match ty {
        None => Just(None).boxed(),
        Some(ty) => value_of(ty).prop_map(|v| Some(Box::new(v))).boxed(),
    }
}

fn typed_value() -> impl Strategy<Value = (WitType, WitValue)> {
    wit_type().prop_flat_map(|ty| {
        let values = value_of(&ty);
        (Just(ty), values)
    })
}

/// Parses as exactly one MessagePack value in an independent implementation.
fn assert_msgpack(bytes: &[u8]) {
    let mut rest = bytes;
    rmpv::decode::read_value(&mut rest).expect("valid MessagePack");
    assert!(rest.is_empty(), "one value, nothing after it");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn values_round_trip((ty, value) in typed_value()) {
        typecheck(&ty, &value).unwrap();
        let bytes = encode(&ty, &value).unwrap();
        assert_msgpack(&bytes);
        let back = decode(&ty, &bytes).unwrap();
        prop_assert!(back.bits_eq(&value), "{ty}\n{value:?}\n{back:?}");
    }

    #[test]
    fn args_round_trip(pairs in vec(typed_value(), 0..4)) {
        let (types, values): (Vec<_>, Vec<_>) = pairs.into_iter().unzip();
        let bytes = encode_args(&types, &values).unwrap();
        assert_msgpack(&bytes);
        let back = decode_args(&types, &bytes).unwrap();
        prop_assert_eq!(back.len(), values.len());
        for (b, v) in back.iter().zip(&values) {
            prop_assert!(b.bits_eq(v));
        }
        // Within a bound: the same values, or `too-large` when a tight bound is
        // passed; a bound as large as anything is never hit.
        let roomy = decode_args_within(&types, &bytes, usize::MAX).unwrap();
        prop_assert!(roomy.iter().zip(&back).all(|(a, b)| a.bits_eq(b)));
        match decode_args_within(&types, &bytes, decoded_limit(bytes.len())) {
            Ok(tight) => prop_assert!(tight.iter().zip(&back).all(|(a, b)| a.bits_eq(b))),
            Err(e) => prop_assert!(matches!(e.problem(), Problem::TooLarge { .. }), "{e}"),
        }
    }

    #[test]
    fn truncated_encodings_are_errors((ty, value) in typed_value()) {
        let bytes = encode(&ty, &value).unwrap();
        // Every prefix of short encodings; of long ones, a spread and the last few.
        let step = (bytes.len() / 512).max(1);
        let lens = (0..bytes.len()).step_by(step).chain(bytes.len().saturating_sub(8)..bytes.len());
        for len in lens {
            prop_assert!(decode(&ty, &bytes[..len]).is_err(), "{ty}: prefix of {len}");
        }
    }

    #[test]
    fn random_bytes_never_panic(ty in wit_type(), bytes in vec(any::<u8>(), 0..64)) {
        if let Ok(value) = decode(&ty, &bytes) {
            typecheck(&ty, &value).unwrap();
        }
    }

    /// Damaged valid encodings get further into the decoder than random bytes. What it
    /// accepts is well typed, and encodes to bytes that decode to the same value.
    #[test]
    fn damaged_encodings_never_panic(
        (ty, value) in typed_value(),
        edits in vec((any::<usize>(), any::<u8>()), 1..4),
    ) {
        let mut bytes = encode(&ty, &value).unwrap();
        for (at, byte) in edits {
            let at = at % bytes.len();
            bytes[at] = byte;
        }
        if let Ok(decoded) = decode(&ty, &bytes) {
            let again = encode(&ty, &decoded).unwrap();
            prop_assert!(decode(&ty, &again).unwrap().bits_eq(&decoded));
        }
    }
}
