//! What lattice's processes tell about the work they do, as OpenTelemetry traces
//! and metrics.
//!
//! - [`TraceContext`]: the W3C `traceparent` every HTTP request and linked call
//!   carries, so one trace id follows a request through every host it touches.
//! - [`Span`]: one piece of that work (an HTTP request, an invocation, a linked
//!   call on either side). Exported when [`Telemetry::init`] found an OTLP
//!   endpoint; otherwise only its ids exist, so its cost is a random number.
//! - [`Telemetry`]: reads the standard `OTEL_*` variables and, when they name an
//!   endpoint, installs an OTLP/HTTP exporter; dropping it flushes what is queued.
//! - [`metrics`]: the counters' model ([`Family`]), read by the Prometheus text of
//!   an admin address and by [`MetricsExport`], which pushes it over OTLP/HTTP.

mod client;
mod context;
mod export;
pub mod metrics;
mod push;
mod span;

pub use context::{TraceContext, TraceId};
pub use export::{Settings, Telemetry};
pub use metrics::{Family, Histogram, HistogramReading, Labels};
pub use opentelemetry::KeyValue;
pub use push::{MetricsExport, PushSettings};
pub use span::{Kind, Span};
