//! HTTPS on the built-in HTTP server: a certificate and key named in the
//! http-server link (`tls_cert_file`, `tls_priv_key_file`, as wasmCloud's
//! http-server takes them), made by a throwaway CA in the test. Real host, real
//! listener, reqwest over rustls trusting the test CA.

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

use lattice_testing::host::{host, quick_limits};
use lattice_testing::manifest::{spec, App, Component, Link};
use lattice_testing::nats::free_port;
use lattice_testing::tls::TestPki;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// The `hello` guest behind one http-server link per `(port, cert, key)`, each
/// with a 500 ms header-read timeout.
fn app(listeners: &[(u16, &Path, &Path)]) -> lattice_protocol::manifest::Manifest {
    let mut server = Component::capability("httpserver", "builtin://http-server");
    for (i, (port, cert, key)) in listeners.iter().enumerate() {
        let address = format!("127.0.0.1:{port}");
        let (cert, key) = (cert.display().to_string(), key.display().to_string());
        let mut link = Link::to("hello", "wasi:http", &["incoming-handler"]).source_config(
            "listen",
            &[
                ("address", address.as_str()),
                ("tls_cert_file", cert.as_str()),
                ("tls_priv_key_file", key.as_str()),
                ("header_read_timeout", "500ms"),
            ],
        );
        if i > 0 {
            link = link.named(&format!("listener{i}"));
        }
        server = server.link(link);
    }
    App::new("secure")
        .with(Component::wasm("hello", "hello"))
        .with(server)
        .manifest()
}

/// An HTTPS client that trusts only the test CA.
fn https_client(pki: &TestPki) -> reqwest::Client {
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(pki.ca_pem().as_bytes()).unwrap())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

#[tokio::test]
async fn an_https_link_serves_the_component_over_tls_only() {
    let pki = TestPki::new().unwrap();
    let host = host(quick_limits(), None);
    let port = free_port().unwrap();
    host.apply(spec(app(&[(port, &pki.server.cert, &pki.server.key)])))
        .await
        .unwrap();

    let answer = https_client(&pki)
        .get(format!("https://127.0.0.1:{port}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().await.unwrap(), "Hello from lattice!\n");

    // Plain HTTP to the same port gets no answer.
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
        .get(format!("http://127.0.0.1:{port}/"))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP was answered: {plain:?}");

    // A client that does not trust the test CA refuses the server.
    let untrusting = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
        .get(format!("https://127.0.0.1:{port}/"))
        .send()
        .await;
    assert!(untrusting.is_err(), "{untrusting:?}");
}

#[tokio::test]
async fn a_client_that_never_finishes_the_handshake_is_cut_off() {
    let pki = TestPki::new().unwrap();
    let host = host(quick_limits(), None);
    let port = free_port().unwrap();
    host.apply(spec(app(&[(port, &pki.server.cert, &pki.server.key)])))
        .await
        .unwrap();

    // Opens the connection and sends nothing: no ClientHello ever comes.
    let mut slow = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), slow.read(&mut buf)).await;
    let took = started.elapsed();
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "the connection stayed open for {took:?}: {read:?}"
    );
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(3),
        "closed after {took:?}"
    );
    // A real client is still served.
    let answer = https_client(&pki)
        .get(format!("https://127.0.0.1:{port}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
}

#[tokio::test]
async fn a_missing_certificate_fails_the_apply_naming_the_file_and_binds_nothing() {
    let pki = TestPki::new().unwrap();
    let host = host(quick_limits(), None);
    let (good, bad) = (free_port().unwrap(), free_port().unwrap());
    let missing = pki.dir().join("missing.pem");
    let e = host
        .apply(spec(app(&[
            (good, &pki.server.cert, &pki.server.key),
            (bad, &missing, &pki.server.key),
        ])))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&missing.display().to_string()) && e.contains("tls_cert_file"),
        "{e}"
    );
    assert!(
        e.contains("http-server link") && e.contains("'hello'"),
        "{e}"
    );
    // All or nothing: the good listener was not opened either.
    for port in [good, bad] {
        assert!(
            TcpStream::connect(("127.0.0.1", port)).await.is_err(),
            "port {port} is listening after a failed apply"
        );
    }

    // A key that is not a key, and a certificate without its key, are refused too.
    let e = host
        .apply(spec(app(&[(good, &pki.server.cert, pki.ca_file())])))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("tls_priv_key_file"), "{e}");
    let mut manifest = app(&[(good, &pki.server.cert, &pki.server.key)]);
    for component in &mut manifest.components {
        for link in &mut component.links {
            link.source_config.remove("tls_priv_key_file");
        }
    }
    let e = host.apply(spec(manifest)).await.unwrap_err().to_string();
    assert!(e.contains("HTTPS needs both"), "{e}");
}
