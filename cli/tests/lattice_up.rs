//! `lattice up` end to end, as a user runs it: the real binary, a real nats-server
//! it starts itself, the counter component, HTTP, the dashboard on its admin
//! address, and a restart of everything.

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

use lattice_testing::components::{component, repo_root};
use lattice_testing::nats::{find_binary, free_port};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const LATTICE: &str = env!("CARGO_BIN_EXE_lattice");

struct Up {
    child: Child,
    nats_port: u16,
    /// Its admin address's port (probes, metrics, the dashboard).
    admin_port: u16,
    /// The CLI's credentials `lattice up` wrote in its state dir.
    creds: PathBuf,
}

impl Up {
    fn start(state: &Path, nats_port: u16, apps: &[&Path]) -> Self {
        let admin_port = free_port().unwrap();
        let mut cmd = Command::new(LATTICE);
        cmd.args(["up", "--nats-port", &nats_port.to_string(), "--state-dir"])
            .arg(state)
            .arg("--admin-address")
            .arg(format!("127.0.0.1:{admin_port}"))
            .env("NATS_SERVER_BIN", find_binary().unwrap())
            .env("LATTICE_LOG", "warn")
            .stdin(Stdio::null());
        for app in apps {
            cmd.arg("--app").arg(app);
        }
        Self {
            child: cmd.spawn().expect("lattice up starts"),
            nats_port,
            admin_port,
            creds: state.join("cli.creds"),
        }
    }

    fn cli(&self, args: &[&str]) -> Output {
        Command::new(LATTICE)
            .args(args)
            .args([
                "--nats-url",
                &format!("nats://127.0.0.1:{}", self.nats_port),
            ])
            .arg("--nats-creds")
            .arg(&self.creds)
            .env("LATTICE_LOG", "warn")
            .output()
            .unwrap()
    }

    /// Ctrl-C, and wait (with a deadline) for everything to exit.
    fn stop(mut self) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGINT,
        )
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "lattice up exited with {status}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "lattice up did not stop within 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", self.nats_port)).is_err(),
            "nats-server outlived lattice up"
        );
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The sample counter manifest with its HTTP port changed and the image absolute.
fn counter_manifest(dir: &Path, http_port: u16) -> PathBuf {
    let text = std::fs::read_to_string(repo_root().join("manifests/counter.yaml")).unwrap();
    let text = text
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{http_port}"))
        .replace(
            "file://../components/target/wasm32-wasip2/release/counter.wasm",
            &format!("file://{}", component("counter").display()),
        );
    let path = dir.join("counter.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

fn get(port: u16, path: &str) -> Result<String, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let resp = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}{path}"))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        resp.text().await.map_err(|e| e.to_string())
    })
}

fn wait_for(port: u16, path: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match get(port, path) {
            Ok(body) => return body,
            Err(e) if Instant::now() > deadline => panic!("{path} never answered: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn counter_survives_a_restart_of_the_whole_lattice() {
    let state = tempfile::tempdir().unwrap();
    let (nats_port, http_port) = (free_port().unwrap(), free_port().unwrap());
    let manifest = counter_manifest(state.path(), http_port);

    let up = Up::start(state.path(), nats_port, &[&manifest]);
    assert_eq!(wait_for(http_port, "/hello"), "hello -> 1\n");
    assert_eq!(get(http_port, "/hello").unwrap(), "hello -> 2\n");
    assert_eq!(get(http_port, "/world").unwrap(), "world -> 1\n");

    let list = up.cli(&["app", "list"]);
    assert!(list.status.success(), "{}", text(&list));
    assert!(
        text(&list).contains("counter  v0.1.0   v0.1.0  deployed"),
        "{}",
        text(&list)
    );
    // `app put` stores v0.2.0 without deploying it; `app get` prints a stored
    // version as a manifest `app validate` accepts, its file uploaded.
    let v2 = state.path().join("counter-v2.yaml");
    let text_v2 = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&v2, text_v2.replace("version: v0.1.0", "version: v0.2.0")).unwrap();
    let out = up.cli(&["app", "put", v2.to_str().unwrap()]);
    assert!(
        text(&out).contains("stored app 'counter' version v0.2.0 (version v0.1.0 stays deployed)"),
        "{}",
        text(&out)
    );
    let out = up.cli(&["app", "get", "counter"]);
    assert!(out.status.success(), "{}", text(&out));
    let printed = String::from_utf8(out.stdout).unwrap();
    assert!(printed.contains("version: v0.2.0"), "{printed}");
    assert!(printed.contains("image: artifact://sha256:"), "{printed}");
    let got = state.path().join("got.yaml");
    std::fs::write(&got, &printed).unwrap();
    let out = up.cli(&["app", "validate", got.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(get(http_port, "/hello").unwrap(), "hello -> 3\n");
    // The dashboard on the admin address: the page, and the app with its link
    // in the state the page follows.
    let page = wait_for(up.admin_port, "/dashboard/");
    assert!(page.contains("<h2 id=\"links-h\""), "{page}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let shown = loop {
        let state: serde_json::Value =
            serde_json::from_str(&wait_for(up.admin_port, "/dashboard/state")).unwrap();
        let deployed = state["apps"].as_array().is_some_and(|a| {
            a.iter()
                .any(|a| a["name"] == "counter" && a["state"] == "deployed")
        });
        if deployed {
            break state;
        }
        assert!(
            Instant::now() < deadline,
            "the dashboard never showed the counter: {state}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(shown["links"][0]["source"], "counter", "{shown}");
    assert_eq!(shown["links"][0]["target"], "kv", "{shown}");
    let hosts = up.cli(&["get", "hosts", "-o", "json"]);
    let hosts: serde_json::Value = serde_json::from_slice(&hosts.stdout).unwrap();
    assert_eq!(hosts.as_array().unwrap().len(), 1, "{hosts}");
    // A reader that goes away (`lattice app list | head -0`) ends the command
    // quietly, with no panic.
    let mut listing = Command::new(LATTICE)
        .args(["app", "list", "--nats-url"])
        .arg(format!("nats://127.0.0.1:{nats_port}"))
        .arg("--nats-creds")
        .arg(&up.creds)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(listing.stdout.take());
    let out = listing.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains("panicked"), "{}", text(&out));
    up.stop();

    // Everything comes back from JetStream: the deployed app and its data.
    let up = Up::start(state.path(), nats_port, &[]);
    assert_eq!(wait_for(http_port, "/hello"), "hello -> 4\n");

    // Undeploy stops serving.
    let out = up.cli(&["app", "undeploy", "counter"]);
    assert!(out.status.success(), "{}", text(&out));
    let deadline = Instant::now() + Duration::from_secs(20);
    while get(http_port, "/hello").is_ok() {
        assert!(Instant::now() < deadline, "undeployed app still answers");
        std::thread::sleep(Duration::from_millis(100));
    }
    up.stop();
}

#[test]
fn bad_deploys_say_what_is_wrong() {
    let state = tempfile::tempdir().unwrap();
    let nats_port = free_port().unwrap();
    let up = Up::start(state.path(), nats_port, &[]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !up.cli(&["app", "list"]).status.success() {
        assert!(Instant::now() < deadline, "the controller never answered");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Its NATS takes only credentials: without the state dir's, nothing.
    let anonymous = Command::new(LATTICE)
        .args(["app", "list", "--nats-url"])
        .arg(format!("nats://127.0.0.1:{nats_port}"))
        .env("LATTICE_LOG", "warn")
        .output()
        .unwrap();
    assert!(!anonymous.status.success(), "{}", text(&anonymous));
    assert!(
        text(&anonymous).contains("authorization violation"),
        "{}",
        text(&anonymous)
    );

    // An invalid manifest: every problem, with its path, and nothing stored.
    let bad = state.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: Bad_Name\nspec:\n  components: []\n  policies: [{name: p, type: bogus/v1, properties: {backend: b}}]\n",
    )
    .unwrap();
    let out = up.cli(&["app", "deploy", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    let msg = text(&out);
    assert!(msg.contains("metadata.name"), "{msg}");
    assert!(msg.contains("spec.policies[0].type"), "{msg}");
    assert!(msg.contains("spec.components"), "{msg}");

    // A file that is not a component: the app fails with the host's reason.
    let junk = state.path().join("junk.wasm");
    std::fs::write(&junk, "not wasm").unwrap();
    let manifest = state.path().join("junk.yaml");
    std::fs::write(
        &manifest,
        format!(
            "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: junk\n  annotations:\n    version: v1\nspec:\n  components:\n    - name: web\n      type: component\n      properties:\n        image: file://{}\n      traits:\n        - type: spreadscaler\n          properties:\n            instances: 1\n",
            junk.display()
        ),
    )
    .unwrap();
    let out = up.cli(&[
        "app",
        "deploy",
        manifest.to_str().unwrap(),
        "--timeout",
        "20s",
    ]);
    let msg = text(&out);
    assert!(!out.status.success(), "{msg}");
    assert!(msg.contains("is not a WebAssembly component"), "{msg}");
    up.stop();
}

/// The service examples (`manifests/{echo-service,cache,cron}.yaml`) deployed by
/// `lattice up --app`, answering as their comments say.
#[test]
fn the_service_examples_answer() {
    use lattice_testing::components::sample_manifest;
    let dir = tempfile::tempdir().unwrap();
    let (echo, cache, cron) = (
        free_port().unwrap(),
        free_port().unwrap(),
        free_port().unwrap(),
    );
    let mut paths = Vec::new();
    for (file, from, to) in [
        ("echo-service.yaml", 8083, echo),
        ("cache.yaml", 8084, cache),
        ("cron.yaml", 8085, cron),
    ] {
        let path = dir.path().join(file);
        std::fs::write(&path, sample_manifest(file, &[(from, to)])).unwrap();
        paths.push(path);
    }
    let apps: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    let up = Up::start(&dir.path().join("state"), free_port().unwrap(), &apps);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        // Until deployed, the HTTP port is closed; until the service listens, the
        // client answers `connection refused`.
        match get(echo, "/echo?port=7070&msg=hello") {
            Ok(body) if body == "hello" => break,
            other => assert!(Instant::now() < deadline, "echo never answered: {other:?}"),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_for(cache, "/cache?cmd=COUNT");
    assert_eq!(
        get(cache, "/cache?cmd=SET%20greeting%20hi").unwrap(),
        "OK\n"
    );
    assert_eq!(
        get(cache, "/cache?cmd=GET%20greeting").unwrap(),
        "VALUE hi\n"
    );
    // The cron service ticks every second: the count grows.
    let ticks = |body: String| -> u64 { body.split_whitespace().next().unwrap().parse().unwrap() };
    let first = ticks(wait_for(cron, "/count"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while ticks(get(cron, "/count").unwrap()) < first + 2 {
        assert!(
            Instant::now() < deadline,
            "the cron service stopped ticking"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let status = up.cli(&["app", "status", "cache"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("running on 1/1 host(s)"), "{text}");
    up.stop();
}

/// `lattice up`'s host mints each provider's NATS user with the account's scoped
/// provider key (`nats-auth/provider.nk`), not the account key: the user JWT
/// carries only its tags (app, provider) and the server gives it a provider's
/// permissions, so its connection is refused a subject outside its role. A probe
/// provider (a shell script) hands the test the `init` line the host wrote it.
#[test]
fn lattice_up_mints_providers_as_scoped_users() {
    use lattice_protocol::creds;
    use std::os::unix::fs::PermissionsExt;
    let state = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let init = dir.path().join("init.json");
    let probe = dir.path().join("probe-provider");
    std::fs::write(
        &probe,
        format!(
            "#!/bin/sh\nhead -n 1 > '{0}.tmp' && mv '{0}.tmp' '{0}'\nexec sleep 60\n",
            init.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&probe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let manifest = dir.path().join("probe.yaml");
    std::fs::write(
        &manifest,
        format!(
            "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: probe\n  annotations:\n    version: v1\nspec:\n  components:\n    - name: prov\n      type: capability\n      properties:\n        image: file://{}\n      traits:\n        - type: spreadscaler\n          properties:\n            instances: 1\n",
            probe.display()
        ),
    )
    .unwrap();
    let nats_port = free_port().unwrap();
    let up = Up::start(state.path(), nats_port, &[&manifest]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !init.exists() {
        assert!(
            Instant::now() < deadline,
            "the probe provider never started"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let line: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&init).unwrap()).unwrap();
    let user_creds = line["nats_credentials"].as_str().unwrap().to_owned();
    let inbox = line["inbox_prefix"].as_str().unwrap().to_owned();
    let jwt = creds::creds_jwt(&user_creds).unwrap();
    let claims = creds::claims(jwt).unwrap();

    // Signed by the scoped provider key, asking for no permissions of its own.
    let seed = std::fs::read_to_string(state.path().join("nats-auth/provider.nk")).unwrap();
    let scoped = nkeys::KeyPair::from_seed(seed.trim()).unwrap().public_key();
    assert_eq!(claims["iss"].as_str(), Some(scoped.as_str()), "{claims}");
    assert!(claims["nats"]["pub"]["allow"].is_null(), "{claims}");
    let tags = claims["nats"]["tags"].to_string();
    assert!(
        tags.contains("app:probe") && tags.contains("provider:prov"),
        "{tags}"
    );

    // Its connection: refused a subject outside its role, allowed its own.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (tx, mut errors) = tokio::sync::mpsc::unbounded_channel();
        let client = async_nats::ConnectOptions::with_credentials(&user_creds)
            .unwrap()
            .custom_inbox_prefix(inbox)
            .event_callback(move |event| {
                let tx = tx.clone();
                async move {
                    if let async_nats::Event::ServerError(e) = event {
                        let _ = tx.send(e.to_string());
                    }
                }
            })
            .connect(format!("nats://127.0.0.1:{nats_port}"))
            .await
            .unwrap();
        let _own = client
            .subscribe("lattice.default.rpch.*.probe.prov.>")
            .await
            .unwrap();
        let _foreign = client.subscribe("lattice.default.ctl.>").await.unwrap();
        client.flush().await.unwrap();
        let error = tokio::time::timeout(Duration::from_secs(5), errors.recv())
            .await
            .expect("the server refuses the foreign subscription")
            .unwrap();
        assert!(
            error.contains("Permissions Violation") && error.contains("lattice.default.ctl.>"),
            "{error}"
        );
        // Nothing about its own subscription.
        let more = tokio::time::timeout(Duration::from_millis(300), errors.recv()).await;
        assert!(more.is_err(), "{more:?}");
    });
    up.stop();
}
