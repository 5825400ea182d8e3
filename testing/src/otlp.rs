//! A real OTLP/HTTP receiver: what an OpenTelemetry collector's `otlp` receiver
//! does with `POST /v1/traces` (protobuf `ExportTraceServiceRequest`), keeping
//! every span it is sent, flattened for assertions.

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value::Value, KeyValue};
use prost::Message;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The most a request body may be (the SDK's batches are far smaller).
const MAX_BODY: usize = 16 * 1024 * 1024;

/// One span as received: ids in hex, attributes and events as text.
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    /// The resource's `service.name`.
    pub service: String,
    /// Every resource attribute.
    pub resource: BTreeMap<String, String>,
    pub name: String,
    /// OTLP's span kind: 1 internal, 2 server, 3 client.
    pub kind: i32,
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    pub attributes: BTreeMap<String, String>,
    /// `(name, attributes)` of each event.
    pub events: Vec<(String, BTreeMap<String, String>)>,
    /// OTLP's status code: 0 unset, 1 ok, 2 error.
    pub status: i32,
}

/// The span kinds of OTLP.
pub const INTERNAL: i32 = 1;
pub const SERVER: i32 = 2;
pub const CLIENT: i32 = 3;

/// A receiver on a random loopback port, stopped on drop.
pub struct OtlpReceiver {
    port: u16,
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
    task: tokio::task::JoinHandle<()>,
}

impl OtlpReceiver {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let spans = Arc::new(Mutex::new(Vec::new()));
        let kept = spans.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let kept = kept.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let kept = kept.clone();
                        async move { Ok::<_, std::convert::Infallible>(receive(req, &kept).await) }
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        });
        Self { port, spans, task }
    }

    /// The base URL, for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.spans.lock().unwrap().clone()
    }

    /// Wait (up to `deadline`) until `check` finds what it needs in the spans.
    pub async fn wait_for<T>(
        &self,
        what: &str,
        deadline: Duration,
        check: impl Fn(&[ReceivedSpan]) -> Option<T>,
    ) -> T {
        let until = tokio::time::Instant::now() + deadline;
        loop {
            if let Some(found) = check(&self.spans()) {
                return found;
            }
            assert!(
                tokio::time::Instant::now() < until,
                "no {what} among the spans received: {:#?}",
                self.spans()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receive(
    req: hyper::Request<hyper::body::Incoming>,
    kept: &Mutex<Vec<ReceivedSpan>>,
) -> hyper::Response<Full<Bytes>> {
    let answer = |status: u16, body: Vec<u8>| {
        hyper::Response::builder()
            .status(status)
            .header("content-type", "application/x-protobuf")
            .body(Full::new(Bytes::from(body)))
            .unwrap()
    };
    if req.method() != hyper::Method::POST || req.uri().path() != "/v1/traces" {
        return answer(404, Vec::new());
    }
    let Ok(body) = Limited::new(req.into_body(), MAX_BODY).collect().await else {
        return answer(400, Vec::new());
    };
    let Ok(request) = ExportTraceServiceRequest::decode(body.to_bytes()) else {
        return answer(400, Vec::new());
    };
    let mut spans = flatten(request);
    kept.lock().unwrap().append(&mut spans);
    answer(200, ExportTraceServiceResponse::default().encode_to_vec())
}

fn flatten(request: ExportTraceServiceRequest) -> Vec<ReceivedSpan> {
    let mut out = Vec::new();
    for rs in request.resource_spans {
        let resource = rs
            .resource
            .map(|r| text_map(&r.attributes))
            .unwrap_or_default();
        let service = resource.get("service.name").cloned().unwrap_or_default();
        for ss in rs.scope_spans {
            for span in ss.spans {
                out.push(ReceivedSpan {
                    service: service.clone(),
                    resource: resource.clone(),
                    name: span.name,
                    kind: span.kind,
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    attributes: text_map(&span.attributes),
                    events: span
                        .events
                        .iter()
                        .map(|e| (e.name.clone(), text_map(&e.attributes)))
                        .collect(),
                    status: span.status.map_or(0, |s| s.code),
                });
            }
        }
    }
    out
}

fn text_map(attributes: &[KeyValue]) -> BTreeMap<String, String> {
    attributes
        .iter()
        .map(|kv| {
            let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(Value::StringValue(s)) => s.clone(),
                Some(Value::IntValue(i)) => i.to_string(),
                Some(Value::BoolValue(b)) => b.to_string(),
                Some(Value::DoubleValue(d)) => d.to_string(),
                other => format!("{other:?}"),
            };
            (kv.key.clone(), value)
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
