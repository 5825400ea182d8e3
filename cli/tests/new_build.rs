//! `lattice new` for every template, `lattice build`, deployed on a real lattice
//! (nats-server, controller, `lattice host`): each answers as its template says.
//! A component whose import no link carries is refused by `lattice build`, naming
//! it. The projects build into the sample components' target dir, so the
//! dependencies they share with them are compiled once.

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

mod multi_host_support;

use lattice_testing::nats::free_port;
use multi_host_support::*;
use std::path::Path;
use std::process::Command;

/// `lattice ARGS...` in `dir`: (success, stdout + stderr).
fn lattice_in(dir: &Path, args: &[&str]) -> (bool, String) {
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../components/target");
    let out = Command::new(env!("CARGO_BIN_EXE_lattice"))
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_template_builds_deploys_and_answers() {
    let mut lattice = TestLattice::start("templates").await;
    lattice.start_controller().await;
    lattice.start_host("a", &[]);
    lattice.wait_hosts(&["a"]).await;
    let work = tempfile::tempdir().unwrap();

    let (ok, list) = lattice_in(work.path(), &["new", "--list"]);
    assert!(ok, "{list}");
    for template in ["http", "kv-counter", "custom-wit", "service"] {
        assert!(list.contains(template), "{list}");
    }

    for (template, path, want) in [
        (
            "http",
            "/there",
            "Hello from my-http! You asked for /there\n",
        ),
        ("kv-counter", "/hits", "hits -> 1\n"),
        (
            "custom-wit",
            "/?name=Ada",
            "Hello, Ada, from the greeter!\n",
        ),
        ("service", "/", "visit number 1 (counted by the service)\n"),
    ] {
        let name = format!("my-{}", template.replace("kv-counter", "counter"));
        let port = free_port().unwrap().to_string();
        let (ok, out) = lattice_in(
            work.path(),
            &["new", &name, "--template", template, "--port", &port],
        );
        assert!(ok, "{template}: {out}");
        let project = work.path().join(&name);
        let (ok, out) = lattice_in(&project, &["build"]);
        assert!(ok, "{template}: lattice build: {out}");
        assert!(out.contains("built build/"), "{template}: {out}");
        assert!(
            out.contains("exports: wasi:http/incoming-handler"),
            "{template}: {out}"
        );
        lattice.deploy(&project.join("wadm.yaml"));
        let port: u16 = port.parse().unwrap();
        eventually(&format!("{template} answers"), || async {
            match http_get(port, path).await {
                Ok(body) if body == want => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
    }

    // An import no link carries: refused by name.
    let project = work.path().join("my-custom-wit");
    let manifest = project.join("wadm.yaml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let unlinked = text.replace("namespace: my-custom-wit", "namespace: someone-else");
    std::fs::write(&manifest, unlinked).unwrap();
    let (ok, out) = lattice_in(&project, &["build"]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("component 'api' (build/api.wasm) imports my-custom-wit:greeter/greet"),
        "{out}"
    );

    // Bad input says what is wrong.
    let (ok, out) = lattice_in(work.path(), &["new", "Bad_Name"]);
    assert!(!ok && out.contains("not a valid project name"), "{out}");
    let (ok, out) = lattice_in(work.path(), &["new", "x", "--template", "nope"]);
    assert!(!ok && out.contains("no template named 'nope'"), "{out}");
    let (ok, out) = lattice_in(work.path(), &["build"]);
    assert!(!ok && out.contains("has no Cargo.toml"), "{out}");
}

/// `lattice dev` builds and deploys a new project, then picks up an edit to its
/// source and serves the new answer while a client keeps calling, with no failed
/// request; Ctrl-C undeploys the app.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lattice_dev_serves_an_edit_with_no_failed_request() {
    use lattice_protocol::messages::AppState;
    use std::time::{Duration, Instant};
    let mut lattice = TestLattice::start("dev-loop").await;
    lattice.start_controller().await;
    lattice.start_host("a", &[]);
    lattice.wait_hosts(&["a"]).await;
    let work = tempfile::tempdir().unwrap();
    let port = free_port().unwrap();
    let (ok, out) = lattice_in(
        work.path(),
        &[
            "new",
            "my-dev",
            "--template",
            "http",
            "--port",
            &port.to_string(),
        ],
    );
    assert!(ok, "{out}");
    let project = work.path().join("my-dev");
    let log = std::fs::File::create(work.path().join("dev.log")).unwrap();
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../components/target");
    let mut dev = lattice.command(&["dev", "--poll", "200ms"]);
    dev.current_dir(&project)
        .env("CARGO_TARGET_DIR", target)
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    let mut dev = dev.spawn().unwrap();
    let dev_log = || std::fs::read_to_string(work.path().join("dev.log")).unwrap_or_default();

    // The first version answers (the first build may take a while).
    let deadline = Instant::now() + Duration::from_secs(240);
    let first = "Hello from my-dev! You asked for /x\n";
    while http_get(port, "/x").await.as_deref() != Ok(first) {
        assert!(Instant::now() < deadline, "dev never served: {}", dev_log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A client keeps calling while the source changes.
    let (calling, called) = tokio::sync::oneshot::channel();
    let client = tokio::spawn(async move {
        let (mut served, mut failed) = (0u32, Vec::new());
        let mut calling = Some(calling);
        let deadline = Instant::now() + Duration::from_secs(240);
        while Instant::now() < deadline {
            match http_get(port, "/x").await {
                Ok(body) if body.starts_with("Howdy") => return (served, failed, true),
                Ok(_) => {
                    served += 1;
                    if let Some(calling) = calling.take() {
                        let _ = calling.send(());
                    }
                }
                Err(e) => failed.push(e),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (served, failed, false)
    });
    // Edit once the client has been served at least once.
    tokio::time::timeout(Duration::from_secs(30), called)
        .await
        .expect("the client was never served")
        .expect("the client stopped");
    let source = project.join("src/lib.rs");
    let text = std::fs::read_to_string(&source).unwrap();
    std::fs::write(&source, text.replace("Hello from", "Howdy from")).unwrap();
    let (served, failed, switched) = client.await.unwrap();
    assert!(switched, "the edit was never served: {}", dev_log());
    assert!(served > 0);
    assert!(
        failed.is_empty(),
        "failed requests during the redeploy: {failed:?}"
    );
    let status = lattice.api.status("my-dev").await.unwrap();
    assert_eq!(
        status.deployed_version.as_deref(),
        Some("dev-2"),
        "{}",
        dev_log()
    );

    // Ctrl-C undeploys.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(dev.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = dev.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "dev did not stop: {}", dev_log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(exit.success(), "{}", dev_log());
    lattice
        .status_until("my-dev", "undeployed", |s| s.state == AppState::Undeployed)
        .await;
}
