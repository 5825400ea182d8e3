//! The gateway on one host serving a component placed only on another: two
//! in-process hosts on one nats-server; the gateway runs on the edge host, the
//! `hello` component on the core host only.

use lattice_host::{Host, HostConfig};
use lattice_protocol::manifest::parse;
use lattice_protocol::messages::WorkloadSpec;
use lattice_testing::components::component;
use lattice_testing::nats::{free_port, NatsServer};
use std::time::{Duration, Instant};

const GATEWAY: &str = env!("CARGO_BIN_EXE_http-gateway");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_serves_a_component_placed_on_another_host() {
    let nats = NatsServer::start().unwrap();
    let host = |_: &str| async {
        let config = HostConfig {
            provider_nats_url: Some(nats.url()),
            ..HostConfig::default()
        };
        Host::new(config, Some(nats.connect().await.unwrap())).unwrap()
    };
    let (edge, core) = (host("edge").await, host("core").await);
    let port = free_port().unwrap();
    let yaml = format!(
        r#"
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: site
  annotations:
    version: v1
spec:
  components:
    - name: hello
      type: component
      properties:
        image: file://{hello}
    - name: features
      type: component
      properties:
        image: file://{features}
    - name: gateway
      type: capability
      properties:
        image: file://{GATEWAY}
        config:
          - name: listen
            properties:
              address: 127.0.0.1:{port}
      traits:
        - type: link
          properties:
            target: hello
            namespace: wasi
            package: http
            interfaces: [incoming-handler]
        - type: link
          properties:
            target: features
            name: features
            namespace: wasi
            package: http
            interfaces: [incoming-handler]
            source:
              config:
                - name: route
                  properties:
                    path_prefix: /config
"#,
        hello = component("hello").display(),
        features = component("features").display(),
    );
    let manifest = parse(&yaml).unwrap();
    core.apply(WorkloadSpec {
        manifest: manifest.clone(),
        placements: [("hello".to_string(), 4), ("features".to_string(), 4)].into(),
    })
    .await
    .unwrap();
    edge.apply(WorkloadSpec {
        manifest,
        placements: [("gateway".to_string(), 1)].into(),
    })
    .await
    .unwrap();

    let client = reqwest::Client::new();
    let get = |path: &'static str| {
        let client = client.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                match client
                    .get(format!("http://127.0.0.1:{port}{path}"))
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await
                {
                    Ok(r) => return (r.status().as_u16(), r.text().await.unwrap()),
                    Err(e) => assert!(Instant::now() < deadline, "the gateway never answered: {e}"),
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let (status, body) = get("/").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, "Hello from lattice!\n");
    // The longer prefix routes to the other component.
    let (status, body) = get("/config?key=nothing").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body, "missing\n");
    // Served by the core host, forwarded by the edge.
    assert!(core.calls().served >= 2, "{:?}", core.calls());

    // The component gone from everywhere: 503 naming it.
    core.remove("site");
    let (status, body) = get("/").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("no instance of 'hello'"), "{body}");
}
