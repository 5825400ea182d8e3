//! The admin address (`--admin-address`) of a real `lattice host` and `lattice
//! controller` on a real nats-server: /livez, /readyz (ready only while NATS is
//! connected, and for the controller once its state is loaded and the lease
//! known) and /metrics (the host's per-component invocations and traps, the
//! controller's heartbeat ages and timings), and the same numbers pushed over
//! OTLP/HTTP to a real receiver.

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

mod multi_host_support;

use lattice_testing::manifest::{App, Component};
use lattice_testing::nats::free_port;
use lattice_testing::otlp::OtlpReceiver;
use lattice_testing::process::Process;
use multi_host_support::*;

async fn get(port: u16, path: &str) -> Result<(u16, String), String> {
    http_answer(format!("127.0.0.1:{port}"), path).await
}

/// Until `path` on `port` answers `status`; the body.
async fn until(port: u16, path: &str, status: u16) -> String {
    eventually(&format!("{path} on {port} to answer {status}"), || async {
        match get(port, path).await {
            Ok((s, body)) if s == status => Ok(body),
            other => Err(format!("{other:?}")),
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_follow_nats_and_metrics_count_invocations() {
    let mut lattice = TestLattice::start("admin").await;
    let (host_admin, ctl_admin) = (free_port().unwrap(), free_port().unwrap());
    let addr = |p: u16| format!("127.0.0.1:{p}");
    let receiver = OtlpReceiver::start().await;
    let mut cmd = lattice.host_command(
        "a",
        &[],
        BEAT_SECS,
        &["--allow-file-load", "--admin-address", &addr(host_admin)],
    );
    cmd.env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint())
        .env("OTEL_METRIC_EXPORT_INTERVAL", "200")
        .env("OTEL_SERVICE_NAME", "admin-host");
    let _host = Process::spawn("host a", cmd).unwrap();
    let beat = BEAT_SECS.to_string();
    let mut cmd = lattice.command(&[
        "controller",
        "--host-heartbeat-interval",
        &beat,
        "--admin-address",
        &addr(ctl_admin),
    ]);
    cmd.env("LATTICE_SIGNING_KEY", lattice.key.seed());
    let controller = Process::spawn("controller", cmd).unwrap();

    for port in [host_admin, ctl_admin] {
        assert_eq!(until(port, "/readyz", 200).await, "ready\n");
        assert_eq!(get(port, "/livez").await.unwrap(), (200, "ok\n".into()));
    }

    // Three requests to an app: the host's metrics count them.
    let http = free_port().unwrap();
    let manifest = lattice.dir.path().join("hello.yaml");
    let app = App::new("hello")
        .with(Component::wasm("hello", "hello").instances(2))
        .http_server("hello", http);
    std::fs::write(&manifest, app.yaml()).unwrap();
    lattice.deploy(&manifest);
    eventually("hello to answer", || http_get(http, "/")).await;
    http_get(http, "/").await.unwrap();
    http_get(http, "/").await.unwrap();
    let labels = "{app=\"hello\",version=\"v1\",component=\"hello\"}";
    let metrics = until(host_admin, "/metrics", 200).await;
    for line in [
        format!("lattice_host_component_invocations_total{labels} 3"),
        format!("lattice_host_component_traps_total{labels} 0"),
        format!("lattice_host_component_instances{labels} 2"),
        format!("lattice_host_component_timeouts_total{labels} 0"),
        format!("lattice_host_component_overloaded_total{labels} 0"),
        format!("lattice_host_component_queued{labels} 0"),
        // The duration histogram: every one of the three in +Inf and in the count.
        format!(
            "lattice_host_component_invocation_duration_seconds_bucket{{{},le=\"+Inf\"}} 3",
            &labels[1..labels.len() - 1]
        ),
        format!(
            "lattice_host_component_invocation_duration_seconds_count{{{}}} 3",
            &labels[1..labels.len() - 1]
        ),
        "# TYPE lattice_host_component_invocation_duration_seconds histogram".to_string(),
        "lattice_host_compiles_total 1".to_string(),
        "# TYPE lattice_host_component_invocations_total counter".to_string(),
        "lattice_nats_connected 1".to_string(),
        "lattice_ready 1".to_string(),
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line} in:\n{metrics}"
        );
    }
    let metrics = until(ctl_admin, "/metrics", 200).await;
    let value = |name: &str| -> f64 {
        let line = metrics
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in:\n{metrics}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert_eq!(value("lattice_controller_leader "), 1.0);
    assert_eq!(value("lattice_controller_hosts "), 1.0);
    // The one host beats every BEAT_SECS: its last beat is younger than three.
    let age = value("lattice_controller_heartbeat_age_seconds{host_id=\"");
    assert!((0.0..3.0 * BEAT_SECS).contains(&age), "heartbeat age {age}");
    assert!(value("lattice_controller_placement_duration_seconds_count ") >= 1.0);
    assert!(value("lattice_controller_reconcile_duration_seconds_count ") >= 1.0);
    // The deploy's apply went to the host and was answered.
    assert!(value("lattice_controller_command_duration_seconds_count ") >= 1.0);
    assert_eq!(value("lattice_controller_command_failures_total "), 0.0);

    // The same counts pushed over OTLP, under the host's service name.
    let pushed = receiver
        .wait_for_points(
            "three hello invocations",
            std::time::Duration::from_secs(10),
            |points| {
                points
                    .iter()
                    .rev()
                    .find(|p| {
                        p.metric == "lattice_host_component_invocations"
                            && p.attributes.get("app").map(String::as_str) == Some("hello")
                            && p.value == 3.0
                    })
                    .cloned()
            },
        )
        .await;
    assert_eq!(pushed.service, "admin-host");
    assert_eq!(pushed.kind, "sum");
    assert_eq!(pushed.attributes["component"], "hello");
    assert!(
        pushed.resource.contains_key("lattice.host.id"),
        "{:?}",
        pushed.resource
    );
    let durations = receiver.points();
    let histogram = durations
        .iter()
        .rev()
        .find(|p| p.metric == "lattice_host_component_invocation_duration_seconds")
        .expect("the duration histogram is pushed");
    assert_eq!(
        (histogram.kind, histogram.unit.as_str(), histogram.value),
        ("histogram", "s", 3.0)
    );

    // NATS down: both not ready, saying why, and still alive; back: ready.
    lattice.nats.stop();
    for port in [host_admin, ctl_admin] {
        let body = until(port, "/readyz", 503).await;
        assert_eq!(body, "not ready: NATS is not connected\n");
        assert_eq!(get(port, "/livez").await.unwrap().0, 200);
    }
    lattice.nats.restart().unwrap();
    for port in [host_admin, ctl_admin] {
        until(port, "/readyz", 200).await;
    }

    // Only GET, only these paths.
    let resp = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{host_admin}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    let (status, body) = get(host_admin, "/admin").await.unwrap();
    assert_eq!(status, 404);
    assert!(body.contains("/livez, /readyz or /metrics"), "{body}");
    drop(controller);
}
