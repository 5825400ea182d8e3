//! Where spans go: OTLP over HTTP, configured the standard way.
//!
//! Exporting is on when `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set (and `OTEL_SDK_DISABLED` is not `true`,
//! and `OTEL_TRACES_EXPORTER` is not `none`). The SDK reads the rest itself:
//! `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER` (e.g.
//! `parentbased_traceidratio` with `OTEL_TRACES_SAMPLER_ARG=0.01`; the default
//! samples every trace its parent did not refuse), `OTEL_EXPORTER_OTLP_HEADERS`,
//! `OTEL_EXPORTER_OTLP_TIMEOUT`, the TLS files of `client.rs` and the batch
//! processor's `OTEL_BSP_*` (a bounded
//! queue of 2048 spans by default: when it is full, spans are dropped, never
//! waited for).

use crate::client::Tls;
use crate::span::TRACER;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;

/// How this process exports, read from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The OTLP endpoint; `None` exports nothing.
    pub endpoint: Option<String>,
}

impl Settings {
    /// Read `OTEL_*` through `var`. A protocol other than `http/protobuf` is an
    /// error that names the one this build speaks.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let set = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let disabled = set("OTEL_SDK_DISABLED").is_some_and(|v| v.trim() == "true")
            || set("OTEL_TRACES_EXPORTER").is_some_and(|v| v.trim() == "none");
        let endpoint = set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .or_else(|| set("OTEL_EXPORTER_OTLP_ENDPOINT"))
            .filter(|_| !disabled);
        if endpoint.is_some() {
            for name in [
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                "OTEL_EXPORTER_OTLP_PROTOCOL",
            ] {
                if let Some(protocol) = set(name) {
                    if protocol.trim() != "http/protobuf" {
                        return Err(format!(
                            "{name}={protocol} is not supported: lattice exports OTLP over HTTP \
                             with protobuf (http/protobuf); point the endpoint at the collector's \
                             OTLP/HTTP port (usually 4318)"
                        ));
                    }
                }
            }
        }
        Ok(Self { endpoint })
    }
}

/// This process's exporter; dropping it flushes the spans still queued.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Read the environment and, when it names an endpoint, export this process's
    /// spans there as `service` (unless `OTEL_SERVICE_NAME` or
    /// `OTEL_RESOURCE_ATTRIBUTES` name it) with `attributes` on every span's
    /// resource (e.g. `lattice.host.id`). Only the first call in a process installs
    /// an exporter.
    pub fn init(service: &str, attributes: Vec<KeyValue>) -> Result<Self, String> {
        use opentelemetry_otlp::WithHttpConfig;
        let var = |name: &str| std::env::var(name).ok();
        let settings = Settings::from_vars(var)?;
        if settings.endpoint.is_none() || TRACER.get().is_some() {
            return Ok(Self { provider: None });
        }
        let client = Tls::from_vars(&var, "TRACES")?.client_off_runtime()?;
        // Reads the endpoint and headers from the same variables.
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(client)
            .build()
            .map_err(|e| format!("cannot set up the OTLP exporter: {e}"))?;
        let provider = SdkTracerProvider::builder()
            .with_resource(resource(service, attributes))
            .with_batch_exporter(exporter)
            .build();
        let _ = TRACER.set(provider.tracer("lattice"));
        Ok(Self {
            provider: Some(provider),
        })
    }

    /// Whether spans are exported.
    pub fn is_exporting(&self) -> bool {
        self.provider.is_some()
    }
}

/// This process's resource: `attributes`, what `OTEL_RESOURCE_ATTRIBUTES` adds,
/// and `service` as `service.name` unless `OTEL_SERVICE_NAME` or the attributes
/// variable name it.
pub(crate) fn resource(service: &str, attributes: Vec<KeyValue>) -> Resource {
    let mut resource = Resource::builder().with_attributes(attributes);
    let named = Resource::builder()
        .build()
        .get(&opentelemetry::Key::from_static_str("service.name"))
        .is_some_and(|name| !name.as_str().starts_with("unknown_service"));
    if !named {
        resource = resource.with_service_name(service.to_string());
    }
    resource.build()
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = provider.shutdown_with_timeout(std::time::Duration::from_secs(5));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, String> {
        Settings::from_vars(|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn an_endpoint_turns_exporting_on_and_grpc_is_refused_by_name() {
        assert_eq!(settings(&[]).unwrap().endpoint, None);
        let on = settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")]).unwrap();
        assert_eq!(on.endpoint.as_deref(), Some("http://c:4318"));
        let traces = settings(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://t:4318/v1/traces",
            ),
        ])
        .unwrap();
        assert_eq!(traces.endpoint.as_deref(), Some("http://t:4318/v1/traces"));
        for off in [
            ("OTEL_SDK_DISABLED", "true"),
            ("OTEL_TRACES_EXPORTER", "none"),
        ] {
            let off = settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"), off]);
            assert_eq!(off.unwrap().endpoint, None);
        }
        let grpc = settings(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ])
        .unwrap_err();
        assert!(
            grpc.contains("OTEL_EXPORTER_OTLP_PROTOCOL=grpc is not supported"),
            "{grpc}"
        );
        let proto = settings(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ]);
        assert!(proto.is_ok());
    }
}
