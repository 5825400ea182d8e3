//! wasmCloud's http-keyvalue-counter manifest (`manifests/wasmcloud-http-keyvalue-counter.yaml`,
//! as wasmCloud publishes it) on a lattice host: its `ghcr.io/wasmcloud/keyvalue-redis`
//! image runs lattice's bundled keyvalue-redis from the host's provider folder, its
//! `ghcr.io/wasmcloud/http-server` image is the built-in server, and the counter
//! counts in Redis. A host whose provider folder lacks the provider refuses the
//! workload and says where it looked.
#![allow(clippy::unwrap_used)] // tests: an unwrap that fails is a failed test

use lattice_protocol::manifest::{parse, Builtin, Bundled, Image, Manifest};
use lattice_testing::components::component;
use lattice_testing::host::{get_ok, provider_host_with, HostConfig};
use lattice_testing::manifest::placed;
use lattice_testing::nats::{free_port, NatsServer};
use lattice_testing::redis::RedisServer;

const PROVIDER: &str = env!("CARGO_BIN_EXE_keyvalue-redis");

/// The published manifest with what only a test can know swapped in: the counter
/// built here instead of the registry image, this test's Redis and HTTP port.
fn wasmcloud_counter(redis_url: &str, port: u16) -> Manifest {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../manifests/wasmcloud-http-keyvalue-counter.yaml"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let counter = format!("file://{}", component("counter").display());
    let text = text
        .replace(
            "image: ghcr.io/wasmcloud/components/http-keyvalue-counter-rust:0.1.0",
            &format!("image: {counter}"),
        )
        .replace("redis://0.0.0.0:6379", redis_url)
        .replace("0.0.0.0:8000", &format!("127.0.0.1:{port}"));
    let manifest = parse(&text).unwrap();
    let image = |name: &str| manifest.component(name).unwrap().image.clone();
    assert_eq!(image("kvredis"), Image::Bundled(Bundled::KeyvalueRedis));
    assert_eq!(image("httpserver"), Image::Builtin(Builtin::HttpServer));
    manifest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasmclouds_keyvalue_counter_runs_on_the_bundled_provider() {
    let nats = NatsServer::start().unwrap();
    let redis = RedisServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(PROVIDER, dir.path().join("keyvalue-redis")).unwrap();
    let host = provider_host_with(
        &nats,
        HostConfig {
            provider_dir: Some(dir.path().to_path_buf()),
            ..HostConfig::default()
        },
    )
    .await;
    let port = free_port().unwrap();
    let manifest = wasmcloud_counter(&redis.url(), port);
    host.apply(placed(manifest, &["counter", "kvredis"], 1))
        .await
        .unwrap();
    assert_eq!(get_ok(port, "/visits").await, "visits -> 1\n");
    assert_eq!(get_ok(port, "/visits").await, "visits -> 2\n");
    let report = &host.info().workloads[0].providers[0];
    assert_eq!(report.name, "kvredis", "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_without_the_bundled_provider_says_where_it_looked() {
    let nats = NatsServer::start().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let host = provider_host_with(
        &nats,
        HostConfig {
            provider_dir: Some(empty.path().to_path_buf()),
            ..HostConfig::default()
        },
    )
    .await;
    let manifest = wasmcloud_counter("redis://127.0.0.1:1", free_port().unwrap());
    let err = host
        .apply(placed(manifest, &["counter", "kvredis"], 1))
        .await
        .unwrap_err();
    let err = err.to_string();
    assert!(
        err.contains("component 'kvredis' of app 'rust-http-kv'")
            && err.contains("no bundled provider keyvalue-redis")
            && err.contains(&empty.path().display().to_string()),
        "{err}"
    );
    assert!(host.info().workloads.is_empty(), "nothing left running");
}
