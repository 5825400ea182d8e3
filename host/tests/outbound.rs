//! Attacks on `builtin://http-client`'s allow-list: a component allowed `*` tries
//! the host's own loopback, a cloud metadata address and a name that resolves to
//! loopback. Real host, real listeners on 127.0.0.1; the `features` guest fetches
//! the URL in its query (`/fetch?url=U`).

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

use lattice_testing::host::{get, host, quick_limits};
use lattice_testing::manifest::{spec, App, Component, Link};
use lattice_testing::nats::free_port;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The `features` guest on `port`, allowed outgoing HTTP to `allowed_hosts`
/// (`None`: a link with no config, as wasmCloud's examples write it).
fn app(name: &str, port: u16, allowed_hosts: Option<&str>) -> lattice_protocol::manifest::Manifest {
    let keyvalue = ["store", "atomics", "batch"];
    let client = Link::to("client", "wasi:http", &["outgoing-handler"]);
    let client = match allowed_hosts {
        Some(hosts) => client.target_config("allow", &[("allowed_hosts", hosts)]),
        None => client,
    };
    let web = Component::wasm("web", "features")
        .link(Link::to("kv", "wasi:keyvalue", &keyvalue))
        .link(client);
    App::new(name)
        .with(web)
        .with(Component::capability("kv", "builtin://keyvalue-memory"))
        .with(Component::capability("client", "builtin://http-client"))
        .http_server("web", port)
        .manifest()
}

/// A plain HTTP server on 127.0.0.1 that answers `ok` and counts connections.
async fn victim() -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a listener on 127.0.0.1");
    let port = listener.local_addr().expect("its address").port();
    let seen = Arc::new(AtomicUsize::new(0));
    let count = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = vec![0; 4096];
                let _ = stream.read(&mut buf).await;
                let _ = stream
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\nconnection: close\r\n\r\nsecret",
                    )
                    .await;
            });
        }
    });
    (port, seen)
}

#[tokio::test]
async fn allowed_everywhere_still_cannot_reach_loopback_or_metadata() {
    // Allowed `*` in the link's config, or no config at all (wasmCloud's
    // habit, which means the same).
    for allowed in [Some("*"), None] {
        allowed_everywhere(allowed).await;
    }
}

async fn allowed_everywhere(allowed: Option<&str>) {
    let host = host(quick_limits(), None);
    let (victim_port, seen) = victim().await;
    let port = free_port().unwrap();
    host.apply(spec(app("star", port, allowed))).await.unwrap();

    for url in [
        format!("http://127.0.0.1:{victim_port}/"),
        format!("http://127.1.2.3:{victim_port}/"),
        format!("http://[::ffff:127.0.0.1]:{victim_port}/"),
        // A name that resolves to loopback: checked after resolution.
        format!("http://localhost:{victim_port}/"),
    ] {
        let (status, body) = get(port, &format!("/fetch?url={url}")).await;
        assert_eq!(status, 502, "{url}: {body}");
        assert!(body.contains("DestinationIpProhibited"), "{url}: {body}");
    }
    assert_eq!(
        seen.load(Ordering::SeqCst),
        0,
        "the loopback listener saw a connection"
    );

    // Cloud metadata: refused before any connect (a connect would hang until the
    // guest's deadline, as nothing answers there).
    let started = Instant::now();
    let (status, body) = get(
        port,
        "/fetch?url=http://169.254.169.254/latest/meta-data/iam/",
    )
    .await;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("DestinationIpProhibited"), "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
    // Private ranges too.
    let (status, body) = get(port, "/fetch?url=http://10.0.0.1/").await;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("DestinationIpProhibited"), "{body}");
}

#[tokio::test]
async fn an_explicit_address_or_range_is_an_allowance() {
    let host = host(quick_limits(), None);
    let (victim_port, seen) = victim().await;

    let port = free_port().unwrap();
    let listed = format!("127.0.0.1:{victim_port}");
    host.apply(spec(app("listed", port, Some(&listed))))
        .await
        .unwrap();
    let (status, body) = get(port, &format!("/fetch?url=http://127.0.0.1:{victim_port}/")).await;
    assert_eq!((status, body.as_str()), (200, "status=200\nsecret"));
    // Another port of the same address is not listed.
    let (status, body) = get(port, "/fetch?url=http://127.0.0.1:9/").await;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("HttpRequestDenied"), "{body}");
    // The name `localhost` is not the listed address, even if it resolves to it.
    let (status, _) = get(port, &format!("/fetch?url=http://localhost:{victim_port}/")).await;
    assert_eq!(status, 502);

    let ranged = free_port().unwrap();
    host.apply(spec(app(
        "ranged",
        ranged,
        Some("localhost, 127.0.0.0/8, ::1/128"),
    )))
    .await
    .unwrap();
    // `localhost` may resolve to ::1 first, where nothing listens: the next
    // checked address is tried.
    let (status, body) = get(
        ranged,
        &format!("/fetch?url=http://localhost:{victim_port}/"),
    )
    .await;
    assert_eq!((status, body.as_str()), (200, "status=200\nsecret"));
    assert_eq!(seen.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_bad_entry_refuses_the_apply_with_its_name() {
    let host = host(quick_limits(), None);
    let port = free_port().unwrap();
    let err = host
        .apply(spec(app("bad", port, Some("example.com, 10.0.0.0/40"))))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("'10.0.0.0/40'"), "{err}");
}
