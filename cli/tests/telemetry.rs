//! OpenTelemetry traces across hosts: the edge-plus-core shop (`auth` on an edge
//! host, `business` on a core host) with both hosts exporting over OTLP/HTTP to a
//! real receiver. One HTTP request that arrives with a `traceparent` is one trace:
//! the edge's HTTP server span, its invocation, the linked call's client span,
//! the core's server span and invocation, each the child of the one before, each
//! from the right host, and the core guest's log line is an event in it.

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

mod multi_host_support;

use lattice_testing::nats::free_port;
use lattice_testing::otlp::{OtlpReceiver, ReceivedSpan, CLIENT, INTERNAL, SERVER};
use lattice_testing::process::Process;
use multi_host_support::*;
use std::time::Duration;

const ALICE: &str = "/order?customer=alice&items=apple:2,pear:1";
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

fn start_exporting_host(lattice: &mut TestLattice, name: &str, tier: &str, otlp: &OtlpReceiver) {
    let mut cmd = lattice.host_command(name, &[("tier", tier)], BEAT_SECS, &["--allow-file-load"]);
    cmd.env("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.endpoint())
        .env("OTEL_SERVICE_NAME", format!("shop-{tier}"))
        // Export at once rather than every 5 s.
        .env("OTEL_BSP_SCHEDULE_DELAY", "100");
    lattice.adopt_host(name, Process::spawn(&format!("host {name}"), cmd).unwrap());
}

fn one<'a>(
    spans: &'a [ReceivedSpan],
    what: &str,
    pick: impl Fn(&ReceivedSpan) -> bool,
) -> &'a ReceivedSpan {
    let found: Vec<&ReceivedSpan> = spans.iter().filter(|s| pick(s)).collect();
    assert_eq!(found.len(), 1, "expected one {what}, got {found:#?}");
    found[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_to_core_request_is_one_trace_with_the_guests_log_line() {
    let otlp = OtlpReceiver::start().await;
    let mut lattice = TestLattice::start("traces").await;
    start_exporting_host(&mut lattice, "edge", "edge", &otlp);
    start_exporting_host(&mut lattice, "core", "core", &otlp);
    lattice.wait_hosts(&["core", "edge"]).await;
    lattice.start_controller().await;
    let port = free_port().unwrap();
    lattice.deploy(&lattice.shop_manifest(port));
    lattice
        .wait_placement("shop", "auth", &[("edge", 50)])
        .await;
    lattice
        .wait_placement("shop", "business", &[("core", 50)])
        .await;

    let traceparent = format!("00-{TRACE}-{CLIENT_SPAN}-01");
    let body = eventually("the edge to answer an order", || async {
        let resp = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}{ALICE}"))
            .bearer_auth("let-me-in")
            .header("traceparent", &traceparent)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        match resp.status().as_u16() {
            200 => resp.text().await.map_err(|e| e.to_string()),
            other => Err(format!("status {other}")),
        }
    })
    .await;
    assert!(
        body.starts_with("order 5595653295556370804 for alice"),
        "{body}"
    );

    // Every span of the request's trace, once the core's invocation arrived.
    let spans = otlp
        .wait_for(
            "core invocation in the request's trace",
            Duration::from_secs(20),
            |spans| {
                let trace: Vec<ReceivedSpan> = spans
                    .iter()
                    .filter(|s| s.trace_id == TRACE)
                    .cloned()
                    .collect();
                let served = trace
                    .iter()
                    .any(|s| s.service == "shop-core" && s.kind == INTERNAL);
                (served && trace.len() >= 5).then_some(trace)
            },
        )
        .await;
    let http = one(&spans, "HTTP server span", |s| {
        s.kind == SERVER && s.name == "GET"
    });
    let edge_invoke = one(&spans, "edge invocation", |s| s.name == "invoke auth");
    let client = one(&spans, "linked-call client span", |s| s.kind == CLIENT);
    let served = one(&spans, "linked-call server span", |s| {
        s.kind == SERVER && s.name == "example:shop/orders.place-order"
    });
    let core_invoke = one(&spans, "core invocation", |s| s.name == "invoke business");

    // Each the child of the one before, from the client's span on.
    assert_eq!(http.parent_span_id, CLIENT_SPAN);
    assert_eq!(edge_invoke.parent_span_id, http.span_id);
    assert_eq!(client.parent_span_id, edge_invoke.span_id);
    assert_eq!(served.parent_span_id, client.span_id);
    assert_eq!(core_invoke.parent_span_id, served.span_id);

    // On the right hosts, with the attributes people filter on.
    let hosts = lattice.hosts().await;
    for (span, service, host) in [
        (http, "shop-edge", "edge"),
        (edge_invoke, "shop-edge", "edge"),
        (client, "shop-edge", "edge"),
        (served, "shop-core", "core"),
        (core_invoke, "shop-core", "core"),
    ] {
        assert_eq!(span.service, service, "{span:#?}");
        assert_eq!(
            span.resource.get("host.name").map(String::as_str),
            Some(host)
        );
        assert_eq!(
            span.resource.get("lattice.host.id"),
            Some(&hosts[host].host_id),
            "{span:#?}"
        );
        assert_eq!(
            span.attributes.get("lattice.app").map(String::as_str),
            Some("shop")
        );
    }
    assert_eq!(http.attributes["http.request.method"], "GET");
    assert_eq!(http.attributes["url.path"], "/order");
    assert_eq!(http.attributes["http.response.status_code"], "200");
    for rpc in [client, served] {
        assert_eq!(rpc.attributes["rpc.system"], "lattice");
        assert_eq!(rpc.attributes["rpc.service"], "example:shop/orders");
        assert_eq!(rpc.attributes["rpc.method"], "place-order");
    }
    assert_eq!(
        core_invoke.attributes["code.function.name"],
        "example:shop/orders.place-order"
    );

    // The core guest's stdout line is an event of its invocation.
    let line = core_invoke
        .events
        .iter()
        .find(|(name, _)| name == "guest output")
        .map(|(_, attrs)| attrs["log.record.original"].clone());
    assert_eq!(
        line.as_deref(),
        Some("order 5595653295556370804 for alice: 175 cents"),
        "{core_invoke:#?}"
    );
}

/// A keyvalue operation on a built-in bucket is a client span of the invocation
/// that made it, with the database conventions' attributes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyvalue_operation_is_a_span_of_its_invocation() {
    use lattice_testing::manifest::{App, Component, Link};
    let otlp = OtlpReceiver::start().await;
    let mut lattice = TestLattice::start("kvtraces").await;
    start_exporting_host(&mut lattice, "solo", "core", &otlp);
    lattice.wait_hosts(&["solo"]).await;
    lattice.start_controller().await;
    let port = free_port().unwrap();
    let app = App::new("counter")
        .with(
            Component::wasm("counter", "counter")
                .instances(1)
                .link(Link::to("kv", "wasi:keyvalue", &["atomics", "store"])),
        )
        .with(Component::capability("kv", "builtin://keyvalue-nats"))
        .http_server("counter", port);
    let manifest = lattice.dir.path().join("counter.yaml");
    std::fs::write(&manifest, app.yaml()).unwrap();
    lattice.deploy(&manifest);
    lattice
        .status_until("counter", "counter deployed", |s| {
            s.state == lattice_protocol::messages::AppState::Deployed
        })
        .await;

    let traceparent = format!("00-{TRACE}-{CLIENT_SPAN}-01");
    let body = eventually("the counter to answer", || async {
        let resp = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}/visits"))
            .header("traceparent", &traceparent)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        match resp.status().as_u16() {
            200 => resp.text().await.map_err(|e| e.to_string()),
            other => Err(format!("status {other}")),
        }
    })
    .await;
    assert_eq!(body, "visits -> 1\n");

    let spans = otlp
        .wait_for("the increment's span", Duration::from_secs(20), |spans| {
            let trace: Vec<ReceivedSpan> = spans
                .iter()
                .filter(|s| s.trace_id == TRACE)
                .cloned()
                .collect();
            trace
                .iter()
                .any(|s| s.attributes.contains_key("db.operation.name"))
                .then_some(trace)
        })
        .await;
    let invoke = one(&spans, "counter invocation", |s| s.name == "invoke counter");
    let kv = one(&spans, "increment span", |s| {
        s.attributes.get("db.operation.name").map(String::as_str) == Some("increment")
    });
    assert_eq!(kv.kind, CLIENT);
    assert_eq!(kv.parent_span_id, invoke.span_id);
    assert_eq!(kv.attributes["db.system.name"], "nats");
    let bucket = &kv.attributes["db.collection.name"];
    assert!(!bucket.is_empty(), "{kv:#?}");
    assert_eq!(kv.name, format!("increment {bucket}"));
    assert_eq!(kv.status, 0, "it succeeded: {kv:#?}");
}

/// Metrics (and spans) reach a collector over HTTPS when the host trusts the
/// collector's CA (`OTEL_EXPORTER_OTLP_CERTIFICATE`), and never reach one whose
/// certificate it cannot verify.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_reach_an_https_collector_only_through_its_trusted_ca() {
    use lattice_testing::tls::TestPki;
    let pki = TestPki::new().unwrap();
    let trusted = OtlpReceiver::start_tls(&pki).await;
    let untrusted = OtlpReceiver::start_tls(&TestPki::new().unwrap()).await;
    let mut lattice = TestLattice::start("tlsexport").await;
    for (name, receiver) in [("trusting", &trusted), ("other", &untrusted)] {
        let mut cmd = lattice.host_command(name, &[], BEAT_SECS, &[]);
        cmd.env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint())
            .env("OTEL_EXPORTER_OTLP_CERTIFICATE", pki.ca_file())
            .env("OTEL_METRIC_EXPORT_INTERVAL", "200")
            .env("OTEL_SERVICE_NAME", format!("{name}-host"));
        lattice.adopt_host(name, Process::spawn(&format!("host {name}"), cmd).unwrap());
    }
    lattice.wait_hosts(&["other", "trusting"]).await;
    let point = trusted
        .wait_for_points("a push over TLS", Duration::from_secs(20), |points| {
            points
                .iter()
                .find(|p| p.metric == "lattice_host_compiles")
                .cloned()
        })
        .await;
    assert_eq!(point.service, "trusting-host");
    // The other host pushes every 200 ms to a collector whose certificate its
    // CA did not sign: it says it failed, and nothing got through.
    eventually("the other host to report a failed push", || async {
        let logs = lattice.host_logs();
        match logs.contains("OTLP metrics push failed") {
            true => Ok(()),
            false => Err(logs),
        }
    })
    .await;
    assert!(untrusted.points().is_empty(), "{:#?}", untrusted.points());
    assert!(untrusted.spans().is_empty());
}
