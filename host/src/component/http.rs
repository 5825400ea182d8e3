//! Serving one HTTP request with one fresh instance of a component (for the
//! `builtin://http-server` listeners and for requests forwarded over the lattice).
//!
//! Architecture invariant: the instance slot is owned by the task that runs the
//! guest, and that task is aborted as soon as nobody can use its answer any more
//! (the client went away before the response, or the response body was dropped
//! before it ended). An abandoned request therefore frees its slot at once instead
//! of holding it until the execution deadline.

use super::ComponentRuntime;
use crate::telemetry::trace::{self, KeyValue, Kind, Span, TraceContext};
use bytes::Bytes;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::task::AbortHandle;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::WasiHttpView;

/// The body type the listener answers with.
pub type ResponseBody = UnsyncBoxBody<Bytes, wasmtime_wasi_http::Error>;

/// Serve `req` with a new instance of `rt`'s component, refusing a body of more
/// than `max_body_bytes` with 413: at once when its `Content-Length` says so
/// (the component is not invoked), else when the streamed body passes the limit
/// before the guest answered (the guest's read fails and its answer is dropped).
pub async fn handle(
    rt: Arc<ComponentRuntime>,
    req: hyper::Request<Incoming>,
    max_body_bytes: u64,
) -> Result<hyper::Response<ResponseBody>, Infallible> {
    let too_large = |size: String| {
        text(
            http::StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body ({size}) is over this listener's limit of {max_body_bytes} bytes (max_body_bytes)"),
        )
    };
    let declared = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(declared) = declared.filter(|d| *d > max_body_bytes) {
        return Ok(too_large(format!("{declared} bytes")));
    }
    // The request's span continues the client's trace (its `traceparent`).
    let parent = req
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(TraceContext::parse);
    let span = Span::start_with(Kind::Server, parent.as_ref(), || {
        (
            req.method().to_string().into(),
            vec![
                KeyValue::new("http.request.method", req.method().to_string()),
                KeyValue::new("url.path", req.uri().path().to_owned()),
                KeyValue::new("lattice.app", rt.env.app.clone()),
                KeyValue::new("lattice.component", rt.env.component.clone()),
            ],
        )
    });
    let tripped = Arc::new(AtomicBool::new(false));
    let req = req.map(|body| LimitedBody {
        body,
        left: max_body_bytes,
        tripped: tripped.clone(),
    });
    let result = run(&rt, req, span.context()).await;
    if tripped.load(Ordering::Relaxed) {
        span.set(KeyValue::new("http.response.status_code", 413_i64));
        return Ok(too_large("streamed".to_string()));
    }
    let resp = match result {
        Ok(resp) => resp,
        Err((status, message)) => {
            if status.is_server_error() && status != http::StatusCode::SERVICE_UNAVAILABLE {
                tracing::warn!(app = %rt.env.app, component = %rt.env.component, %message, "request failed");
            }
            span.fail(message.clone());
            text(status, message)
        }
    };
    span.set(KeyValue::new(
        "http.response.status_code",
        i64::from(resp.status().as_u16()),
    ));
    Ok(resp)
}

type Failure = (http::StatusCode, String);

async fn run<B>(
    rt: &Arc<ComponentRuntime>,
    req: hyper::Request<B>,
    parent: TraceContext,
) -> Result<hyper::Response<ResponseBody>, Failure>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<wasmtime_wasi_http::Error>,
{
    let internal = |e: String| (http::StatusCode::INTERNAL_SERVER_ERROR, e);
    let slot = rt.limiter.acquire().await.map_err(|e| {
        rt.outcomes.refused();
        (
            http::StatusCode::SERVICE_UNAVAILABLE,
            rt.overloaded(e).to_string(),
        )
    })?;
    let started = std::time::Instant::now();
    let Some(proxy) = rt.proxy.clone() else {
        return Err(internal(
            rt.guest_error("it does not export wasi:http/incoming-handler")
                .to_string(),
        ));
    };
    // The invocation, and the linked calls it makes, continue the request's trace.
    let span = trace::invocation(
        &rt.env.app,
        &rt.env.component,
        "wasi:http/incoming-handler.handle",
        Some(&parent),
    );
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let timeout = rt.limits.execution_timeout;
    let runtime = rt.clone();
    let task = tokio::spawn(async move {
        let _slot = slot;
        let call = async {
            let mut instance = runtime.instance().await?;
            let store = &mut instance.store;
            store.data_mut().begin(span);
            let mut http = store.data_mut().http();
            let req = http.new_incoming_request(Scheme::Http, req)?;
            let out = http.new_response_outparam(sender)?;
            let handler = proxy.load(&mut *store, &instance.instance)?;
            handler
                .wasi_http_incoming_handler()
                .call_handle(&mut *store, req, out)
                .await?;
            wasmtime::Result::Ok(instance)
        };
        match tokio::time::timeout(timeout, call).await {
            Ok(Ok(instance)) => {
                runtime.returned(instance);
                Ok(())
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(wasmtime::format_err!(
                "execution deadline of {timeout:?} exceeded"
            )),
        }
    });
    let mut guard = TaskGuard {
        task: task.abort_handle(),
        finished: false,
    };
    let answered = receiver.await;
    // A response (or an error code the guest chose) is an invocation that ended
    // well; no response at all is a trap.
    let outcome = if answered.is_err() {
        super::Outcome::Trapped
    } else {
        super::Outcome::Returned
    };
    rt.outcomes.record(outcome, started.elapsed());
    match answered {
        Ok(Ok(resp)) => Ok(resp.map(|body| GuardedBody { body, guard }.boxed_unsync())),
        Ok(Err(code)) => Err(internal(
            rt.guest_error(format!("it answered with error {code:?}"))
                .to_string(),
        )),
        Err(_) => {
            guard.finished = true;
            let why = match task.await {
                Ok(Ok(())) => "it returned without setting a response".to_string(),
                Ok(Err(e)) => format!("{e:#}"),
                Err(e) => format!("its task ended: {e}"),
            };
            Err(internal(rt.guest_error(why).to_string()))
        }
    }
}

fn text(status: http::StatusCode, message: String) -> hyper::Response<ResponseBody> {
    let mut resp = hyper::Response::new(
        Full::new(Bytes::from(format!("{message}\n")))
            .map_err(|never: Infallible| match never {})
            .boxed_unsync(),
    );
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// Aborts the guest's task when dropped before the exchange finished.
struct TaskGuard {
    task: AbortHandle,
    finished: bool,
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        if !self.finished {
            self.task.abort();
        }
    }
}

/// The guest's response body, carrying the guard of the task that produces it.
struct GuardedBody {
    body: wasmtime_wasi_http::p2::body::HyperOutgoingBody,
    guard: TaskGuard,
}

impl Body for GuardedBody {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            self.guard.finished = true;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A request body that fails once more than `left` bytes went through.
struct LimitedBody {
    body: Incoming,
    left: u64,
    tripped: Arc<AtomicBool>,
}

impl Body for LimitedBody {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        let Poll::Ready(Some(Ok(frame))) = polled else {
            return polled.map(|f| f.map(|r| r.map_err(Into::into)));
        };
        let len = frame.data_ref().map_or(0, |d| d.len() as u64);
        match self.left.checked_sub(len) {
            Some(left) => {
                self.left = left;
                Poll::Ready(Some(Ok(frame)))
            }
            None => {
                self.tripped.store(true, Ordering::Relaxed);
                Poll::Ready(Some(Err(wasmtime_wasi_http::Error::HttpRequestBodySize(
                    None,
                ))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Serve one request given as plain data (from the `http-gateway` provider, over the
/// lattice): the same path as a listener's request, with the whole response body
/// collected. `Err` is a message for the gateway to answer with. The invocation
/// is a child of `parent` (the served call's span).
pub async fn forward(
    rt: &Arc<ComponentRuntime>,
    req: lattice_protocol::provider::http::Message,
    parent: TraceContext,
) -> Result<lattice_protocol::provider::http::Message, String> {
    let mut builder = hyper::Request::builder()
        .method(req.method.as_str())
        .uri(req.path_with_query.as_str());
    for (name, value) in &req.headers {
        builder = builder.header(name.as_str(), value.as_slice());
    }
    let body = Full::new(Bytes::from(req.body))
        .map_err(|never: Infallible| -> wasmtime_wasi_http::Error { match never {} });
    let request: hyper::Request<_> = builder
        .body(body)
        .map_err(|e| format!("the forwarded request is not valid HTTP: {e}"))?;
    let response = match run(rt, request, parent).await {
        Ok(r) => r,
        Err((status, message)) => {
            return Ok(lattice_protocol::provider::http::Message {
                status: status.as_u16(),
                headers: vec![("content-type".into(), b"text/plain; charset=utf-8".to_vec())],
                body: format!("{message}\n").into_bytes(),
                ..Default::default()
            })
        }
    };
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| format!("the component's response body failed: {e:?}"))?
        .to_bytes();
    Ok(lattice_protocol::provider::http::Message {
        status: parts.status.as_u16(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.as_bytes().to_vec()))
            .collect(),
        body: body.to_vec(),
        ..Default::default()
    })
}
