//! `builtin://messaging-nats` with a real nats-server: a message published on the
//! lattice's NATS is handled by a component, which answers through its consumer
//! link; each app's subscriptions reach only its own components.

mod support;

use lattice_host::{Host, HostConfig};
use lattice_protocol::manifest::parse;
use lattice_protocol::messages::WorkloadSpec;
use lattice_testing::components::component;
use lattice_testing::nats::NatsServer;
use std::time::{Duration, Instant};

fn app(name: &str, subscriptions: &str) -> WorkloadSpec {
    let yaml = format!(
        r#"
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: {name}
  annotations:
    version: v1
spec:
  components:
    - name: echo
      type: component
      properties:
        image: file://{echo}
      traits:
        - type: link
          properties:
            target: messaging
            namespace: wasmcloud
            package: messaging
            interfaces: [consumer]
    - name: messaging
      type: capability
      properties:
        image: builtin://messaging-nats
      traits:
        - type: link
          properties:
            target: echo
            namespace: wasmcloud
            package: messaging
            interfaces: [handler]
            source:
              config:
                - name: subscribe
                  properties:
                    subscriptions: "{subscriptions}"
"#,
        echo = component("msg-echo").display(),
    );
    WorkloadSpec {
        manifest: parse(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}")),
        placements: [("echo".to_string(), 4)].into(),
    }
}

#[tokio::test]
async fn messages_are_handled_and_answered_per_app() {
    let nats = NatsServer::start().unwrap();
    let host = Host::new(
        HostConfig {
            limits: support::quick_limits(),
            ..HostConfig::default()
        },
        Some(nats.connect().await.unwrap()),
    )
    .unwrap();
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
