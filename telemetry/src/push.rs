//! Where metrics go besides `/metrics`: pushed over OTLP/HTTP every interval,
//! configured the standard way.
//!
//! On when `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` (used as it is) or
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (plus `/v1/metrics`) is set, unless
//! `OTEL_SDK_DISABLED=true` or `OTEL_METRICS_EXPORTER=none`. Every
//! `OTEL_METRIC_EXPORT_INTERVAL` milliseconds (60000 by default) one thread reads
//! the families and posts them, cumulative, with `OTEL_EXPORTER_OTLP_HEADERS`
//! (`OTEL_EXPORTER_OTLP_METRICS_HEADERS`) over plain HTTP or TLS (`client.rs`),
//! waiting at most
//! `OTEL_METRIC_EXPORT_TIMEOUT` milliseconds (30000). A push that fails is
//! logged and the next one carries the same totals: nothing queues up.

use crate::client::Tls;
use crate::metrics::{otlp, Family};
use opentelemetry::KeyValue;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, InstrumentationScope, KeyValue as ProtoKeyValue,
};
use opentelemetry_proto::tonic::metrics::v1::{ResourceMetrics, ScopeMetrics};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

/// Where and how often metrics are pushed, read from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushSettings {
    /// The full URL posted to; `None` pushes nothing.
    pub endpoint: Option<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub headers: Vec<(String, String)>,
    /// What the client trusts and presents (`client.rs`).
    pub(crate) tls: Tls,
}

impl PushSettings {
    /// Read `OTEL_*` through `var`; a bad number or a protocol other than
    /// `http/protobuf` is an error naming the variable.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let set = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let disabled = set("OTEL_SDK_DISABLED").is_some_and(|v| v.trim() == "true")
            || set("OTEL_METRICS_EXPORTER").is_some_and(|v| v.trim() == "none");
        let endpoint = set("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
            .map(|e| e.trim().to_string())
            .or_else(|| {
                set("OTEL_EXPORTER_OTLP_ENDPOINT")
                    .map(|e| format!("{}/v1/metrics", e.trim().trim_end_matches('/')))
            })
            .filter(|_| !disabled);
        for name in [
            "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ] {
            match set(name) {
                Some(p) if endpoint.is_some() && p.trim() != "http/protobuf" => {
                    return Err(format!(
                        "{name}={p} is not supported: lattice exports OTLP over HTTP with \
                         protobuf (http/protobuf)"
                    ))
                }
                _ => {}
            }
        }
        let millis = |name: &str, default: u64| match set(name) {
            None => Ok(Duration::from_millis(default)),
            Some(v) => match v.trim().parse::<u64>() {
                Ok(ms) if ms > 0 => Ok(Duration::from_millis(ms)),
                _ => Err(format!(
                    "{name}={v} is not a positive number of milliseconds"
                )),
            },
        };
        let headers = set("OTEL_EXPORTER_OTLP_METRICS_HEADERS")
            .or_else(|| set("OTEL_EXPORTER_OTLP_HEADERS"))
            .map(|h| parse_headers(&h))
            .transpose()?
            .unwrap_or_default();
        let timeout = millis("OTEL_METRIC_EXPORT_TIMEOUT", 30_000)?;
        let tls = match endpoint {
            Some(_) => Tls::from_vars(&var, "METRICS")?.with_timeout(timeout),
            None => Tls::default(),
        };
        Ok(Self {
            endpoint,
            interval: millis("OTEL_METRIC_EXPORT_INTERVAL", 60_000)?,
            timeout,
            headers,
            tls,
        })
    }
}

/// `key=value,key2=value2`, values percent-decoded.
fn parse_headers(text: &str) -> Result<Vec<(String, String)>, String> {
    text.split(',')
        .filter(|pair| !pair.trim().is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                Ok((k.trim().to_string(), percent_decode(v.trim())))
            }
            _ => Err(format!(
                "OTEL_EXPORTER_OTLP_HEADERS: {pair:?} is not key=value"
            )),
        })
        .collect()
}

fn percent_decode(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A thread pushing this process's metrics; dropping it pushes once more and
/// stops it.
pub struct MetricsExport {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsExport {
    /// Read the environment and, when it names an endpoint, push what `collect`
    /// reads every interval as `service` with `attributes` on the resource (as
    /// [`crate::Telemetry::init`] names its spans). `None` when off.
    pub fn start(
        service: &str,
        attributes: Vec<KeyValue>,
        collect: impl Fn() -> Vec<Family> + Send + 'static,
    ) -> Result<Option<Self>, String> {
        let settings = PushSettings::from_vars(|name| std::env::var(name).ok())?;
        let Some(endpoint) = settings.endpoint.clone() else {
            return Ok(None);
        };
        let resource = proto_resource(&crate::export::resource(service, attributes));
        let started = SystemTime::now();
        let (stop, stopped) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("otlp-metrics".into())
            .spawn(move || {
                // Built (and dropped) on this thread: a blocking client must not
                // be dropped inside an async runtime.
                let client = match settings.tls.client() {
                    Ok(client) => client,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot set up the OTLP metrics client; no metrics pushed");
                        return;
                    }
                };
                let push = || {
                    let request = request(&resource, &collect(), started);
                    let mut post = client
                        .post(&endpoint)
                        .header("content-type", "application/x-protobuf")
                        .body(request.encode_to_vec());
                    for (k, v) in &settings.headers {
                        post = post.header(k, v);
                    }
                    match post.send() {
                        Ok(r) if r.status().is_success() => {}
                        Ok(r) => tracing::warn!(%endpoint, status = %r.status(), "OTLP metrics push refused"),
                        Err(e) => tracing::warn!(%endpoint, error = %e, "OTLP metrics push failed"),
                    }
                };
                // Pushes on every interval; a stop (or its sender dropped) ends
                // the loop after one last push.
                while let Err(mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(settings.interval)
                {
                    push();
                }
                push();
            })
            .map_err(|e| format!("cannot start the OTLP metrics thread: {e}"))?;
        Ok(Some(Self {
            stop: Some(stop),
            thread: Some(thread),
        }))
    }
}

impl Drop for MetricsExport {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn request(
    resource: &Resource,
    families: &[Family],
    started: SystemTime,
) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(resource.clone()),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "lattice".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    ..Default::default()
                }),
                metrics: otlp(families, started, SystemTime::now()),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn proto_resource(resource: &opentelemetry_sdk::Resource) -> Resource {
    use opentelemetry::Value;
    let attributes = resource
        .iter()
        .map(|(k, v)| ProtoKeyValue {
            key: k.to_string(),
            value: Some(AnyValue {
                value: Some(match v {
                    Value::Bool(b) => any_value::Value::BoolValue(*b),
                    Value::I64(i) => any_value::Value::IntValue(*i),
                    Value::F64(f) => any_value::Value::DoubleValue(*f),
                    other => any_value::Value::StringValue(other.to_string()),
                }),
            }),
            ..Default::default()
        })
        .collect();
    Resource {
        attributes,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<PushSettings, String> {
        PushSettings::from_vars(|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn the_endpoint_interval_and_headers_come_from_the_standard_variables() {
        assert_eq!(settings(&[]).unwrap().endpoint, None);
        let s = settings(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "250"),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "authorization=Bearer%20t, x=1",
            ),
        ])
        .unwrap();
        assert_eq!(s.endpoint.as_deref(), Some("http://c:4318/v1/metrics"));
        assert_eq!(s.interval, Duration::from_millis(250));
        assert_eq!(s.timeout, Duration::from_secs(30));
        assert_eq!(
            s.headers,
            vec![
                ("authorization".to_string(), "Bearer t".to_string()),
                ("x".to_string(), "1".to_string())
            ]
        );
        let own = settings(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://m:9/push"),
        ])
        .unwrap();
        assert_eq!(own.endpoint.as_deref(), Some("http://m:9/push"));
        let off = settings(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_METRICS_EXPORTER", "none"),
        ]);
        assert_eq!(off.unwrap().endpoint, None);
    }

    #[test]
    fn bad_values_are_named() {
        let bad = settings(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "soon"),
        ])
        .unwrap_err();
        assert!(bad.contains("OTEL_METRIC_EXPORT_INTERVAL=soon"), "{bad}");
        let grpc = settings(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
            ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "grpc"),
        ])
        .unwrap_err();
        assert!(grpc.contains("grpc is not supported"), "{grpc}");
        let header = settings(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "novalue"),
        ])
        .unwrap_err();
        assert!(header.contains("\"novalue\" is not key=value"), "{header}");
    }
}
