//! Warm instances (`properties.warm`): without it every invocation gets a fresh
//! instance; with it an instance that returned serves the next invocation, up to
//! `max_invocations`, and one that trapped, was cancelled or belongs to an older
//! version of the app is never used again.
//!
//! The `echo` component's `calls()` counts its own calls in the instance that
//! runs it: 1 from a fresh instance, more from a warm one; the `features`
//! component's `/requests` does the same for HTTP requests.

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

use lattice_host::Host;
use lattice_protocol::manifest::Manifest;
use lattice_protocol::messages::WorkloadSpec;
use lattice_protocol::wire::{CallErrorKind, WitValue};
use lattice_testing::host::{get, host, quick_limits};
use lattice_testing::manifest::{spec, App, Component, Link};
use lattice_testing::nats::{free_port, NatsServer};
use std::time::Duration;

const VALUES: &str = "lattice:echo/values";

/// App `echoes` at `version`: `echo` (with `warm` when given, one instance), and
/// `relay` linked to it.
fn app(version: &str, warm: Option<(u32, u32)>) -> Manifest {
    let mut echo = Component::wasm("echo", "echo").instances(1);
    if let Some((pool, max)) = warm {
        echo = echo.warm(pool, max);
    }
    with_echo(version, echo)
}

fn with_echo(version: &str, echo: Component) -> Manifest {
    App::new("echoes")
        .version(version)
        .with(echo)
        .with(Component::wasm("relay", "echo-relay").link(Link::to(
            "echo",
            "lattice:echo",
            &["values"],
        )))
        .manifest()
}

fn placed(manifest: Manifest, components: &[&str]) -> WorkloadSpec {
    WorkloadSpec {
        manifest,
        placements: components.iter().map(|c| (c.to_string(), 1)).collect(),
        secrets: None,
    }
}

/// `calls()` of `component` on `host` (directly for `echo`, through the link for
/// `relay`).
async fn calls(host: &Host, component: &str) -> u64 {
    let got = host
        .call_wire("echoes", component, VALUES, "calls", vec![])
        .await
        .unwrap();
    match got.as_slice() {
        [WitValue::U64(n)] => *n,
        other => panic!("calls() returned {other:?}"),
    }
}

/// Wait until `done`, polling, for at most 5 s (then fail naming `what`).
async fn until(what: &str, done: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited 5 s for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn series(host: &Host, component: &str, n: usize) -> Vec<u64> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(calls(host, component).await);
    }
    out
}

#[tokio::test]
async fn without_warm_every_invocation_gets_a_fresh_instance() {
    let host = host(quick_limits(), None);
    host.apply(placed(app("v1", None), &["echo"]))
        .await
        .unwrap();
    assert_eq!(series(&host, "echo", 3).await, [1, 1, 1]);
}

#[tokio::test]
async fn a_warm_instance_serves_the_next_invocations_until_retired() {
    let host = host(quick_limits(), None);
    host.apply(placed(app("v1", Some((1, 3))), &["echo"]))
        .await
        .unwrap();
    assert_eq!(series(&host, "echo", 7).await, [1, 2, 3, 1, 2, 3, 1]);
    // The instance that served the last call waits for the next one.
    let metrics = lattice_telemetry::metrics::prometheus(&host.metrics());
    let idle =
        "lattice_host_component_warm_idle{app=\"echoes\",version=\"v1\",component=\"echo\"} 1";
    assert!(metrics.contains(idle), "{metrics}");
}

#[tokio::test]
async fn an_instance_that_trapped_is_dropped() {
    let host = host(quick_limits(), None);
    host.apply(placed(app("v1", Some((1, 100))), &["echo"]))
        .await
        .unwrap();
    assert_eq!(series(&host, "echo", 2).await, [1, 2]);
    let trapped = host
        .call_wire(
            "echoes",
            "echo",
            VALUES,
            "trap",
            vec![WitValue::String("on purpose".into())],
        )
        .await
        .unwrap_err();
    assert_eq!(trapped.kind, CallErrorKind::Trap, "{trapped:?}");
    assert_eq!(
        calls(&host, "echo").await,
        1,
        "the trapped instance came back"
    );
}

#[tokio::test]
async fn an_invocation_cancelled_midway_drops_its_instance() {
    let host = host(quick_limits(), None);
    host.apply(placed(app("v1", Some((1, 100))), &["echo"]))
        .await
        .unwrap();
    assert_eq!(calls(&host, "echo").await, 1);
    // The warm instance sleeps in `sleep` and its caller goes away.
    let sleep = host.call_wire("echoes", "echo", VALUES, "sleep", vec![WitValue::U32(1000)]);
    assert!(tokio::time::timeout(Duration::from_millis(100), sleep)
        .await
        .is_err());
    assert_eq!(
        calls(&host, "echo").await,
        1,
        "the cancelled instance came back"
    );
}

#[tokio::test]
async fn each_invocation_of_a_warm_instance_has_its_own_deadline() {
    let limits = quick_limits();
    let host = host(limits, None);
    host.apply(placed(app("v1", Some((1, 100))), &["echo"]))
        .await
        .unwrap();
    assert_eq!(calls(&host, "echo").await, 1);
    // Idle past the execution timeout: the next invocation still has all of it.
    tokio::time::sleep(limits.execution_timeout + Duration::from_millis(300)).await;
    assert_eq!(calls(&host, "echo").await, 2);
}

#[tokio::test]
async fn an_instance_unused_for_its_idle_time_is_dropped() {
    let host = host(quick_limits(), None);
    let echo = Component::wasm("echo", "echo")
        .instances(1)
        .warm_for(1, 100, "300ms");
    host.apply(placed(with_echo("v1", echo), &["echo"]))
        .await
        .unwrap();
    assert_eq!(series(&host, "echo", 2).await, [1, 2]);
    let rt = host.component("echoes", "echo").unwrap();
    let pool = rt.warm.as_ref().unwrap();
    assert_eq!(pool.idle(), 1);
    until("the idle instance to be dropped", || pool.idle() == 0).await;
    assert_eq!(calls(&host, "echo").await, 1, "the idle instance was kept");
}

#[tokio::test]
async fn a_new_version_starts_with_fresh_instances() {
    let host = host(quick_limits(), None);
    host.apply(placed(app("v1", Some((1, 100))), &["echo"]))
        .await
        .unwrap();
    assert_eq!(series(&host, "echo", 2).await, [1, 2]);
    host.apply(placed(app("v2", Some((1, 100))), &["echo"]))
        .await
        .unwrap();
    assert_eq!(series(&host, "echo", 2).await, [1, 2]);
}

#[tokio::test]
async fn calls_from_another_host_reuse_warm_instances() {
    let nats = NatsServer::start().unwrap();
    let a = host(quick_limits(), Some(nats.connect().await.unwrap()));
    let b = host(quick_limits(), Some(nats.connect().await.unwrap()));
    b.apply(placed(app("v1", Some((1, 100))), &["echo"]))
        .await
        .unwrap();
    a.apply(placed(app("v1", Some((1, 100))), &["relay"]))
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(20), series(&a, "relay", 3))
        .await
        .expect("linked calls end");
    assert_eq!(got, [1, 2, 3]);
}

/// App `site`: `features` serving HTTP on `port` (one instance, with `warm` when
/// given), its keyvalue links: `kv` by default, `kv2` by the name `other`.
fn site(port: u16, warm: Option<(u32, u32)>) -> Manifest {
    let keyvalue = ["store", "atomics"];
    let mut web = Component::wasm("web", "features")
        .instances(1)
        .link(Link::to("kv", "wasi:keyvalue", &keyvalue))
        .link(Link::to("kv2", "wasi:keyvalue", &keyvalue).named("other"));
    if let Some((pool, max)) = warm {
        web = web.warm(pool, max);
    }
    App::new("site")
        .with(web)
        .with(Component::capability("kv", "builtin://keyvalue-memory"))
        .with(Component::capability("kv2", "builtin://keyvalue-memory"))
        .http_server("web", port)
        .manifest()
}

#[tokio::test]
async fn http_requests_reuse_warm_instances_and_nothing_of_the_last_request() {
    let host = host(quick_limits(), None);
    let port = free_port().unwrap();
    host.apply(spec(site(port, Some((1, 100))))).await.unwrap();
    let rt = host.component("site", "web").unwrap();
    // A response reaches the client before its handler has returned: the next
    // request waits until the instance is back in the pool.
    let get = |path: &'static str| {
        let rt = rt.clone();
        async move {
            let answer = get(port, path).await;
            let pool = rt.warm.as_ref().unwrap();
            until("the instance to come back", || pool.idle() > 0).await;
            answer
        }
    };
    assert_eq!(get("/requests").await, (200, "1\n".into()));
    assert_eq!(get("/requests").await, (200, "2\n".into()));
    // This request picks the link named `other` at run time; the next one, in
    // the same instance, is back on the default link.
    assert_eq!(get("/link?name=other&key=k").await.1, "other:k -> 1\n");
    let unlinked = get("/kv/get?key=k").await.0;
    assert_eq!(unlinked, 404, "the link name carried over");
    assert_eq!(get("/requests").await.1, "5\n", "not the same instance");
}

#[tokio::test]
async fn http_requests_get_fresh_instances_without_warm() {
    let host = host(quick_limits(), None);
    let port = free_port().unwrap();
    host.apply(spec(site(port, None))).await.unwrap();
    assert_eq!(get(port, "/requests").await.1, "1\n");
    assert_eq!(get(port, "/requests").await.1, "1\n");
}
