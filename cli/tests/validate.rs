//! `lattice app validate` and `lattice completions`: the real binary on the sample
//! manifests and on broken ones, offline (no NATS anywhere: the URL points at a
//! closed port).

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

use lattice_testing::components::repo_root;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const LATTICE: &str = env!("CARGO_BIN_EXE_lattice");

fn validate(files: &[&Path], extra: &[&str]) -> Output {
    Command::new(LATTICE)
        .args(["app", "validate"])
        .args(files)
        .args(extra)
        // Nothing listens there: validate must not need NATS.
        .args(["--nats-url", "nats://127.0.0.1:1"])
        .env("LATTICE_LOG", "warn")
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn samples() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo_root().join("manifests"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "the sample manifests: {files:?}");
    files
}

#[test]
fn every_sample_manifest_is_valid() {
    let files = samples();
    let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let out = validate(&refs, &[]);
    let printed = text(&out);
    assert_eq!(out.status.code(), Some(0), "{printed}");
    for file in &files {
        assert!(
            printed.contains(&format!("{}: valid (app '", file.display())),
            "{file:?} not reported valid:\n{printed}"
        );
    }
}

/// Three problems in one file, each reported with its path, none hidden behind
/// the first; a valid file beside it does not change the exit code 1.
#[test]
fn every_problem_is_printed_with_its_path_and_exit_code_is_1() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: Bad_Name
spec:
  components:
    - name: web
      type: component
      properties:
        image: file://web.wasm
      traits:
        - type: spreadscaler
          properties:
            instances: many
    - name: web
      type: capability
      properties:
        image: builtin://http-server
        colour: blue
"#,
    )
    .unwrap();
    let good = repo_root().join("manifests/hello.yaml");
    let out = validate(&[&good, &bad], &[]);
    let printed = text(&out);
    assert_eq!(out.status.code(), Some(1), "{printed}");
    let b = bad.display();
    for path in [
        "metadata.name",
        "spec.components[0].traits[0].properties.instances",
        "spec.components[1].name",
        "spec.components[1].properties.colour",
    ] {
        assert!(
            printed.contains(&format!("{b}: {path}: ")),
            "no problem at {path}:\n{printed}"
        );
    }
    assert!(printed.contains(&format!("{}: valid", good.display())));

    // The same as JSON, for programs.
    let out = validate(&[&bad], &["-o", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let reports: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reports[0]["result"], "invalid");
    assert!(reports[0]["problems"].as_array().unwrap().len() >= 4);
}

#[test]
fn yaml_syntax_and_limits_are_problems_of_the_document() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.yaml");
    std::fs::write(&broken, "metadata: [unclosed\n").unwrap();
    let huge = dir.path().join("huge.yaml");
    std::fs::write(&huge, "#".repeat(2 * 1024 * 1024)).unwrap();
    let out = validate(&[&broken, &huge], &[]);
    let printed = text(&out);
    assert_eq!(out.status.code(), Some(1), "{printed}");
    assert!(
        printed.contains(&format!("{}: (document): ", broken.display())),
        "{printed}"
    );
    assert!(
        printed.contains(&format!("{}: (document): the manifest is", huge.display())),
        "{printed}"
    );
}

#[test]
fn an_unreadable_file_is_exit_code_2_even_beside_an_invalid_one() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "kind: Application\n").unwrap();
    let missing = dir.path().join("missing.yaml");
    let out = validate(&[&bad, &missing], &[]);
    let printed = text(&out);
    assert_eq!(out.status.code(), Some(2), "{printed}");
    assert!(
        printed.contains(&format!(
            "{}: (file): cannot read the file",
            missing.display()
        )),
        "{printed}"
    );
}

#[test]
fn a_missing_image_is_a_warning_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.yaml");
    let text_in = std::fs::read_to_string(repo_root().join("manifests/hello.yaml")).unwrap();
    std::fs::write(&file, text_in).unwrap();
    let out = validate(&[&file], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: component 'hello': image") && stderr.contains("not found"),
        "{stderr}"
    );
}

/// `lattice completions SHELL` prints a script naming the subcommands, offline.
#[test]
fn completions_name_the_subcommands() {
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(LATTICE)
            .args(["completions", shell])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let script = String::from_utf8(out.stdout).unwrap();
        for word in ["deploy", "validate", "nats-auth"] {
            assert!(script.contains(word), "{shell}: no '{word}' in\n{script}");
        }
    }
    let out = Command::new(LATTICE)
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}
