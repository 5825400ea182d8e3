//! The caller side of a call: send it on the nearest subject that has responders,
//! offer large arguments in chunks, and read the answer.

use crate::chunks::{self, Limit};
use crate::names;
use crate::CallError;
use async_nats::{HeaderMap, RequestErrorKind, Subject};
use bytes::Bytes;
use lattice_protocol::wire::{BodySender, CallErrorKind, CallTarget};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a nearby subject with no responders is skipped before it is tried
/// again.
const FAR_FOR: Duration = Duration::from_secs(5);
/// Tries of the lattice-wide subject when the answering peer is stopping the target.
const ATTEMPTS: usize = 3;
/// The first and the longest pause between tries while nothing subscribes to the
/// lattice-wide subject.
const NOBODY_PAUSE: (Duration, Duration) = (Duration::from_millis(20), Duration::from_millis(250));

/// Sends calls for one peer (a host, a provider process): its connection, where
/// it offers large arguments, its limit, and which nearby subjects had nobody.
pub struct Caller {
    nats: async_nats::Client,
    lattice: String,
    inbox_prefix: String,
    limit: Limit,
    responder_wait: Duration,
    /// Nearby subjects that had no responders, until when to skip them.
    far: Mutex<HashMap<String, Instant>>,
}

/// One call: where it goes, who makes it, and its encoded arguments.
pub struct Outgoing<'a> {
    pub target: &'a CallTarget,
    /// Subjects served by the target's instances near the caller, most specific
    /// first (`wire::locality_subject`); each is skipped for a while once it had
    /// no responders.
    pub nearby: Vec<String>,
    /// The lattice-wide subject, naming the caller (`wire::host_call_subject`,
    /// `wire::provider_call_subject`); a caller may keep it for its next calls
    /// (a `Subject` clones without copying).
    pub anywhere: Subject,
    /// The `lattice-call` header's value (`CallHeader::encode`), with the
    /// caller's trace context.
    pub header: String,
    pub payload: Vec<u8>,
    pub deadline: Instant,
    /// Whose inbox the results may be offered from when they are large.
    pub reply_from: BodySender<'a>,
}

impl Caller {
    /// A caller on `nats` in `lattice` that offers large arguments under
    /// `inbox_prefix` (its connection's), refuses payloads over `limit`, and keeps
    /// trying for `responder_wait` while nothing subscribes to a call's subject (a
    /// connection, route or leaf link may be reconnecting).
    pub fn new(
        nats: async_nats::Client,
        lattice: &str,
        inbox_prefix: String,
        limit: Limit,
        responder_wait: Duration,
    ) -> Self {
        Self {
            nats,
            lattice: lattice.to_owned(),
            inbox_prefix,
            limit,
            responder_wait,
            far: Mutex::default(),
        }
    }

    pub fn nats(&self) -> &async_nats::Client {
        &self.nats
    }

    pub fn limit(&self) -> Limit {
        self.limit
    }

    /// Send `call` and return the encoded results, or why there are none.
    pub async fn call(&self, call: Outgoing<'_>) -> Result<Bytes, CallError> {
        let len = call.payload.len();
        if len > self.limit.bytes {
            let what = format!("the arguments of {} are", call.target.function_name());
            return Err(self.limit.exceeded(&what, len as u64));
        }
        // Over the server's max payload: the first chunk goes with the call, the
        // rest is on offer until the call ends, and the call header is a header.
        // Otherwise the call header is the payload's first line and the request
        // has no headers (`server::incoming`).
        let (body, offer) = if !chunks::fits_inline(&self.nats, len) {
            let payload = Bytes::from(call.payload);
            let offer =
                chunks::offer(&self.nats, &self.inbox_prefix, payload, call.deadline).await?;
            (offer.inline(), Some(offer))
        } else {
            let mut body = Vec::with_capacity(call.header.len() + 1 + len);
            body.extend_from_slice(call.header.as_bytes());
            body.push(b'\n');
            body.extend_from_slice(&call.payload);
            (Bytes::from(body), None)
        };
        // Made for each try: a `HeaderMap` is moved into its request.
        let headers = || {
            offer.as_ref().map(|offer| {
                let mut h = HeaderMap::new();
                h.insert(names::CALL, call.header.as_str());
                h.insert(names::BODY, offer.header().as_str());
                h
            })
        };
        let subjects = self.subjects(call.nearby, call.anywhere);
        let reply = self
            .send(call.target, subjects, headers, body, call.deadline)
            .await?;
        let reply_headers = reply.headers.as_ref();
        if let Some(kind) = reply_headers.and_then(|h| h.get(names::ERROR)) {
            let kind = CallErrorKind::parse(kind.as_str()).unwrap_or(CallErrorKind::Internal);
            let text = String::from_utf8_lossy(&reply.payload).into_owned();
            return Err(CallError::new(kind, text));
        }
        match reply_headers.and_then(|h| h.get(names::BODY)) {
            Some(offer) => {
                chunks::fetch(
                    &self.nats,
                    &self.lattice,
                    call.reply_from,
                    offer.as_str(),
                    &reply.payload,
                    self.limit,
                    call.deadline,
                )
                .await
            }
            None => Ok(reply.payload),
        }
    }

    /// The nearby subjects not known to be far, each tried once, then the
    /// lattice-wide one, tried a few times (the `bool`: nearby).
    fn subjects(&self, nearby: Vec<String>, anywhere: Subject) -> Vec<(Subject, bool)> {
        let mut subjects = Vec::with_capacity(nearby.len() + ATTEMPTS);
        if !nearby.is_empty() {
            let now = Instant::now();
            let mut far = self.far.lock().unwrap_or_else(|p| p.into_inner());
            far.retain(|_, until| *until > now);
            subjects.extend(
                nearby
                    .into_iter()
                    .filter(|s| !far.contains_key(s))
                    .map(|s| (Subject::from(s), true)),
            );
        }
        // A peer that is stopping the target answers `unavailable` to calls that
        // reached it on their way; the lattice-wide subject is tried a few times
        // then.
        subjects.extend(std::iter::repeat_n((anywhere, false), ATTEMPTS));
        subjects
    }

    fn mark_far(&self, subject: &str) {
        let mut far = self.far.lock().unwrap_or_else(|p| p.into_inner());
        far.insert(subject.to_owned(), Instant::now() + FAR_FOR);
    }

    /// Send the request on the first of `subjects` that answers with anything
    /// but "stopping".
    async fn send(
        &self,
        target: &CallTarget,
        subjects: Vec<(Subject, bool)>,
        headers: impl Fn() -> Option<HeaderMap>,
        body: Bytes,
        deadline: Instant,
    ) -> Result<async_nats::Message, CallError> {
        let mut last = None;
        // Since when nothing anywhere subscribed to the lattice-wide subject, and
        // what the server said then.
        let mut nobody: Option<(Instant, async_nats::RequestError)> = None;
        let mut pause = NOBODY_PAUSE.0;
        let mut subjects = subjects.into_iter();
        let mut next = subjects.next();
        while let Some((subject, near)) = next.clone() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let mut request = async_nats::Request::new()
                .payload(body.clone())
                .timeout(Some(left));
            if let Some(headers) = headers() {
                request = request.headers(headers);
            }
            match self.nats.send_request(subject.clone(), request).await {
                Ok(reply) if stopping(&reply) => {
                    if near {
                        self.mark_far(&subject);
                    }
                    // Somebody answers again: that answer is the one to report.
                    nobody = None;
                    last = Some(reply);
                }
                Ok(reply) => return Ok(reply),
                Err(e) if e.kind() == RequestErrorKind::NoResponders && near => {
                    self.mark_far(&subject)
                }
                Err(e) if e.kind() == RequestErrorKind::NoResponders => {
                    let since = nobody.as_ref().map_or_else(Instant::now, |(t, _)| *t);
                    if since.elapsed() >= self.responder_wait {
                        return Err(request_failure(target, e));
                    }
                    nobody = Some((since, e));
                    tokio::time::sleep(pause.min(left)).await;
                    pause = (pause * 2).min(NOBODY_PAUSE.1);
                    // The same subject again.
                    continue;
                }
                Err(e) => return Err(request_failure(target, e)),
            }
            next = subjects.next();
        }
        if let Some((_, e)) = nobody {
            return Err(request_failure(target, e));
        }
        if let Some(reply) = last {
            return Ok(reply);
        }
        Err(CallError::new(
            CallErrorKind::Timeout,
            format!(
                "no instance of '{}' answered {}.{} in time",
                target.component, target.interface, target.function
            ),
        ))
    }
}

/// Whether `reply` says the target stopped on the peer that got the call.
fn stopping(reply: &async_nats::Message) -> bool {
    reply
        .headers
        .as_ref()
        .and_then(|h| h.get(names::ERROR))
        .is_some_and(|k| k.as_str() == CallErrorKind::Unavailable.as_str())
}

fn request_failure(call: &CallTarget, e: async_nats::RequestError) -> CallError {
    let what = call.function_name();
    match e.kind() {
        RequestErrorKind::NoResponders => CallError::new(
            CallErrorKind::Unavailable,
            format!(
                "no instance of '{}' (app '{}') runs anywhere in the lattice to answer {what}",
                call.component, call.app
            ),
        ),
        RequestErrorKind::TimedOut => CallError::new(
            CallErrorKind::Timeout,
            format!(
                "'{}' did not answer {what} within the link's timeout",
                call.component
            ),
        ),
        _ => CallError::new(
            CallErrorKind::Unavailable,
            format!("cannot send {what} to '{}': {e}", call.component),
        ),
    }
}
