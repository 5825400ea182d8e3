//! Secrets (`lattice secret put|list|rm`, wadm's `properties.secrets` and
//! `spec.policies`) on a real nats-server, a real `lattice controller` and
//! `lattice host`: the component reads its secret through `wasmcloud:secrets`,
//! and the value is never in clear on NATS, in the state bucket, in any log line,
//! nor in `app get`, `app status` or `secret list`.

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

mod multi_host_support;

use async_nats::jetstream;
use futures::StreamExt;
use lattice_testing::components::component;
use lattice_testing::nats::free_port;
use lattice_testing::process::Process;
use multi_host_support::*;
use std::io::Write;
use std::path::PathBuf;
use std::process::Stdio;

const VALUE: &str = "correct-horse-battery-staple-42";

/// FNV-1a, 64 bits, as the `features` guest reports a secret.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `features` behind http-server on `port`, given stored secret `key` as
/// `password` by its `properties.secrets` and as `link-token` by the target side
/// of its http link.
fn manifest(lattice: &TestLattice, port: u16, key: &str) -> PathBuf {
    let image = component("features");
    let yaml = format!(
        "apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: vault
  annotations:
    version: v1
spec:
  policies:
    - name: nats-kv
      type: policy.secret.wasmcloud.dev/v1alpha1
      properties:
        backend: nats-kv
  components:
    - name: features
      type: component
      properties:
        image: file://{image}
        secrets:
          - name: password
            properties:
              policy: nats-kv
              key: {key}
      traits:
        - type: spreadscaler
          properties:
            instances: 1
    - name: httpserver
      type: capability
      properties:
        image: builtin://http-server
      traits:
        - type: link
          properties:
            target:
              name: features
              secrets:
                - name: link-token
                  properties:
                    policy: nats-kv
                    key: {key}
            namespace: wasi
            package: http
            interfaces: [incoming-handler]
            source:
              config:
                - name: listen
                  properties:
                    address: 127.0.0.1:{port}
",
        image = image.display()
    );
    let path = lattice.dir.path().join(format!("vault-{key}.yaml"));
    std::fs::write(&path, yaml).unwrap();
    path
}

/// `lattice ARGS...` with `stdin`: (success, stdout, stderr).
fn run(lattice: &TestLattice, args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = lattice
        .command(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn get(port: u16, path: &str) -> Result<(u16, String), String> {
    http_answer(format!("127.0.0.1:{port}"), path).await
}

/// Every value the bucket's stream holds, raw (every revision kept).
async fn raw_stream(client: &async_nats::Client, stream: &str) -> Vec<u8> {
    let js = jetstream::new(client.clone());
    let mut stream = js.get_stream(stream).await.unwrap();
    let last = stream.info().await.unwrap().state.last_sequence;
    let mut all = Vec::new();
    for seq in 1..=last {
        if let Ok(msg) = stream.get_raw_message(seq).await {
            all.extend_from_slice(msg.subject.as_bytes());
            all.extend_from_slice(&msg.payload);
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_reaches_its_component_and_is_never_in_clear() {
    let mut lattice = TestLattice::start("secrets").await;
    // Everything published on NATS from here on, to look for the value in clear.
    let mut wiretap = lattice.client.subscribe(">").await.unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let tap = tokio::spawn({
        let seen = seen.clone();
        async move {
            while let Some(msg) = wiretap.next().await {
                seen.lock().unwrap().extend_from_slice(&msg.payload);
            }
        }
    });

    // The controller as a person runs it, logging at debug.
    let dir = lattice.dir.path().to_path_buf();
    std::fs::write(dir.join("lattice.nk"), lattice.key.seed()).unwrap();
    let (ok, public, err) = run(
        &lattice,
        &[
            "keys",
            "new",
            "secrets",
            "--out",
            dir.join("secrets.xk").to_str().unwrap(),
        ],
        "",
    );
    assert!(ok, "{err}");
    assert!(public.starts_with('X'), "{public}");
    let mut controller_cmd = lattice.command(&[
        "controller",
        "--signing-key",
        dir.join("lattice.nk").to_str().unwrap(),
        "--secrets-key",
        dir.join("secrets.xk").to_str().unwrap(),
        "--host-heartbeat-interval",
        &BEAT_SECS.to_string(),
    ]);
    controller_cmd.env("LATTICE_LOG", "debug");
    let controller = Process::spawn("controller", controller_cmd).unwrap();
    lattice.start_host("a", &[]);
    lattice.wait_hosts(&["a"]).await;
    let port = free_port().unwrap();

    // A manifest naming a secret that is not stored is refused, naming it.
    let path = manifest(&lattice, port, "db-password");
    let (ok, _, err) = run(&lattice, &["app", "deploy", path.to_str().unwrap()], "");
    assert!(!ok, "a deploy naming a missing secret succeeded");
    assert!(
        err.contains("'db-password' (component features)") && err.contains("lattice secret put"),
        "{err}"
    );

    let (ok, out, err) = run(
        &lattice,
        &["secret", "put", "db-password"],
        &format!("{VALUE}\n"),
    );
    assert!(ok, "{out}{err}");
    assert_eq!(
        out,
        format!("stored secret 'db-password' ({} bytes)\n", VALUE.len())
    );
    let (ok, out, _) = run(&lattice, &["secret", "list"], "");
    assert!(ok);
    assert!(out.contains("db-password"), "{out}");

    lattice.deploy(&path);
    let want = format!(
        "string {} bytes, fnv1a {:016x}\n",
        VALUE.len(),
        fnv1a(VALUE.as_bytes())
    );
    eventually("the component reads its secret", || async {
        match get(port, "/secret?key=password").await {
            Ok((200, body)) if body == want => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(
        get(port, "/secret?key=link-token").await.unwrap(),
        (200, want.clone())
    );
    // Only what the manifest gives it, under the names it gives.
    assert_eq!(
        get(port, "/secret?key=db-password").await.unwrap(),
        (404, "missing\n".to_string())
    );

    // Where the value must not be, in clear.
    let (ok, app_get, _) = run(&lattice, &["app", "get", "vault"], "");
    assert!(ok);
    assert!(app_get.contains("key: db-password"), "{app_get}");
    let (ok, status, _) = run(&lattice, &["-o", "json", "app", "status", "vault"], "");
    assert!(ok);
    let stream = raw_stream(&lattice.client, "KV_lattice_secrets_state").await;
    assert!(
        contains(&stream, "secret.db-password"),
        "the secret is not in the state bucket"
    );
    tap.abort();
    let wire = seen.lock().unwrap().clone();
    assert!(!wire.is_empty());
    let logs = format!("{}{}", lattice.host_logs(), controller.log());
    assert!(
        logs.contains("secret stored"),
        "the controller's log is not captured"
    );
    for (place, text) in [
        ("app get", app_get.as_bytes()),
        ("app status", status.as_bytes()),
        ("the state bucket", &stream[..]),
        ("NATS traffic", &wire[..]),
        ("the logs", logs.as_bytes()),
    ] {
        assert!(!contains(text, VALUE), "the secret is in clear in {place}");
    }

    // Removing it: listed no more.
    let (ok, out, _) = run(&lattice, &["secret", "rm", "db-password"], "");
    assert!(ok);
    assert_eq!(out, "removed secret 'db-password'\n");
    let (ok, out, _) = run(&lattice, &["-o", "json", "secret", "list"], "");
    assert!(ok);
    assert_eq!(out.trim(), "[]");
    let (ok, _, err) = run(&lattice, &["secret", "put", "empty"], "");
    assert!(!ok);
    assert!(err.contains("the secret is empty"), "{err}");
}
