//! Calling one export of a component with a fresh instance, or a warm one when
//! the component asked for them. Arguments and results are in the wire model,
//! whichever way wasmtime is called (typed for the signatures in `links::typed`,
//! dynamic for the rest).

use super::warm::WarmInstance;
use super::{ComponentRuntime, Outcome};
use crate::limiter::Slot;
use crate::links::failure::CallError;
use crate::links::funcs::ExportedFunc;
use crate::links::types::{from_wire, to_wire};
use crate::telemetry::trace::{self, TraceContext};
use lattice_protocol::wire::{CallErrorKind, WitValue};
use wasmtime::component::Val;

/// Call `export` of a fresh (or warm) instance of `rt`, admitted by its limiter; an
/// admitted call's end is counted in `rt.outcomes`. The invocation is a span, a
/// child of `parent` (a new trace without one).
pub async fn invoke(
    rt: &ComponentRuntime,
    export: &ExportedFunc,
    args: Vec<WitValue>,
    parent: Option<TraceContext>,
) -> Result<Vec<WitValue>, CallError> {
    let slot = admit(rt).await?;
    invoke_admitted(rt, export, args, parent, slot).await
}

/// A slot of `rt`'s limiter, or `overloaded` (counted in `rt.outcomes`): taken
/// before a served call's arguments are fetched and decoded, so only calls that
/// will run hold memory for them.
pub async fn admit(rt: &ComponentRuntime) -> Result<Slot, CallError> {
    rt.limiter.acquire().await.map_err(|reason| {
        rt.outcomes.refused();
        CallError::new(CallErrorKind::Overloaded, rt.overloaded(reason).to_string())
    })
}

/// [`invoke`] in a slot already taken with [`admit`].
pub async fn invoke_admitted(
    rt: &ComponentRuntime,
    export: &ExportedFunc,
    args: Vec<WitValue>,
    parent: Option<TraceContext>,
    _slot: Slot,
) -> Result<Vec<WitValue>, CallError> {
    let started = std::time::Instant::now();
    let span = trace::invocation(
        &rt.env.app,
        &rt.env.component,
        &export.name,
        parent.as_ref(),
    );
    let result = run(rt, export, args, span.clone()).await;
    let outcome = match &result {
        Ok(_) => Outcome::Returned,
        Err(f) if f.kind == CallErrorKind::Timeout => Outcome::TimedOut,
        Err(_) => Outcome::Trapped,
    };
    rt.outcomes.record(outcome, started.elapsed());
    if let Err(failure) = &result {
        span.fail(failure.message.clone());
    }
    result
}

async fn run(
    rt: &ComponentRuntime,
    export: &ExportedFunc,
    args: Vec<WitValue>,
    span: trace::Span,
) -> Result<Vec<WitValue>, CallError> {
    let guest = |e: wasmtime::Error| {
        let text = guest_message(&e);
        let kind = if text.contains("execution deadline") {
            CallErrorKind::Timeout
        } else {
            CallErrorKind::Trap
        };
        CallError::new(kind, rt.guest_error(text).to_string())
    };
    let mut instance = rt.instance().await.map_err(guest)?;
    instance.store.data_mut().begin(span);
    let results = call(rt, export, args, &mut instance, guest).await?;
    rt.returned(instance);
    Ok(results)
}

/// Call `export` of `warm`'s instance.
async fn call(
    rt: &ComponentRuntime,
    export: &ExportedFunc,
    args: Vec<WitValue>,
    warm: &mut WarmInstance,
    guest: impl Fn(wasmtime::Error) -> CallError,
) -> Result<Vec<WitValue>, CallError> {
    let store = &mut warm.store;
    let func = warm
        .instance
        .get_func(&mut *store, export.index)
        .ok_or_else(|| {
            CallError::new(
                CallErrorKind::Internal,
                rt.guest_error("its export vanished between apply and call")
                    .to_string(),
            )
        })?;
    // The typed path copies byte strings whole; the dynamic one makes a `Val`
    // of every value.
    if let Some(shape) = export.shape {
        let called = shape.call(&mut *store, func, args).map_err(|why| {
            CallError::new(
                CallErrorKind::Internal,
                format!("the host cannot call {}: {why}", export.name),
            )
        })?;
        return called.await.map_err(guest);
    }
    let params: Vec<Val> = args.into_iter().map(from_wire).collect();
    let mut results = vec![Val::Bool(false); export.signature.results.len()];
    func.call_async(&mut *store, &params, &mut results)
        .await
        .map_err(guest)?;
    results
        .iter()
        .map(to_wire)
        .collect::<Result<_, _>>()
        .map_err(|e| CallError::new(CallErrorKind::Internal, rt.guest_error(e).to_string()))
}

/// A guest failure in one line: the error's causes joined by `: `, without the wasm
/// backtraces wasmtime adds as context.
pub fn guest_message(e: &wasmtime::Error) -> String {
    let parts: Vec<String> = e
        .chain()
        .map(ToString::to_string)
        .filter(|m| !m.starts_with("error while executing at wasm backtrace"))
        .collect();
    if parts.is_empty() {
        e.to_string()
    } else {
        parts.join(": ")
    }
}
