//! One piece of work in a trace.

use crate::context::TraceContext;
use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceState,
    Tracer as _,
};
use opentelemetry::{Context, KeyValue};
use std::borrow::Cow;
use std::sync::{Arc, Mutex, OnceLock};

/// The tracer [`crate::Telemetry::init`] installed, when it found an endpoint.
pub(crate) static TRACER: OnceLock<opentelemetry_sdk::trace::SdkTracer> = OnceLock::new();

/// What a span stands for, as OpenTelemetry's span kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Work asked of this process from outside (an HTTP request, a served call).
    Server,
    /// A call this process makes to another (a linked call, a provider call, a
    /// keyvalue or blobstore operation, a messaging request).
    Client,
    /// A message this process sends without waiting for an answer (a publish).
    Producer,
    /// Work inside this process (an invocation, a reconcile).
    Internal,
}

/// A span: ended when the last clone is dropped. Clones share it, so the guest's
/// output writer and the invocation that runs the guest can both add to it.
#[derive(Clone)]
pub struct Span(Arc<Inner>);

struct Inner {
    /// The trace, this span's own id as `parent_span` (what its children name as
    /// their parent), and whether it is sampled.
    context: TraceContext,
    /// The exported span; `None` when nothing is exported.
    otel: Option<Mutex<opentelemetry_sdk::trace::Span>>,
}

impl Span {
    /// Start a span named `name`, a child of `parent` (a new trace without one).
    pub fn start(
        name: impl Into<Cow<'static, str>>,
        kind: Kind,
        parent: Option<&TraceContext>,
        attributes: Vec<KeyValue>,
    ) -> Self {
        let name = name.into();
        Self::start_with(kind, parent, || (name, attributes))
    }

    /// [`Span::start`] for hot paths: `describe` (the name and attributes) is
    /// called only when the span is recorded, so a span nothing exports, or one
    /// the sampler dropped, allocates neither.
    pub fn start_with(
        kind: Kind,
        parent: Option<&TraceContext>,
        describe: impl FnOnce() -> (Cow<'static, str>, Vec<KeyValue>),
    ) -> Self {
        let Some(tracer) = TRACER.get() else {
            // Not exported: only the ids, for the headers and log lines.
            let context = match parent {
                Some(parent) => TraceContext {
                    parent_span: rand::random::<u64>().max(1),
                    ..*parent
                },
                None => TraceContext::new(),
            };
            return Self(Arc::new(Inner {
                context,
                otel: None,
            }));
        };
        let parent_cx = match parent {
            Some(p) => Context::new().with_remote_span_context(SpanContext::new(
                opentelemetry::trace::TraceId::from(p.trace_id),
                SpanId::from(p.parent_span),
                if p.sampled {
                    TraceFlags::SAMPLED
                } else {
                    TraceFlags::default()
                },
                true,
                TraceState::NONE,
            )),
            None => Context::new(),
        };
        let kind = match kind {
            Kind::Server => SpanKind::Server,
            Kind::Client => SpanKind::Client,
            Kind::Producer => SpanKind::Producer,
            Kind::Internal => SpanKind::Internal,
        };
        // Named and described only once the sampler kept it.
        let mut span = tracer
            .span_builder("")
            .with_kind(kind)
            .start_with_context(tracer, &parent_cx);
        let sc = span.span_context();
        let context = TraceContext {
            trace_id: u128::from_be_bytes(sc.trace_id().to_bytes()),
            parent_span: u64::from_be_bytes(sc.span_id().to_bytes()),
            sampled: sc.is_sampled(),
        };
        if !span.is_recording() {
            // Dropped by the sampler: only its ids matter (its children keep
            // the decision through the sampled flag).
            return Self(Arc::new(Inner {
                context,
                otel: None,
            }));
        }
        let (name, attributes) = describe();
        span.update_name(name);
        span.set_attributes(attributes);
        Self(Arc::new(Inner {
            context,
            otel: Some(Mutex::new(span)),
        }))
    }

    /// The context this span's children continue: its trace and its own id.
    pub fn context(&self) -> TraceContext {
        self.0.context
    }

    /// The `traceparent` header that makes the callee's spans children of this one.
    pub fn traceparent(&self) -> String {
        self.0.context.traceparent()
    }

    /// Whether this span is exported (false when nothing is, or not sampled).
    pub fn is_recording(&self) -> bool {
        self.with(|s| s.is_recording()).unwrap_or(false)
    }

    /// Set an attribute.
    pub fn set(&self, attribute: KeyValue) {
        self.with(|s| s.set_attribute(attribute));
    }

    /// Add an event (e.g. a guest's log line) with its attributes.
    pub fn event(&self, name: impl Into<Cow<'static, str>>, attributes: Vec<KeyValue>) {
        let name = name.into();
        self.with(|s| s.add_event(name, attributes));
    }

    /// Mark the span failed, with what went wrong.
    pub fn fail(&self, description: impl Into<Cow<'static, str>>) {
        let description = description.into();
        self.with(|s| s.set_status(Status::error(description)));
    }

    /// `result`, after marking the span failed with its error, if it is one.
    pub fn ended<T, E: std::fmt::Display>(&self, result: Result<T, E>) -> Result<T, E> {
        if let Err(e) = &result {
            if self.0.otel.is_some() {
                self.fail(e.to_string());
            }
        }
        result
    }

    fn with<T>(&self, f: impl FnOnce(&mut opentelemetry_sdk::trace::Span) -> T) -> Option<T> {
        let otel = self.0.otel.as_ref()?;
        let mut span = otel.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        Some(f(&mut span))
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(otel) = &mut self.otel {
            otel.get_mut()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .end();
        }
    }
}

impl std::fmt::Debug for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Span")
            .field("context", &self.0.context)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_an_exporter_a_span_still_has_ids_in_its_parents_trace() {
        let root = Span::start("root", Kind::Server, None, vec![]);
        let child = Span::start("child", Kind::Client, Some(&root.context()), vec![]);
        assert_eq!(child.context().trace_id, root.context().trace_id);
        assert_ne!(child.context().parent_span, root.context().parent_span);
        assert!(!child.is_recording());
        let unsampled = TraceContext {
            sampled: false,
            ..root.context()
        };
        let child = Span::start("child", Kind::Client, Some(&unsampled), vec![]);
        assert!(!child.context().sampled, "the parent's decision is kept");
    }
}
