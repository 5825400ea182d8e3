//! The built-in HTTP server's bounds against clients that abuse them: headers sent
//! slowly, connections held open, bodies over the limit. Real host, real listener;
//! each bound set low in the http-server link's source config.

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

use lattice_host::{Host, HostConfig};
use lattice_testing::host::{client, get, host, quick_limits};
use lattice_testing::manifest::{spec, App, Component, Link};
use lattice_testing::nats::free_port;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The `features` guest on `port`, its listener bounded by `limits`.
fn app(port: u16, limits: &[(&str, &str)]) -> lattice_protocol::manifest::Manifest {
    let keyvalue = ["store", "atomics", "batch"];
    let address = format!("127.0.0.1:{port}");
    let mut config = vec![("address", address.as_str())];
    config.extend_from_slice(limits);
    App::new("bounded")
        .with(Component::wasm("web", "features").link(Link::to("kv", "wasi:keyvalue", &keyvalue)))
        .with(Component::capability("kv", "builtin://keyvalue-memory"))
        .with(
            Component::capability("httpserver", "builtin://http-server").link(
                Link::to("web", "wasi:http", &["incoming-handler"])
                    .source_config("listen", &config),
            ),
        )
        .manifest()
}

/// Read until the server closes the connection (or `limit` passes): whether it
/// closed, and what it sent.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (bool, Vec<u8>) {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (true, got),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (false, got),
        }
    }
}

#[tokio::test]
async fn a_client_sending_headers_slowly_is_cut_off() {
    let host = host(quick_limits(), None);
    let port = free_port().unwrap();
    host.apply(spec(app(port, &[("header_read_timeout", "300ms")])))
        .await
        .unwrap();

    let mut slow = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let started = Instant::now();
    slow.write_all(b"GET /config-all HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    // ... and the rest never comes.
    let (closed, _) = read_until_closed(&mut slow, Duration::from_secs(5)).await;
    let took = started.elapsed();
    assert!(closed, "the connection stayed open for {took:?}");
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(3),
        "closed after {took:?}"
    );
    // A normal client is served.
    assert_eq!(get(port, "/config-all").await.0, 200);
}

#[tokio::test]
async fn connections_over_the_cap_are_closed_at_once() {
    let host = host(quick_limits(), None);
    let port = free_port().unwrap();
    host.apply(spec(app(port, &[("max_connections", "2")])))
        .await
        .unwrap();

    // Two clients hold their connections open, each after one request.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut conn = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        conn.write_all(b"GET /config-all HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 512];
        let n = conn.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &buf[..n]);
        held.push(conn);
    }
    // The third is closed without an answer.
    let mut third = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let _ = third
        .write_all(b"GET /config-all HTTP/1.1\r\nhost: x\r\n\r\n")
        .await;
    let (closed, got) = read_until_closed(&mut third, Duration::from_secs(2)).await;
    assert!(closed && got.is_empty(), "closed: {closed}, got {got:?}");

    // One held connection leaves: a new one is served.
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut conn = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let _ = conn
            .write_all(b"GET /config-all HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await;
        let (_, got) = read_until_closed(&mut conn, Duration::from_secs(2)).await;
        if got.starts_with(b"HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "no slot came free");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_body_over_the_limit_gets_413_and_the_component_is_not_invoked() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::new(
        HostConfig {
            limits: quick_limits(),
            blobstore_dir: Some(dir.path().to_path_buf()),
            allow_file_load: true,
            ..HostConfig::default()
        },
        None,
    )
    .unwrap();
    let port = free_port().unwrap();
    host.apply(spec(app(port, &[("max_body_bytes", "1024")])))
        .await
        .unwrap();
    let url = |path: &str| format!("http://127.0.0.1:{port}{path}");

    // Declared too large: refused before the guest runs (it would count the hit).
    let resp = client()
        .post(url("/kv/incr?key=hits&by=1"))
        .body(vec![b'x'; 4096])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 413);
    let text = resp.text().await.unwrap();
    assert!(text.contains("max_body_bytes"), "{text}");
    assert_eq!(get(port, "/kv/get?key=hits").await.0, 404, "the guest ran");

    // Within the limit: served.
    let resp = client()
        .post(url("/kv/incr?key=hits&by=1"))
        .body(vec![b'x'; 1000])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(get(port, "/kv/get?key=hits").await.1, "1");

    // Streamed (chunked, no length) to a guest that reads it: cut at the limit,
    // 413, and nothing stored.
    let files = free_port().unwrap();
    host.apply(spec(files_app(files, "1024"))).await.unwrap();
    let mut conn = TcpStream::connect(("127.0.0.1", files)).await.unwrap();
    conn.write_all(
        b"PUT /box/big HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    for _ in 0..8 {
        let chunk = format!("200\r\n{}\r\n", "y".repeat(512));
        if conn.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let _ = conn.write_all(b"0\r\n\r\n").await;
    let (_, got) = read_until_closed(&mut conn, Duration::from_secs(5)).await;
    let got = String::from_utf8_lossy(&got);
    assert!(got.starts_with("HTTP/1.1 413"), "{got}");
    assert_eq!(get(files, "/box/big").await.0, 404);
    // A small streamed body is stored.
    let resp = client()
        .put(format!("http://127.0.0.1:{files}/box/small"))
        .body(vec![b'z'; 900])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
}

/// The `blob-files` guest (reads request bodies) on the filesystem blobstore.
fn files_app(port: u16, max_body: &str) -> lattice_protocol::manifest::Manifest {
    let address = format!("127.0.0.1:{port}");
    let store = Link::to(
        "store",
        "wasi:blobstore",
        &["blobstore", "container", "types"],
    );
    App::new("files")
        .with(Component::wasm("files", "blob-files").link(store))
        .with(Component::capability("store", "builtin://blobstore-fs"))
        .with(
            Component::capability("httpserver", "builtin://http-server").link(
                Link::to("files", "wasi:http", &["incoming-handler"]).source_config(
                    "listen",
                    &[("address", address.as_str()), ("max_body_bytes", max_body)],
                ),
            ),
        )
        .manifest()
}
