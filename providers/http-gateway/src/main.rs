//! `http-gateway`: an HTTP ingress as a capability provider. It listens on its
//! config's `address` on whatever host it is placed, and forwards each request over
//! the lattice to the component a link routes it to, wherever that component runs
//! (an edge gateway in front of components placed elsewhere).
//!
//! Routing: each link from the gateway to a component (interface
//! `wasi:http/incoming-handler`) is a route; its source config may set `host` (the
//! request's `Host` header must match, port ignored) and `path_prefix` (default
//! `/`). The most specific route wins: a matching `host` before none, then the
//! longest prefix. No route: 404. No instance of the component anywhere: 503.
//! Request bodies over `max_body` (default 512 KiB) get 413.

mod routes;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use lattice_protocol::provider::http::{self, Message};
use lattice_provider::{CallErrorKind, ComponentCaller, Provider, ProviderLink, WitValue};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// How long a forwarded request may take.
const TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::main]
async fn main() -> std::process::ExitCode {
    lattice_provider::init_tracing();
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("http-gateway: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

struct Gateway {
    caller: ComponentCaller,
    links: RwLock<Vec<ProviderLink>>,
    max_body: usize,
}

async fn run() -> Result<(), String> {
    let provider = Provider::from_stdin().await.map_err(|e| e.to_string())?;
    let address = provider
        .config()
        .get("address")
        .cloned()
        .ok_or("the gateway needs `address` (IP:PORT to listen on) in its config")?;
    let max_body = match provider.config().get("max_body") {
        Some(v) => v
            .parse()
            .map_err(|_| format!("max_body '{v}' is not a number of bytes"))?,
        None => 512 * 1024,
    };
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .map_err(|e| format!("cannot listen on {address}: {e}"))?;
    tracing::info!(%address, "gateway listening");
    let gateway = Arc::new(Gateway {
        caller: provider.component_caller(),
        links: RwLock::new(provider.links()),
        max_body,
    });
    let mut watch = provider.watch_links();
    let g = gateway.clone();
    tokio::spawn(async move {
        loop {
            *g.links.write().unwrap_or_else(|p| p.into_inner()) = watch.current();
            if !watch.changed().await {
                break;
            }
        }
    });
    let g = gateway.clone();
    let accept = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let g = g.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let g = g.clone();
                    async move { Ok::<_, std::convert::Infallible>(g.handle(req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    let result = provider.run().await.map_err(|e| e.to_string());
    accept.abort();
    result
}

fn text(status: u16, message: impl Into<String>) -> hyper::Response<Full<Bytes>> {
    let mut resp = hyper::Response::new(Full::new(Bytes::from(format!("{}\n", message.into()))));
    *resp.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::BAD_GATEWAY);
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

impl Gateway {
    async fn handle(&self, req: hyper::Request<Incoming>) -> hyper::Response<Full<Bytes>> {
        let host = req
            .headers()
            .get(hyper::header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(|h| h.split(':').next().unwrap_or(h).to_owned());
        let path = req.uri().path().to_owned();
        let link = {
            let links = self.links.read().unwrap_or_else(|p| p.into_inner());
            routes::pick(&links, host.as_deref(), &path).cloned()
        };
        let Some(link) = link else {
            return text(
                404,
                format!("no route for {} {path}", host.unwrap_or_default()),
            );
        };
        let (parts, body) = req.into_parts();
        let body = match Limited::new(body, self.max_body).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => return text(413, format!("request body over {} bytes", self.max_body)),
        };
        let message = Message {
            method: parts.method.to_string(),
            path_with_query: parts
                .uri
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_else(|| "/".into()),
            headers: parts
                .headers
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), v.as_bytes().to_vec()))
                .collect(),
            body: body.to_vec(),
            status: 0,
        };
        let answer = self
            .caller
            .call(
                &link,
                http::KEY,
                http::FUNCTION,
                &http::params(),
                &http::results(),
                &[message.request_value()],
                TIMEOUT,
            )
            .await;
        match answer.as_deref() {
            Ok([WitValue::Result(Ok(Some(response)))]) => match Message::from_value(response) {
                Some(m) => respond(m),
                None => text(502, "the component's host sent a malformed response"),
            },
            Ok([WitValue::Result(Err(Some(e)))]) => text(502, format!("{e:?}")),
            Ok(other) => text(502, format!("unexpected answer {other:?}")),
            Err(e) if e.kind == CallErrorKind::Unavailable => text(503, e.message.clone()),
            Err(e) if e.kind == CallErrorKind::Timeout => text(504, e.message.clone()),
            Err(e) => text(502, e.to_string()),
        }
    }
}

fn respond(m: Message) -> hyper::Response<Full<Bytes>> {
    let mut resp = hyper::Response::new(Full::new(Bytes::from(m.body)));
    *resp.status_mut() =
        hyper::StatusCode::from_u16(m.status).unwrap_or(hyper::StatusCode::BAD_GATEWAY);
    for (k, v) in m.headers {
        if let (Ok(name), Ok(value)) = (
            hyper::header::HeaderName::from_bytes(k.as_bytes()),
            hyper::header::HeaderValue::from_bytes(&v),
        ) {
            // Framing is the gateway's own.
            if name != hyper::header::CONTENT_LENGTH && name != hyper::header::TRANSFER_ENCODING {
                resp.headers_mut().append(name, value);
            }
        }
    }
    resp
}
