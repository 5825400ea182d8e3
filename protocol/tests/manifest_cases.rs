//! The manifest table test. Each `tests/manifests/NAME.yaml` sits beside `NAME.json`
//! (the expected [`Manifest`] as pretty JSON) or `NAME.err` (the exact error text);
//! the samples in `manifests/` have theirs under `tests/manifests/samples/`.
//!
//! `UPDATE_EXPECT=1 cargo test -p lattice-protocol --test manifest_cases` rewrites the
//! expected files from the parser's output; review the diff before keeping it.

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

mod common;

use lattice_protocol::manifest::{parse, revalidate, Limits, Manifest};
use std::fs;

/// The parser's result as expected-file extension and text.
fn actual(text: &str) -> (&'static str, String) {
    match parse(text) {
        Ok(manifest) => (
            "json",
            serde_json::to_string_pretty(&manifest).unwrap() + "\n",
        ),
        Err(error) => ("err", format!("{error}\n")),
    }
}

#[test]
fn manifest_cases() {
    let update = std::env::var_os("UPDATE_EXPECT").is_some_and(|v| v == "1");
    let mut failures = Vec::new();
    let cases = common::cases();
    for case in &cases {
        let (ext, got) = actual(&case.text());
        let want_path = case.expect_path(ext);
        let other = case.expect_path(if ext == "json" { "err" } else { "json" });
        if update {
            fs::write(&want_path, &got).unwrap();
            let _ = fs::remove_file(&other);
            continue;
        }
        if other.exists() {
            let want = fs::read_to_string(&other).unwrap();
            failures.push(format!(
                "{}: expected {}:\n{want}got:\n{got}",
                case.name,
                other.display()
            ));
            continue;
        }
        match fs::read_to_string(&want_path) {
            Ok(want) if want == got => {}
            Ok(want) => failures.push(format!("{}: expected:\n{want}got:\n{got}", case.name)),
            Err(_) => failures.push(format!(
                "{}: no {} (run with UPDATE_EXPECT=1)",
                case.name,
                want_path.display()
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} manifest cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// The `.json` files are exact serializations of a `Manifest`, so they round-trip.
#[test]
fn expected_json_reads_back_as_manifest() {
    for case in common::cases().iter().filter(|c| c.is_good()) {
        let json = fs::read_to_string(case.expect_path("json")).unwrap();
        let manifest: Manifest = serde_json::from_str(&json).unwrap();
        assert_eq!(parse(&case.text()).unwrap(), manifest, "{}", case.name);
    }
}

/// A manifest that arrives as JSON (straight to the API, or in a host command) is
/// checked by the same parser: every good case revalidates to itself.
#[test]
fn good_models_revalidate_to_themselves() {
    for case in common::cases().iter().filter(|c| c.is_good()) {
        let manifest = parse(&case.text()).unwrap();
        assert_eq!(
            revalidate(&manifest, &Limits::default()),
            Ok(manifest),
            "{}",
            case.name
        );
    }
}

/// `instances: 4294967295` sent as JSON is refused at its path, as in YAML.
#[test]
fn json_models_are_held_to_the_budgets() {
    let case = common::cases()
        .into_iter()
        .find(|c| c.name == "good-daemonscaler-spread")
        .unwrap();
    let mut json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(case.expect_path("json")).unwrap()).unwrap();
    json["components"][0]["scaler"]["instances"] = 4_294_967_295u64.into();
    json["components"][0]["links"] = serde_json::json!([{
        "target": "nowhere", "namespace": "wasi", "package": "keyvalue",
        "interfaces": ["store"], "name": "default"
    }]);
    let manifest: Manifest = serde_json::from_value(json).unwrap();
    let err = revalidate(&manifest, &Limits::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "spec.components[0].traits[0].properties.instances: expected a whole number from 0 to 10000, found the number 4294967295\n\
         spec.components[0].traits[1].properties.target.name: no component named 'nowhere'"
    );
}
