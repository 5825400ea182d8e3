//! A real OTLP/HTTP receiver: what an OpenTelemetry collector's `otlp` receiver
//! does with `POST /v1/traces` and `POST /v1/metrics` (protobuf
//! `ExportTraceServiceRequest`, `ExportMetricsServiceRequest`), keeping every
//! span and metric point it is sent, flattened for assertions.

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value::Value, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{metric::Data, number_data_point};
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

/// One metric point as received.
#[derive(Debug, Clone)]
pub struct ReceivedPoint {
    /// The resource's `service.name`.
    pub service: String,
    pub resource: BTreeMap<String, String>,
    /// The metric's name and unit.
    pub metric: String,
    pub unit: String,
    /// `sum` (monotonic and cumulative only), `gauge` or `histogram`.
    pub kind: &'static str,
    pub attributes: BTreeMap<String, String>,
    /// A sum's or gauge's value; a histogram's count.
    pub value: f64,
    /// A histogram's bucket counts (not cumulative); empty otherwise.
    pub buckets: Vec<u64>,
}

/// The span kinds of OTLP.
pub const INTERNAL: i32 = 1;
pub const SERVER: i32 = 2;
pub const CLIENT: i32 = 3;

/// A receiver on a random loopback port, stopped on drop.
pub struct OtlpReceiver {
    port: u16,
    tls: bool,
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
    points: Arc<Mutex<Vec<ReceivedPoint>>>,
    task: tokio::task::JoinHandle<()>,
}

impl OtlpReceiver {
    /// A receiver over plain HTTP.
    pub async fn start() -> Self {
        Self::start_with(None).await
    }

    /// A receiver over HTTPS, with `pki`'s server certificate (for `127.0.0.1`):
    /// an exporter must trust `pki`'s CA to reach it.
    pub async fn start_tls(pki: &crate::tls::TestPki) -> Self {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let chain = CertificateDer::pem_file_iter(&pki.server.cert)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(&pki.server.key).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        Self::start_with(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)))).await
    }

    async fn start_with(tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let spans = Arc::new(Mutex::new(Vec::new()));
        let points = Arc::new(Mutex::new(Vec::new()));
        let kept = Kept {
            spans: spans.clone(),
            points: points.clone(),
        };
        let secure = tls.is_some();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let kept = kept.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let kept = kept.clone();
                        async move { Ok::<_, std::convert::Infallible>(receive(req, &kept).await) }
                    });
                    let http = hyper::server::conn::http1::Builder::new();
                    match tls {
                        None => {
                            let io = hyper_util::rt::TokioIo::new(stream);
                            let _ = http.serve_connection(io, service).await;
                        }
                        // A client that does not trust the certificate fails here.
                        Some(tls) => {
                            if let Ok(stream) = tls.accept(stream).await {
                                let io = hyper_util::rt::TokioIo::new(stream);
                                let _ = http.serve_connection(io, service).await;
                            }
                        }
                    }
                });
            }
        });
        Self {
            port,
            tls: secure,
            spans,
            points,
            task,
        }
    }

    /// The base URL, for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.spans.lock().unwrap().clone()
    }

    /// Every metric point received so far (every push's, oldest first).
    pub fn points(&self) -> Vec<ReceivedPoint> {
        self.points.lock().unwrap().clone()
    }

    /// Wait (up to `deadline`) until `check` finds what it needs in the points.
    pub async fn wait_for_points<T>(
        &self,
        what: &str,
        deadline: Duration,
        check: impl Fn(&[ReceivedPoint]) -> Option<T>,
    ) -> T {
        let until = tokio::time::Instant::now() + deadline;
        loop {
            if let Some(found) = check(&self.points()) {
                return found;
            }
            assert!(
                tokio::time::Instant::now() < until,
                "no {what} among the metric points received: {:#?}",
                self.points()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
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

/// What the receiver keeps, shared with its connections.
#[derive(Clone)]
struct Kept {
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
    points: Arc<Mutex<Vec<ReceivedPoint>>>,
}

async fn receive(
    req: hyper::Request<hyper::body::Incoming>,
    kept: &Kept,
) -> hyper::Response<Full<Bytes>> {
    let answer = |status: u16, body: Vec<u8>| {
        hyper::Response::builder()
            .status(status)
            .header("content-type", "application/x-protobuf")
            .body(Full::new(Bytes::from(body)))
            .unwrap()
    };
    let path = req.uri().path().to_string();
    if req.method() != hyper::Method::POST
        || !["/v1/traces", "/v1/metrics"].contains(&path.as_str())
    {
        return answer(404, Vec::new());
    }
    let Ok(body) = Limited::new(req.into_body(), MAX_BODY).collect().await else {
        return answer(400, Vec::new());
    };
    let body = body.to_bytes();
    if path == "/v1/metrics" {
        let Ok(request) = ExportMetricsServiceRequest::decode(body) else {
            return answer(400, Vec::new());
        };
        kept.points
            .lock()
            .unwrap()
            .append(&mut flatten_metrics(request));
        return answer(200, ExportMetricsServiceResponse::default().encode_to_vec());
    }
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return answer(400, Vec::new());
    };
    let mut spans = flatten(request);
    kept.spans.lock().unwrap().append(&mut spans);
    answer(200, ExportTraceServiceResponse::default().encode_to_vec())
}

fn flatten_metrics(request: ExportMetricsServiceRequest) -> Vec<ReceivedPoint> {
    let mut out = Vec::new();
    for rm in request.resource_metrics {
        let resource = rm
            .resource
            .map(|r| text_map(&r.attributes))
            .unwrap_or_default();
        let service = resource.get("service.name").cloned().unwrap_or_default();
        for sm in rm.scope_metrics {
            for m in sm.metrics {
                let point = |kind, attributes: &[KeyValue], value, buckets| ReceivedPoint {
                    service: service.clone(),
                    resource: resource.clone(),
                    metric: m.name.clone(),
                    unit: m.unit.clone(),
                    kind,
                    attributes: text_map(attributes),
                    value,
                    buckets,
                };
                let number = |v: Option<number_data_point::Value>| match v {
                    Some(number_data_point::Value::AsInt(i)) => i as f64,
                    Some(number_data_point::Value::AsDouble(d)) => d,
                    None => f64::NAN,
                };
                match &m.data {
                    // Only what a collector would take as a Prometheus counter.
                    Some(Data::Sum(sum))
                        if sum.is_monotonic && sum.aggregation_temporality == 2 =>
                    {
                        for p in &sum.data_points {
                            out.push(point("sum", &p.attributes, number(p.value), Vec::new()));
                        }
                    }
                    Some(Data::Gauge(g)) => {
                        for p in &g.data_points {
                            out.push(point("gauge", &p.attributes, number(p.value), Vec::new()));
                        }
                    }
                    Some(Data::Histogram(h)) => {
                        for p in &h.data_points {
                            let buckets = p.bucket_counts.clone();
                            out.push(point("histogram", &p.attributes, p.count as f64, buckets));
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    out
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
