//! Attack: whoever may deploy chooses the code, and a host started with
//! `--trust-issuer A…` runs only components whose embedded claims (wasmCloud's
//! format) verify: signed by that account, binding the code, within their
//! dates. An unsigned component, one signed by another account, one changed
//! after it was signed, and one outside its dates are each refused by name, and
//! the refused apply starts nothing (not its provider, not its listener).

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

use lattice_artifacts::claims::{self, NewClaims, TrustedIssuers};
use lattice_host::HostConfig;
use lattice_testing::host::{eventually, get_ok, provider_host_with, quick_limits};
use lattice_testing::manifest::{spec, App, Component};
use lattice_testing::nats::{free_port, NatsServer};
use nkeys::KeyPair;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const GREETING: &[u8] = b"Hello from lattice!";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `wasm` signed by `issuer`, valid from `not_before` until `expires`.
fn signed(wasm: &[u8], issuer: &KeyPair, not_before: Option<u64>, expires: Option<u64>) -> Vec<u8> {
    let new = NewClaims {
        subject: KeyPair::new_module().public_key(),
        name: Some("hello".into()),
        issued_at: now(),
        expires,
        not_before,
    };
    claims::sign(wasm, &new, issuer).unwrap()
}

/// `wasm` with its greeting changed in place: still a valid component, no
/// longer the code that was signed.
fn tampered(mut wasm: Vec<u8>) -> Vec<u8> {
    let at = wasm
        .windows(GREETING.len())
        .position(|w| w == GREETING)
        .expect("the hello component carries its greeting");
    wasm[at..at + 5].copy_from_slice(b"Owned");
    wasm
}

/// A provider executable that leaves `marker` behind when it starts.
fn marking_provider(dir: &Path, marker: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("marking-provider");
    std::fs::write(
        &path,
        format!("#!/bin/sh\ntouch '{}'\nexec sleep 30\n", marker.display()),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// App `app`: provider `aprov` (the marking one) and component `web` running
/// `wasm` behind an HTTP listener on `port`.
fn app(
    app: &str,
    provider: &Path,
    wasm: &Path,
    port: u16,
) -> lattice_protocol::messages::WorkloadSpec {
    let manifest = App::new(app)
        .with(Component::capability(
            "aprov",
            &format!("file://{}", provider.display()),
        ))
        .with(Component::image(
            "web",
            &format!("file://{}", wasm.display()),
        ))
        .http_server("web", port)
        .manifest();
    let mut spec = spec(manifest);
    spec.placements.insert("aprov".into(), 1);
    spec
}

#[tokio::test]
async fn a_host_trusting_an_issuer_runs_only_what_it_signed_untampered_and_in_date() {
    let nats = NatsServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("provider-started");
    let provider = marking_provider(dir.path(), &marker);
    let hello = std::fs::read(lattice_testing::components::component("hello")).unwrap();
    let trusted = KeyPair::new_account();
    let stranger = KeyPair::new_account();
    let host = provider_host_with(
        &nats,
        HostConfig {
            limits: quick_limits(),
            trusted_issuers: TrustedIssuers::new([trusted.public_key()]).unwrap(),
            ..HostConfig::default()
        },
    )
    .await;

    let now = now();
    let refused = [
        ("unsigned", hello.clone(), "it is unsigned".to_owned()),
        (
            "stranger",
            signed(&hello, &stranger, None, None),
            format!("issuer {}, which is not trusted", stranger.public_key()),
        ),
        (
            "tampered",
            tampered(signed(&hello, &trusted, None, None)),
            "hash mismatch".to_owned(),
        ),
        (
            "expired",
            signed(&hello, &trusted, None, Some(now - 60)),
            "expired".to_owned(),
        ),
        (
            "early",
            signed(&hello, &trusted, Some(now + 3600), None),
            "not valid yet".to_owned(),
        ),
    ];
    let port = free_port().unwrap();
    for (name, bytes, reason) in &refused {
        let wasm = dir.path().join(format!("{name}.wasm"));
        std::fs::write(&wasm, bytes).unwrap();
        // Twice: the second answer comes from the verdict kept for the digest.
        for _ in 0..2 {
            let error = image_refusal(
                host.apply(app(name, &provider, &wasm, port))
                    .await
                    .unwrap_err(),
            );
            assert!(error.contains("component 'web'"), "{name}: {error}");
            assert!(error.contains("--trust-issuer"), "{name}: {error}");
            assert!(error.contains(reason.as_str()), "{name}: {error}");
        }
    }
    // A window for anything a refused apply might still start in the background.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(host.apps().is_empty(), "a refused apply left a workload");
    assert!(!marker.exists(), "a refused apply started its provider");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());

    // The probe works: the same code, signed by the trusted issuer, runs.
    let good = dir.path().join("good.wasm");
    std::fs::write(
        &good,
        signed(&hello, &trusted, Some(now - 60), Some(now + 3600)),
    )
    .unwrap();
    host.apply(app("good", &provider, &good, port))
        .await
        .unwrap();
    assert_eq!(get_ok(port, "/").await, "Hello from lattice!\n");
    // A second app with the same digest is admitted from the kept verdict.
    let other_port = free_port().unwrap();
    host.apply(app("again", &provider, &good, other_port))
        .await
        .unwrap();
    assert_eq!(host.apps(), ["again", "good"]);
}

#[tokio::test]
async fn a_host_trusting_no_issuer_needs_no_signature() {
    let nats = NatsServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("provider-started");
    let provider = marking_provider(dir.path(), &marker);
    let hello = std::fs::read(lattice_testing::components::component("hello")).unwrap();
    let other = signed(&hello, &KeyPair::new_account(), None, Some(now() - 60));
    let host = provider_host_with(
        &nats,
        HostConfig {
            limits: quick_limits(),
            ..HostConfig::default()
        },
    )
    .await;
    for (name, bytes) in [("unsigned", hello), ("expired", other)] {
        let wasm = dir.path().join(format!("{name}.wasm"));
        std::fs::write(&wasm, bytes).unwrap();
        host.apply(app(name, &provider, &wasm, free_port().unwrap()))
            .await
            .unwrap();
    }
    assert_eq!(host.apps(), ["expired", "unsigned"]);
    eventually("the provider starts", || marker.exists().then_some(())).await;
}

/// The message of an apply refused for an image (fetched, checked against its
/// digest and signatures, compiled); any other refusal fails the test.
#[track_caller]
fn image_refusal(err: lattice_host::ApplyError) -> String {
    match err {
        lattice_host::ApplyError::Image(message) => message,
        other => panic!("refused for another reason: {other}"),
    }
}
