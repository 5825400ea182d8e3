//! Payloads over the NATS server's max payload: the sender offers the bytes on a
//! fresh inbox and the receiver pulls them chunk by chunk (a few in flight), so
//! flow control is the receiver's and nothing is pushed that nobody asked for.
//!
//! The offer is the header `lattice-body: <subject> <total> <chunk> 1` on the
//! message that would have carried the payload, whose payload is chunk 0 (the
//! largest part of the body moves with the message, not after a request for it);
//! chunk `i` (from 1) is the reply to a request on `<subject>` with header
//! `lattice-chunk: i`. An offer lives until every chunk on offer was fetched once,
//! or its deadline. A receiver also takes offers with no chunk inline (the
//! header without its fourth field and an empty payload).
//!
//! A receiver sends its chunk requests with its own credentials, so it fetches only
//! from the inbox of the peer that offers the body (`wire::check_body_subject`):
//! a host offers under its own prefix (`_INBOX_<L>.host.<id>.body.`), a provider
//! under its own (`_INBOX_<L>.<app>.<name>.body.`), and a receiver refuses, before sending a
//! single request, an offer anywhere else than the prefix of the peer the protocol
//! says made it ([`BodySender`]).

use crate::names;
use crate::CallError;
use async_nats::HeaderMap;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use lattice_protocol::wire::{
    body_subject, check_body_subject, BodyOffer, BodySender, CallErrorKind,
};
use std::time::Instant;

/// Room left in each message for headers.
const HEADROOM: usize = 8 * 1024;
/// Chunk requests in flight at once.
const WINDOW: usize = 4;

/// The inline limit is never below this.
const MIN_INLINE: usize = 1024;

/// The largest payload sent inline on this connection.
pub fn inline_limit(nats: &async_nats::Client) -> usize {
    nats.server_info()
        .max_payload
        .saturating_sub(HEADROOM)
        .max(MIN_INLINE)
}

/// Whether `len` bytes go inline on this connection: [`inline_limit`] without
/// reading the server's info (a copy of it) for payloads no limit refuses.
pub fn fits_inline(nats: &async_nats::Client, len: usize) -> bool {
    len <= MIN_INLINE || len <= inline_limit(nats)
}

/// Bytes on offer; dropping it withdraws them.
pub struct Offer {
    header: String,
    inline: Bytes,
    task: tokio::task::JoinHandle<()>,
}

impl Offer {
    /// The `lattice-body` header value that points at this offer.
    pub fn header(&self) -> String {
        self.header.clone()
    }

    /// The payload of the message that carries the header: the body's first chunk.
    pub fn inline(&self) -> Bytes {
        self.inline.clone()
    }

    /// Wait until every chunk was fetched or the deadline passed.
    pub async fn finished(mut self) {
        let _ = (&mut self.task).await;
    }
}

impl Drop for Offer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn unavailable(e: impl std::fmt::Display) -> CallError {
    CallError::new(
        CallErrorKind::Unavailable,
        format!("cannot move a large payload over NATS: {e}"),
    )
}

/// Offer `body` until `deadline`, on a fresh subject under `inbox_prefix` (the
/// offering peer's: `wire::host_inbox_prefix`, `creds::provider_inbox_prefix`),
/// where receivers look for it; its first chunk goes with the message
/// ([`Offer::inline`]), the others are on offer. `body` is longer than one chunk
/// (it did not fit inline).
pub async fn offer(
    nats: &async_nats::Client,
    inbox_prefix: &str,
    body: Bytes,
    deadline: Instant,
) -> Result<Offer, CallError> {
    // 128 random bits: a receiver that saw one offer cannot find another (a
    // connection's inbox tokens follow a sequence).
    let token = format!("{:032x}", rand::random::<u128>());
    let subject = body_subject(inbox_prefix, &token);
    let mut requests = nats.subscribe(subject.clone()).await.map_err(unavailable)?;
    let chunk = inline_limit(nats);
    let total = body.len();
    let count = total.div_ceil(chunk);
    // Chunk 0 travels inline; an offer has at least one chunk after it.
    let first = 1.min(count.saturating_sub(1));
    let offer = BodyOffer {
        subject,
        total: total as u64,
        chunk: chunk as u64,
        first: first as u64,
    };
    let header = offer.encode();
    let inline = body.slice(..offer.inline_len() as usize);
    let nats = nats.clone();
    let task = tokio::spawn(async move {
        let until = tokio::time::Instant::from_std(deadline);
        let mut fetched = vec![false; count];
        let mut left = count - first;
        while left > 0 {
            let Ok(Some(msg)) = tokio::time::timeout_at(until, requests.next()).await else {
                break;
            };
            let Some(reply) = msg.reply else { continue };
            let index = msg
                .headers
                .as_ref()
                .and_then(|h| h.get(names::CHUNK))
                .and_then(|v| v.as_str().parse::<usize>().ok())
                .filter(|i| (first..count).contains(i));
            let Some(i) = index else {
                let mut h = HeaderMap::new();
                h.insert(names::ERROR, CallErrorKind::BadArguments.as_str());
                let text = format!(
                    "no chunk like that: the offer has chunks {first} to {}",
                    count - 1
                );
                let _ = nats.publish_with_headers(reply, h, text.into()).await;
                continue;
            };
            let start = i * chunk;
            let part = body.slice(start..(start + chunk).min(total));
            let _ = nats.publish(reply, part).await;
            if !fetched[i] {
                fetched[i] = true;
                left -= 1;
            }
        }
        let _ = nats.flush().await;
    });
    Ok(Offer {
        header,
        inline,
        task,
    })
}

/// The most bytes one call may carry, and whose limit it is, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub bytes: usize,
    /// Who sets it, e.g. `the host`.
    pub owner: &'static str,
    /// Where, e.g. `--max-call-bytes`.
    pub setting: &'static str,
}

impl Limit {
    /// Why `len` bytes are refused: "the payload is N bytes, over ...".
    pub fn exceeded(&self, what: &str, len: u64) -> CallError {
        CallError::new(
            CallErrorKind::TooLarge,
            format!(
                "{what} {len} bytes, over {}'s limit of {} bytes per call ({})",
                self.owner, self.bytes, self.setting
            ),
        )
    }
}

/// Pull the payload an offer header points at, after the chunks `inline` (the
/// payload of the message with the header) holds, refusing more than `limit`
/// bytes and any subject outside the inbox of `from` in `lattice`.
pub async fn fetch(
    nats: &async_nats::Client,
    lattice: &str,
    from: BodySender<'_>,
    offer: &str,
    inline: &[u8],
    limit: Limit,
    deadline: Instant,
) -> Result<Bytes, CallError> {
    let offer = BodyOffer::parse(offer)
        .map_err(|e| CallError::new(CallErrorKind::BadArguments, e.to_string()))?;
    check_body_subject(lattice, &offer.subject, from)
        .map_err(|e| CallError::new(CallErrorKind::Refused, e.to_string()))?;
    let total = usize::try_from(offer.total)
        .ok()
        .filter(|t| *t <= limit.bytes)
        .ok_or_else(|| limit.exceeded("the payload is", offer.total))?;
    // At most `total`, so it fits.
    let chunk = usize::try_from(offer.chunk)
        .unwrap_or(usize::MAX)
        .min(total.max(1));
    // `first < chunks` (checked by `parse`): the inline bytes are fewer than
    // `total`, which is within the limit.
    let inline_len = offer.inline_len() as usize;
    if inline.len() != inline_len {
        return Err(CallError::new(
            CallErrorKind::BadArguments,
            format!(
                "the message with a large payload's offer carries {} bytes of it; the offer says {inline_len}",
                inline.len()
            ),
        ));
    }
    let first = offer.first as usize;
    let subject = offer.subject.as_str();
    let count = total.div_ceil(chunk);
    let request = |i: usize| {
        let nats = nats.clone();
        let subject = subject.to_owned();
        async move {
            let mut h = HeaderMap::new();
            h.insert(names::CHUNK, i.to_string().as_str());
            let left = deadline.saturating_duration_since(Instant::now());
            let req = async_nats::Request::new().headers(h).timeout(Some(left));
            nats.send_request(subject, req).await.map_err(|e| {
                CallError::new(
                    CallErrorKind::Timeout,
                    format!("chunk {i} of {count} of a large payload did not arrive: {e}"),
                )
            })
        }
    };
    let mut out = BytesMut::with_capacity(total);
    out.extend_from_slice(inline);
    let mut replies = futures::stream::iter(first..count)
        .map(request)
        .buffered(WINDOW);
    let mut i = first;
    while let Some(reply) = replies.next().await {
        let reply = reply?;
        let want = chunk.min(total - i * chunk);
        if reply.payload.len() != want {
            return Err(CallError::new(
                CallErrorKind::Internal,
                format!(
                    "chunk {i} of a large payload has {} bytes, expected {want}",
                    reply.payload.len()
                ),
            ));
        }
        out.extend_from_slice(&reply.payload);
        i += 1;
    }
    Ok(out.freeze())
}
