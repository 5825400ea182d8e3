//! The lattice carries its own artifacts: `lattice app deploy` of a `file://`
//! manifest on one machine (its own working folder) uploads the file into the
//! lattice's artifact store, and a host with its own state folder, no copy of any
//! file and no `--allow-file-load` runs the app from the store after the file is
//! gone. `lattice artifact push|list|rm` manage the store; an artifact a stored
//! version names is never removed.

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

mod multi_host_support;

use lattice_artifacts::Digest;
use lattice_protocol::messages::AppState;
use lattice_testing::components::component;
use lattice_testing::nats::free_port;
use multi_host_support::*;
use std::path::Path;

/// A manifest for `app` whose `hello` component is `image`, placed on the host
/// named `host`, answering HTTP on `port`.
fn manifest(app: &str, image: &str, host: &str, port: u16) -> String {
    format!(
        "apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: {app}
  annotations:
    version: v1
spec:
  components:
    - name: hello
      type: component
      properties:
        image: {image}
      traits:
        - type: spreadscaler
          properties:
            instances: 2
            spread:
              - name: there
                requirements:
                  name: {host}
    - name: httpserver
      type: capability
      properties:
        image: builtin://http-server
      traits:
        - type: link
          properties:
            target:
              name: hello
            namespace: wasi
            package: http
            interfaces: [incoming-handler]
            source:
              config:
                - name: listen
                  properties:
                    address: 127.0.0.1:{port}
"
    )
}

fn run(lattice: &TestLattice, cwd: &Path, args: &[&str]) -> (bool, String, String) {
    let out = lattice.command(args).current_dir(cwd).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_with_no_files_runs_what_a_laptop_deployed() {
    let mut lattice = TestLattice::start("carry").await;
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for (name, dir) in [("h1", &one), ("h2", &two)] {
        let state = dir.path().join("state");
        let state = state.to_str().unwrap();
        lattice.start_cluster_host(name, &[], &["--state-dir", state], dir.path());
    }
    lattice.wait_hosts(&["h1", "h2"]).await;
    lattice.start_controller().await;

    // The laptop: its own folder, the component next to the manifest.
    let laptop = tempfile::tempdir().unwrap();
    std::fs::create_dir(laptop.path().join("build")).unwrap();
    let wasm = laptop.path().join("build/hello.wasm");
    std::fs::copy(component("hello"), &wasm).unwrap();
    let digest = Digest::of(&std::fs::read(&wasm).unwrap());
    let port = free_port().unwrap();
    let yaml = manifest("carry", "file://build/hello.wasm", "h2", port);
    std::fs::write(laptop.path().join("app.yaml"), yaml).unwrap();
    let (ok, out, err) = run(
        &lattice,
        laptop.path(),
        &["app", "deploy", "app.yaml", "--no-wait"],
    );
    assert!(ok, "deploy failed: {out}{err}");
    assert!(
        err.contains(&format!("as {digest}")),
        "the CLI says what it uploaded: {err}"
    );
    // The file is gone before any host looks for it.
    std::fs::remove_file(&wasm).unwrap();

    lattice.wait_placement("carry", "hello", &[("h2", 2)]).await;
    let body = eventually("the app to answer from h2", || async {
        match reqwest::get(format!("http://127.0.0.1:{port}/")).await {
            Ok(r) if r.status() == 200 => Ok(r.text().await.unwrap()),
            Ok(r) => Err(r.status().to_string()),
            Err(e) => Err(e.to_string()),
        }
    })
    .await;
    assert!(!body.is_empty());
    lattice
        .status_until("carry", "carry deployed", |s| s.state == AppState::Deployed)
        .await;
    // Host 2 keeps the artifact by digest in its own state folder.
    let kept = two
        .path()
        .join("state/cache/artifacts/sha256")
        .join(digest.hex());
    assert_eq!(Digest::of(&std::fs::read(&kept).unwrap()), digest);

    // --no-upload keeps the file image, which a cluster host refuses clearly.
    let wasm2 = laptop.path().join("build/hello2.wasm");
    std::fs::copy(component("hello"), &wasm2).unwrap();
    let yaml = manifest(
        "raw",
        "file://build/hello2.wasm",
        "h2",
        free_port().unwrap(),
    );
    std::fs::write(laptop.path().join("raw.yaml"), yaml).unwrap();
    let (ok, out, err) = run(
        &lattice,
        laptop.path(),
        &["app", "deploy", "raw.yaml", "--no-upload", "--no-wait"],
    );
    assert!(ok, "{out}{err}");
    let failed = lattice
        .status_until("raw", "raw to fail", |s| s.state == AppState::Failed)
        .await;
    assert!(
        failed.message.contains("--allow-file-load"),
        "{}",
        failed.message
    );

    // The store: push, list, and rm refused while a stored version names it.
    let elsewhere = tempfile::tempdir().unwrap();
    let counter = component("counter");
    let (ok, pushed, err) = run(
        &lattice,
        elsewhere.path(),
        &["artifact", "push", counter.to_str().unwrap()],
    );
    assert!(ok, "{err}");
    let counter_digest = Digest::of(&std::fs::read(&counter).unwrap());
    assert_eq!(pushed.trim(), counter_digest.to_string());
    let (ok, listed, err) = run(&lattice, elsewhere.path(), &["artifact", "list"]);
    assert!(ok, "{err}");
    assert!(
        listed.contains(&digest.to_string()) && listed.contains(&counter_digest.to_string()),
        "{listed}"
    );
    assert!(
        listed.contains("hello.wasm") && listed.contains("component"),
        "{listed}"
    );

    let in_use = digest.to_string();
    let (ok, out, err) = run(&lattice, elsewhere.path(), &["artifact", "rm", &in_use]);
    assert!(!ok, "removing an artifact in use must fail: {out}");
    assert!(
        err.contains("used by stored app versions") && err.contains("carry v1"),
        "{err}"
    );
    let unused = counter_digest.to_string();
    let (ok, out, err) = run(&lattice, elsewhere.path(), &["artifact", "rm", &unused]);
    assert!(ok, "{err}");
    assert!(out.contains("removed"), "{out}");
    let (_, listed, _) = run(&lattice, elsewhere.path(), &["artifact", "list"]);
    assert!(
        !listed.contains(&unused) && listed.contains(&in_use),
        "{listed}"
    );

    // Once no stored version names it, it may go.
    lattice.api.delete("carry").await.unwrap();
    let (ok, _, err) = run(&lattice, elsewhere.path(), &["artifact", "rm", &in_use]);
    assert!(ok, "{err}");
    let (ok, out, err) = run(&lattice, elsewhere.path(), &["artifact", "rm", &in_use]);
    assert!(
        !ok && err.contains("is not in the artifact store"),
        "{out}{err}"
    );
}
