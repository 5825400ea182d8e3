//! The admin address of `lattice host`, `lattice controller` and `lattice up`
//! (`--admin-address`): plain HTTP for probes and scrapers, off unless set.
//!
//! - `GET /livez`: 200 `ok` while the process serves at all;
//! - `GET /readyz`: 200 `ready`, or 503 with every reason it is not (NATS
//!   disconnected, the controller's state not loaded, the lease not known);
//! - `GET /metrics`: the Prometheus text format.
//!
//! Anything else is 404; a method other than GET is 405. Each request is
//! answered from memory, without I/O, so a probe never waits on NATS.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};
use lattice_bus::Connection;
use lattice_host::Host;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch;

/// Connections served at once; more are closed.
const MAX_CONNECTIONS: usize = 64;

/// What the admin address reports on: a host, a controller, or both (`lattice up`).
#[derive(Clone)]
pub struct Probes {
    pub nats: watch::Receiver<Connection>,
    pub host: Option<Host>,
    pub controller: Option<watch::Receiver<lattice_controller::Health>>,
}

impl Probes {
    /// Every reason the process is not ready; empty when it is.
    fn not_ready(&self) -> Vec<String> {
        let mut why = Vec::new();
        if !self.nats.borrow().connected {
            why.push("NATS is not connected".to_string());
        }
        if let Some(Err(e)) = self.controller.as_ref().map(|h| h.borrow().ready()) {
            why.push(e.to_string());
        }
        if self.host.as_ref().is_some_and(|h| h.info().draining) {
            why.push("the host is draining".to_string());
        }
        why
    }

    /// The Prometheus text of everything known here.
    fn metrics(&self) -> String {
        let mut out = String::new();
        let nats = *self.nats.borrow();
        gauge(
            &mut out,
            "lattice_nats_connected",
            "1 while the NATS connection is up",
            &[("", u64::from(nats.connected))],
        );
        counter(
            &mut out,
            "lattice_nats_connects_total",
            "connections made to NATS, reconnects included",
            &[("", nats.connects)],
        );
        gauge(
            &mut out,
            "lattice_ready",
            "1 while /readyz answers 200",
            &[("", u64::from(self.not_ready().is_empty()))],
        );
        if let Some(health) = &self.controller {
            let h = *health.borrow();
            gauge(
                &mut out,
                "lattice_controller_leader",
                "1 while this controller holds the lease",
                &[("", u64::from(h.leads))],
            );
        }
        if let Some(host) = &self.host {
            let info = host.info();
            host_metrics(&mut out, &info);
            restart_metrics(&mut out, &info);
            outcome_metrics(&mut out, &host.component_outcomes());
            let (hits, compiles) = host.compile_cache();
            counter(
                &mut out,
                "lattice_host_compile_cache_hits_total",
                "components found compiled by digest (no fetch, no compile)",
                &[("", hits)],
            );
            counter(
                &mut out,
                "lattice_host_compiles_total",
                "components compiled (compile-cache misses)",
                &[("", compiles)],
            );
        }
        out
    }
}

fn host_metrics(out: &mut String, info: &lattice_protocol::messages::HostInfo) {
    let calls = &info.calls;
    let routes = [
        ("{route=\"local\"}", calls.local),
        ("{route=\"remote\"}", calls.remote),
        ("{route=\"served\"}", calls.served),
        ("{route=\"failed\"}", calls.failed),
    ];
    counter(
        out,
        "lattice_host_linked_calls_total",
        "linked calls by route: made in-process, sent over NATS, served for other hosts, failed",
        &routes,
    );
    counter(
        out,
        "lattice_host_refused_commands_total",
        "commands this host refused (bad signature, replay, not admitted)",
        &[("", info.refused_commands)],
    );
    gauge(
        out,
        "lattice_host_draining",
        "1 while the host drains",
        &[("", u64::from(info.draining))],
    );
    let mut instances = Vec::new();
    let mut in_flight = Vec::new();
    let mut invocations = Vec::new();
    let mut traps = Vec::new();
    for w in &info.workloads {
        for c in &w.components {
            let labels = format!(
                "{{app=\"{}\",version=\"{}\",component=\"{}\"}}",
                escape(&w.app),
                escape(&w.version),
                escape(&c.name)
            );
            instances.push((labels.clone(), u64::from(c.instances)));
            in_flight.push((labels.clone(), u64::from(c.in_flight)));
            invocations.push((labels.clone(), c.invocations));
            traps.push((labels, c.traps));
        }
    }
    gauge(
        out,
        "lattice_host_component_instances",
        "concurrent invocations a component may run on this host",
        &by(&instances),
    );
    gauge(
        out,
        "lattice_host_component_in_flight",
        "invocations running now",
        &by(&in_flight),
    );
    counter(
        out,
        "lattice_host_component_invocations_total",
        "invocations that ended, since this version started here",
        &by(&invocations),
    );
    counter(
        out,
        "lattice_host_component_traps_total",
        "invocations that trapped or ran out of time, since this version started here",
        &by(&traps),
    );
}

/// Per component: the duration histogram, timeouts and overload refusals; and
/// per service and provider process: restarts.
fn outcome_metrics(
    out: &mut String,
    outcomes: &[(
        String,
        String,
        String,
        lattice_host::component::OutcomeCounts,
    )],
) {
    use lattice_host::component::outcomes::DURATION_BUCKETS;
    let name = "lattice_host_component_invocation_duration_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} how long admitted invocations ran, since this version started here"
    );
    let _ = writeln!(out, "# TYPE {name} histogram");
    let mut timeouts = Vec::new();
    let mut overloaded = Vec::new();
    for (app, version, component, c) in outcomes {
        let labels = format!(
            "app=\"{}\",version=\"{}\",component=\"{}\"",
            escape(app),
            escape(version),
            escape(component)
        );
        let mut cumulative = 0;
        for (i, count) in c.buckets.iter().enumerate() {
            cumulative += count;
            let le = DURATION_BUCKETS
                .get(i)
                .map_or_else(|| "+Inf".to_string(), ToString::to_string);
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", c.sum_micros as f64 / 1e6);
        let _ = writeln!(out, "{name}_count{{{labels}}} {cumulative}");
        timeouts.push((format!("{{{labels}}}"), c.timed_out));
        overloaded.push((format!("{{{labels}}}"), c.overloaded));
    }
    counter(
        out,
        "lattice_host_component_timeouts_total",
        "invocations stopped at their execution deadline",
        &by(&timeouts),
    );
    counter(
        out,
        "lattice_host_component_overloaded_total",
        "invocations refused for want of a free instance (HTTP 503, `overloaded` calls)",
        &by(&overloaded),
    );
}

fn restart_metrics(out: &mut String, info: &lattice_protocol::messages::HostInfo) {
    let mut services = Vec::new();
    let mut providers = Vec::new();
    for w in &info.workloads {
        let labels =
            |name: &str| format!("{{app=\"{}\",name=\"{}\"}}", escape(&w.app), escape(name));
        if let Some(s) = &w.service {
            services.push((labels(&s.name), u64::from(s.restarts)));
        }
        for p in &w.providers {
            providers.push((labels(&p.name), u64::from(p.restarts)));
        }
    }
    counter(
        out,
        "lattice_host_service_restarts_total",
        "restarts of each app's service on this host",
        &by(&services),
    );
    counter(
        out,
        "lattice_host_provider_restarts_total",
        "restarts of each provider process on this host",
        &by(&providers),
    );
}

/// Samples with owned label strings, as [`family`] takes them.
fn by(v: &[(String, u64)]) -> Vec<(&str, u64)> {
    v.iter().map(|(l, n)| (l.as_str(), *n)).collect()
}

fn family(out: &mut String, kind: &str, name: &str, help: &str, samples: &[(&str, u64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{labels} {value}");
    }
}

fn gauge(out: &mut String, name: &str, help: &str, samples: &[(&str, u64)]) {
    family(out, "gauge", name, help, samples);
}

fn counter(out: &mut String, name: &str, help: &str, samples: &[(&str, u64)]) {
    family(out, "counter", name, help, samples);
}

/// A label value as the text format needs it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn answer(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    resp
}

fn route<B>(probes: &Probes, req: &Request<B>) -> Response<Full<Bytes>> {
    const TEXT: &str = "text/plain; charset=utf-8";
    if req.method() != Method::GET {
        return answer(StatusCode::METHOD_NOT_ALLOWED, TEXT, "only GET\n".into());
    }
    match req.uri().path() {
        "/livez" => answer(StatusCode::OK, TEXT, "ok\n".into()),
        "/readyz" => match probes.not_ready() {
            why if why.is_empty() => answer(StatusCode::OK, TEXT, "ready\n".into()),
            why => answer(
                StatusCode::SERVICE_UNAVAILABLE,
                TEXT,
                format!("not ready: {}\n", why.join("; ")),
            ),
        },
        "/metrics" => answer(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            probes.metrics(),
        ),
        _ => answer(
            StatusCode::NOT_FOUND,
            TEXT,
            "not found: try /livez, /readyz or /metrics\n".into(),
        ),
    }
}

/// Serve `probes` on `addr` until the process ends; the address it is bound to
/// (port 0 picks a free one).
pub async fn serve(addr: SocketAddr, probes: Probes) -> anyhow::Result<SocketAddr> {
    use anyhow::Context;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on the admin address {addr}"))?;
    let bound = listener.local_addr()?;
    let probes = Arc::new(probes);
    let connections = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            // Past the bound, a connection is closed at once.
            let Ok(permit) = connections.clone().try_acquire_owned() else {
                continue;
            };
            let probes = probes.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let service = hyper::service::service_fn(move |req| {
                    let resp = route(&probes, &req);
                    async move { Ok::<_, std::convert::Infallible>(resp) }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                // A probe's connection: one at a time, closed when idle.
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(std::time::Duration::from_secs(5))
                    .serve_connection(io, service);
                let _ = tokio::time::timeout(std::time::Duration::from_secs(30), conn).await;
            });
        }
    });
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
