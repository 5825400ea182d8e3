//! Signed host reports and the controller's admission policy, as a table.

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

use lattice_protocol::trust::{
    sign_report, Admission, Admitted, JoinToken, ReportPolicy, ReportRefusal,
};
use nkeys::{KeyPair, KeyPairType};

const NOW: u64 = 1_763_780_000_000;
const BODY: &[u8] = br#"{"v":1,"kind":"host_heartbeat"}"#;

fn key(t: KeyPairType, b: u8) -> KeyPair {
    KeyPair::new_from_raw(t, [b; 32]).unwrap()
}

fn token(b: u8) -> JoinToken {
    JoinToken::from_seed(&key(KeyPairType::Service, b).seed().unwrap()).unwrap()
}

fn discriminant(r: &Result<Admitted, ReportRefusal>) -> String {
    match r {
        Ok(a) => format!("ok {a:?}")
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" "),
        Err(e) => format!("{e:?}")
            .split([' ', '{'])
            .next()
            .unwrap()
            .to_owned(),
    }
}

#[test]
fn reports_table() {
    let host = key(KeyPairType::Server, 1);
    let listed = key(KeyPairType::Server, 2);
    let (good, other) = (token(3), token(4));
    let admission = Admission::listed([listed.public_key()])
        .unwrap()
        .with_join_key(&good.public_key())
        .unwrap();
    let policy = ReportPolicy::new("default", admission);
    let sign = |k: &KeyPair, lattice: &str, at: u64, join: Option<&JoinToken>| {
        sign_report(k, lattice, at, BODY, join).unwrap()
    };
    let tampered = {
        let text = String::from_utf8(sign(&listed, "default", NOW, None)).unwrap();
        text.replace("host_heartbeat", "host_stopped").into_bytes()
    };
    let copied_proof = {
        // Another host's proof, pasted into a report this host signs itself.
        let theirs = String::from_utf8(sign(&listed, "default", NOW, Some(&good))).unwrap();
        let proof = theirs
            .lines()
            .find(|l| l.starts_with("join "))
            .unwrap()
            .to_owned();
        let text = format!(
            "lattice-report/1\nlattice default\nhost {}\nissued_ms {NOW}\n{proof}\n\n{{}}",
            host.public_key()
        );
        let sig = host.sign(text.as_bytes()).unwrap();
        let b64 = base64_url(&sig);
        format!("lattice-sig {} {b64}\n{text}", host.public_key()).into_bytes()
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "listed host",
            sign(&listed, "default", NOW, None),
            "ok Listed",
        ),
        (
            "joined with the token",
            sign(&host, "default", NOW, Some(&good)),
            "ok JoinToken",
        ),
        (
            "unknown token",
            sign(&host, "default", NOW, Some(&other)),
            "NotAdmitted",
        ),
        (
            "not admitted",
            sign(&host, "default", NOW, None),
            "NotAdmitted",
        ),
        ("copied proof", copied_proof, "BadJoinProof"),
        ("unsigned", BODY.to_vec(), "Unsigned"),
        ("malformed", b"lattice-sig x\n".to_vec(), "Malformed"),
        ("tampered", tampered, "BadSignature"),
        (
            "wrong lattice",
            sign(&listed, "prod", NOW, None),
            "WrongLattice",
        ),
        (
            "too old",
            sign(&listed, "default", NOW - 30_001, None),
            "TooOld",
        ),
        (
            "from the future",
            sign(&listed, "default", NOW + 5_001, None),
            "FromFuture",
        ),
    ];
    let mut failures = Vec::new();
    for (name, bytes, want) in cases {
        let got = policy.check(&bytes, NOW).map(|r| r.admitted);
        if discriminant(&got) != want {
            failures.push(format!("{name}: expected {want}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_report_signed_by_another_key_than_the_host_it_names_is_refused() {
    let (real, impostor) = (key(KeyPairType::Server, 1), key(KeyPairType::Server, 2));
    let policy = ReportPolicy::new("default", Admission::any_host());
    let mine =
        String::from_utf8(sign_report(&impostor, "default", NOW, BODY, None).unwrap()).unwrap();
    let forged = mine.replacen(
        &format!("host {}", impostor.public_key()),
        &format!("host {}", real.public_key()),
        1,
    );
    let err = policy.check(forged.as_bytes(), NOW).unwrap_err();
    assert!(matches!(err, ReportRefusal::NotTheHostsKey { .. }), "{err}");
    assert!(err.to_string().contains(&real.public_key()));
    // A lattice key cannot sign reports.
    assert!(sign_report(&key(KeyPairType::Cluster, 5), "default", NOW, BODY, None).is_err());
}

#[test]
fn any_host_policy_admits_every_validly_signed_host() {
    let policy = ReportPolicy::new("default", Admission::any_host());
    let host = key(KeyPairType::Server, 7);
    let report = policy
        .check(
            &sign_report(&host, "default", NOW, BODY, None).unwrap(),
            NOW,
        )
        .unwrap();
    assert_eq!(
        (report.host, report.body),
        (host.public_key(), BODY.to_vec())
    );
    assert_eq!(report.admitted, Admitted::AnyHost);
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
