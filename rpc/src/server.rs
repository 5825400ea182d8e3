//! The callee side: a serve loop over a set of subscriptions, and the bytes of a
//! served call in (arguments) and out (the answer), in chunks when large.

use crate::chunks::{self, Limit, Offer};
use crate::names;
use crate::CallError;
use async_nats::{HeaderMap, Message, Subscriber};
use bytes::Bytes;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use lattice_protocol::wire::rpc::split_call_line;
use lattice_protocol::wire::{BodySender, CallErrorKind, CallHeader};
use std::future::Future;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The bounds of a serve loop.
#[derive(Debug, Clone, Copy)]
pub struct ServeLimits {
    /// Calls worked on at once; more are answered `overloaded` at once.
    pub max_calls: usize,
    /// How long after a stop the calls the server routed here before it saw the
    /// unsubscribe are still taken (and answered by the handler, which may say
    /// `unavailable` so their callers try elsewhere).
    pub drain_for: Duration,
    /// How long calls still running after the drain may finish; then they are
    /// dropped (their callers time out).
    pub finish_for: Duration,
}

/// Answer every call of `subscriptions` with `handle` (which replies itself, e.g.
/// with [`reply`]) until `stop` turns true, then drain: unsubscribe, take what
/// was already routed here for `drain_for`, and let running calls finish. Calls
/// over `max_calls` are answered `overloaded` with `busy`'s message. Calls run as
/// futures of this task, not tasks of their own: no cross-thread hand-off per call
/// (most of a call waits on NATS). Returns `true` when stopped, `false` when every
/// subscription ended (the connection closed).
pub async fn serve<H, F>(
    nats: &async_nats::Client,
    subscriptions: Vec<Subscriber>,
    limits: ServeLimits,
    mut stop: watch::Receiver<bool>,
    handle: H,
    busy: impl Fn(&Message) -> String,
) -> bool
where
    H: Fn(Message) -> F,
    F: Future<Output = ()>,
{
    let mut calls = futures::stream::select_all(subscriptions);
    let mut running = FuturesUnordered::new();
    let take = |msg: Message, running: &mut FuturesUnordered<_>| {
        // Either the call's answer or, over the bound, why there is none.
        let work = if running.len() < limits.max_calls {
            Ok(handle(msg))
        } else {
            let overloaded = CallError::new(CallErrorKind::Overloaded, busy(&msg));
            Err((overloaded, msg))
        };
        running.push(async move {
            match work {
                Ok(answer) => answer.await,
                Err((overloaded, msg)) => reply(nats, &msg, Err(overloaded)).await,
            }
        });
    };
    let stopped = loop {
        tokio::select! {
            msg = calls.next() => match msg {
                Some(msg) => take(msg, &mut running),
                None => break false,
            },
            Some(()) = running.next(), if !running.is_empty() => {}
            _ = stop.wait_for(|s| *s) => break true,
        }
    };
    if stopped {
        let mut drained = true;
        for sub in calls.iter_mut() {
            drained &= sub.drain().await.is_ok();
        }
        let until = tokio::time::Instant::now() + limits.drain_for;
        if drained {
            loop {
                tokio::select! {
                    msg = tokio::time::timeout_at(until, calls.next()) => match msg {
                        Ok(Some(msg)) => take(msg, &mut running),
                        _ => break,
                    },
                    Some(()) = running.next(), if !running.is_empty() => {}
                }
            }
        }
    }
    let until = tokio::time::Instant::now() + limits.finish_for;
    while let Ok(Some(())) = tokio::time::timeout_at(until, running.next()).await {}
    stopped
}

/// What a served call says of itself: its call header's text and the payload
/// after it (the encoded arguments, or their first chunk when on offer).
#[derive(Debug)]
pub struct Incoming<'m> {
    pub header: Option<&'m str>,
    pub payload: Bytes,
}

/// Read a request: its `lattice-call` header, or, when it has no headers, the
/// payload's first line (a call that fits one message carries its call header
/// there: a message without headers costs the server and both clients less).
pub fn incoming(msg: &Message) -> Incoming<'_> {
    if let Some(headers) = &msg.headers {
        return Incoming {
            header: headers.get(names::CALL).map(|v| v.as_str()),
            payload: msg.payload.clone(),
        };
    }
    match split_call_line(&msg.payload) {
        Some((header, args)) => Incoming {
            header: Some(header),
            payload: msg.payload.slice(args..),
        },
        None => Incoming {
            header: None,
            payload: msg.payload.clone(),
        },
    }
}

/// The arguments of a served call: `payload` (its [`incoming`] payload), or the
/// body its `lattice-body` header offers from `from`'s inbox (fetched chunk by
/// chunk, `payload` the first); at most `limit`.
pub async fn arguments(
    nats: &async_nats::Client,
    lattice: &str,
    msg: &Message,
    payload: &Bytes,
    from: BodySender<'_>,
    limit: Limit,
    deadline: Instant,
) -> Result<Bytes, CallError> {
    match msg.headers.as_ref().and_then(|h| h.get(names::BODY)) {
        Some(offer) => {
            let offer = offer.as_str();
            chunks::fetch(nats, lattice, from, offer, payload, limit, deadline).await
        }
        None if payload.len() > limit.bytes => {
            Err(limit.exceeded("the arguments are", payload.len() as u64))
        }
        None => Ok(payload.clone()),
    }
}

/// The caller's W3C trace context as it sent it: the last token of its call
/// header (`header`, [`incoming`]'s) or, from older peers, its `traceparent`
/// header.
pub fn caller_trace<'m>(
    header: Option<&'m str>,
    headers: Option<&'m HeaderMap>,
) -> Option<&'m str> {
    header
        .and_then(CallHeader::trace_of)
        .or_else(|| headers?.get(names::TRACEPARENT).map(|v| v.as_str()))
}

/// The encoded results of a served call, inline or on offer.
pub struct Answer {
    payload: Bytes,
    offer: Option<Offer>,
}

impl Answer {
    /// Results small enough for one message.
    pub fn inline(payload: Bytes) -> Self {
        Self {
            payload,
            offer: None,
        }
    }

    /// `results`, offered in chunks under `inbox_prefix` (the callee's) until
    /// `deadline` when they pass the server's max payload.
    pub async fn new(
        nats: &async_nats::Client,
        inbox_prefix: &str,
        results: Bytes,
        deadline: Instant,
    ) -> Result<Self, CallError> {
        if chunks::fits_inline(nats, results.len()) {
            return Ok(Self::inline(results));
        }
        let offer = chunks::offer(nats, inbox_prefix, results, deadline).await?;
        Ok(Self {
            payload: offer.inline(),
            offer: Some(offer),
        })
    }
}

/// Reply to `msg`: the answer (and keep its offer up until every chunk was
/// fetched or its deadline passed), or the failure as a `lattice-error` header and
/// its message.
pub async fn reply(nats: &async_nats::Client, msg: &Message, answer: Result<Answer, CallError>) {
    let Some(to) = msg.reply.clone() else {
        return;
    };
    let mut out = HeaderMap::new();
    match answer {
        // Results in one message carry no header: most answers are these, and a
        // message without headers is cheaper for the server and both clients.
        Ok(Answer {
            payload,
            offer: None,
        }) => {
            let _ = nats.publish(to, payload).await;
        }
        Ok(Answer {
            payload,
            offer: Some(offer),
        }) => {
            out.insert(names::BODY, offer.header().as_str());
            let _ = nats.publish_with_headers(to, out, payload).await;
            offer.finished().await;
        }
        Err(failure) => {
            out.insert(names::ERROR, failure.kind.as_str());
            let _ = nats
                .publish_with_headers(to, out, failure.message.into())
                .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lattice_protocol::wire::rpc::MAX_CALL_LINE;

    const OURS: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    const OLDER: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn headers(call: Option<&str>, traceparent: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(call) = call {
            h.insert(names::CALL, call);
        }
        if let Some(traceparent) = traceparent {
            h.insert(names::TRACEPARENT, traceparent);
        }
        h
    }

    #[test]
    fn the_trace_comes_from_the_call_header_else_from_an_older_peers_header() {
        let seven = format!("NH app comp default f00d 5000 {OURS}");
        let six = "NH app comp default f00d 5000";
        let cases = [
            (headers(Some(&seven), None), Some(OURS)),
            (headers(Some(&seven), Some(OLDER)), Some(OURS)),
            (headers(Some(six), Some(OLDER)), Some(OLDER)),
            (headers(None, Some(OLDER)), Some(OLDER)),
            (headers(Some(six), None), None),
        ];
        for (h, want) in &cases {
            let call = h.get(names::CALL).map(|v| v.as_str());
            assert_eq!(caller_trace(call, Some(h)), *want, "{h:?}");
        }
        assert_eq!(caller_trace(None, None), None);
        // A call header from the payload's first line.
        assert_eq!(caller_trace(Some(&seven), None), Some(OURS));
    }

    fn message(headers: Option<HeaderMap>, payload: &[u8]) -> Message {
        Message {
            subject: "lattice.l.rpch.x".into(),
            reply: Some("_INBOX.r".into()),
            payload: Bytes::copy_from_slice(payload),
            headers,
            status: None,
            description: None,
            length: payload.len(),
        }
    }

    #[test]
    fn a_call_header_comes_from_the_header_or_else_the_first_line() {
        let header = "NH app comp default f00d 5000";
        // No headers: the first line, and the arguments after it.
        let mut envelope = format!("{header}\n").into_bytes();
        envelope.extend_from_slice(b"\x91\xa1x\n");
        let without = message(None, &envelope);
        let got = incoming(&without);
        assert_eq!(got.header, Some(header));
        assert_eq!(&got.payload[..], b"\x91\xa1x\n");
        // A `lattice-call` header: the payload is the arguments, newline or not.
        let with = message(Some(headers(Some(header), None)), b"\x91\n");
        let got = incoming(&with);
        assert_eq!(
            (got.header, &got.payload[..]),
            (Some(header), &b"\x91\n"[..])
        );
        // Headers without `lattice-call`, no line, a line that is not UTF-8, a
        // line past the bound: no call header (the callee refuses the call).
        let cases: [Message; 4] = [
            message(Some(headers(None, Some(OLDER))), &envelope),
            message(None, b"\x91\xa1x"),
            message(None, b"\xff\xfe\n\x91"),
            message(None, format!("{}\n", "a".repeat(MAX_CALL_LINE)).as_bytes()),
        ];
        for msg in &cases {
            assert_eq!(incoming(msg).header, None, "{msg:?}");
        }
    }
}
