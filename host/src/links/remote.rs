//! The caller side of a call over NATS: encode, pick the subject (nearest locality
//! first), send, and read the answer or the failure.

use super::chunks;
use super::directory::Directory;
use super::failure::CallFailure;
use super::funcs::ImportedFunc;
use super::types::{from_wire, to_wire, Signature};
use crate::env::{ComponentEnv, LinkTarget};
use crate::telemetry::trace::{self, Kind, TraceContext};
use async_nats::{HeaderMap, RequestErrorKind};
use lattice_protocol::wire::rpc::headers;
use lattice_protocol::wire::{
    self, host_call_subject, locality_subject, BodySender, CallErrorKind, CallHeader, CallTarget,
    WitType, WitValue,
};
use std::time::{Duration, Instant};
use wasmtime::component::Val;

/// How long a locality subject with no responders is skipped before it is tried
/// again.
const FAR_FOR: Duration = Duration::from_secs(5);
/// Tries of the lattice-wide subject when the answering host is stopping the target.
const ATTEMPTS: usize = 3;
/// The first and the longest pause between tries while nothing subscribes to the
/// lattice-wide subject.
const NOBODY_PAUSE: (Duration, Duration) = (Duration::from_millis(20), Duration::from_millis(250));

/// Whether `reply` says the target stopped on the host that got the call.
fn stopping(reply: &async_nats::Message) -> bool {
    reply
        .headers
        .as_ref()
        .and_then(|h| h.get(headers::ERROR))
        .is_some_and(|k| k.as_str() == CallErrorKind::Unavailable.as_str())
}

/// A call in the wire model: where it goes, who makes it, its types and arguments.
pub struct WireCall<'a> {
    pub target: CallTarget,
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
    params: &[Val],
) -> Result<Vec<Val>, CallFailure> {
    let values = params
        .iter()
        .map(to_wire)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CallFailure::new(CallErrorKind::BadArguments, e))?;
    let call = WireCall {
        target: CallTarget {
            app: env.app.clone(),
            component: target.component.clone(),
            namespace: func.interface.namespace.clone(),
            package: func.interface.package.clone(),
            interface: func.interface.interface.clone(),
            function: func.function.clone(),
        },
        caller: &env.component,
        link,
        params: &signature.params,
        results: &signature.results,
        fingerprint: &signature.fingerprint,
        timeout: target.timeout,
        trace,
    };
    let values = call_wire(router, &call, &values).await?;
    Ok(values.into_iter().map(from_wire).collect())
}

/// Send `call` with `args` over NATS and return its results; the call is a client
/// span, the parent of the callee's.
pub async fn call_wire(
    router: &Directory,
    call: &WireCall<'_>,
    args: &[WitValue],
) -> Result<Vec<WitValue>, CallFailure> {
    let span = trace::linked_call(
        Kind::Client,
        &call.display(),
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
) -> Result<Vec<WitValue>, CallFailure> {
    let Some(nats) = &router.nats else {
        return Err(CallFailure::new(
            CallErrorKind::Unavailable,
            format!(
                "no instance of '{}' runs on this host, and the host has no NATS connection to reach others",
                call.target.component
            ),
        ));
    };
    let deadline = Instant::now() + call.timeout;
    let payload = wire::encode_args(call.params, args).map_err(|e| {
        CallFailure::new(
            CallErrorKind::BadArguments,
            format!("cannot encode the arguments of {}: {e}", call.display()),
        )
    })?;
    let limit = router.settings.max_call_bytes;
    if payload.len() > limit {
        return Err(CallFailure::new(
            CallErrorKind::TooLarge,
            format!(
                "the arguments of {} are {} bytes, over the host's limit of {limit} bytes per call (--max-call-bytes)",
                call.display(),
                payload.len()
            ),
        ));
    }
    let mut h = HeaderMap::new();
    let caller = CallHeader {
        host: router.host_id.clone(),
        app: call.target.app.clone(),
        component: call.caller.to_owned(),
        link: call.link.to_owned(),
        signature: call.fingerprint.to_owned(),
        timeout_ms: u64::try_from(call.timeout.as_millis()).unwrap_or(u64::MAX),
    };
    h.insert(headers::CALL, caller.encode().as_str());
    h.insert(headers::TRACEPARENT, span.traceparent().as_str());
    // Over the server's max payload: offer the arguments in chunks, kept up until
    // the call ends.
    let (body, _offer) = if payload.len() > chunks::inline_limit(nats) {
        let offer = chunks::offer(nats, &router.inbox_prefix(), payload.into(), deadline).await?;
        h.insert(headers::BODY, offer.header().as_str());
        (bytes::Bytes::new(), Some(offer))
    } else {
        (bytes::Bytes::from(payload), None)
    };

    let reply = send(router, nats, &call.target, h, body, deadline).await?;
    let reply_headers = reply.headers.unwrap_or_default();
    if let Some(kind) = reply_headers.get(headers::ERROR) {
        let kind = CallErrorKind::parse(kind.as_str()).unwrap_or(CallErrorKind::Internal);
        let text = String::from_utf8_lossy(&reply.payload).into_owned();
        return Err(CallFailure::new(kind, text));
    }
    let payload = match reply_headers.get(headers::BODY) {
        Some(offer) => {
            // The reply came to our own inbox, from whoever serves the target: a
            // provider answers from its prefix, a component from its host's.
            let t = &call.target;
            let from = if router.is_provider(&t.app, &t.component) {
                BodySender::Provider {
                    app: &t.app,
                    name: &t.component,
                }
            } else {
                BodySender::AnyHost
            };
            chunks::fetch(nats, &router.lattice, from, offer.as_str(), limit, deadline).await?
        }
        None => reply.payload,
    };
    // Within a bound: a small reply must not decode into a huge value here.
    wire::decode_results_within(call.results, &payload, wire::decoded_limit(limit)).map_err(|e| {
        CallFailure::undecodable(
            CallErrorKind::Internal,
            format!("the results of {}", call.display()),
            &e,
        )
    })
}

/// Send the request on the nearest subject that has responders: each locality the
/// host has (most specific first), then the lattice-wide subject, tried again
/// for up to `responder_wait` while it has none. Every subject names this host
/// as the caller (its NATS user may publish calls only there).
async fn send(
    router: &Directory,
    nats: &async_nats::Client,
    call: &CallTarget,
    headers: HeaderMap,
    body: bytes::Bytes,
    deadline: Instant,
) -> Result<async_nats::Message, CallFailure> {
    let mut subjects: Vec<(String, bool)> = Vec::new();
    {
        let now = Instant::now();
        let mut far = router.far.lock().unwrap_or_else(|p| p.into_inner());
        far.retain(|_, until| *until > now);
        for (key, value) in router.locality() {
            let s = locality_subject(&router.lattice, &router.host_id, &key, &value, call);
            if !far.contains_key(&s) {
                subjects.push((s, true));
            }
        }
    }
    // A host that is stopping the target answers `unavailable` to calls that
    // reached it on their way; the lattice-wide subject is tried a few times then.
    let anywhere = host_call_subject(&router.lattice, &router.host_id, call);
    subjects.extend(std::iter::repeat_n((anywhere, false), ATTEMPTS));
    let mut last = None;
    // Since when nothing anywhere subscribed to the lattice-wide subject, and
    // what the server said then: a NATS connection, route or leaf link may be
    // reconnecting, so the call tries again for a moment (`responder_wait`).
    let mut nobody: Option<(Instant, async_nats::RequestError)> = None;
    let mut pause = NOBODY_PAUSE.0;
    let mut subjects = subjects.into_iter();
    let mut next = subjects.next();
    while let Some((subject, near)) = next.clone() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let request = async_nats::Request::new()
            .payload(body.clone())
            .headers(headers.clone())
            .timeout(Some(left));
        let mark_far = || {
            let mut far = router.far.lock().unwrap_or_else(|p| p.into_inner());
            far.insert(subject.clone(), Instant::now() + FAR_FOR);
        };
        match nats.send_request(subject.clone(), request).await {
            Ok(reply) if stopping(&reply) => {
                if near {
                    mark_far();
                }
                // Somebody answers again: that answer is the one to report.
                nobody = None;
                last = Some(reply);
            }
            Ok(reply) => return Ok(reply),
            Err(e) if e.kind() == RequestErrorKind::NoResponders && near => mark_far(),
            Err(e) if e.kind() == RequestErrorKind::NoResponders => {
                let since = nobody.as_ref().map_or_else(Instant::now, |(t, _)| *t);
                if since.elapsed() >= router.settings.responder_wait {
                    return Err(request_failure(call, e));
                }
                nobody = Some((since, e));
                tokio::time::sleep(pause.min(left)).await;
                pause = (pause * 2).min(NOBODY_PAUSE.1);
                // The same subject again.
                continue;
            }
            Err(e) => return Err(request_failure(call, e)),
        }
        next = subjects.next();
    }
    if let Some((_, e)) = nobody {
        return Err(request_failure(call, e));
    }
    if let Some(reply) = last {
        return Ok(reply);
    }
    Err(CallFailure::new(
        CallErrorKind::Timeout,
        format!(
            "no instance of '{}' answered {}.{} in time",
            call.component, call.interface, call.function
        ),
    ))
}

fn request_failure(call: &CallTarget, e: async_nats::RequestError) -> CallFailure {
    let what = format!(
        "{}:{}/{}.{}",
        call.namespace, call.package, call.interface, call.function
    );
    match e.kind() {
        RequestErrorKind::NoResponders => CallFailure::new(
            CallErrorKind::Unavailable,
            format!(
                "no instance of '{}' (app '{}') runs anywhere in the lattice to answer {what}",
                call.component, call.app
            ),
        ),
        RequestErrorKind::TimedOut => CallFailure::new(
            CallErrorKind::Timeout,
            format!(
                "'{}' did not answer {what} within the link's timeout",
                call.component
            ),
        ),
        _ => CallFailure::new(
            CallErrorKind::Unavailable,
            format!("cannot send {what} to '{}': {e}", call.component),
        ),
    }
}
