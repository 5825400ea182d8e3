//! `builtin://messaging-nats` with a real nats-server: a message published on the
//! lattice's NATS is handled by a component, which answers through its consumer
//! link; each app's subscriptions reach only its own components.

use lattice_protocol::messages::WorkloadSpec;
use lattice_testing::host::{host, quick_limits};
use lattice_testing::manifest::{placed, App, Component, Link};
use lattice_testing::nats::NatsServer;
use std::time::{Duration, Instant};

fn app(name: &str, subscriptions: &str) -> WorkloadSpec {
    let consumer = Link::to("messaging", "wasmcloud:messaging", &["consumer"]);
    let handler = Link::to("echo", "wasmcloud:messaging", &["handler"])
        .source_config("subscribe", &[("subscriptions", subscriptions)]);
    let manifest = App::new(name)
        .with(Component::wasm("echo", "msg-echo").link(consumer))
        .with(Component::capability("messaging", "builtin://messaging-nats").link(handler))
        .manifest();
    placed(manifest, &["echo"], 4)
}

#[tokio::test]
async fn messages_are_handled_and_answered_per_app() {
    let nats = NatsServer::start().unwrap();
    let host = host(quick_limits(), Some(nats.connect().await.unwrap()));
    host.apply(app("shop", "orders.>")).await.unwrap();
    host.apply(app("billing", "invoices.>, refunds.*"))
        .await
        .unwrap();
    let client = nats.connect().await.unwrap();

    // The subscriptions exist once apply returns.
    let reply = tokio::time::timeout(
        Duration::from_secs(10),
        client.request("orders.new", "two apples".into()),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(&reply.payload[..], b"echo: two apples");
    let reply = tokio::time::timeout(
        Duration::from_secs(10),
        client.request("refunds.7", "sorry".into()),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(&reply.payload[..], b"echo: sorry");

    // Without a reply subject, the echo goes to `<subject>.echoed`: billing's
    // subscription covers invoices, shop's does not, so exactly one echo.
    let mut echoed = client.subscribe("invoices.*.echoed").await.unwrap();
    client.flush().await.unwrap();
    client.publish("invoices.1", "paid".into()).await.unwrap();
    let msg = tokio::time::timeout(
        Duration::from_secs(10),
        futures::StreamExt::next(&mut echoed),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(&msg.payload[..], b"echo: paid");
    let started = Instant::now();
    let more = tokio::time::timeout(
        Duration::from_millis(300),
        futures::StreamExt::next(&mut echoed),
    )
    .await;
    assert!(
        more.is_err(),
        "a second echo after {:?}: {more:?}",
        started.elapsed()
    );

    // Removing the app stops its subscriptions: nobody answers orders any more.
    host.remove("shop");
    let gone = tokio::time::timeout(
        Duration::from_secs(2),
        client.request("orders.new", "late".into()),
    )
    .await;
    assert!(
        !matches!(gone, Ok(Ok(_))),
        "orders still answered after removal"
    );
}
