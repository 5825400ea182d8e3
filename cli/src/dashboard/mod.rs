//! `lattice dashboard`: a live web page of the lattice.
//!
//! The page (`index.html`, embedded in the binary: no build step, no CDN) shows
//! the hosts with their labels and load, the apps with their versions and status
//! messages, where each component runs, the links between components with the
//! linked-call rates of the hosts, and the recent changes. It follows the lattice
//! live over Server-Sent Events.
//!
//! The state comes from the controller's API, as every CLI command's does (so it
//! works with the CLI's credentials and shows only hosts whose signed reports the
//! controller admits), read every `--refresh`; a new snapshot is pushed to every
//! open page when anything but the time changed, with what changed listed as
//! recent events.
//!
//! - `GET /`: the page; `GET /state`: the snapshot as JSON; `GET /events`: the
//!   snapshots as SSE (`event: state`), the current one first.
//!
//! `lattice up` serves the same under `/dashboard/` on its admin address
//! ([`Dashboard::start`], [`Dashboard::route`]).
//!
//! Bounds: at most [`MAX_CONNECTIONS`] connections (pages and their event
//! streams) at once, [`MAX_EVENTS`] recent events kept, every API call under the
//! client's deadline. Config values and secrets are never read: links are shown
//! by their ends and interfaces only.

mod snapshot;

use anyhow::Context as _;
use bytes::Bytes;
use clap::Args;
use futures::StreamExt;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::{Method, Request, Response, StatusCode};
use lattice_controller::ApiClient;
use snapshot::Snapshot;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Connections served at once; more are closed at once.
const MAX_CONNECTIONS: usize = 64;
/// Recent events a snapshot carries.
const MAX_EVENTS: usize = 50;
/// A comment sent on idle event streams, so proxies keep them open.
const KEEPALIVE: Duration = Duration::from_secs(15);

const PAGE: &str = include_str!("index.html");

#[derive(Debug, Args)]
pub struct DashboardArgs {
    /// Where to serve the page, e.g. 127.0.0.1:8090 (port 0: any free port).
    #[arg(
        long,
        default_value = "127.0.0.1:8090",
        env = "LATTICE_DASHBOARD_ADDRESS"
    )]
    pub address: SocketAddr,
    /// How often the lattice's state is read, e.g. 500ms, 2s.
    #[arg(long, default_value = "1s", value_parser = crate::app::parse_duration)]
    pub refresh: Duration,
}

/// The snapshots a dashboard serves, kept up to date by a task that ends when
/// the last clone is dropped.
#[derive(Clone)]
pub struct Dashboard {
    rx: watch::Receiver<Arc<Snapshot>>,
}

impl Dashboard {
    /// Start reading `lattice` through `client` every `refresh`.
    pub fn start(client: async_nats::Client, lattice: &str, refresh: Duration) -> Self {
        let api = ApiClient::new(client, lattice).with_timeout(Duration::from_secs(2));
        let (tx, rx) = watch::channel(Arc::new(Snapshot::empty(lattice)));
        tokio::spawn(follow(api, tx, refresh));
        Self { rx }
    }

    /// The answer to a GET of `path` (relative to where the dashboard is
    /// mounted: `/`, `/state`, `/events`).
    pub fn route(&self, path: &str) -> Response<Body> {
        route(&self.rx, path)
    }
}

pub async fn run(
    args: DashboardArgs,
    client: async_nats::Client,
    lattice: &str,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(args.address)
        .await
        .with_context(|| format!("cannot listen on {}", args.address))?;
    let bound = listener.local_addr()?;
    let rx = Dashboard::start(client, lattice, args.refresh).rx;
    eprintln!("dashboard of lattice '{lattice}': http://{bound}/ (Ctrl-C to stop)");
    let connections = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let serve = async {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let Ok(permit) = connections.clone().try_acquire_owned() else {
                continue;
            };
            let rx = rx.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let service = hyper::service::service_fn(move |req: Request<_>| {
                    let resp = if req.method() == Method::GET {
                        route(&rx, req.uri().path())
                    } else {
                        text(StatusCode::METHOD_NOT_ALLOWED, "only GET is served here")
                    };
                    async move { Ok::<_, Infallible>(resp) }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(5))
                    .serve_connection(io, service)
                    .await;
            });
        }
    };
    tokio::select! {
        () = serve => Ok(()),
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

/// Read the lattice every `refresh` and publish each snapshot that differs,
/// until no one holds a receiver.
async fn follow(api: ApiClient, tx: watch::Sender<Arc<Snapshot>>, refresh: Duration) {
    let mut manifests = snapshot::Manifests::default();
    let mut tick = tokio::time::interval(refresh);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !tx.is_closed() {
        tick.tick().await;
        let before = tx.borrow().clone();
        let now = Snapshot::read(&api, &mut manifests, &before, MAX_EVENTS).await;
        if !now.same_as(&before) {
            let _ = tx.send(Arc::new(now));
        }
    }
}

pub type Body = BoxBody<Bytes, Infallible>;

fn route(rx: &watch::Receiver<Arc<Snapshot>>, path: &str) -> Response<Body> {
    match path {
        "/" => typed(StatusCode::OK, "text/html; charset=utf-8", PAGE.to_string()),
        "/state" => typed(StatusCode::OK, "application/json", rx.borrow().to_json()),
        "/events" => events(rx.clone()),
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: the dashboard serves /, /state and /events",
        ),
    }
}

/// The snapshots as Server-Sent Events: the current one, then each new one, with a
/// keep-alive comment when nothing changed for a while.
fn events(rx: watch::Receiver<Arc<Snapshot>>) -> Response<Body> {
    let stream = futures::stream::unfold((rx, true), |(mut rx, first)| async move {
        if !first {
            match tokio::time::timeout(KEEPALIVE, rx.changed()).await {
                Err(_) => return Some((Bytes::from_static(b": keep-alive\n\n"), (rx, false))),
                Ok(Err(_)) => return None,
                Ok(Ok(())) => {}
            }
        }
        let json = rx.borrow_and_update().to_json();
        Some((
            Bytes::from(format!("event: state\ndata: {json}\n\n")),
            (rx, false),
        ))
    })
    .map(|chunk| Ok::<_, Infallible>(Frame::data(chunk)));
    let mut resp = Response::new(BodyExt::boxed(StreamBody::new(stream)));
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/event-stream"),
    );
    resp.headers_mut().insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-store"),
    );
    resp
}

fn typed(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from(body)).boxed());
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    resp
}

fn text(status: StatusCode, body: &str) -> Response<Body> {
    typed(status, "text/plain; charset=utf-8", format!("{body}\n"))
}
