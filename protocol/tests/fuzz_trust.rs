//! Bounded fuzzing of the signed envelopes and the guest subject rules: random
//! bytes never panic, and no mutation of a validly signed command or report is
//! ever accepted.

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

use lattice_protocol::trust::{
    guest_subject_allowed, sign_report, Admission, CommandEnvelope, CommandVerifier, JoinToken,
    Nonce, ReportPolicy, SignedCommand, SignedReport, SubjectUse, VerifierConfig,
};
use nkeys::{KeyPair, KeyPairType};
use proptest::collection::vec;
use proptest::prelude::*;
use std::time::{Duration, Instant};

const NOW: u64 = 1_763_780_000_000;
const BOUND: Duration = Duration::from_secs(1);

fn bounded<T>(f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    assert!(start.elapsed() < BOUND, "took {:?}", start.elapsed());
    out
}

struct Keys {
    lattice: KeyPair,
    host: KeyPair,
    token: JoinToken,
}

fn keys() -> Keys {
    let key = |t, b| KeyPair::new_from_raw(t, [b; 32]).unwrap();
    let token = key(KeyPairType::Service, 3).seed().unwrap();
    Keys {
        lattice: key(KeyPairType::Cluster, 1),
        host: key(KeyPairType::Server, 2),
        token: JoinToken::from_seed(&token).unwrap(),
    }
}

fn command(k: &Keys) -> Vec<u8> {
    CommandEnvelope {
        lattice: "default".into(),
        host: k.host.public_key(),
        term: 4,
        issued_ms: NOW,
        nonce: Nonce([7; 16]),
        body: br#"{"v":1,"command":"remove","app":"counter"}"#.to_vec(),
    }
    .sign(&k.lattice)
    .unwrap()
}

fn verifier(k: &Keys) -> CommandVerifier {
    let host = k.host.public_key();
    let trusted = [k.lattice.public_key()];
    CommandVerifier::new("default", &host, trusted, VerifierConfig::default()).unwrap()
}

fn policy(k: &Keys) -> ReportPolicy {
    let admission = Admission::default()
        .with_join_key(&k.token.public_key())
        .unwrap();
    ReportPolicy::new("default", admission)
}

/// Change the bytes: overwrite one, then insert or cut some, so the result
/// differs from the input.
fn mutate(mut bytes: Vec<u8>, at: usize, byte: u8, insert: Vec<u8>, cut: usize) -> Vec<u8> {
    let original = bytes.clone();
    let i = at % bytes.len();
    bytes[i] = byte;
    bytes.splice(i..i, insert);
    let cut = cut % 8;
    bytes.truncate(bytes.len().saturating_sub(cut));
    if bytes == original {
        bytes.push(b'!');
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn envelopes_from_random_bytes(mut bytes in vec(any::<u8>(), 0..400), signed_prefix in any::<bool>()) {
        if signed_prefix {
            let mut framed = b"lattice-sig ".to_vec();
            framed.append(&mut bytes);
            bytes = framed;
        }
        let k = keys();
        bounded(|| {
            let _ = SignedCommand::decode(&bytes);
            assert!(verifier(&k).verify_bytes(&bytes, NOW).is_err());
            let _ = SignedReport::decode(&bytes);
            assert!(policy(&k).check(&bytes, NOW).is_err());
        });
    }

    #[test]
    fn no_mutated_command_is_obeyed(at in any::<usize>(), byte in any::<u8>(), insert in vec(any::<u8>(), 0..3), cut in any::<usize>()) {
        let k = keys();
        let good = command(&k);
        prop_assert!(verifier(&k).verify_bytes(&good, NOW).is_ok());
        let bad = mutate(good, at, byte, insert, cut);
        let got = bounded(|| verifier(&k).verify_bytes(&bad, NOW));
        prop_assert!(got.is_err(), "accepted {:?}", String::from_utf8_lossy(&bad));
    }

    #[test]
    fn no_mutated_report_is_admitted(at in any::<usize>(), byte in any::<u8>(), insert in vec(any::<u8>(), 0..3), cut in any::<usize>()) {
        let k = keys();
        let good = sign_report(&k.host, "default", NOW, br#"{"v":1}"#, Some(&k.token)).unwrap();
        prop_assert!(policy(&k).check(&good, NOW).is_ok());
        let bad = mutate(good, at, byte, insert, cut);
        let got = bounded(|| policy(&k).check(&bad, NOW));
        prop_assert!(got.is_err(), "accepted {:?}", String::from_utf8_lossy(&bad));
    }

    #[test]
    fn guest_subjects_never_panic(subject in "[a-z$_>*. \\t]{0,40}", prefix in proptest::option::of("[a-z.*>]{0,12}")) {
        for kind in [SubjectUse::Publish, SubjectUse::Subscribe, SubjectUse::ReplyTo, SubjectUse::Reply] {
            let ok = bounded(|| guest_subject_allowed(&subject, kind, prefix.as_deref())).is_ok();
            // Nothing reserved ever passes.
            if ok {
                prop_assert!(!subject.starts_with("lattice.") && !subject.starts_with('$') && !subject.starts_with('>'));
            }
        }
    }
}
