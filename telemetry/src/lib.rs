//! What lattice's processes tell about the work they do, as OpenTelemetry traces.
//!
//! - [`TraceContext`]: the W3C `traceparent` every HTTP request and linked call
//!   carries, so one trace id follows a request through every host it touches.
//! - [`Span`]: one piece of that work (an HTTP request, an invocation, a linked
//!   call on either side). Exported when [`Telemetry::init`] found an OTLP
//!   endpoint; otherwise only its ids exist, so its cost is a random number.
//! - [`Telemetry`]: reads the standard `OTEL_*` variables and, when they name an
//!   endpoint, installs an OTLP/HTTP exporter; dropping it flushes what is queued.

mod context;
mod export;
mod span;

pub use context::{TraceContext, TraceId};
pub use export::{Settings, Telemetry};
pub use opentelemetry::KeyValue;
pub use span::{Kind, Span};
