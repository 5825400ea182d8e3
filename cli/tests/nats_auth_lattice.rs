//! A whole lattice on the files `lattice nats-auth init` writes, each process with
//! only its own credentials: a nats-server in operator mode including
//! `nats-auth.conf`, `lattice controller` with `controller.creds`, `lattice host`
//! with the `host.creds` minted for its kept key (`--key`), providers minted by
//! the scoped `provider.nk`, built-in messaging on `messaging.creds`, and the CLI
//! on `cli.creds`. An app with a provider (the HTTP gateway) and built-in
//! messaging is deployed and answers both ways.

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

use lattice_testing::manifest::{App, Component, Link};
use lattice_testing::nats::{find_binary, free_port};
use lattice_testing::process::Process;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const LATTICE: &str = env!("CARGO_BIN_EXE_lattice");
const NAME: &str = "authed";

fn lattice(args: &[&str]) -> Command {
    let mut cmd = Command::new(LATTICE);
    cmd.args(["--lattice", NAME])
        .args(args)
        .env("LATTICE_LOG", "info");
    cmd
}

fn ok(out: Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    text
}

/// The http-gateway provider's executable, built beside `lattice` (a no-op when
/// the workspace's tests already built it).
fn http_gateway() -> PathBuf {
    let path = Path::new(LATTICE).with_file_name("http-gateway");
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(cargo)
            .args(["build", "-p", "http-gateway", "--bin", "http-gateway"])
            .output()
            .unwrap();
        ok(out);
    }
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// Poll `check` every 100 ms for at most 60 s.
fn eventually<T>(what: &str, mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match check() {
            Ok(v) => return v,
            Err(e) if Instant::now() > deadline => panic!("timed out waiting for {what}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

#[test]
fn a_lattice_runs_on_nats_auth_files_each_role_with_its_own_creds() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name);
    let auth = d("auth");
    let p = |path: &Path| path.to_str().unwrap().to_owned();

    // The operator's files, the lattice key and the host's key and user.
    ok(lattice(&["nats-auth", "init", "--out", &p(&auth)])
        .output()
        .unwrap());
    // The server config made again from the kept seeds (what an upgrade that
    // changes a role's template asks for) is the one the lattice runs on.
    let written = ok(lattice(&["nats-auth", "config", "--dir", &p(&auth)])
        .output()
        .unwrap());
    assert!(written.contains("server config written to"), "{written}");
    let public = |kind: &str, file: &str| {
        let out = lattice(&["keys", "new", kind, "--out", &p(&d(file))])
            .output()
            .unwrap();
        let key = String::from_utf8(out.stdout.clone())
            .unwrap()
            .trim()
            .to_owned();
        ok(out);
        key
    };
    let lattice_public = public("lattice", "lattice.nk");
    let host_id = public("host", "host.nk");
    assert!(host_id.starts_with('N'), "{host_id}");
    ok(lattice(&[
        "nats-auth",
        "host",
        "--dir",
        &p(&auth),
        "--key",
        &host_id,
        "--out",
        &p(&d("host.creds")),
    ])
    .output()
    .unwrap());

    // nats-server in operator mode with those files.
    let port = free_port().unwrap();
    let url = format!("nats://127.0.0.1:{port}");
    // (nats-server reads `include` paths relative to the including file.)
    let config = auth.join("nats.conf");
    std::fs::write(
        &config,
        format!(
            "port: {port}\nhost: 127.0.0.1\njetstream {{ store_dir: \"{}\" }}\ninclude \"nats-auth.conf\"\n",
            p(&d("js")),
        ),
    )
    .unwrap();
    let mut server_cmd = Command::new(find_binary().unwrap());
    server_cmd.arg("-c").arg(&config);
    let server = Process::spawn("nats-server", server_cmd).unwrap();
    eventually("nats-server to listen", || {
        std::net::TcpStream::connect(("127.0.0.1", port))
            .map(|_| ())
            .map_err(|e| format!("{e}\n{}", server.log()))
    });

    let creds = |name: &str| p(&auth.join(name));
    let mut controller = lattice(&[
        "--nats-url",
        &url,
        "--nats-creds",
        &creds("controller.creds"),
        "controller",
        "--signing-key",
        &p(&d("lattice.nk")),
    ]);
    controller.env_remove("LATTICE_SIGNING_KEY");
    let controller = Process::spawn("controller", controller).unwrap();
    let host = Process::spawn(
        "host",
        lattice(&[
            "--nats-url",
            &url,
            "--nats-creds",
            &p(&d("host.creds")),
            "host",
            "--key",
            &p(&d("host.nk")),
            "--state-dir",
            &p(&d("host-state")),
            "--trust",
            &lattice_public,
            "--allow-file-load",
            // The gateway is uploaded by `app deploy` and runs from the store.
            "--allow-provider-images",
            "--heartbeat-interval",
            "0.5",
            "--provider-signing-key",
            &creds("provider.nk"),
            "--provider-signing-key-scoped",
            "--messaging-nats-url",
            &url,
            "--messaging-nats-creds",
            &creds("messaging.creds"),
        ]),
    )
    .unwrap();
    let logs = || {
        format!(
            "--- host\n{}\n--- controller\n{}",
            host.log(),
            controller.log()
        )
    };

    // The app: the gateway provider in front of `hello`, and `msg-echo` answering
    // on `authed.echo` through built-in messaging.
    let http = free_port().unwrap();
    let gateway = format!("file://{}", http_gateway().display());
    let manifest = App::new("site")
        .with(Component::wasm("hello", "hello").instances(1))
        .with(
            Component::wasm("echo", "msg-echo")
                .instances(1)
                .link(Link::to("messaging", "wasmcloud:messaging", &["consumer"])),
        )
        .with(
            Component::capability("messaging", "builtin://messaging-nats").link(
                Link::to("echo", "wasmcloud:messaging", &["handler"])
                    .source_config("subscribe", &[("subscriptions", "authed.echo")]),
            ),
        )
        .with(
            Component::capability("gateway", &gateway)
                .instances(1)
                .config("listen", &[("address", &format!("127.0.0.1:{http}"))])
                .link(Link::to("hello", "wasi:http", &["incoming-handler"])),
        )
        .yaml();
    std::fs::write(d("site.yaml"), manifest).unwrap();
    let cli = |args: &[&str]| {
        lattice(&["--nats-url", &url, "--nats-creds", &creds("cli.creds")])
            .args(args)
            .output()
            .unwrap()
    };
    let out = cli(&["app", "deploy", &p(&d("site.yaml")), "--timeout", "60s"]);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        logs()
    );

    // Through the provider: HTTP answered by `hello`.
    let body = eventually("the gateway to answer", || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let resp = reqwest::Client::new()
                .get(format!("http://127.0.0.1:{http}/"))
                .timeout(Duration::from_secs(5))
                .send()
                .await
                .map_err(|e| e.to_string())?;
            match resp.status().as_u16() {
                200 => resp.text().await.map_err(|e| e.to_string()),
                s => Err(format!("{s}: {}", resp.text().await.unwrap_or_default())),
            }
        })
    });
    assert_eq!(body, "Hello from lattice!\n", "{}", logs());

    // Through built-in messaging: a guest's answer, for a client on the messaging
    // user (guests' subjects are where that user may go).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let answer = rt.block_on(async {
        let client = async_nats::ConnectOptions::with_credentials_file(creds("messaging.creds"))
            .await
            .unwrap()
            .custom_inbox_prefix(format!("_INBOX_{NAME}_messaging"))
            .connect(&url)
            .await
            .unwrap();
        let reply = tokio::time::timeout(
            Duration::from_secs(10),
            client.request("authed.echo", "hi".into()),
        )
        .await
        .expect("the echo answers in time")
        .expect("the echo answers");
        String::from_utf8(reply.payload.to_vec()).unwrap()
    });
    assert_eq!(answer, "echo: hi", "{}", logs());

    // The host kept its key's id and its command fence.
    let status = ok(cli(&["get", "hosts", "-o", "json"]));
    assert!(status.contains(&host_id), "{status}");
    assert!(d("host-state")
        .join(format!("command-fence-{host_id}.json"))
        .exists());
    drop((host, controller, server));
}
