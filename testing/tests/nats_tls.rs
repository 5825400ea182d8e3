//! TLS to NATS as every lattice role makes it (`lattice_bus::connect`), against a
//! real nats-server with `tls { ..., verify: true }` and a CA made in the test: a
//! client with the CA and a client certificate works; one without the CA, or
//! without a client certificate, is refused with an error that says what to pass.

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

use futures::StreamExt;
use lattice_bus::{connect, ConnectSettings};
use lattice_protocol::nats_tls::NatsTls;
use lattice_testing::nats::NatsServer;
use std::time::Duration;

fn settings(server: &NatsServer, tls: NatsTls) -> ConnectSettings {
    ConnectSettings {
        tls,
        timeout: Duration::from_secs(3),
        ..ConnectSettings::new(server.url(), "tls-test")
    }
}

#[tokio::test]
async fn a_client_with_the_ca_and_a_client_certificate_talks_over_tls() {
    let server = NatsServer::builder().tls().start().unwrap();
    let pki = server.tls().unwrap();
    for url in [server.url(), server.url().replace("nats://", "tls://")] {
        let client = connect(&ConnectSettings {
            url: url.clone(),
            ..settings(&server, pki.nats_tls())
        })
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
        assert!(client.server_info().tls_required, "{url}: not TLS");
        let mut sub = client.subscribe("greet").await.unwrap();
        client.flush().await.unwrap();
        client.publish("greet", "hi".into()).await.unwrap();
        let msg = tokio::time::timeout(Duration::from_secs(5), sub.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&msg.payload[..], b"hi");
    }
}

#[tokio::test]
async fn a_client_without_the_ca_is_refused_and_told_to_pass_it() {
    let server = NatsServer::builder().tls().start().unwrap();
    let pki = server.tls().unwrap();
    let without_ca = NatsTls {
        ca_file: None,
        ..pki.nats_tls()
    };
    let e = connect(&settings(&server, without_ca))
        .await
        .expect_err("connected without trusting the server's CA")
        .to_string();
    eprintln!("refused: {e}");
    assert!(e.contains(&server.url()), "{e}");
    assert!(e.contains("--nats-tls-ca"), "{e}");
}

#[tokio::test]
async fn a_client_without_a_certificate_is_refused_when_the_server_verifies_clients() {
    let server = NatsServer::builder().tls().start().unwrap();
    let pki = server.tls().unwrap();
    let ca_only = NatsTls {
        ca_file: Some(pki.ca_file().to_path_buf()),
        ..Default::default()
    };
    let e = connect(&settings(&server, ca_only))
        .await
        .expect_err("connected without a client certificate to a server that verifies clients")
        .to_string();
    eprintln!("refused: {e}");
    assert!(e.contains(&server.url()), "{e}");
    assert!(e.contains("--nats-tls-cert"), "{e}");
}

#[tokio::test]
async fn a_client_given_a_ca_refuses_a_server_without_tls() {
    let server = NatsServer::start().unwrap();
    let pki = lattice_testing::tls::TestPki::new().unwrap();
    let e = connect(&settings(&server, pki.nats_tls()))
        .await
        .expect_err("a CA was given, yet the connection went on in plain text")
        .to_string();
    eprintln!("refused: {e}");
    assert!(e.contains(&server.url()), "{e}");
    assert!(e.contains("did not answer in TLS"), "{e}");
}

#[tokio::test]
async fn a_missing_certificate_file_is_named() {
    let server = NatsServer::builder().tls().start().unwrap();
    let pki = server.tls().unwrap();
    let missing = pki.dir().join("nope.pem");
    let tls = NatsTls {
        cert_file: Some(missing.clone()),
        ..pki.nats_tls()
    };
    let e = connect(&settings(&server, tls))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("client certificate") && e.contains(&missing.display().to_string()),
        "{e}"
    );
}
