//! The byte examples of `docs/protocol.md` ("Cross-host calls: value encoding"), one
//! table: each value encodes to exactly these bytes and decodes back. Keep the two in
//! step; another implementation can use the same table as its conformance test.

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

use lattice_protocol::wire::{
    decode, decode_args, encode, encode_args, host_call_subject, signature, signature_fingerprint,
    CallTarget, WitType as T, WitValue as V,
};

fn hex(text: &str) -> Vec<u8> {
    text.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect()
}

fn s(text: &str) -> V {
    V::String(text.into())
}

fn some(v: V) -> Option<Box<V>> {
    Some(Box::new(v))
}

fn order() -> T {
    T::record([("sku", T::String), ("quantity", T::U32)])
}

fn order_error() -> T {
    T::variant([("out-of-stock", Some(T::String)), ("invalid", None)])
}

fn vectors() -> Vec<(T, V, &'static str)> {
    let flags = T::flags(["read", "write", "exec"]);
    let option2 = T::option(T::option(T::U8));
    let result = T::result(Some(T::U32), Some(T::String));
    let maybe = T::variant([("none", None), ("some", Some(T::U8))]);
    let wide: Vec<String> = (0..70).map(|i| format!("f{i}")).collect();
    vec![
        (T::Bool, V::Bool(true), "c3"),
        (T::U8, V::U8(5), "05"),
        (T::U16, V::U16(300), "cd 01 2c"),
        (T::S32, V::S32(-5), "fb"),
        (T::S64, V::S64(-200), "d1 ff 38"),
        (T::U64, V::U64(u64::MAX), "cf ff ff ff ff ff ff ff ff"),
        (T::F32, V::Float32(1.5), "ca 3f c0 00 00"),
        (T::F64, V::Float64(-2.0), "cb c0 00 00 00 00 00 00 00"),
        (T::Char, V::Char('é'), "a2 c3 a9"),
        (T::String, s("hi"), "a2 68 69"),
        (
            T::list(T::U8),
            V::List(vec![V::U8(1), V::U8(2), V::U8(3)]),
            "c4 03 01 02 03",
        ),
        // The same value in the bytes form: the same bytes on the wire.
        (T::list(T::U8), V::Bytes(vec![1, 2, 3]), "c4 03 01 02 03"),
        (
            T::list(T::U16),
            V::List(vec![V::U16(1), V::U16(300)]),
            "92 01 cd 01 2c",
        ),
        (
            order(),
            V::Record(vec![
                ("sku".into(), s("ab")),
                ("quantity".into(), V::U32(2)),
            ]),
            "92 a2 61 62 02",
        ),
        (
            T::Tuple(vec![T::Bool, T::S8]),
            V::Tuple(vec![V::Bool(true), V::S8(-1)]),
            "92 c3 ff",
        ),
        (maybe.clone(), V::Variant("none".into(), None), "91 00"),
        (maybe, V::Variant("some".into(), some(V::U8(7))), "92 01 07"),
        (
            T::enumeration(["red", "green", "blue"]),
            V::Enum("blue".into()),
            "02",
        ),
        (option2.clone(), V::Option(None), "c0"),
        (option2.clone(), V::Option(some(V::Option(None))), "91 c0"),
        (
            option2,
            V::Option(some(V::Option(some(V::U8(5))))),
            "91 91 05",
        ),
        (result.clone(), V::Result(Ok(some(V::U32(1)))), "92 00 01"),
        (result, V::Result(Err(some(s("no")))), "92 01 a2 6e 6f"),
        (T::result(None, None), V::Result(Ok(None)), "91 00"),
        (
            flags.clone(),
            V::Flags(vec!["read".into(), "exec".into()]),
            "05",
        ),
        (flags, V::Flags(vec![]), "00"),
        (
            T::Flags(wide),
            V::Flags(vec!["f1".into(), "f65".into()]),
            "92 02 02",
        ),
    ]
}

#[test]
fn documented_examples_encode_and_decode_exactly() {
    for (ty, value, bytes) in vectors() {
        let want = hex(bytes);
        assert_eq!(
            encode(&ty, &value).unwrap(),
            want,
            "encoding {value:?} as {ty}"
        );
        let back = decode(&ty, &want).unwrap();
        assert!(back.bits_eq(&value), "decoding {bytes} as {ty}: {back:?}");
    }
}

#[test]
fn documented_call_example() {
    let params = [order()];
    let results = [T::result(Some(T::U64), Some(order_error()))];
    let args = [V::Record(vec![
        ("sku".into(), s("ab")),
        ("quantity".into(), V::U32(2)),
    ])];
    let payload = encode_args(&params, &args).unwrap();
    assert_eq!(payload, hex("91 92 a2 61 62 02"));
    assert!(decode_args(&params, &payload).unwrap()[0].bits_eq(&args[0]));

    let reply = [V::Result(Err(some(V::Variant(
        "out-of-stock".into(),
        some(s("ab")),
    ))))];
    let bytes = lattice_protocol::wire::encode_results(&results, &reply).unwrap();
    assert_eq!(bytes, hex("91 92 01 92 00 a2 61 62"));

    assert_eq!(
        signature(&params, &results),
        "func(record { sku: string, quantity: u32 }) -> \
         result<u64, variant { out-of-stock(string), invalid }>"
    );
    assert_eq!(signature_fingerprint(&params, &results), "dedd7e5da0b46cb2");
    let target = CallTarget {
        app: "shop".into(),
        component: "business".into(),
        namespace: "example".into(),
        package: "shop".into(),
        interface: "orders".into(),
        function: "place-order".into(),
    };
    assert_eq!(
        host_call_subject("default", "NHOSTA", &target),
        "lattice.default.rpch.NHOSTA.shop.business.example.shop.orders.place-order"
    );
}

#[test]
fn decoders_accept_any_width_the_documentation_allows() {
    // u8 5 as uint64, a short string as str8, a short list as array16, f32 as float64.
    assert_eq!(
        decode(&T::U8, &hex("cf 00 00 00 00 00 00 00 05")).unwrap(),
        V::U8(5)
    );
    assert_eq!(decode(&T::String, &hex("d9 02 68 69")).unwrap(), s("hi"));
    assert_eq!(
        decode(&T::list(T::U8), &hex("c5 00 01 09")).unwrap(),
        V::Bytes(vec![9])
    );
    assert_eq!(
        decode(&T::list(T::Bool), &hex("dc 00 01 c2")).unwrap(),
        V::List(vec![V::Bool(false)])
    );
    assert_eq!(
        decode(&T::F32, &hex("cb 3f f8 00 00 00 00 00 00")).unwrap(),
        V::Float32(1.5)
    );
}

#[test]
fn independent_msgpack_reads_the_structure() {
    use rmpv::Value as M;
    let read = |bytes: &[u8]| rmpv::decode::read_value(&mut &bytes[..]).unwrap();
    let record = hex("92 a2 61 62 02");
    assert_eq!(read(&record), M::Array(vec![M::from("ab"), M::from(2)]));
    assert_eq!(read(&hex("c4 03 01 02 03")), M::Binary(vec![1, 2, 3]));
    assert_eq!(read(&hex("91 c0")), M::Array(vec![M::Nil]));
    // And rmpv's own output for wide values is what we decode.
    let mut bytes = Vec::new();
    rmpv::encode::write_value(&mut bytes, &M::from(u64::MAX)).unwrap();
    assert_eq!(decode(&T::U64, &bytes).unwrap(), V::U64(u64::MAX));
    let mut bytes = Vec::new();
    let long = "x".repeat(70_000);
    rmpv::encode::write_value(&mut bytes, &M::from(long.as_str())).unwrap();
    assert_eq!(decode(&T::String, &bytes).unwrap(), s(&long));
    assert_eq!(encode(&T::String, &s(&long)).unwrap(), bytes);
}
