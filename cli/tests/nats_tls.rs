//! A lattice whose NATS requires TLS and verifies clients (`tls { ..., verify:
//! true }`, a CA made in the test): `lattice host` and `lattice controller`
//! processes and the CLI connect with `--nats-tls-ca/-cert/-key` (the controller
//! through the LATTICE_NATS_TLS_* variables; the host's built-in messaging opens
//! its own connection with the same files), an app deployed through the
//! controller answers over HTTP; the CLI without the CA, or without a client
//! certificate, is refused with an error saying which flag to pass.

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

use lattice_testing::manifest::{App, Component};
use lattice_testing::nats::{free_port, NatsServer};
use lattice_testing::process::Process;
use lattice_testing::trust::LatticeKey;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const LATTICE: &str = env!("CARGO_BIN_EXE_lattice");
const NAME: &str = "tls";

/// `lattice --nats-url URL --lattice tls` with the TLS flags in `tls` (flag, file).
fn lattice(server: &NatsServer, tls: &[(&str, &Path)]) -> Command {
    let mut cmd = Command::new(LATTICE);
    cmd.args(["--nats-url", &server.url(), "--lattice", NAME])
        .env("LATTICE_LOG", "info");
    for (flag, file) in tls {
        cmd.arg(flag).arg(file);
    }
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_and_controller_over_tls_serve_a_deployed_app() {
    let server = NatsServer::builder().tls().start().unwrap();
    let pki = server.tls().unwrap();
    let all: [(&str, &Path); 3] = [
        ("--nats-tls-ca", pki.ca_file()),
        ("--nats-tls-cert", &pki.client.cert),
        ("--nats-tls-key", &pki.client.key),
    ];
    let key = LatticeKey::new(NAME);
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("lattice.nk");
    std::fs::write(&seed, key.seed()).unwrap();

    let mut host = lattice(&server, &all);
    host.args(["host", "--heartbeat-interval", "0.2", "--no-pooling"])
        .args(["--drain-timeout", "1", "--allow-file-load", "--trust"])
        .arg(key.public_key())
        // Built-in messaging's own connection, on the host's TLS files.
        .args(["--messaging-nats-url", &server.url()]);
    let mut host = Process::spawn("host", host).unwrap();
    // The controller takes its TLS files from the environment.
    let mut controller = lattice(&server, &[]);
    controller
        .args([
            "controller",
            "--host-heartbeat-interval",
            "0.2",
            "--signing-key",
        ])
        .arg(&seed)
        .env("LATTICE_NATS_TLS_CA", pki.ca_file())
        .env("LATTICE_NATS_TLS_CERT", &pki.client.cert)
        .env("LATTICE_NATS_TLS_KEY", &pki.client.key);
    let mut controller = Process::spawn("controller", controller).unwrap();

    let port = free_port().unwrap();
    let manifest = dir.path().join("hello.yaml");
    std::fs::write(
        &manifest,
        App::new("hello")
            .with(Component::wasm("hello", "hello").instances(2))
            .http_server("hello", port)
            .yaml(),
    )
    .unwrap();
    let deployed = lattice(&server, &all)
        .args(["app", "deploy"])
        .arg(&manifest)
        .args(["--timeout", "60s"])
        .output()
        .unwrap();
    assert!(
        deployed.status.success(),
        "deploy failed: {}\nhost log:\n{}\ncontroller log:\n{}",
        String::from_utf8_lossy(&deployed.stderr),
        host.log(),
        controller.log()
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    loop {
        let answer = match http.get(format!("http://127.0.0.1:{port}/")).send().await {
            Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
            Err(e) => (0, e.to_string()),
        };
        if answer.0 == 200 {
            assert_eq!(answer.1, "Hello from lattice!\n");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{answer:?}\ndeploy said: {}\nhost log:\n{}\ncontroller log:\n{}",
            String::from_utf8_lossy(&deployed.stdout),
            host.log(),
            controller.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The same CLI without the CA, or without a client certificate, is refused.
    let refused = |tls: &[(&str, &Path)]| {
        let out = lattice(&server, tls)
            .args(["app", "list"])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{tls:?}: connected");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let without_ca = refused(&all[1..]);
    assert!(without_ca.contains("pass --nats-tls-ca"), "{without_ca}");
    let without_cert = refused(&all[..1]);
    assert!(
        without_cert.contains("pass --nats-tls-cert and --nats-tls-key"),
        "{without_cert}"
    );
    let half = refused(&all[..2]);
    assert!(half.contains("--nats-tls-key"), "{half}");

    host.interrupt(Duration::from_secs(10)).unwrap();
    controller.interrupt(Duration::from_secs(10)).unwrap();
}
