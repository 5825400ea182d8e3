//! The messaging provider as a lattice host runs it: a message published on NATS is
//! handed to a component, whose reply (through the provider's consumer) comes back
//! to the requester; each app's provider delivers only what its own links
//! subscribe.

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

use lattice_protocol::manifest::Manifest;
use lattice_protocol::messages::WorkloadSpec;
use lattice_testing::host::provider_host;
use lattice_testing::manifest::{App, Component, Link};
use lattice_testing::nats::NatsServer;
use std::time::{Duration, Instant};

const PROVIDER: &str = env!("CARGO_BIN_EXE_messaging-nats");

fn manifest(app: &str, subscriptions: &str) -> Manifest {
    let consumer = Link::to("nats", "wasmcloud:messaging", &["consumer"]);
    let handler = Link::to("echo", "wasmcloud:messaging", &["handler"])
        .source_config("subscribe", &[("subscriptions", subscriptions)]);
    App::new(app)
        .with(Component::wasm("echo", "msg-echo").link(consumer))
        .with(Component::capability("nats", &format!("file://{PROVIDER}")).link(handler))
        .manifest()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_message_is_handled_and_answered() {
    let nats = NatsServer::start().unwrap();
    let host = provider_host(&nats).await;
    for (app, subjects) in [("shop", "orders.>"), ("billing", "invoices.>")] {
        host.apply(WorkloadSpec {
            manifest: manifest(app, subjects),
            placements: [("echo".to_string(), 4), ("nats".to_string(), 1)].into(),
            secrets: None,
        })
        .await
        .unwrap();
    }
    let client = nats.connect().await.unwrap();
    // Until the provider has subscribed, nobody answers.
    let deadline = Instant::now() + Duration::from_secs(15);
    let reply = loop {
        match tokio::time::timeout(
            Duration::from_secs(2),
            client.request("orders.new", "two apples".into()),
        )
        .await
        {
            Ok(Ok(reply)) => break reply,
            other => assert!(Instant::now() < deadline, "no reply: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(&reply.payload[..], b"echo: two apples");

    // A message without a reply subject is echoed on `<subject>.echoed` by the app
    // whose provider subscribes it (billing).
    let mut echoed = client.subscribe("invoices.*.echoed").await.unwrap();
    client.flush().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let msg = loop {
        client.publish("invoices.1", "paid".into()).await.unwrap();
        if let Ok(Some(msg)) = tokio::time::timeout(
            Duration::from_millis(500),
            futures::StreamExt::next(&mut echoed),
        )
        .await
        {
            break msg;
        }
        assert!(Instant::now() < deadline, "billing never echoed");
    };
    assert_eq!(&msg.payload[..], b"echo: paid");
    assert_eq!(msg.subject.as_str(), "invoices.1.echoed");
}

/// On a NATS that requires TLS and verifies clients, the provider connects with the
/// CA and client certificate its host hands it in `init` (`nats_tls`): without
/// them it could not connect, and nothing would answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_started_by_a_host_connects_over_tls() {
    let nats = NatsServer::builder().tls().start().unwrap();
    let host = provider_host(&nats).await;
    host.apply(WorkloadSpec {
        manifest: manifest("shop", "orders.>"),
        placements: [("echo".to_string(), 2), ("nats".to_string(), 1)].into(),
        secrets: None,
    })
    .await
    .unwrap();
    let client = nats.connect().await.unwrap();
    assert!(client.server_info().tls_required);
    let deadline = Instant::now() + Duration::from_secs(15);
    let reply = loop {
        match tokio::time::timeout(
            Duration::from_secs(2),
            client.request("orders.new", "one pear".into()),
        )
        .await
        {
            Ok(Ok(reply)) => break reply,
            other => assert!(
                Instant::now() < deadline,
                "no reply: {other:?}; provider: {:?}",
                host.info()
                    .workloads
                    .iter()
                    .map(|w| &w.providers)
                    .collect::<Vec<_>>()
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(&reply.payload[..], b"echo: one pear");
}
