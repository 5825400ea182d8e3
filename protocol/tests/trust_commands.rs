//! Signed, fenced host commands: one table row per refusal, and acceptance.

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

use lattice_protocol::trust::{
    new_host_key, new_lattice_key, CommandEnvelope, CommandVerifier, Nonce, Refusal, VerifierConfig,
};
use nkeys::KeyPair;

const NOW: u64 = 1_763_780_000_000;

struct World {
    trusted: KeyPair,
    stranger: KeyPair,
    host: String,
    other_host: String,
}

fn world() -> World {
    let seed = |b: u8| [b; 32];
    let key = |t, b| KeyPair::new_from_raw(t, seed(b)).unwrap();
    World {
        trusted: key(nkeys::KeyPairType::Cluster, 1),
        stranger: key(nkeys::KeyPairType::Cluster, 2),
        host: key(nkeys::KeyPairType::Server, 3).public_key(),
        other_host: key(nkeys::KeyPairType::Server, 4).public_key(),
    }
}

fn envelope(w: &World) -> CommandEnvelope {
    CommandEnvelope {
        lattice: "default".into(),
        host: w.host.clone(),
        term: 5,
        issued_ms: NOW - 1_000,
        nonce: Nonce([9; 16]),
        body: br#"{"v":1,"command":"remove","app":"counter"}"#.to_vec(),
    }
}

fn verifier(w: &World) -> CommandVerifier {
    let config = VerifierConfig {
        max_age_ms: 30_000,
        max_skew_ms: 5_000,
        replay_capacity: 16,
    };
    CommandVerifier::new("default", &w.host, [w.trusted.public_key()], config).unwrap()
}

/// A case: what the verifier obeyed before (signed by the trusted key), then the
/// bytes under test.
type Case = (
    &'static str,
    fn(&World) -> (Vec<Vec<u8>>, Vec<u8>),
    Option<&'static str>,
);

fn signed(w: &World, f: impl FnOnce(&mut CommandEnvelope)) -> Vec<u8> {
    let mut e = envelope(w);
    f(&mut e);
    e.sign(&w.trusted).unwrap()
}

#[test]
fn each_refusal_and_acceptance() {
    let cases: Vec<Case> = vec![
        ("accepted", |w| (vec![], signed(w, |_| {})), None),
        (
            "accepted within the clock skew",
            |w| (vec![], signed(w, |e| e.issued_ms = NOW + 4_000)),
            None,
        ),
        (
            "accepted at the same term",
            |w| {
                (
                    vec![signed(w, |e| e.nonce = Nonce([1; 16]))],
                    signed(w, |_| {}),
                )
            },
            None,
        ),
        (
            "accepted at a higher term",
            |w| {
                (
                    vec![signed(w, |e| e.nonce = Nonce([1; 16]))],
                    signed(w, |e| e.term = 6),
                )
            },
            None,
        ),
        (
            "unsigned",
            |_| (vec![], br#"{"v":1,"command":"remove","app":"a"}"#.to_vec()),
            Some("unsigned"),
        ),
        (
            "malformed",
            |w| (vec![], signed(w, |_| {})[..120].to_vec()),
            Some("malformed"),
        ),
        (
            "unknown key",
            |w| (vec![], envelope(w).sign(&w.stranger).unwrap()),
            Some("unknown-key"),
        ),
        (
            "bad signature",
            |w| {
                let bytes = signed(w, |_| {});
                let text = String::from_utf8(bytes)
                    .unwrap()
                    .replace("\"counter\"", "\"payroll\"");
                (vec![], text.into_bytes())
            },
            Some("bad-signature"),
        ),
        (
            "wrong lattice",
            |w| (vec![], signed(w, |e| e.lattice = "prod".into())),
            Some("wrong-lattice"),
        ),
        (
            "wrong host",
            |w| (vec![], signed(w, |e| e.host = w.other_host.clone())),
            Some("wrong-host"),
        ),
        (
            "too old",
            |w| (vec![], signed(w, |e| e.issued_ms = NOW - 30_001)),
            Some("too-old"),
        ),
        (
            "from the future",
            |w| (vec![], signed(w, |e| e.issued_ms = NOW + 5_001)),
            Some("from-future"),
        ),
        (
            "replayed",
            |w| (vec![signed(w, |_| {})], signed(w, |_| {})),
            Some("replayed"),
        ),
        (
            "stale term",
            |w| {
                (
                    vec![signed(w, |e| {
                        e.term = 6;
                        e.nonce = Nonce([1; 16])
                    })],
                    signed(w, |_| {}),
                )
            },
            Some("stale-term"),
        ),
    ];
    let w = world();
    let mut failures = Vec::new();
    for (name, case, want) in cases {
        let (before, bytes) = case(&w);
        let mut v = verifier(&w);
        for earlier in before {
            v.verify_bytes(&earlier, NOW).unwrap();
        }
        let got = v.verify_bytes(&bytes, NOW);
        match (&got, want) {
            (Ok(verified), None) => assert_eq!(verified.signer, w.trusted.public_key()),
            (Err(refusal), Some(kind)) if refusal.kind() == kind => {}
            _ => failures.push(format!("{name}: expected {want:?}, got {got:?}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn refusals_name_the_problem() {
    let w = world();
    let mut v = verifier(&w);
    let err = v
        .verify_bytes(&envelope(&w).sign(&w.stranger).unwrap(), NOW)
        .unwrap_err();
    let stranger = w.stranger.public_key();
    assert_eq!(
        err.to_string(),
        format!("the command is signed by {stranger}, which this host does not trust (trust a lattice key with `lattice host --trust KEY`)")
    );
    v.verify_bytes(&signed(&w, |e| e.term = 9), NOW).unwrap();
    let err = v
        .verify_bytes(&signed(&w, |e| e.nonce = Nonce([2; 16])), NOW)
        .unwrap_err();
    assert_eq!(
        err,
        Refusal::StaleTerm {
            term: 5,
            highest: 9
        }
    );
    assert!(err.to_string().contains("term 5") && err.to_string().contains("term 9"));
    assert_eq!(v.highest_term(), 9);
}

#[test]
fn a_refused_command_changes_nothing() {
    let w = world();
    let mut v = verifier(&w);
    let forged = envelope(&w);
    let mut high = forged.clone();
    high.term = 99;
    assert!(v
        .verify_bytes(&high.sign(&w.stranger).unwrap(), NOW)
        .is_err());
    assert_eq!(v.highest_term(), 0);
    v.verify_bytes(&forged.sign(&w.trusted).unwrap(), NOW)
        .unwrap();
}

#[test]
fn a_flood_never_lets_a_replay_through() {
    let w = world();
    let mut v = verifier(&w); // remembers 16
    let first = signed(&w, |e| e.issued_ms = NOW - 20_000);
    v.verify_bytes(&first, NOW).unwrap();
    for i in 0..32u8 {
        v.verify_bytes(&signed(&w, |e| e.nonce = Nonce([i + 100; 16])), NOW)
            .unwrap();
    }
    // The first command was forgotten, but everything that old is refused now.
    let err = v.verify_bytes(&first, NOW).unwrap_err();
    assert_eq!(err.kind(), "too-old", "{err}");
    // Commands expire by age too: memory stays bounded over time.
    let later = NOW + 60_000;
    v.verify_bytes(&signed(&w, |e| e.issued_ms = later), later)
        .unwrap();
}

#[test]
fn untrusted_key_types_are_refused_up_front() {
    let w = world();
    let host_key = new_host_key().public_key();
    let err = CommandVerifier::new("default", &w.host, [host_key], VerifierConfig::default())
        .unwrap_err();
    assert!(err.to_string().contains("lattice signing key"), "{err}");
    let ok = [new_lattice_key().public_key()];
    assert!(CommandVerifier::new("default", &w.host, ok, VerifierConfig::default()).is_ok());
}

/// A restarted host seeded with the fence it saved: a lower term is stale, and
/// the commands it obeyed (whose nonces the restart forgot) are not obeyed again;
/// without the seed both would be accepted.
#[test]
fn a_restored_fence_outlives_the_replay_cache() {
    let w = world();
    let mut before = verifier(&w);
    let obeyed = signed(&w, |e| e.term = 7);
    before.verify_bytes(&obeyed, NOW).unwrap();
    let fence = before.fence();
    assert_eq!((fence.highest_term, fence.last_issued_ms), (7, NOW - 1_000));

    let stale = signed(&w, |e| {
        e.term = 6;
        e.issued_ms = NOW + 1_000;
        e.nonce = Nonce([2; 16]);
    });
    // Without the fence, a fresh verifier obeys both.
    assert!(verifier(&w).verify_bytes(&stale, NOW + 2_000).is_ok());
    assert!(verifier(&w).verify_bytes(&obeyed, NOW + 2_000).is_ok());

    let mut after = verifier(&w);
    after.restore(fence);
    assert!(matches!(
        after.verify_bytes(&stale, NOW + 2_000),
        Err(Refusal::StaleTerm {
            term: 6,
            highest: 7
        })
    ));
    assert!(matches!(
        after.verify_bytes(&obeyed, NOW + 2_000),
        Err(Refusal::TooOld { .. })
    ));
    // The new leader's next command is obeyed, and the fence only moves up.
    let next = signed(&w, |e| {
        e.term = 7;
        e.issued_ms = NOW + 1_500;
        e.nonce = Nonce([3; 16]);
    });
    assert!(after.verify_bytes(&next, NOW + 2_000).is_ok());
    after.restore(Default::default());
    assert_eq!(after.fence().highest_term, 7);
    assert_eq!(after.fence().last_issued_ms, NOW + 1_500);
}
