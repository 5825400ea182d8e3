//! Bounded fuzzing on stable Rust of what peers send: control-plane messages
//! (`lattice_protocol::decode`), the wire decoder, the `lattice-call` header and the
//! chunk headers. Random input and mutations of valid input never panic and
//! finish quickly; what is accepted reads back the same.

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

use lattice_protocol::decode;
use lattice_protocol::messages::{
    ApiReply, AppStatus, DeployRequest, Event, HostCommand, HostInfo,
};
use lattice_protocol::provider::ProviderMessage;
use lattice_protocol::wire::body::{check_body_subject, parse_chunk_index, BodyOffer, BodySender};
use lattice_protocol::wire::rpc::split_call_line;
use lattice_protocol::wire::{decode_args, decode_results, CallHeader, WitType};
use proptest::collection::vec;
use proptest::prelude::*;
use std::time::{Duration, Instant};

const BOUND: Duration = Duration::from_secs(1);

fn bounded<T>(f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    assert!(start.elapsed() < BOUND, "took {:?}", start.elapsed());
    out
}

const MESSAGES: &[&str] = &[
    r#"{"v":1,"command":"remove","app":"counter"}"#,
    r#"{"v":1,"command":"set_labels","set":{"tier":"edge"},"unset":["zone"]}"#,
    r#"{"v":1,"kind":"host_started","host_id":"NB","labels":{"a":"b"}}"#,
    r#"{"v":1,"kind":"host_heartbeat","host_id":"NB","lattice":"default","labels":{},"version":"0.1.0","started_at_ms":1,"workloads":[{"app":"a","version":"v1","components":[{"name":"c","instances":1}]}]}"#,
    r#"{"v":1,"name":"counter","version":"v0.1.0"}"#,
    r#"{"v":1,"ok":true,"data":{"name":"a","latest_version":"v1","state":"deployed","message":"m"}}"#,
    r#"{"v":1,"message":"links","links":[]}"#,
];

fn decode_all(bytes: &[u8]) {
    bounded(|| {
        let _ = decode::<HostCommand>(bytes);
        let _ = decode::<Event>(bytes);
        let _ = decode::<HostInfo>(bytes);
        let _ = decode::<DeployRequest>(bytes);
        let _ = decode::<ApiReply<AppStatus>>(bytes);
        let _ = decode::<ProviderMessage>(bytes);
    });
}

fn mutate(mut bytes: Vec<u8>, at: usize, byte: u8, cut: usize) -> Vec<u8> {
    if !bytes.is_empty() {
        let i = at % bytes.len();
        bytes[i] = byte;
        bytes.truncate(bytes.len() - cut % (bytes.len() / 4 + 1));
    }
    bytes
}

fn types() -> Vec<WitType> {
    vec![
        WitType::String,
        WitType::list(WitType::U8),
        WitType::list(WitType::list(WitType::String)),
        WitType::record([("sku", WitType::String), ("quantity", WitType::U32)]),
        WitType::variant([
            ("none", None),
            ("some", Some(WitType::option(WitType::F32))),
        ]),
        WitType::result(Some(WitType::U64), Some(WitType::Char)),
        WitType::flags((0..70).map(|_| "f")),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn messages_random_bytes(bytes in vec(any::<u8>(), 0..256)) {
        decode_all(&bytes);
    }

    #[test]
    fn messages_mutated(i in 0..MESSAGES.len(), at in any::<usize>(), byte in any::<u8>(), cut in any::<usize>()) {
        decode_all(&mutate(MESSAGES[i].as_bytes().to_vec(), at, byte, cut));
    }

    #[test]
    fn wire_random_bytes(bytes in vec(any::<u8>(), 0..256)) {
        let types = types();
        bounded(|| {
            let _ = decode_args(&types, &bytes);
            let _ = decode_results(&types[..2], &bytes);
        });
    }

    #[test]
    fn call_header(text in "[ -~]{0,80}", at in any::<usize>(), byte in 32u8..127) {
        let valid = "NABC shop auth my_20link 1926bfa0a15a6c3c 2000";
        let mutated = String::from_utf8(mutate(valid.as_bytes().to_vec(), at, byte, 0)).unwrap();
        for input in [text.as_str(), mutated.as_str()] {
            if let Ok(h) = bounded(|| CallHeader::parse(input)) {
                prop_assert_eq!(CallHeader::parse(&h.encode()), Ok(h));
            }
        }
    }

    #[test]
    fn call_header_lines(payload in vec(any::<u8>(), 0..512), at in any::<usize>(), byte in any::<u8>()) {
        let mut valid = b"NABC shop auth my_20link 1926bfa0a15a6c3c 2000\n".to_vec();
        valid.extend_from_slice(&payload);
        let mutated = mutate(valid.clone(), at, byte, 0);
        for input in [&payload, &valid, &mutated] {
            if let Some((line, args)) = bounded(|| split_call_line(input)) {
                prop_assert!(!line.contains('\n') && args <= input.len());
                prop_assert_eq!(&input[..args - 1], line.as_bytes());
                if let Ok(h) = bounded(|| CallHeader::parse(line)) {
                    prop_assert_eq!(CallHeader::parse(&h.encode()), Ok(h));
                }
            }
        }
    }

    #[test]
    fn chunk_headers(text in "[ -~]{0,80}", index in "[0-9+-]{0,24}", chunks in any::<u64>()) {
        if let Ok(offer) = bounded(|| BodyOffer::parse(&text)) {
            prop_assert_eq!(BodyOffer::parse(&offer.encode()), Ok(offer.clone()));
            prop_assert!(offer.chunk >= 1024 || offer.chunk >= offer.total);
            let _ = offer.chunk_len(chunks);
            for sender in [BodySender::AnyHost, BodySender::Host("NB"), BodySender::Provider { app: "a", name: "b" }] {
                let _ = check_body_subject("default", &offer.subject, sender);
            }
        }
        if let Ok(i) = parse_chunk_index(&index, chunks) {
            prop_assert!(i < chunks);
        }
    }
}
