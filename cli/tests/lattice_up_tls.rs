//! `lattice up --tls`: its nats-server requires TLS and a client certificate from
//! a CA it made in its state dir; its own host and controller connect with them
//! and serve a deployed app; the CLI connects with the printed flags, and is
//! refused without them.

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

use lattice_testing::manifest::{App, Component};
use lattice_testing::nats::{find_binary, free_port};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const LATTICE: &str = env!("CARGO_BIN_EXE_lattice");

struct Up(std::process::Child);

impl Drop for Up {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0.id() as i32),
            nix::sys::signal::Signal::SIGINT,
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.0.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn lattice_up_tls_runs_its_lattice_over_tls() {
    let state = tempfile::tempdir().unwrap();
    let (nats_port, http_port) = (free_port().unwrap(), free_port().unwrap());
    let manifest = state.path().join("hello.yaml");
    std::fs::write(
        &manifest,
        App::new("hello")
            .with(Component::wasm("hello", "hello").instances(1))
            .http_server("hello", http_port)
            .yaml(),
    )
    .unwrap();
    let _up = Up(Command::new(LATTICE)
        .args(["up", "--tls", "--nats-port", &nats_port.to_string()])
        .arg("--state-dir")
        .arg(state.path())
        .arg("--app")
        .arg(&manifest)
        .env("NATS_SERVER_BIN", find_binary().unwrap())
        .env("LATTICE_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .unwrap());

    // Deployed through its controller, served by its host: both on TLS.
    let deadline = Instant::now() + Duration::from_secs(60);
    let body = loop {
        match get(http_port) {
            Ok(body) => break body,
            Err(e) => assert!(Instant::now() < deadline, "hello never answered: {e}"),
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(body, "Hello from lattice!\n");

    let tls = state.path().join("tls");
    let cli = |with_tls: bool| {
        let mut cmd = Command::new(LATTICE);
        cmd.args(["app", "list", "--nats-url"])
            .arg(format!("nats://127.0.0.1:{nats_port}"))
            .arg("--nats-creds")
            .arg(state.path().join("cli.creds"))
            .env("LATTICE_LOG", "warn");
        if with_tls {
            cmd.arg("--nats-tls-ca")
                .arg(tls.join("ca.pem"))
                .arg("--nats-tls-cert")
                .arg(tls.join("client.pem"))
                .arg("--nats-tls-key")
                .arg(tls.join("client-key.pem"));
        }
        cmd.output().unwrap()
    };
    let listed = cli(true);
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.status.success() && text.contains("hello"), "{text}");
    let refused = cli(false);
    let text = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "connected without TLS files");
    assert!(text.contains("--nats-tls-ca"), "{text}");
}

/// GET / on 127.0.0.1:port.
fn get(port: u16) -> Result<String, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let resp = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}/"))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        resp.text().await.map_err(|e| e.to_string())
    })
}
