//! Services and the per-workload loopback, on real hosts with real components: a
//! component reaches its own workload's service over TCP and nothing else; two apps
//! both listen on 8080; a cron service calls its component; a crashing service is
//! restarted with growing delays and finally given up, its stderr in the host's
//! log; removing the app stops the service and frees its network.

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

use lattice_host::Host;
use lattice_protocol::manifest::Manifest;
use lattice_protocol::messages::{ServiceReport, ServiceState};
use lattice_testing::host::{eventually, get, host, quick_limits};
use lattice_testing::manifest::{placed, App, Component, Link};
use lattice_testing::nats::free_port;
use std::time::{Duration, Instant};

/// App `app`: the `net-client` HTTP component on `http` port, plus `service`
/// (named `svc`) when given.
fn app(app: &str, http: u16, service: Option<Component>) -> Manifest {
    let mut app = App::new(app)
        .with(Component::wasm("client", "net-client"))
        .http_server("client", http);
    if let Some(service) = service {
        app = app.with(service);
    }
    app.manifest()
}

/// Service `svc` running `wasm` with `config` and `restart` (its restart policy).
fn service(wasm: &str, config: &[(&str, &str)], restart: &[(&str, &str)]) -> Component {
    let mut svc = Component::service("svc", wasm).restart(restart);
    if !config.is_empty() {
        svc = svc.config("svc", config);
    }
    svc
}

fn service_report(host: &Host, app: &str) -> Option<ServiceReport> {
    host.info()
        .workloads
        .into_iter()
        .find(|w| w.app == app)?
        .service
}

/// GET until the service answers (it starts beside the workload, not before it).
async fn get_when_up(port: u16, path: &str) -> (u16, String) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = get(port, path).await;
        if status == 200 || Instant::now() > deadline {
            return (status, body);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_component_reaches_its_workloads_service_and_nothing_else() {
    let host = host(quick_limits(), None);
    let (a, b, c) = (
        free_port().unwrap(),
        free_port().unwrap(),
        free_port().unwrap(),
    );
    // App one: echo service on 8080. App two: cache service on 8080. App three: none.
    let echo = service("tcp-echo-service", &[("port", "8080")], &[]);
    let cache = service("cache-service", &[("port", "8080")], &[]);
    host.apply(placed(app("one", a, Some(echo)), &["client"], 4))
        .await
        .unwrap();
    host.apply(placed(app("two", b, Some(cache)), &["client"], 4))
        .await
        .unwrap();
    host.apply(placed(app("three", c, None), &["client"], 4))
        .await
        .unwrap();

    // Each app's 127.0.0.1:8080 is its own service.
    assert_eq!(
        get_when_up(a, "/echo?port=8080&msg=hello").await,
        (200, "hello".to_string())
    );
    assert_eq!(
        get_when_up(b, "/cache?port=8080&cmd=SET%20k%20v").await,
        (200, "OK\n".to_string())
    );
    assert_eq!(
        get(b, "/cache?port=8080&cmd=GET%20k").await,
        (200, "VALUE v\n".to_string())
    );
    // State kept across invocations: a fresh instance of the client sees it.
    assert_eq!(
        get(b, "/cache?port=8080&cmd=COUNT").await,
        (200, "COUNT 1\n".to_string())
    );

    // App three has no service: 8080 is refused at once, though two services
    // listen on 8080 on this host.
    let (status, body) = get(c, "/echo?port=8080&msg=x").await;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("refused"), "{body}");

    // The host's real loopback is out of reach too.
    let real = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let real_port = real.local_addr().unwrap().port();
    let (status, body) = get(a, &format!("/echo?port={real_port}&msg=x")).await;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("refused"), "{body}");
    // So is anything else, and components do not listen.
    let (status, body) = get(a, "/connect?addr=10.1.2.3:80").await;
    assert_eq!(status, 502, "{body}");
    let (status, body) = get(a, "/listen?port=9000").await;
    assert_eq!(status, 403, "{body}");

    for app in ["one", "two"] {
        let report = service_report(&host, app).unwrap();
        assert_eq!(report.state, ServiceState::Running);
        assert_eq!(report.restarts, 0);
    }
}

#[tokio::test]
async fn the_cron_service_calls_its_component_every_interval() {
    let host = host(quick_limits(), None);
    let port = free_port().unwrap();
    let job = Component::wasm("job", "cron-job").link(Link::to(
        "kv",
        "wasi:keyvalue",
        &["store", "atomics"],
    ));
    let ticker = Component::service("ticker", "cron-service")
        .config("every", &[("interval_ms", "100")])
        .link(Link::to("job", "example:cron", &["job"]));
    let manifest = App::new("cron")
        .with(job)
        .with(ticker)
        .with(Component::capability("kv", "builtin://keyvalue-memory"))
        .http_server("job", port)
        .manifest();
    host.apply(placed(manifest, &["job"], 4)).await.unwrap();
    let count = |body: &str| -> (u64, u64) {
        let mut parts = body.split_whitespace().map(|p| p.parse::<u64>().unwrap());
        (parts.next().unwrap(), parts.next().unwrap())
    };
    let (_, first) = get(port, "/count").await;
    let started = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, last) = get(port, "/count").await;
    let elapsed = started.elapsed();
    assert_eq!(status, 200, "{last}");
    let (ticks0, _) = count(&first);
    let (ticks1, tick) = count(&last);
    // Every 100 ms: about 15 in 1.5 s; generous bounds for a busy 2-core machine.
    let made = ticks1 - ticks0;
    let expected = elapsed.as_millis() as u64 / 100;
    assert!(
        made >= expected / 2 && made <= expected + 2,
        "{made} calls in {elapsed:?}, expected about {expected}"
    );
    assert_eq!(tick, ticks1, "each call passed the next tick number");
    assert!(host.calls().local >= ticks1);
}

#[tokio::test]
async fn a_crashing_service_is_restarted_with_growing_delays_then_given_up() {
    let host = host(quick_limits(), None);
    let crashy = service(
        "crashy-service",
        &[("crash_after_ms", "20"), ("mode", "panic")],
        &[
            ("max_restarts", "3"),
            ("backoff", "100ms"),
            ("max_backoff", "400ms"),
        ],
    );
    host.apply(placed(
        app("crashy", free_port().unwrap(), Some(crashy)),
        &["client"],
        4,
    ))
    .await
    .unwrap();
    // Record when each restart is counted.
    let mut seen = Vec::new();
    let started = Instant::now();
    let report = eventually("the service to be given up", || {
        let r = service_report(&host, "crashy")?;
        if seen.last().map(|(n, _)| *n) != Some(r.restarts) {
            seen.push((r.restarts, started.elapsed()));
        }
        (r.state == ServiceState::Failed).then_some(r)
    })
    .await;
    assert_eq!(report.restarts, 3, "{report:?}");
    assert_eq!(report.crashes_in_a_row, 4, "{report:?}");
    let error = report.last_error.unwrap();
    assert!(error.contains("wasm trap"), "{error}");
    // Restarts 1, 2, 3 come after delays of 100, 200, 400 ms (plus ~20 ms runs).
    let at: Vec<Duration> = seen.iter().map(|(_, t)| *t).collect();
    let gaps: Vec<Duration> = at.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.len() >= 3, "{seen:?}");
    let tail = &gaps[gaps.len() - 2..];
    assert!(
        tail[1] > tail[0] && tail[1] >= Duration::from_millis(190),
        "delays should grow: {seen:?}"
    );
}

#[tokio::test]
async fn removing_the_app_stops_the_service_and_frees_its_network() {
    let host = host(quick_limits(), None);
    let port = free_port().unwrap();
    let echo = service("tcp-echo-service", &[("port", "7070")], &[]);
    let manifest = app("gone", port, Some(echo));
    host.apply(placed(manifest.clone(), &["client"], 4))
        .await
        .unwrap();
    assert_eq!(
        get_when_up(port, "/echo?port=7070&msg=one").await,
        (200, "one".to_string())
    );
    let network = host.loopback("gone").unwrap();
    assert_eq!(network.upgrade().unwrap().listening(), vec![7070]);
    assert!(host.remove("gone"));
    eventually("the workload's network to be gone", || {
        network.upgrade().is_none().then_some(())
    })
    .await;
    // Deployed again, the service binds 7070 again.
    host.apply(placed(manifest, &["client"], 4)).await.unwrap();
    assert_eq!(
        get_when_up(port, "/echo?port=7070&msg=two").await,
        (200, "two".to_string())
    );
}

#[tokio::test]
async fn a_service_cannot_starve_the_host_or_outgrow_its_memory() {
    // One thread runs everything here: only the service's yielding every epoch
    // tick lets the other app answer at all.
    let host = host(quick_limits(), None);
    let spin = service(
        "crashy-service",
        &[("crash_after_ms", "0"), ("mode", "spin")],
        &[],
    );
    let hog = service(
        "crashy-service",
        &[("crash_after_ms", "0"), ("mode", "hog")],
        &[
            ("max_restarts", "1000"),
            ("backoff", "50ms"),
            ("max_backoff", "50ms"),
        ],
    );
    let port = free_port().unwrap();
    let echo = service("tcp-echo-service", &[("port", "7070")], &[]);
    host.apply(placed(
        app("spinner", free_port().unwrap(), Some(spin)),
        &["client"],
        4,
    ))
    .await
    .unwrap();
    host.apply(placed(
        app("hog", free_port().unwrap(), Some(hog)),
        &["client"],
        4,
    ))
    .await
    .unwrap();
    host.apply(placed(app("echo", port, Some(echo)), &["client"], 4))
        .await
        .unwrap();
    for i in 0..10 {
        let path = format!("/echo?port=7070&msg=m{i}");
        assert_eq!(get_when_up(port, &path).await, (200, format!("m{i}")));
    }
    // The spinner is still running (a service has no execution deadline) and the
    // hog keeps hitting the memory limit (64 MiB here) and being restarted.
    assert_eq!(
        service_report(&host, "spinner").unwrap().state,
        ServiceState::Running
    );
    let hog = eventually("the hog to crash", || {
        service_report(&host, "hog").filter(|r| r.restarts >= 1)
    })
    .await;
    assert!(
        hog.last_error
            .as_deref()
            .unwrap_or("")
            .contains("wasm trap"),
        "{hog:?}"
    );
}

/// Everything the host logs from here on (a tracing subscriber for this test
/// binary, installed once).
fn captured_log() -> std::sync::Arc<std::sync::Mutex<Vec<u8>>> {
    use std::sync::{Arc, Mutex, OnceLock};
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("guest=info")
            .with_ansi(false)
            .with_writer(move || Writer(sink.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        log
    })
    .clone()
}

struct Writer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_services_stderr_reaches_the_host_log_with_its_app_and_component() {
    let log = captured_log();
    let host = host(quick_limits(), None);
    let crashy = service(
        "crashy-service",
        &[("crash_after_ms", "20"), ("mode", "exit")],
        &[("max_restarts", "1"), ("backoff", "100ms")],
    );
    host.apply(placed(
        app("chatty", free_port().unwrap(), Some(crashy)),
        &["client"],
        4,
    ))
    .await
    .unwrap();
    let line = eventually("the service's stderr in the host log", || {
        let text = String::from_utf8_lossy(&log.lock().unwrap()).into_owned();
        text.lines()
            .find(|l| l.contains("crashing now") && l.contains("app=chatty"))
            .map(str::to_string)
    })
    .await;
    assert!(line.contains("component=svc"), "{line}");
    assert!(line.contains("stream=\"stderr\""), "{line}");
    assert!(line.contains("WARN"), "{line}");
}
