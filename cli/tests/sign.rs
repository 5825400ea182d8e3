//! Signing components as a user does it, with the real binary: `lattice keys new
//! account`, `lattice sign`, `lattice inspect`; a signed file verifies, the same
//! file with its code changed afterwards does not.

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

use lattice_testing::components::component;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

const LATTICE: &str = env!("CARGO_BIN_EXE_lattice");

fn lattice(args: &[&str], dir: &Path) -> Output {
    Command::new(LATTICE)
        .args(args)
        .current_dir(dir)
        .env("LATTICE_LOG", "warn")
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_signed_component_verifies_and_a_changed_one_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    std::fs::copy(component("hello"), cwd.join("hello.wasm")).unwrap();

    let made = lattice(&["keys", "new", "account", "--out", "issuer.nk"], cwd);
    assert!(made.status.success(), "{}", stderr(&made));
    let issuer = stdout(&made).trim().to_owned();
    assert!(issuer.starts_with('A'), "an account public key: {issuer}");
    let mode = std::fs::metadata(cwd.join("issuer.nk"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "the seed is readable by its owner only"
    );

    let unsigned = lattice(&["inspect", "hello.wasm"], cwd);
    assert!(!unsigned.status.success());
    assert!(
        stdout(&unsigned).contains("unsigned"),
        "{}",
        stdout(&unsigned)
    );

    let sign = lattice(
        &[
            "sign",
            "hello.wasm",
            "--issuer",
            "issuer.nk",
            "--name",
            "greeter",
            "--expires-in",
            "30",
        ],
        cwd,
    );
    assert!(sign.status.success(), "{}", stderr(&sign));
    let signed = cwd.join("hello_s.wasm");

    let inspect = lattice(&["inspect", "hello_s.wasm"], cwd);
    let text = stdout(&inspect);
    assert!(inspect.status.success(), "{text}{}", stderr(&inspect));
    assert!(text.contains(&issuer), "{text}");
    assert!(text.contains("greeter"), "{text}");
    assert!(text.contains("matches the code"), "{text}");
    assert!(text.contains("verified    yes"), "{text}");

    let json = lattice(&["inspect", "hello_s.wasm", "--output", "json"], cwd);
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["verified"], true, "{report}");
    assert_eq!(report["issuer"], issuer.as_str(), "{report}");
    assert_eq!(report["hash_ok"], true, "{report}");
    assert!(report["expires"].is_string(), "{report}");

    // The code changed after signing: same length, still a component.
    let mut bytes = std::fs::read(&signed).unwrap();
    let greeting = b"Hello from lattice!";
    let at = bytes
        .windows(greeting.len())
        .position(|w| w == greeting)
        .unwrap();
    bytes[at..at + 5].copy_from_slice(b"Owned");
    std::fs::write(cwd.join("tampered.wasm"), bytes).unwrap();
    let tampered = lattice(&["inspect", "tampered.wasm", "-o", "json"], cwd);
    assert!(
        !tampered.status.success(),
        "a tampered component does not verify"
    );
    let report: serde_json::Value = serde_json::from_slice(&tampered.stdout).unwrap();
    assert_eq!(report["verified"], false, "{report}");
    assert_eq!(report["hash_ok"], false, "{report}");
    assert!(
        stderr(&tampered).contains("hash mismatch"),
        "{}",
        stderr(&tampered)
    );
    let text = stdout(&lattice(&["inspect", "tampered.wasm"], cwd));
    assert!(text.contains("MISMATCH"), "{text}");
}
