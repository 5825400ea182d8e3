//! The gateway on one host serving a component placed only on another: two
//! in-process hosts on one nats-server; the gateway runs on the edge host, the
//! `hello` component on the core host only.

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

use lattice_testing::host::provider_host;
use lattice_testing::manifest::{placed, App, Component, Link};
use lattice_testing::nats::{free_port, NatsServer};
use std::time::{Duration, Instant};

const GATEWAY: &str = env!("CARGO_BIN_EXE_http-gateway");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_serves_a_component_placed_on_another_host() {
    let nats = NatsServer::start().unwrap();
    let (edge, core) = (provider_host(&nats).await, provider_host(&nats).await);
    let port = free_port().unwrap();
    let features = Link::to("features", "wasi:http", &["incoming-handler"])
        .named("features")
        .source_config("route", &[("path_prefix", "/config")]);
    let manifest = App::new("site")
        .with(Component::wasm("hello", "hello"))
        .with(Component::wasm("features", "features"))
        .with(
            Component::capability("gateway", &format!("file://{GATEWAY}"))
                .config("listen", &[("address", &format!("127.0.0.1:{port}"))])
                .link(Link::to("hello", "wasi:http", &["incoming-handler"]))
                .link(features),
        )
        .manifest();
    core.apply(placed(manifest.clone(), &["hello", "features"], 4))
        .await
        .unwrap();
    edge.apply(placed(manifest, &["gateway"], 1)).await.unwrap();

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

    // The component gone from everywhere: 503 naming it. (While the core host's
    // subscription drains, a call that still reaches it is answered `unavailable`
    // by that host; once drained, nobody answers. Either way the gateway says why.)
    core.remove("site");
    let (status, body) = get("/").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("no instance of 'hello'") || body.contains("'hello' of app 'site' stopped"),
        "{body}"
    );
}
