//! wasmCloud's http-hello-world example (`manifests/wasmcloud-http-hello-world.yaml`,
//! as wasmCloud publishes it) end to end with real processes: its component pushed to
//! a real OCI registry with `lattice push`, the manifest deployed with `lattice app
//! deploy` with only the component's image (a `wash build` path in the example) and
//! the listen address swapped in; its `ghcr.io/wasmcloud/http-server` image runs as
//! the built-in server, the app answers, and, since the example has no version
//! annotation, `lattice app history` shows the version the controller gave it.

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

mod multi_host_support;

use lattice_artifacts::oci::RegistrySettings;
use lattice_controller::ControllerConfig;
use lattice_testing::components::component;
use lattice_testing::nats::free_port;
use lattice_testing::process::Process;
use lattice_testing::registry::OciRegistry;
use multi_host_support::*;

/// What the `hello` component answers.
const HELLO: &str = "Hello from lattice!\n";

fn output(cmd: &mut std::process::Command) -> (bool, String) {
    let out = cmd.output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasmclouds_hello_world_manifest_deploys_from_a_registry_and_answers() {
    let registry = OciRegistry::start().unwrap();
    let registry_host = registry.host();
    let mut lattice = TestLattice::start("wasmcloud").await;
    // A host as a cluster runs it: no file images, plain HTTP to this registry only.
    let mut cmd = lattice.command(&[
        "host",
        "--heartbeat-interval",
        &BEAT_SECS.to_string(),
        "--no-pooling",
        "--label",
        "name=h1",
        "--trust",
        &lattice.key.public_key(),
        "--allow-insecure-registry",
        &registry_host,
    ]);
    cmd.env("DOCKER_CONFIG", lattice.dir.path().join("no-docker"));
    let _host = Process::spawn("host h1", cmd).unwrap();
    lattice.wait_hosts(&["h1"]).await;
    lattice
        .start_controller_with(ControllerConfig {
            registry: RegistrySettings {
                insecure: vec![registry_host.clone()],
                ..RegistrySettings::default()
            },
            ..fast_controller()
        })
        .await;

    let image = format!("{registry_host}/wasmcloud/components/http-hello-world-rust:0.1.0");
    let hello = component("hello");
    let mut push = lattice.command(&[
        "push",
        "--allow-insecure-registry",
        &registry_host,
        hello.to_str().unwrap(),
        &image,
    ]);
    push.env("DOCKER_CONFIG", lattice.dir.path().join("no-docker"));
    let (ok, out) = output(&mut push);
    assert!(ok, "lattice push: {out}");

    let published = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../manifests/wasmcloud-http-hello-world.yaml"
    ))
    .unwrap();
    let port = free_port().unwrap();
    let text = published
        .replace(
            "image: file://./build/http_hello_world_s.wasm",
            &format!("image: {image}"),
        )
        .replace("0.0.0.0:8000", &format!("127.0.0.1:{port}"));
    assert_ne!(text, published);
    let manifest = lattice.dir.path().join("wadm.yaml");
    std::fs::write(&manifest, &text).unwrap();
    let (ok, out) =
        output(&mut lattice.command(&["app", "deploy", manifest.to_str().unwrap(), "--no-wait"]));
    assert!(ok, "lattice app deploy: {out}");

    let answer = eventually("the app to answer", || async {
        let body = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}/"))
            .timeout(std::time::Duration::from_secs(5))
            .send()
            .await
            .map_err(|e| e.to_string())?
            .text()
            .await
            .map_err(|e| e.to_string())?;
        if body == HELLO {
            Ok(body)
        } else {
            Err(body)
        }
    })
    .await;
    assert_eq!(answer, HELLO);

    // No version annotation: the controller gave it a ULID, shown by history.
    let (ok, history) = output(&mut lattice.command(&["app", "history", "rust-hello-world"]));
    assert!(ok, "{history}");
    let ulid = history
        .split_whitespace()
        .find(|w| {
            w.len() == 26
                && w.starts_with('0')
                && w.chars()
                    .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
        })
        .unwrap_or_else(|| panic!("no ULID version in:\n{history}"));
    let status = lattice.api.status("rust-hello-world").await.unwrap();
    assert_eq!(status.deployed_version.as_deref(), Some(ulid), "{history}");
}
