//! The callee side: a host running a component that some link points at answers
//! calls to it from other hosts.
//!
//! One subscription per such component on the lattice-wide subject and one per
//! locality label the host has, all in queue group `rpc`, so each call reaches one
//! instance. Each call is checked against the deployed links (caller app, component,
//! link name, interface) and the signature fingerprint before its arguments are
//! decoded.

use super::router::{invoke, mismatch, Router};
use super::trace::TraceContext;
use super::types::{from_wire, to_wire};
use super::{chunks, CallFailure};
use async_nats::{HeaderMap, Message};
use futures::StreamExt;
use lattice_protocol::wire::rpc::{
    headers, locality_component_wildcard, rpc_component_wildcard, RPC_QUEUE,
};
use lattice_protocol::wire::{self, CallErrorKind, CallTarget};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a stopped subscription keeps answering the calls the server routed to
/// it before it saw the unsubscribe (with `unavailable`, so callers try elsewhere).
const DRAIN_FOR: Duration = Duration::from_secs(5);

/// The subscriptions serving one component; dropping it drains them: the server
/// stops routing calls here, and calls already on their way are answered.
pub struct Serving {
    stop: Option<tokio::sync::watch::Sender<bool>>,
}

impl Drop for Serving {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
    }
}

impl Serving {
    /// Subscribe for `component` of `app`.
    pub async fn start(
        router: &Arc<Router>,
        nats: &async_nats::Client,
        app: &str,
        component: &str,
    ) -> Result<Self, String> {
        let mut subjects = vec![rpc_component_wildcard(&router.lattice, app, component)];
        for (key, value) in router.locality() {
            subjects.push(locality_component_wildcard(
                &router.lattice,
                &key,
                &value,
                app,
                component,
            ));
        }
        let (stop, stopped) = tokio::sync::watch::channel(false);
        for subject in subjects {
            let mut sub = nats
                .queue_subscribe(subject.clone(), RPC_QUEUE.to_owned())
                .await
                .map_err(|e| format!("cannot subscribe to {subject}: {e}"))?;
            let (router, nats) = (router.clone(), nats.clone());
            let (app, component) = (app.to_owned(), component.to_owned());
            let mut stopped = stopped.clone();
            tokio::spawn(async move {
                let serve = |msg: Message| {
                    let (router, nats) = (router.clone(), nats.clone());
                    let (app, component) = (app.clone(), component.clone());
                    tokio::spawn(
                        async move { handle(&router, &nats, &app, &component, msg).await },
                    );
                };
                loop {
                    tokio::select! {
                        msg = sub.next() => match msg {
                            Some(msg) => { serve(msg); }
                            None => return,
                        },
                        _ = stopped.wait_for(|s| *s) => break,
                    }
                }
                if sub.drain().await.is_ok() {
                    let until = tokio::time::Instant::now() + DRAIN_FOR;
                    while let Ok(Some(msg)) = tokio::time::timeout_at(until, sub.next()).await {
                        serve(msg);
                    }
                }
            });
        }
        // Make sure the server has the subscriptions before the workload counts as
        // applied, so the first call after an apply finds them.
        nats.flush()
            .await
            .map_err(|e| format!("cannot reach NATS to serve '{component}': {e}"))?;
        Ok(Self { stop: Some(stop) })
    }
}

async fn handle(
    router: &Router,
    nats: &async_nats::Client,
    app: &str,
    component: &str,
    msg: Message,
) {
    let Some(reply) = msg.reply.clone() else {
        return;
    };
    let h = msg.headers.clone().unwrap_or_default();
    let get = |name: &str| {
        h.get(name)
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default()
    };
    let trace = TraceContext::parse(&get(headers::TRACEPARENT)).unwrap_or_default();
    match answer(router, nats, app, component, &msg, &h, trace).await {
        Ok((payload, offer)) => {
            router.counters.record_served();
            let mut out = HeaderMap::new();
            if let Some(offer) = &offer {
                out.insert(headers::BODY, offer.header().as_str());
            }
            let _ = nats.publish_with_headers(reply, out, payload).await;
            if let Some(offer) = offer {
                offer.finished().await;
            }
        }
        Err(failure) => {
            tracing::warn!(
                %app, %component, subject = %msg.subject,
                caller_host = %get(headers::CALLER_HOST),
                caller_component = %get(headers::CALLER_COMPONENT),
                kind = failure.kind.as_str(), trace_id = %trace.trace_id(),
                "served call failed: {}", failure.message
            );
            let mut out = HeaderMap::new();
            out.insert(headers::ERROR, failure.kind.as_str());
            let _ = nats
                .publish_with_headers(reply, out, failure.message.into())
                .await;
        }
    }
}

/// The encoded results of one call, inline or (when large) on offer.
async fn answer(
    router: &Router,
    nats: &async_nats::Client,
    app: &str,
    component: &str,
    msg: &Message,
    h: &HeaderMap,
    trace: TraceContext,
) -> Result<(bytes::Bytes, Option<chunks::Offer>), CallFailure> {
    let refused = |why: String| CallFailure::new(CallErrorKind::Refused, why);
    let target = CallTarget::parse_subject(&msg.subject)
        .map(|(_, t)| t)
        .filter(|t| t.app == app && t.component == component)
        .ok_or_else(|| {
            refused(format!(
                "'{}' is not a call subject of '{component}'",
                msg.subject
            ))
        })?;
    let get = |name: &str| h.get(name).map(|v| v.as_str().to_owned());
    let caller_app = get(headers::CALLER_APP).unwrap_or_default();
    let caller = get(headers::CALLER_COMPONENT).unwrap_or_default();
    let link = get(headers::LINK).unwrap_or_default();
    let key = format!(
        "{}:{}/{}",
        target.namespace, target.package, target.interface
    );
    let call = format!("{key}.{}", target.function);
    // Checked first: a call that reached a host which just stopped the target is
    // `unavailable`, and the caller tries elsewhere.
    let rt = router.local(app, component).ok_or_else(|| {
        CallFailure::new(
            CallErrorKind::Unavailable,
            format!("'{component}' of app '{app}' stopped on this host"),
        )
    })?;
    if caller_app != app || !router.allows(app, &caller, &link, &key, component) {
        return Err(refused(format!(
            "no link of app '{app}' lets component '{caller}' of app '{caller_app}' call {call} on '{component}' (link name '{link}')"
        )));
    }
    let export = rt.exports.get(&key, &target.function)?;
    let fingerprint = get(headers::SIGNATURE).unwrap_or_default();
    if fingerprint != export.signature.fingerprint {
        return Err(mismatch(&call, &fingerprint, export));
    }
    let timeout = get(headers::TIMEOUT_MS)
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_millis)
        .unwrap_or(router.settings.call_timeout);
    let deadline = Instant::now() + timeout;
    let limit = router.settings.max_call_bytes;
    let payload = match get(headers::BODY) {
        Some(offer) => chunks::fetch(nats, &offer, limit, deadline).await?,
        None => msg.payload.clone(),
    };
    let args = wire::decode_args(&export.signature.params, &payload).map_err(|e| {
        CallFailure::new(
            CallErrorKind::BadArguments,
            format!("the arguments of {call} did not decode: {e}"),
        )
    })?;
    let params: Vec<_> = args.into_iter().map(from_wire).collect();
    let results = tokio::time::timeout(timeout, invoke(&rt, export, &params, trace))
        .await
        .map_err(|_| {
            CallFailure::new(
                CallErrorKind::Timeout,
                format!("'{component}' did not finish {call} within the caller's timeout of {timeout:?}"),
            )
        })??;
    let values = results
        .iter()
        .map(to_wire)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CallFailure::new(CallErrorKind::Internal, e))?;
    let encoded = wire::encode_results(&export.signature.results, &values).map_err(|e| {
        CallFailure::new(
            CallErrorKind::Internal,
            format!("the results of {call} did not encode: {e}"),
        )
    })?;
    if encoded.len() > limit {
        return Err(CallFailure::new(
            CallErrorKind::TooLarge,
            format!(
                "the results of {call} are {} bytes, over the limit of {limit} bytes per call",
                encoded.len()
            ),
        ));
    }
    if encoded.len() > chunks::inline_limit(nats) {
        let offer = chunks::offer(nats, encoded.into(), deadline).await?;
        return Ok((bytes::Bytes::new(), Some(offer)));
    }
    Ok((encoded.into(), None))
}
