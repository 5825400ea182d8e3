//! W3C trace context and spans for the host's work (see `lattice-telemetry`):
//! every HTTP request, invocation and linked call is a span, and every call
//! carries a `traceparent`, so one trace follows a request through every
//! component and host it touches (and every log line about it). Spans are
//! exported only when the process was started with an OTLP endpoint.

pub use lattice_telemetry::{KeyValue, Kind, Span, TraceContext, TraceId};
use std::sync::{Arc, Mutex};

/// The span of the invocation a `Store` runs, shared with the guest's output
/// writers (created with the store) so its lines become the span's events. A warm
/// instance's store runs many invocations: each sets its own span and clears it
/// when it ends, so a span ends with its invocation.
#[derive(Clone, Default)]
pub struct SpanSlot(Arc<Mutex<Option<Span>>>);

impl SpanSlot {
    /// Hold the invocation's span.
    pub fn set(&self, span: Span) {
        let old = self.lock().replace(span);
        drop(old);
    }

    /// Let go of the span: the invocation ended.
    pub fn clear(&self) {
        let old = self.lock().take();
        drop(old);
    }

    pub fn get(&self) -> Option<Span> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Span>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Start the span of one invocation of `export` (`ns:pkg/iface.function`, or
/// the HTTP handler) of `component`, a child of `parent`.
pub fn invocation(app: &str, component: &str, export: &str, parent: Option<&TraceContext>) -> Span {
    Span::start_with(Kind::Internal, parent, || {
        (
            format!("invoke {component}").into(),
            vec![
                KeyValue::new("lattice.app", app.to_owned()),
                KeyValue::new("lattice.component", component.to_owned()),
                KeyValue::new("code.function.name", export.to_owned()),
            ],
        )
    })
}

/// Start the span of one operation a guest asks of a built-in capability
/// (`wasi:keyvalue`, `wasi:blobstore`, `wasmcloud:messaging`), a child of its
/// invocation `parent`: named `"{operation} {target}"` as OpenTelemetry's
/// database and messaging conventions name them, with `attributes` (`db.*`,
/// `messaging.*`). Built only when recorded.
pub fn operation(
    kind: Kind,
    parent: Option<&TraceContext>,
    operation: &'static str,
    target: &str,
    attributes: impl FnOnce() -> Vec<KeyValue>,
) -> Span {
    Span::start_with(kind, parent, || {
        let name = if target.is_empty() {
            operation.into()
        } else {
            format!("{operation} {target}").into()
        };
        (name, attributes())
    })
}

/// Start the span of one linked call of `function` (`ns:pkg/iface.function`), on
/// the caller's side (`Kind::Client`) or the callee's (`Kind::Server`), with the
/// RPC semantic conventions' attributes. `function` is asked for only when the
/// span is recorded.
pub fn linked_call(
    kind: Kind,
    function: impl FnOnce() -> String,
    app: &str,
    parent: Option<&TraceContext>,
) -> Span {
    Span::start_with(kind, parent, || {
        let function = function();
        let (service, method) = function.rsplit_once('.').unwrap_or((&function, ""));
        let (service, method) = (service.to_owned(), method.to_owned());
        (
            function.into(),
            vec![
                KeyValue::new("rpc.system", "lattice"),
                KeyValue::new("rpc.service", service),
                KeyValue::new("rpc.method", method),
                KeyValue::new("lattice.app", app.to_owned()),
            ],
        )
    })
}
