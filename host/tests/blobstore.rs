//! The built-in `wasi:blobstore` on the filesystem and on the NATS object store, with a
//! real nats-server and the `blob-files` component behind the HTTP server: objects
//! are written, read in ranges, listed, copied, moved and deleted; two apps using
//! the same container names never see each other's objects; the NATS store is one
//! store for every host of the lattice, the filesystem one outlives its host.

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

use lattice_host::{Host, HostConfig};
use lattice_protocol::messages::WorkloadSpec;
use lattice_testing::host::quick_limits;
use lattice_testing::manifest::{placed, App, Component, Link};
use lattice_testing::nats::{free_port, NatsServer};
use std::path::Path;

fn app(name: &str, backend: &str, port: u16) -> WorkloadSpec {
    let store = Link::to(
        "store",
        "wasi:blobstore",
        &["blobstore", "container", "types"],
    );
    let manifest = App::new(name)
        .with(
            Component::wasm("files", "blob-files")
                .instances(4)
                .link(store),
        )
        .with(Component::capability(
            "store",
            &format!("builtin://blobstore-{backend}"),
        ))
        .http_server("files", port)
        .manifest();
    placed(manifest, &["files"], 4)
}

async fn host(nats: &NatsServer, dir: &Path) -> Host {
    Host::new(
        HostConfig {
            limits: quick_limits(),
            blobstore_dir: Some(dir.to_path_buf()),
            allow_file_load: true,
            ..HostConfig::default()
        },
        Some(nats.connect().await.unwrap()),
    )
    .unwrap()
}

/// `(status, body)` of `method url` with `body`.
async fn send(method: reqwest::Method, url: String, body: &'static [u8]) -> (u16, String) {
    let response = reqwest::Client::new()
        .request(method, url)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

async fn put(port: u16, path: &str, body: &'static [u8]) -> (u16, String) {
    send(
        reqwest::Method::PUT,
        format!("http://127.0.0.1:{port}/{path}"),
        body,
    )
    .await
}

async fn get(port: u16, path: &str) -> (u16, String) {
    send(
        reqwest::Method::GET,
        format!("http://127.0.0.1:{port}/{path}"),
        b"",
    )
    .await
}

async fn post(port: u16, path: &str) -> (u16, String) {
    send(
        reqwest::Method::POST,
        format!("http://127.0.0.1:{port}/{path}"),
        b"",
    )
    .await
}

async fn delete(port: u16, path: &str) -> (u16, String) {
    send(
        reqwest::Method::DELETE,
        format!("http://127.0.0.1:{port}/{path}"),
        b"",
    )
    .await
}

fn ok(body: &str) -> (u16, String) {
    (200, body.to_string())
}

/// Everything a component can do with its blobstore, on `backend`.
async fn objects_round_trip(backend: &str) {
    let nats = NatsServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let host = host(&nats, dir.path()).await;
    let port = free_port().unwrap();
    host.apply(app("files", backend, port)).await.unwrap();

    assert_eq!(get(port, "photos").await.0, 404, "no container yet");
    assert_eq!(
        put(port, "photos/cat%20one.txt", b"meow meow").await,
        (201, "stored 9 bytes\n".into())
    );
    put(port, "photos/dog.txt", b"woof").await;
    assert_eq!(get(port, "photos/cat%20one.txt").await, ok("meow meow"));
    assert_eq!(
        get(port, "photos/cat%20one.txt?start=5&end=7").await,
        ok("meo")
    );
    assert_eq!(
        get(port, "photos/cat%20one.txt?info").await,
        ok("photos/cat one.txt 9 bytes\n")
    );
    assert_eq!(get(port, "photos").await, ok("cat one.txt\ndog.txt\n"));

    // Replacing an object replaces all of it.
    put(port, "photos/dog.txt", b"wo").await;
    assert_eq!(get(port, "photos/dog.txt").await, ok("wo"));

    // Copy and move, across containers too; a missing destination container is
    // an error that names it.
    put(port, "archive/readme", b"old things").await;
    assert_eq!(
        post(port, "photos/dog.txt?copy-to=archive/dog.txt").await,
        ok("copied\n")
    );
    assert_eq!(
        post(port, "photos/cat%20one.txt?move-to=archive/cat.txt").await,
        ok("moved\n")
    );
    assert_eq!(get(port, "photos").await, ok("dog.txt\n"));
    assert_eq!(get(port, "archive").await, ok("cat.txt\ndog.txt\nreadme\n"));
    assert_eq!(get(port, "archive/cat.txt").await, ok("meow meow"));
    let (status, body) = post(port, "photos/dog.txt?copy-to=nowhere/x").await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body.contains("container 'nowhere' does not exist"),
        "{body}"
    );

    // Missing objects and containers are named.
    let (status, body) = get(port, "photos/nope").await;
    assert_eq!(status, 404);
    assert!(
        body.contains("object 'nope' does not exist in container 'photos'"),
        "{body}"
    );
    assert_eq!(delete(port, "photos/dog.txt").await, ok("deleted\n"));
    assert_eq!(get(port, "photos").await, ok(""));
    assert_eq!(delete(port, "archive").await, ok("deleted\n"));
    assert_eq!(get(port, "archive/readme").await.0, 404);
}

#[tokio::test]
async fn the_filesystem_blobstore_reads_writes_lists_copies_and_deletes() {
    objects_round_trip("fs").await;
}

#[tokio::test]
async fn the_nats_blobstore_reads_writes_lists_copies_and_deletes() {
    objects_round_trip("nats").await;
}

/// Two apps with the same component and the same container and object names.
async fn apps_are_isolated(backend: &str) {
    let nats = NatsServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let host = host(&nats, dir.path()).await;
    let (a, b) = (free_port().unwrap(), free_port().unwrap());
    host.apply(app("alpha", backend, a)).await.unwrap();
    host.apply(app("beta", backend, b)).await.unwrap();

    put(a, "shared/secret", b"alpha's").await;
    assert_eq!(get(b, "shared").await.0, 404, "beta sees alpha's container");
    put(b, "shared/secret", b"beta's").await;
    put(b, "shared/other", b"beta only").await;
    assert_eq!(get(a, "shared/secret").await, ok("alpha's"));
    assert_eq!(get(b, "shared/secret").await, ok("beta's"));
    assert_eq!(get(a, "shared").await, ok("secret\n"));
    assert_eq!(get(a, "shared/other").await.0, 404);
    // A name that looks like a path stays inside the app's own store.
    put(a, "..%2Fbeta%2Fshared/secret", b"escaped?").await;
    assert_eq!(get(b, "shared/secret").await, ok("beta's"));

    // Deleting alpha's container leaves beta's.
    assert_eq!(delete(a, "shared").await, ok("deleted\n"));
    assert_eq!(get(a, "shared").await.0, 404);
    assert_eq!(get(b, "shared").await, ok("other\nsecret\n"));
}

#[tokio::test]
async fn two_apps_filesystem_blobstores_are_isolated() {
    apps_are_isolated("fs").await;
}

#[tokio::test]
async fn two_apps_nats_blobstores_are_isolated() {
    apps_are_isolated("nats").await;
}

#[tokio::test]
async fn the_nats_blobstore_is_shared_by_the_hosts_and_the_filesystem_one_outlives_its_host() {
    let nats = NatsServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (one, two) = (free_port().unwrap(), free_port().unwrap());
    let first = host(&nats, dir.path()).await;
    first.apply(app("files", "nats", one)).await.unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let second = host(&nats, elsewhere.path()).await;
    second.apply(app("files", "nats", two)).await.unwrap();
    put(one, "docs/a", b"written on one").await;
    assert_eq!(get(two, "docs/a").await, ok("written on one"));

    let fs_port = free_port().unwrap();
    first.apply(app("local", "fs", fs_port)).await.unwrap();
    put(fs_port, "docs/kept", b"on disk").await;
    drop(first);
    let again = host(&nats, dir.path()).await;
    let port = free_port().unwrap();
    again.apply(app("local", "fs", port)).await.unwrap();
    assert_eq!(get(port, "docs/kept").await, ok("on disk"));
}

/// wasmCloud's habits with blobstore resources, which its host accepts: `finish`
/// while the output stream of `write-body` is still alive (its own blobstore example
/// does this; a child stream made it trap with "resource has children"), writing
/// one value through two `write-body` streams (wasmCloud's host gives a stream on
/// every call; the WIT's "at most once" refused the second), and
/// dropping a written value, stream alive, without `finish` (no trap, nothing
/// stored, as the WIT says of an unfinished value), finishing a value no
/// `write-data` named (ok, nothing stored) and a range whose end is before its
/// start (empty), as wasmCloud's host answers them.
async fn wasmcloud_resource_habits(backend: &str) {
    let nats = NatsServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let host = host(&nats, dir.path()).await;
    let port = free_port().unwrap();
    host.apply(app("habits", backend, port)).await.unwrap();

    assert_eq!(
        put(port, "docs/hi.txt?style=wasmcloud", b"hello from wasmCloud").await,
        (201, "stored 20 bytes\n".into())
    );
    assert_eq!(get(port, "docs/hi.txt").await, ok("hello from wasmCloud"));
    assert_eq!(
        put(port, "docs/two.txt?style=twice", b"first half, second half").await,
        (201, "stored 23 bytes\n".into())
    );
    assert_eq!(
        get(port, "docs/two.txt").await,
        ok("first half, second half")
    );
    assert_eq!(
        put(port, "docs/gone.txt?style=abandon", b"never stored").await,
        (201, "abandoned\n".into())
    );
    assert_eq!(get(port, "docs/gone.txt").await.0, 404);
    // Finished without write-data naming an object: ok, nothing stored.
    assert_eq!(
        put(port, "docs/none.txt?style=unnamed", b"nowhere").await,
        (201, "finished unnamed\n".into())
    );
    assert_eq!(get(port, "docs/none.txt").await.0, 404);
    // A range whose end is before its start is empty, not an error.
    assert_eq!(get(port, "docs/hi.txt?start=5&end=2").await, ok(""));
    assert_eq!(get(port, "docs").await, ok("hi.txt\ntwo.txt\n"));
}

#[tokio::test]
async fn the_filesystem_blobstore_accepts_wasmclouds_resource_habits() {
    wasmcloud_resource_habits("fs").await;
}

#[tokio::test]
async fn the_nats_blobstore_accepts_wasmclouds_resource_habits() {
    wasmcloud_resource_habits("nats").await;
}

/// On a three-node cluster, a host with `bucket_replicas: 3` creates its apps'
/// containers with three copies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_containers_get_the_hosts_bucket_replicas() {
    let cluster = lattice_testing::nats_cluster::NatsCluster::start(3).unwrap();
    let client = cluster.connect().await.unwrap();
    cluster.wait_jetstream(&client).await.unwrap();
    let host = Host::new(
        HostConfig {
            limits: quick_limits(),
            allow_file_load: true,
            bucket_replicas: 3,
            ..HostConfig::default()
        },
        Some(client.clone()),
    )
    .unwrap();
    let port = free_port().unwrap();
    host.apply(app("files", "nats", port)).await.unwrap();
    assert_eq!(
        put(port, "photos/cat.txt", b"meow").await,
        (201, "stored 4 bytes\n".into())
    );
    let bucket =
        lattice_protocol::subjects::Subjects::new("default").app_blob_bucket("files", "photos");
    let js = async_nats::jetstream::new(client);
    let mut stream = js.get_stream(format!("OBJ_{bucket}")).await.unwrap();
    assert_eq!(stream.info().await.unwrap().config.num_replicas, 3);
}
