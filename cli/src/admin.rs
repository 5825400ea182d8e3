//! The admin address of `lattice host`, `lattice controller` and `lattice up`
//! (`--admin-address`): plain HTTP for probes and scrapers, off unless set.
//!
//! - `GET /livez`: 200 `ok` while the process serves at all;
//! - `GET /readyz`: 200 `ready`, or 503 with every reason it is not (NATS
//!   disconnected, the controller's state not loaded, the lease not known);
//! - `GET /metrics`: the Prometheus text format;
//! - `GET /dashboard/` (`lattice up` only): the live dashboard of
//!   `lattice dashboard`, with its `state` and `events` beside it.
//!
//! Anything else is 404; a method other than GET is 405. Each request is
//! answered from memory, without I/O, so a probe never waits on NATS.

use crate::dashboard::Body;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, Response, StatusCode};
use lattice_bus::Connection;
use lattice_host::Host;
use lattice_telemetry::metrics::prometheus;
use lattice_telemetry::Family;
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
    pub controller: Option<ControllerProbe>,
    /// Served under `/dashboard/` when set.
    pub dashboard: Option<crate::dashboard::Dashboard>,
}

/// What a controller shows the admin address.
#[derive(Clone)]
pub struct ControllerProbe {
    pub health: watch::Receiver<lattice_controller::Health>,
    pub metrics: Arc<lattice_controller::Metrics>,
}

impl From<&lattice_controller::Controller> for ControllerProbe {
    fn from(c: &lattice_controller::Controller) -> Self {
        Self {
            health: c.health(),
            metrics: c.metrics(),
        }
    }
}

impl Probes {
    /// Every reason the process is not ready; empty when it is.
    fn not_ready(&self) -> Vec<String> {
        let mut why = Vec::new();
        if !self.nats.borrow().connected {
            why.push("NATS is not connected".to_string());
        }
        if let Some(Err(e)) = self.controller.as_ref().map(|c| c.health.borrow().ready()) {
            why.push(e.to_string());
        }
        if self.host.as_ref().is_some_and(|h| h.info().draining) {
            why.push("the host is draining".to_string());
        }
        why
    }

    /// Every metric known here, read now: what `/metrics` shows and OTLP pushes.
    pub fn metrics(&self) -> Vec<Family> {
        let nats = *self.nats.borrow();
        let mut out = vec![
            Family::gauge(
                "lattice_nats_connected",
                "1 while the NATS connection is up",
                vec![(vec![], f64::from(u8::from(nats.connected)))],
            ),
            Family::counter(
                "lattice_nats_connects_total",
                "connections made to NATS, reconnects included",
                vec![(vec![], nats.connects)],
            ),
            Family::gauge(
                "lattice_ready",
                "1 while /readyz answers 200",
                vec![(vec![], f64::from(u8::from(self.not_ready().is_empty())))],
            ),
        ];
        if let Some(c) = &self.controller {
            let leads = c.health.borrow().leads;
            out.push(Family::gauge(
                "lattice_controller_leader",
                "1 while this controller holds the lease",
                vec![(vec![], f64::from(u8::from(leads)))],
            ));
            out.extend(c.metrics.families());
        }
        if let Some(host) = &self.host {
            out.extend(host.metrics());
        }
        out
    }
}

fn answer(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from(body)).boxed());
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    resp
}

fn route<B>(probes: &Probes, req: &Request<B>) -> Response<Body> {
    const TEXT: &str = "text/plain; charset=utf-8";
    if req.method() != Method::GET {
        return answer(StatusCode::METHOD_NOT_ALLOWED, TEXT, "only GET\n".into());
    }
    let path = req.uri().path();
    if let Some(dashboard) = &probes.dashboard {
        if path == "/dashboard" {
            // The page names `events` and `state` relative to itself.
            let mut resp = answer(
                StatusCode::PERMANENT_REDIRECT,
                TEXT,
                "see /dashboard/\n".into(),
            );
            resp.headers_mut().insert(
                hyper::header::LOCATION,
                hyper::header::HeaderValue::from_static("/dashboard/"),
            );
            return resp;
        }
        if let Some(rest) = path.strip_prefix("/dashboard/") {
            return dashboard.route(&format!("/{rest}"));
        }
    }
    match path {
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
            prometheus(&probes.metrics()),
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
