//! The caller side of a call over NATS: encode, name the subjects (nearest
//! locality first), send with the transport (`lattice_rpc::Caller`), decode.

use super::directory::Directory;
use super::failure::CallError;
use super::funcs::{CallSite, ImportedFunc};
use super::types::Signature;
use crate::env::{ComponentEnv, LinkTarget};
use crate::telemetry::trace::{self, Kind, TraceContext};
use async_nats::Subject;
use lattice_protocol::wire::{
    self, host_call_subject, locality_subject, BodySender, CallErrorKind, CallHeader, CallTarget,
    WitType, WitValue,
};
use lattice_rpc::Outgoing;
use std::time::{Duration, Instant};

/// A call in the wire model: where it goes, who makes it, its types and arguments.
pub struct WireCall<'a> {
    pub target: &'a CallTarget,
    /// The lattice-wide subject of `target` when the caller keeps it (made here
    /// otherwise).
    pub anywhere: Option<&'a Subject>,
    /// The calling component (of `target.app`).
    pub caller: &'a str,
    pub link: &'a str,
    pub params: &'a [WitType],
    pub results: &'a [WitType],
    pub fingerprint: &'a str,
    pub timeout: Duration,
    /// The caller's trace: the call is a client span in it.
    pub trace: TraceContext,
}

impl WireCall<'_> {
    fn display(&self) -> String {
        self.target.function_name()
    }
}

#[allow(clippy::too_many_arguments)]
pub async fn call(
    router: &Directory,
    env: &ComponentEnv,
    link: &str,
    target: &LinkTarget,
    func: &ImportedFunc,
    signature: &Signature,
    trace: TraceContext,
    args: Vec<WitValue>,
) -> Result<Vec<WitValue>, CallError> {
    let site = func.sites.get(&env.app, &target.component, || {
        let target = CallTarget {
            app: env.app.clone(),
            component: target.component.clone(),
            namespace: func.interface.namespace.clone(),
            package: func.interface.package.clone(),
            interface: func.interface.interface.clone(),
            function: func.function.clone(),
        };
        let anywhere = host_call_subject(&router.lattice, &router.host_id, &target).into();
        CallSite { target, anywhere }
    });
    let call = WireCall {
        target: &site.target,
        anywhere: Some(&site.anywhere),
        caller: &env.component,
        link,
        params: &signature.params,
        results: &signature.results,
        fingerprint: &signature.fingerprint,
        timeout: target.timeout,
        trace,
    };
    call_wire(router, &call, &args).await
}

/// Send `call` with `args` over NATS and return its results; the call is a client
/// span, the parent of the callee's.
pub async fn call_wire(
    router: &Directory,
    call: &WireCall<'_>,
    args: &[WitValue],
) -> Result<Vec<WitValue>, CallError> {
    let span = trace::linked_call(
        Kind::Client,
        || call.display(),
        &call.target.app,
        Some(&call.trace),
    );
    let result = send_call(router, call, args, &span).await;
    if let Err(failure) = &result {
        span.fail(format!("{}: {}", failure.kind.as_str(), failure.message));
    }
    result
}

async fn send_call(
    router: &Directory,
    call: &WireCall<'_>,
    args: &[WitValue],
    span: &trace::Span,
) -> Result<Vec<WitValue>, CallError> {
    let Some(caller) = &router.caller else {
        return Err(CallError::new(
            CallErrorKind::Unavailable,
            format!(
                "no instance of '{}' runs on this host, and the host has no NATS connection to reach others",
                call.target.component
            ),
        ));
    };
    let payload = wire::encode_args(call.params, args).map_err(|e| {
        CallError::new(
            CallErrorKind::BadArguments,
            format!("cannot encode the arguments of {}: {e}", call.display()),
        )
    })?;
    let traceparent = span.traceparent();
    let header = CallHeader::encode_parts(
        &router.host_id,
        &call.target.app,
        call.caller,
        call.link,
        call.fingerprint,
        u64::try_from(call.timeout.as_millis()).unwrap_or(u64::MAX),
        Some(&traceparent),
    );
    let t = call.target;
    // Results come to our own inbox, from whoever serves the target: a provider
    // answers from its prefix, a component from its host's.
    let reply_from = if router.is_provider(&t.app, &t.component) {
        BodySender::Provider {
            app: &t.app,
            name: &t.component,
        }
    } else {
        BodySender::AnyHost
    };
    // Every subject names this host as the caller (its NATS user may publish
    // calls only there): each locality the host has, most specific first, then
    // the lattice-wide subject.
    let nearby = router
        .locality()
        .iter()
        .map(|(key, value)| locality_subject(&router.lattice, &router.host_id, key, value, t))
        .collect();
    let results = caller
        .call(Outgoing {
            target: t,
            nearby,
            anywhere: call
                .anywhere
                .cloned()
                .unwrap_or_else(|| host_call_subject(&router.lattice, &router.host_id, t).into()),
            header,
            payload,
            deadline: Instant::now() + call.timeout,
            reply_from,
        })
        .await?;
    // Within a bound: a small reply must not decode into a huge value here.
    let bound = wire::decoded_limit(router.settings.max_call_bytes);
    wire::decode_results_within(call.results, &results, bound).map_err(|e| {
        CallError::undecodable(
            CallErrorKind::Internal,
            format!("the results of {}", call.display()),
            &e,
        )
    })
}
