//! OCI registries end to end, against a real registry (Debian's `docker-registry`,
//! `lattice_testing::registry`) and real `lattice host` processes that load no
//! files: `lattice push`, a deploy naming the registry image (the controller pins
//! the tag to its digest in the stored version), an upgrade from tag v1 to v2, a
//! tampered blob refused with both digests named, and a registry that needs a
//! login.

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

mod multi_host_support;

use futures::StreamExt;
use lattice_artifacts::credentials::{Credentials, Login};
use lattice_artifacts::oci::RegistrySettings;
use lattice_controller::ControllerConfig;
use lattice_protocol::messages::AppState;
use lattice_protocol::subjects::Subjects;
use lattice_testing::components::component;
use lattice_testing::nats::free_port;
use lattice_testing::process::Process;
use lattice_testing::registry::OciRegistry;
use multi_host_support::*;
use std::path::PathBuf;

const V1_BODY: &str = "Hello from lattice!\n";
const V2_BODY: &str = "Hello, version two!\n";

/// The `hello` component, and a second one that answers [`V2_BODY`] (the same
/// code with its answer's bytes replaced, same length).
fn hello_v1_v2(dir: &std::path::Path) -> (PathBuf, PathBuf) {
    let v1 = component("hello");
    let mut bytes = std::fs::read(&v1).unwrap();
    let (from, to) = (V1_BODY.as_bytes(), V2_BODY.as_bytes());
    let mut replaced = 0;
    let mut i = 0;
    while i + from.len() <= bytes.len() {
        if &bytes[i..i + from.len()] == from {
            bytes[i..i + from.len()].copy_from_slice(to);
            replaced += 1;
        }
        i += 1;
    }
    assert!(
        replaced > 0,
        "hello.wasm no longer holds its answer verbatim"
    );
    let v2 = dir.join("hello-v2.wasm");
    std::fs::write(&v2, bytes).unwrap();
    (v1, v2)
}

/// A manifest running `image` behind the built-in HTTP server on `port`.
fn manifest(lattice: &TestLattice, version: &str, image: &str, port: u16) -> PathBuf {
    let yaml = format!(
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: greet\n  \
         annotations:\n    version: {version}\nspec:\n  components:\n    - name: hello\n      \
         type: component\n      properties:\n        image: {image}\n      traits:\n        \
         - type: spreadscaler\n          properties:\n            instances: 1\n    \
         - name: httpserver\n      type: capability\n      properties:\n        image: \
         builtin://http-server\n      traits:\n        - type: link\n          properties:\n            \
         target:\n              name: hello\n            namespace: wasi\n            package: http\n            \
         interfaces: [incoming-handler]\n            source:\n              config:\n                \
         - name: listen\n                  properties:\n                    address: 127.0.0.1:{port}\n"
    );
    let path = lattice.dir.path().join(format!("greet-{version}.yaml"));
    std::fs::write(&path, yaml).unwrap();
    path
}

/// `lattice host` as a cluster runs it (no file images), allowed plain HTTP to
/// `registry`, with `env` set.
fn start_host(lattice: &TestLattice, name: &str, registry: &str, env: &[(&str, &str)]) -> Process {
    let mut cmd = lattice.command(&[
        "host",
        "--heartbeat-interval",
        &BEAT_SECS.to_string(),
        "--no-pooling",
        "--drain-timeout",
        "1",
        "--label",
        &format!("name={name}"),
        "--trust",
        &lattice.key.public_key(),
        "--allow-insecure-registry",
        registry,
    ]);
    cmd.env_remove("LATTICE_REGISTRY_USER")
        .env_remove("LATTICE_REGISTRY_PASSWORD")
        .env("DOCKER_CONFIG", lattice.dir.path().join("no-docker"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    Process::spawn(&format!("host {name}"), cmd).unwrap()
}

/// `lattice push FILE REF`, allowed plain HTTP to the registry; (success, output).
fn push(
    lattice: &TestLattice,
    registry: &OciRegistry,
    file: &std::path::Path,
    reference: &str,
    env: &[(&str, &str)],
) -> (bool, String) {
    let mut cmd = lattice.command(&[
        "push",
        "--allow-insecure-registry",
        &registry.host(),
        file.to_str().unwrap(),
        reference,
    ]);
    cmd.env_remove("LATTICE_REGISTRY_USER")
        .env_remove("LATTICE_REGISTRY_PASSWORD")
        .env("DOCKER_CONFIG", lattice.dir.path().join("no-docker"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// The `digest: sha256:…` line `lattice push` prints.
fn pushed_digest(output: &str) -> String {
    output
        .lines()
        .find_map(|l| l.strip_prefix("digest: "))
        .unwrap_or_else(|| panic!("no digest in: {output}"))
        .trim()
        .to_string()
}

/// `lattice app deploy FILE --no-wait`: (success, output).
fn deploy(lattice: &TestLattice, manifest: &std::path::Path) -> (bool, String) {
    let out = lattice
        .command(&["app", "deploy", manifest.to_str().unwrap(), "--no-wait"])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

async fn get(port: u16) -> Result<String, String> {
    let resp = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/"))
        .timeout(std::time::Duration::from_secs(5))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    resp.text().await.map_err(|e| e.to_string())
}

/// Everything the controller stored (every app record), as text.
async fn stored(lattice: &TestLattice) -> String {
    let js = async_nats::jetstream::new(lattice.client.clone());
    let kv = js
        .get_key_value(Subjects::new(&lattice.name).state_bucket())
        .await
        .unwrap();
    let mut keys = kv.keys().await.unwrap();
    let mut text = String::new();
    while let Some(key) = keys.next().await {
        if let Some(value) = kv.get(key.unwrap()).await.unwrap() {
            text.push_str(&String::from_utf8_lossy(&value));
        }
    }
    text
}

fn insecure(registry: &OciRegistry) -> RegistrySettings {
    RegistrySettings {
        insecure: vec![registry.host()],
        ..RegistrySettings::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_images_run_pinned_and_upgrade_from_v1_to_v2() {
    let registry = OciRegistry::start().unwrap();
    let mut lattice = TestLattice::start("oci").await;
    let (v1, v2) = hello_v1_v2(lattice.dir.path());
    let host = registry.host();
    let h1 = start_host(&lattice, "h1", &host, &[]);
    lattice.wait_hosts(&["h1"]).await;
    lattice
        .start_controller_with(ControllerConfig {
            registry: insecure(&registry),
            ..fast_controller()
        })
        .await;

    // Plain HTTP only when allowed: 127.0.0.1 is not implicitly insecure.
    let out = lattice
        .command(&[
            "push",
            v1.to_str().unwrap(),
            &format!("{host}/greet/hello:v1"),
        ])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && said.contains(&format!("--allow-insecure-registry {host}")),
        "{said}"
    );
    let (ok, out) = push(
        &lattice,
        &registry,
        &v1,
        &format!("{host}/greet/hello:v1"),
        &[],
    );
    assert!(ok, "{out}");
    let v1_digest = pushed_digest(&out);
    let (ok, out) = push(
        &lattice,
        &registry,
        &v2,
        &format!("{host}/greet/hello:v2"),
        &[],
    );
    assert!(ok, "{out}");
    let v2_digest = pushed_digest(&out);
    assert_ne!(v1_digest, v2_digest);

    // v1 by tag: the stored version names the digest, the host pulls and answers.
    let port = free_port().unwrap();
    let (ok, out) = deploy(
        &lattice,
        &manifest(&lattice, "v1", &format!("{host}/greet/hello:v1"), port),
    );
    assert!(ok, "{out}");
    let answer = eventually("v1 to answer", || async {
        match get(port).await {
            Ok(body) if body == V1_BODY => Ok(body),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(answer, V1_BODY);
    let record = stored(&lattice).await;
    assert!(
        record.contains(&format!("{host}/greet/hello:v1@{v1_digest}")),
        "the stored version is not pinned: {record}"
    );

    // The tag v1 moves to other bytes after the deploy, and the app moves to a
    // host that never saw it: that host pulls the pinned v1, not what the tag
    // names now.
    let (ok, out) = push(
        &lattice,
        &registry,
        &v2,
        &format!("{host}/greet/hello:v1"),
        &[],
    );
    assert!(ok, "{out}");
    assert_eq!(pushed_digest(&out), v2_digest);
    let _h2 = start_host(&lattice, "h2", &host, &[]);
    lattice.wait_hosts(&["h1", "h2"]).await;
    drop(h1);
    eventually("the app to move to h2", || async {
        let placed = lattice.placement("greet", "hello").await;
        if placed.get("h2") == Some(&1) && placed.len() == 1 {
            Ok(())
        } else {
            Err(format!("{placed:?}"))
        }
    })
    .await;
    eventually("the moved app to answer", || async {
        match get(port).await {
            Ok(body) if body == V1_BODY => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    // Upgrade to tag v2: every host runs v2, and the stored version names its digest.
    let (ok, out) = deploy(
        &lattice,
        &manifest(&lattice, "v2", &format!("{host}/greet/hello:v2"), port),
    );
    assert!(ok, "{out}");
    eventually("v2 to answer", || async {
        match get(port).await {
            Ok(body) if body == V2_BODY => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    lattice
        .status_until("greet", "v2 deployed", |s| {
            s.state == AppState::Deployed && s.deployed_version.as_deref() == Some("v2")
        })
        .await;
    // Every host that runs the app runs v2.
    let hosts = lattice.hosts().await;
    let running: Vec<_> = hosts
        .iter()
        .filter_map(|(name, h)| {
            let w = h.workloads.iter().find(|w| w.app == "greet")?;
            Some((name.clone(), w.version.clone()))
        })
        .collect();
    assert_eq!(running, vec![("h2".to_string(), "v2".to_string())]);
    let record = stored(&lattice).await;
    assert!(
        record.contains(&format!("{host}/greet/hello:v2@{v2_digest}")),
        "{record}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_blob_is_refused_and_nothing_starts() {
    let registry = OciRegistry::start().unwrap();
    let mut lattice = TestLattice::start("tamper").await;
    let host = registry.host();
    let _h1 = start_host(&lattice, "h1", &host, &[]);
    lattice.wait_hosts(&["h1"]).await;
    lattice
        .start_controller_with(ControllerConfig {
            registry: insecure(&registry),
            ..fast_controller()
        })
        .await;
    let (ok, out) = push(
        &lattice,
        &registry,
        &component("hello"),
        &format!("{host}/hello:v1"),
        &[],
    );
    assert!(ok, "{out}");
    let manifest_digest = pushed_digest(&out);

    // The layer's blob, as the registry stores it: one byte changed, same length.
    let m: serde_json::Value = reqwest::Client::new()
        .get(format!(
            "http://{host}/v2/hello/manifests/{manifest_digest}"
        ))
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let layer = m["layers"][0]["digest"].as_str().unwrap().to_string();
    let blob = registry.blob_path(&layer);
    let mut bytes = std::fs::read(&blob).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&blob, &bytes).unwrap();
    let actual = lattice_artifacts::Digest::of(&bytes).to_string();

    let port = free_port().unwrap();
    let pinned = format!("{host}/hello@{manifest_digest}");
    let (ok, out) = deploy(&lattice, &manifest(&lattice, "v1", &pinned, port));
    assert!(ok, "{out}");
    let status = lattice
        .status_until("greet", "the host to refuse the tampered image", |s| {
            s.message.contains("digest mismatch")
        })
        .await;
    assert!(
        status.message.contains(&layer) && status.message.contains(&actual),
        "the refusal names both digests: {}",
        status.message
    );
    assert_ne!(status.state, AppState::Deployed);
    assert!(lattice.placement("greet", "hello").await.is_empty());
    assert!(get(port).await.is_err(), "nothing listens on {port}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_that_needs_a_login_works_with_it_and_says_unauthorized_without() {
    let registry = OciRegistry::start_with_login("alice", "s3cret").unwrap();
    let mut lattice = TestLattice::start("login").await;
    let host = registry.host();
    let reference = format!("{host}/hello:v1");
    let login = [
        ("LATTICE_REGISTRY_USER", "alice"),
        ("LATTICE_REGISTRY_PASSWORD", "s3cret"),
        ("LATTICE_REGISTRY_HOST", host.as_str()),
    ];

    // Without credentials, and with wrong ones: refused, naming the registry.
    let (ok, out) = push(&lattice, &registry, &component("hello"), &reference, &[]);
    assert!(
        !ok && out.contains(&format!("registry {host}")) && out.contains("unauthorized"),
        "{out}"
    );
    let wrong = [
        ("LATTICE_REGISTRY_USER", "alice"),
        ("LATTICE_REGISTRY_PASSWORD", "nope"),
        ("LATTICE_REGISTRY_HOST", host.as_str()),
    ];
    let (ok, out) = push(&lattice, &registry, &component("hello"), &reference, &wrong);
    assert!(!ok && out.contains("unauthorized"), "{out}");
    let (ok, out) = push(&lattice, &registry, &component("hello"), &reference, &login);
    assert!(ok, "{out}");

    // A controller without the login refuses the deploy, naming component, image
    // and reason; nothing is stored.
    let _h1 = start_host(&lattice, "h1", &host, &login);
    lattice.wait_hosts(&["h1"]).await;
    lattice
        .start_controller_with(ControllerConfig {
            registry: insecure(&registry),
            ..fast_controller()
        })
        .await;
    let port = free_port().unwrap();
    let (ok, out) = deploy(&lattice, &manifest(&lattice, "v1", &reference, port));
    assert!(!ok, "{out}");
    assert!(
        out.contains("component 'hello'")
            && out.contains(&reference)
            && out.contains("unauthorized"),
        "{out}"
    );
    assert!(!stored(&lattice).await.contains(&reference));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_login_the_controller_pins_and_the_host_pulls() {
    let registry = OciRegistry::start_with_login("alice", "s3cret").unwrap();
    let mut lattice = TestLattice::start("loginok").await;
    let host = registry.host();
    let reference = format!("{host}/hello:v1");
    let login = [
        ("LATTICE_REGISTRY_USER", "alice"),
        ("LATTICE_REGISTRY_PASSWORD", "s3cret"),
        ("LATTICE_REGISTRY_HOST", host.as_str()),
    ];
    let (ok, out) = push(&lattice, &registry, &component("hello"), &reference, &login);
    assert!(ok, "{out}");
    let _h1 = start_host(&lattice, "h1", &host, &login);
    lattice.wait_hosts(&["h1"]).await;
    lattice
        .start_controller_with(ControllerConfig {
            registry: RegistrySettings {
                credentials: Credentials::none().with_login(
                    &host,
                    Login {
                        username: "alice".into(),
                        password: "s3cret".into(),
                    },
                ),
                ..insecure(&registry)
            },
            ..fast_controller()
        })
        .await;
    let port = free_port().unwrap();
    let (ok, out) = deploy(&lattice, &manifest(&lattice, "v1", &reference, port));
    assert!(ok, "{out}");
    eventually("the app to answer", || async {
        match get(port).await {
            Ok(body) if body == V1_BODY => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
}
