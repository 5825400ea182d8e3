//! The data of one `Store`: everything a single invocation may touch.
//!
//! Architecture invariant: a `Ctx` (and its `Store`) lives for exactly one
//! invocation, or, for a component that asked for warm instances
//! (`component::warm`), for the invocations of one instance of it one after the
//! other; then [`Ctx::end`] clears what belongs to one invocation (its span, trace,
//! link names and deadline). Nothing in it is shared with another instance except
//! through the `Arc<ComponentEnv>` (read-only) and the plugins' own keyed state.

use crate::env::ComponentEnv;
use crate::plugins::http_client::policy::{AllowedHosts, OutgoingPolicy};
use crate::telemetry::guest_output::GuestOutput;
use crate::telemetry::trace::{Span, SpanSlot, TraceContext};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use wasmtime::component::ResourceTable;
use wasmtime::StoreLimits;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Per-invocation state.
pub struct Ctx {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) http: WasiHttpCtx,
    pub(crate) outgoing: OutgoingPolicy,
    pub(crate) limits: StoreLimits,
    /// The component being run, its app, config and links.
    pub(crate) env: Arc<ComponentEnv>,
    /// Link names picked at run time with `wasmcloud:bus/lattice.set-link-name`,
    /// keyed by `namespace:package/interface`.
    pub(crate) link_names: HashMap<String, String>,
    /// The trace this invocation belongs to and its span's id: what its linked
    /// calls continue (a service's run, which has no invocation span, starts a new
    /// trace at its first linked call).
    pub(crate) trace: Option<TraceContext>,
    /// The invocation's span, shared with the guest's stdout and stderr writers.
    pub(crate) span: SpanSlot,
    /// When the running invocation must have ended; `None` between invocations
    /// and for a service's run.
    pub(crate) deadline: Option<Instant>,
}

impl Ctx {
    pub(crate) fn new(env: Arc<ComponentEnv>, limits: StoreLimits) -> Self {
        let span = SpanSlot::default();
        let mut wasi = WasiCtx::builder();
        wasi.stdout(GuestOutput::stdout(env.clone(), span.clone()))
            .stderr(GuestOutput::stderr(env.clone(), span.clone()));
        Self {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            http: WasiHttpCtx::new(),
            outgoing: OutgoingPolicy::new(env.settings.get::<AllowedHosts>().map(|a| a.0.clone())),
            limits,
            env,
            link_names: HashMap::new(),
            trace: None,
            span,
            deadline: None,
        }
    }

    /// Run this store's invocation as `span`: its linked calls and log lines
    /// belong to it.
    pub(crate) fn begin(&mut self, span: Span) {
        self.trace = Some(span.context());
        self.span.set(span);
    }

    /// The invocation ended: forget what was its own, for the next invocation of
    /// a warm instance.
    pub(crate) fn end(&mut self) {
        self.trace = None;
        self.span.clear();
        self.link_names.clear();
        self.deadline = None;
    }

    /// The link name in force for `namespace:package/interface`.
    pub(crate) fn link_name(&self, namespace: &str, package: &str, interface: &str) -> &str {
        self.link_name_for_key(&format!("{namespace}:{package}/{interface}"))
    }

    /// [`Ctx::link_name`] of `namespace:package/interface` given as one string.
    pub(crate) fn link_name_for_key(&self, key: &str) -> &str {
        self.link_names
            .get(key)
            .map(String::as_str)
            .unwrap_or(lattice_protocol::manifest::DEFAULT_LINK_NAME)
    }
}

impl WasiView for Ctx {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for Ctx {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outgoing,
        }
    }
}
