//! The callee side: a host running a component that some link points at answers
//! calls to it from other hosts.
//!
//! One subscription per such component on the lattice-wide subject
//! (`lattice.<L>.rpch.*.<app>.<component>.>`, each calling host's subject naming
//! it) and one per locality label the host has, all in queue group `rpc`, so each
//! call reaches one instance, plus one for calls from the app's providers
//! (`lattice.<L>.rpcp.<app>.*.<component>.>`, each provider's subject naming it).
//! Every component a host runs, linked or not, also answers calls from the CLI
//! (`lattice call`: `lattice.<L>.rpcc.<app>.<component>.>`, which only the CLI's
//! user may publish), and describes its functions to it (header
//! `lattice-describe`).
//! Each call's `lattice-call` header is checked against its subject
//! (`wire::check_caller`), then against the deployed links (caller app, component,
//! link name, interface; not for the CLI) and the signature fingerprint before its
//! arguments are decoded.

use super::directory::Directory;
use super::failure::CallError;
use super::funcs::mismatch;
use crate::component::http::forward;
use crate::component::{admit, invoke_admitted};
use crate::telemetry::trace::{self, Kind, TraceContext};
use async_nats::{HeaderMap, Message};
use bytes::Bytes;
use futures::StreamExt;
use lattice_protocol::provider::http;
use lattice_protocol::wire::rpc::{host_call_wildcard, locality_component_wildcard, RPC_QUEUE};
use lattice_protocol::wire::{
    self, BodySender, CallErrorKind, CallHeader, CallRoute, Signature, SubjectCaller, WitValue,
};
use lattice_rpc::chunks::inline_limit;
use lattice_rpc::{arguments, names, Answer, ServeLimits};
use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Calls one component's subscriptions work on at once; more are answered
/// `overloaded` at once (each call is also admitted by the component's own
/// limiter).
const MAX_CALLS: usize = 4096;

/// A stopped component's subscriptions keep answering the calls the server
/// routed to them before it saw the unsubscribe for 5 s (with `unavailable`, so
/// callers try elsewhere); calls still running then get 10 minutes, longer than
/// any sensible link timeout, to finish.
const LIMITS: ServeLimits = ServeLimits {
    max_calls: MAX_CALLS,
    drain_for: Duration::from_secs(5),
    finish_for: Duration::from_secs(600),
};

/// Why a component's calls cannot be served from this host.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// NATS refused a subscription.
    #[error("cannot subscribe to {subject}: {reason}")]
    Subscribe { subject: String, reason: String },
    /// The server did not confirm the subscriptions in time.
    #[error("cannot reach NATS to serve '{component}': {reason}")]
    Unreachable { component: String, reason: String },
}

/// The subscriptions serving one component; dropping it drains them: the server
/// stops routing calls here, and calls already on their way are answered.
pub struct Serving {
    stop: Option<tokio::sync::watch::Sender<bool>>,
    /// Whether it serves links (calls from hosts and providers) besides the CLI.
    pub linked: bool,
}

impl Drop for Serving {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
    }
}

impl Serving {
    /// Subscribe for `component` of `app`: for calls from the CLI, and when some
    /// link points at it (`linked`) for calls from hosts and providers.
    pub async fn start(
        router: &Arc<Directory>,
        nats: &async_nats::Client,
        app: &str,
        component: &str,
        linked: bool,
    ) -> Result<Self, ServeError> {
        // Calls from the CLI (`lattice call`).
        let mut subjects = vec![wire::cli_call_wildcard(&router.lattice, app, component)];
        if linked {
            // Calls from components on any host, each on a subject naming it.
            subjects.push(host_call_wildcard(&router.lattice, app, component));
            // Calls from the app's providers, each on a subject naming it.
            subjects.push(wire::provider_call_wildcard(
                &router.lattice,
                app,
                component,
            ));
            for (key, value) in router.locality() {
                subjects.push(locality_component_wildcard(
                    &router.lattice,
                    &key,
                    &value,
                    app,
                    component,
                ));
            }
        }
        let mut subscriptions = Vec::with_capacity(subjects.len());
        for subject in subjects {
            let sub = nats
                .queue_subscribe(subject.clone(), RPC_QUEUE.to_owned())
                .await
                .map_err(|e| ServeError::Subscribe {
                    subject: subject.clone(),
                    reason: e.to_string(),
                })?;
            subscriptions.push(sub);
        }
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let (router, nats2) = (router.clone(), nats.clone());
        let (app, name) = (app.to_owned(), component.to_owned());
        tokio::spawn(async move {
            let component = name;
            let nats = &nats2;
            let handle = |msg: Message| handle(&router, nats, &app, &component, msg);
            let busy = |_: &Message| {
                format!("this host already works on {MAX_CALLS} calls to '{component}'; try again shortly")
            };
            lattice_rpc::serve(nats, subscriptions, LIMITS, stopped, handle, busy).await;
        });
        // The server must have the subscriptions before the workload counts as
        // applied, so the first call after an apply finds them.
        round_trip(nats)
            .await
            .map_err(|reason| ServeError::Unreachable {
                component: component.to_owned(),
                reason,
            })?;
        Ok(Self {
            stop: Some(stop),
            linked,
        })
    }
}

/// Return once the server has processed everything this connection sent before:
/// a message to a fresh subscription of our own comes back only after it.
/// (`Client::flush` only empties the client's write buffer.)
async fn round_trip(nats: &async_nats::Client) -> Result<(), String> {
    let inbox = nats.new_inbox();
    let mut probe = nats
        .subscribe(inbox.clone())
        .await
        .map_err(|e| e.to_string())?;
    nats.publish(inbox, bytes::Bytes::new())
        .await
        .map_err(|e| e.to_string())?;
    match tokio::time::timeout(Duration::from_secs(5), probe.next()).await {
        Ok(Some(_)) => Ok(()),
        _ => Err("the server did not echo a probe within 5s".to_owned()),
    }
}

async fn handle(
    router: &Directory,
    nats: &async_nats::Client,
    app: &str,
    component: &str,
    msg: Message,
) {
    if msg.reply.is_none() {
        return;
    }
    let no_headers = HeaderMap::new();
    let h = msg.headers.as_ref().unwrap_or(&no_headers);
    // The served call is a server span, the child of the caller's client span;
    // its name is read off the subject only when the span is recorded.
    let function = || {
        wire::parse_call_subject(&msg.subject)
            .map_or_else(|| msg.subject.to_string(), |r| r.target.function_name())
    };
    // The header must agree with the subject, which NATS vouches for: a host or a
    // provider speaks only for itself, and a provider only on its own subject.
    let incoming = lattice_rpc::incoming(&msg);
    let read = wire::read_call(
        &msg.subject,
        incoming.header,
        app,
        component,
        || format!("'{component}'"),
        |c| router.is_provider(app, c),
    );
    let parent = lattice_rpc::caller_trace(incoming.header, Some(h)).and_then(TraceContext::parse);
    let span = trace::linked_call(Kind::Server, function, app, parent.as_ref());
    let trace = span.context();
    let answer = match read {
        Ok((route, caller)) => {
            let payload = &incoming.payload;
            answer(
                router, nats, app, component, &msg, h, payload, route, &caller, trace,
            )
            .await
        }
        Err(why) => Err(CallError::new(CallErrorKind::Refused, why)),
    };
    match &answer {
        Ok(_) => router.counters.record_served(),
        Err(failure) => {
            span.fail(format!("{}: {}", failure.kind.as_str(), failure.message));
            tracing::warn!(
                %app, %component, subject = %msg.subject,
                caller = %incoming.header.unwrap_or_default(),
                kind = failure.kind.as_str(), trace_id = %trace.trace_id(),
                "served call failed: {}", failure.message
            );
        }
    }
    lattice_rpc::reply(nats, &msg, answer).await;
}

/// `ns:pkg/iface.function`, written only into the messages of failed calls.
struct FunctionName<'a>(&'a str, &'a str);

impl std::fmt::Display for FunctionName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

/// The encoded results of one call, inline or (when large) on offer.
#[allow(clippy::too_many_arguments)]
async fn answer(
    router: &Directory,
    nats: &async_nats::Client,
    app: &str,
    component: &str,
    msg: &Message,
    h: &HeaderMap,
    payload: &Bytes,
    route: CallRoute<'_>,
    caller: &CallHeader,
    trace: TraceContext,
) -> Result<Answer, CallError> {
    let refused = |why: String| CallError::new(CallErrorKind::Refused, why);
    let from_cli = route.caller == SubjectCaller::Cli;
    let target = route.target;
    let (caller_app, link) = (&caller.app, &caller.link);
    let key = format!(
        "{}:{}/{}",
        target.namespace, target.package, target.interface
    );
    let call = FunctionName(&key, &target.function);
    // Checked first: a call that reached a host which just stopped the target is
    // `unavailable`, and the caller tries elsewhere.
    let rt = router.local(app, component).ok_or_else(|| {
        CallError::new(
            CallErrorKind::Unavailable,
            format!("'{component}' of app '{app}' stopped on this host"),
        )
    })?;
    if from_cli {
        // A person with the CLI's credentials may call any export (they may deploy
        // anything too); no link is involved.
        return answer_cli(
            router,
            nats,
            &rt,
            &key,
            &target.function,
            payload,
            h,
            caller,
            trace,
        )
        .await;
    }
    // Gateway calls are allowed by a link carrying the HTTP handler interface.
    let gateway = key == http::KEY && target.function == http::FUNCTION;
    let allowed_as = if gateway {
        http::LINKED_AS
    } else {
        key.as_str()
    };
    if caller_app != app || !router.allows(app, &caller.component, link, allowed_as, component) {
        return Err(refused(format!(
            "no link of app '{app}' lets component '{}' of app '{caller_app}' call {call} on '{component}' (link name '{link}')",
            caller.component
        )));
    }
    // The gateway's types are built only for gateway calls.
    let gateway_types = gateway.then(|| (http::params(), http::results()));
    let (params_types, results_types, fingerprint, export) = match &gateway_types {
        Some((params, results)) => {
            let fingerprint = wire::signature_fingerprint(params, results);
            (params, results, Cow::Owned(fingerprint), None)
        }
        None => {
            let export = rt.exports.get(&key, &target.function)?;
            let s = &export.signature;
            (
                &s.params,
                &s.results,
                Cow::Borrowed(s.fingerprint.as_str()),
                Some(export),
            )
        }
    };
    if caller.signature != *fingerprint {
        return Err(match export {
            Some(export) => mismatch(&call.to_string(), &caller.signature, export),
            None => CallError::new(
                CallErrorKind::Signature,
                format!(
                    "the caller and this host disagree on {call}: this host has {}",
                    wire::signature(params_types, results_types)
                ),
            ),
        });
    }
    let timeout = Duration::from_millis(caller.timeout_ms);
    let deadline = Instant::now() + timeout;
    let limit = router.limit();
    // A slot before the arguments are fetched and decoded: a call that cannot
    // run now holds no memory for them.
    let slot = match export {
        Some(_) => Some(admit(&rt).await?),
        None => None,
    };
    // Large arguments come from the caller's inbox: its provider process's, or
    // its host's (the one the call header names).
    let from = if router.is_provider(app, &caller.component) {
        BodySender::Provider {
            app,
            name: &caller.component,
        }
    } else {
        BodySender::Host(&caller.host)
    };
    let payload = arguments(nats, &router.lattice, msg, payload, from, limit, deadline).await?;
    let args = wire::decode_args_within(params_types, &payload, wire::decoded_limit(limit.bytes))
        .map_err(|e| {
        CallError::undecodable(
            CallErrorKind::BadArguments,
            format!("the arguments of {call}"),
            &e,
        )
    })?;
    drop(payload);
    let too_slow = || {
        CallError::new(
            CallErrorKind::Timeout,
            format!(
                "'{component}' did not finish {call} within the caller's timeout of {timeout:?}"
            ),
        )
    };
    let results = match export {
        None => {
            let request = args
                .first()
                .and_then(http::Message::from_value)
                .ok_or_else(|| CallError::new(CallErrorKind::BadArguments, "no request"))?;
            let answer = tokio::time::timeout(timeout, forward(&rt, request, trace))
                .await
                .map_err(|_| too_slow())?;
            let value = match answer {
                Ok(response) => WitValue::Result(Ok(Some(Box::new(response.response_value())))),
                Err(e) => WitValue::Result(Err(Some(Box::new(WitValue::String(e))))),
            };
            vec![value]
        }
        Some(export) => {
            let slot = match slot {
                Some(slot) => slot,
                None => admit(&rt).await?,
            };
            let invoked = invoke_admitted(&rt, export, args, Some(trace), slot);
            tokio::time::timeout(timeout, invoked)
                .await
                .map_err(|_| too_slow())??
        }
    };
    let encoded = wire::encode_results(results_types, &results).map_err(|e| {
        CallError::new(
            CallErrorKind::Internal,
            format!("the results of {call} did not encode: {e}"),
        )
    })?;
    if encoded.len() > limit.bytes {
        let what = format!("the results of {call} are");
        return Err(limit.exceeded(&what, encoded.len() as u64));
    }
    Answer::new(nats, router.inbox_prefix(), encoded.into(), deadline).await
}

/// A call from the CLI (`lattice call`), or its request to describe the function
/// (header `lattice-describe`: the answer is the [`Signature`] as JSON). Arguments
/// come inline, and results over the inline limit are refused rather than offered
/// in chunks: a person's call is small.
#[allow(clippy::too_many_arguments)]
async fn answer_cli(
    router: &Directory,
    nats: &async_nats::Client,
    rt: &crate::component::ComponentRuntime,
    key: &str,
    function: &str,
    payload: &Bytes,
    h: &HeaderMap,
    caller: &CallHeader,
    trace: TraceContext,
) -> Result<Answer, CallError> {
    let call = format!("{key}.{function}");
    let export = rt.exports.get(key, function)?;
    let s = &export.signature;
    if h.get(names::DESCRIBE).is_some() {
        let described = Signature {
            params: s
                .param_names
                .iter()
                .cloned()
                .zip(s.params.clone())
                .collect(),
            results: s.results.clone(),
        };
        let json = serde_json::to_vec(&described)
            .map_err(|e| CallError::new(CallErrorKind::Internal, e.to_string()))?;
        return Ok(Answer::inline(json.into()));
    }
    if caller.signature != s.fingerprint {
        return Err(mismatch(&call, &caller.signature, export));
    }
    if h.get(names::BODY).is_some() {
        return Err(CallError::new(
            CallErrorKind::TooLarge,
            format!("the arguments of a call from the CLI to {call} must be inline"),
        ));
    }
    let slot = admit(rt).await?;
    let max_decoded = wire::decoded_limit(router.settings.max_call_bytes);
    let args = wire::decode_args_within(&s.params, payload, max_decoded).map_err(|e| {
        CallError::undecodable(
            CallErrorKind::BadArguments,
            format!("the arguments of {call}"),
            &e,
        )
    })?;
    let timeout = Duration::from_millis(caller.timeout_ms);
    let invoked = invoke_admitted(rt, export, args, Some(trace), slot);
    let results = tokio::time::timeout(timeout, invoked).await.map_err(|_| {
        CallError::new(
            CallErrorKind::Timeout,
            format!("it did not finish {call} within the caller's timeout of {timeout:?}"),
        )
    })??;
    let encoded = wire::encode_results(&s.results, &results).map_err(|e| {
        CallError::new(
            CallErrorKind::Internal,
            format!("the results of {call} did not encode: {e}"),
        )
    })?;
    let limit = inline_limit(nats).min(router.settings.max_call_bytes);
    if encoded.len() > limit {
        return Err(CallError::new(
            CallErrorKind::TooLarge,
            format!(
                "the results of {call} are {} bytes, over the {limit} bytes a call from the CLI takes",
                encoded.len()
            ),
        ));
    }
    Ok(Answer::inline(encoded.into()))
}
