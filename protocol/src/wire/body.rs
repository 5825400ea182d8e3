//! Payloads too large to travel inline: the `lattice-body` offer header, the
//! `lattice-chunk` index, and where an offer may be fetched from.
//!
//! A receiver fetches an offered body by sending requests to the subject the offer
//! names, with its own credentials. So the subject must be one the protocol made for
//! the sender: under the sender's inbox prefix ([`host_inbox_prefix`] for hosts,
//! [`provider_inbox_prefix`](crate::creds::provider_inbox_prefix) for providers),
//! never a subject a peer picked (`$JS.API.STREAM.DELETE.x`,
//! `lattice.L.ctl.host.N…`), and in its own corner of that inbox,
//! `<prefix>.body.<token>` ([`body_subject`]), apart from the subjects replies
//! arrive on, so a peer allowed to fetch bodies (a provider, from hosts) is not
//! allowed to publish replies. [`check_body_subject`] is that rule.

use super::rpc::{escape_token, headers};
use std::fmt;

/// The smallest chunk an offer may use (unless the whole body is smaller), so a
/// peer cannot make a receiver send one request per byte.
pub const MIN_CHUNK: u64 = 1024;

/// The `lattice-body` header: `<subject> <total bytes> <chunk bytes>`, and
/// `<first chunk on offer>` when the message's own payload carries the chunks
/// before it (so the largest part of a body travels with the call, not after a
/// request for it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyOffer {
    /// Where chunk requests go.
    pub subject: String,
    /// The body's length in bytes.
    pub total: u64,
    /// Each chunk's length (the last may be shorter).
    pub chunk: u64,
    /// The first chunk on offer: chunks `0..first` are the message's payload
    /// ([`BodyOffer::inline_len`] bytes), the rest are fetched. At least one
    /// chunk is on offer (`first < chunks()`).
    pub first: u64,
}

/// Why an offer or a chunk request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// The header is not `<subject> <total> <chunk>` with sensible numbers.
    #[error("malformed {header} header '{text}': {problem}")]
    Malformed {
        /// The header's name.
        header: &'static str,
        /// The header's value (cut to 120 characters).
        text: String,
        /// What is wrong.
        problem: &'static str,
    },
    /// The offer names a subject the sender's inbox prefix does not cover.
    #[error("the body is offered on '{subject}', which is not under {expected}: a body is only fetched from the inbox of the peer that offers it")]
    ForeignSubject {
        /// The subject named.
        subject: String,
        /// Where it should have been, e.g. `_INBOX_default.host.N….`.
        expected: String,
    },
}

impl BodyOffer {
    /// The header value.
    pub fn encode(&self) -> String {
        match self.first {
            0 => format!("{} {} {}", self.subject, self.total, self.chunk),
            first => format!("{} {} {} {first}", self.subject, self.total, self.chunk),
        }
    }

    /// Read a `lattice-body` header value.
    pub fn parse(text: &str) -> Result<Self, BodyError> {
        let bad = |problem| BodyError::Malformed {
            header: headers::BODY,
            text: text.chars().take(120).collect(),
            problem,
        };
        let mut parts = text.split(' ');
        let (Some(subject), Some(total), Some(chunk), first, None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(bad(
                "expected <subject> <total bytes> <chunk bytes> [<first chunk on offer>]",
            ));
        };
        let number = |t: &str| t.parse::<u64>().ok().filter(|_| !t.starts_with('+'));
        let total = number(total).ok_or_else(|| bad("the total is not a number"))?;
        let chunk = number(chunk).ok_or_else(|| bad("the chunk size is not a number"))?;
        if chunk == 0 || (chunk < MIN_CHUNK && chunk < total) {
            return Err(bad(
                "chunks must be at least 1024 bytes (or the whole body)",
            ));
        }
        let first = match first {
            None => 0,
            Some(first) => {
                number(first).ok_or_else(|| bad("the first chunk on offer is not a number"))?
            }
        };
        let offer = Self {
            subject: subject.to_owned(),
            total,
            chunk,
            first,
        };
        if first >= offer.chunks() {
            return Err(bad("no chunk is left on offer after the inline ones"));
        }
        Ok(offer)
    }

    /// How many leading bytes of the body the message's payload carries.
    pub fn inline_len(&self) -> u64 {
        // Below `total` for a parsed offer (`first < chunks()`).
        self.first.saturating_mul(self.chunk)
    }

    /// How many chunks the body has.
    pub fn chunks(&self) -> u64 {
        self.total.div_ceil(self.chunk.max(1))
    }

    /// The length chunk `index` must have, or `None` past the last chunk.
    pub fn chunk_len(&self, index: u64) -> Option<u64> {
        let start = index.checked_mul(self.chunk)?;
        (start < self.total).then(|| self.chunk.min(self.total - start))
    }
}

/// Read a `lattice-chunk` header value: an index below `chunks`.
pub fn parse_chunk_index(text: &str, chunks: u64) -> Result<u64, BodyError> {
    let bad = |problem| BodyError::Malformed {
        header: headers::CHUNK,
        text: text.chars().take(120).collect(),
        problem,
    };
    let index: u64 = text
        .parse()
        .ok()
        .filter(|_| !text.starts_with('+'))
        .ok_or_else(|| bad("not a number"))?;
    if index >= chunks {
        return Err(bad("past the last chunk"));
    }
    Ok(index)
}

/// The inbox prefix of host `host_id`'s connection in `lattice`: its replies and
/// the bodies it offers live under it.
pub fn host_inbox_prefix(lattice: &str, host_id: &str) -> String {
    format!("_INBOX_{lattice}.host.{}", escape_token(host_id))
}

/// The token between an inbox prefix and an offer's own token.
pub const BODY_TOKEN: &str = "body";

/// Where a peer with `inbox_prefix` offers a body: `<prefix>.body.<token>`, with
/// `token` unguessable (a receiver that learns one offer must not find others).
pub fn body_subject(inbox_prefix: &str, token: &str) -> String {
    format!("{inbox_prefix}.{BODY_TOKEN}.{token}")
}

/// Who offers a body, as the receiver of the offer knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodySender<'a> {
    /// A host with this id: a call's arguments from a component (the `lattice-call`
    /// header's host).
    Host(&'a str),
    /// Some host of the lattice: a call's results from a component (any host may
    /// have served it; NATS permissions keep providers from serving components).
    AnyHost,
    /// A provider process: arguments of a provider's call, or results of a call to
    /// a provider.
    Provider {
        /// The provider's app.
        app: &'a str,
        /// The provider's component name.
        name: &'a str,
    },
}

impl fmt::Display for BodySender<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodySender::Host(id) => write!(f, "host {id}"),
            BodySender::AnyHost => f.write_str("a host"),
            BodySender::Provider { app, name } => write!(f, "provider '{name}' of app '{app}'"),
        }
    }
}

/// Whether `subject` (from a [`BodyOffer`]) is a [`body_subject`] of `sender` in
/// `lattice`: its inbox prefix, `body`, then one literal token.
///
/// ```
/// use lattice_protocol::wire::body::{check_body_subject, host_inbox_prefix, BodySender};
///
/// let host = "NBHOST";
/// let inbox = format!("{}.body.abc123", host_inbox_prefix("default", host));
/// assert!(check_body_subject("default", &inbox, BodySender::Host(host)).is_ok());
/// assert!(check_body_subject("default", "$JS.API.STREAM.DELETE.x", BodySender::Host(host)).is_err());
/// assert!(check_body_subject("default", &inbox, BodySender::Host("NOTHER")).is_err());
/// ```
pub fn check_body_subject(
    lattice: &str,
    subject: &str,
    sender: BodySender<'_>,
) -> Result<(), BodyError> {
    let (prefix, rest) = match sender {
        BodySender::Host(id) => {
            let prefix = host_inbox_prefix(lattice, id);
            let rest = subject
                .strip_prefix(&prefix)
                .and_then(|r| r.strip_prefix('.'));
            (format!("{prefix}.{BODY_TOKEN}."), rest)
        }
        BodySender::AnyHost => {
            let prefix = format!("_INBOX_{lattice}.host.");
            let rest = subject.strip_prefix(&prefix).and_then(|r| {
                let (host, rest) = r.split_once('.')?;
                let host_like =
                    host.starts_with('N') && host.bytes().all(|b| b.is_ascii_alphanumeric());
                host_like.then_some(rest)
            });
            (format!("{prefix}<host id>.{BODY_TOKEN}."), rest)
        }
        BodySender::Provider { app, name } => {
            let prefix = crate::creds::provider_inbox_prefix(lattice, app, name);
            let rest = subject
                .strip_prefix(&prefix)
                .and_then(|r| r.strip_prefix('.'));
            (format!("{prefix}.{BODY_TOKEN}."), rest)
        }
    };
    let rest = rest
        .and_then(|r| r.strip_prefix(BODY_TOKEN))
        .and_then(|r| r.strip_prefix('.'));
    let literal = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_graphic() && b != b'*' && b != b'>')
    };
    match rest {
        Some(token) if subject.len() <= 512 && literal(token) && !token.contains('.') => Ok(()),
        _ => Err(BodyError::ForeignSubject {
            subject: subject.chars().take(120).collect(),
            expected: format!("{prefix} (the inbox of {sender})"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offers_round_trip_and_refuse_tiny_chunks() {
        let mut offer = BodyOffer {
            subject: "_INBOX_l.host.N1.x".into(),
            total: 5000,
            chunk: 2048,
            first: 0,
        };
        assert_eq!(BodyOffer::parse(&offer.encode()), Ok(offer.clone()));
        assert_eq!(offer.chunks(), 3);
        assert_eq!((offer.chunk_len(2), offer.chunk_len(3)), (Some(904), None));
        assert!(BodyOffer::parse("s 1000 1000").is_ok());
        // The first chunks in the payload: the header says where the offer starts.
        offer.first = 2;
        assert_eq!(offer.encode(), "_INBOX_l.host.N1.x 5000 2048 2");
        assert_eq!(BodyOffer::parse(&offer.encode()), Ok(offer.clone()));
        assert_eq!(offer.inline_len(), 4096);
        assert_eq!(BodyOffer::parse("s 5000 2048 0").map(|o| o.first), Ok(0));
        for bad in [
            "s 5000 1",
            "s 10 0",
            "s x 10",
            "s 1 +1",
            "s 1",
            // Nothing left on offer, or past the end.
            "s 5000 2048 3",
            "s 5000 2048 9",
            "s 5000 2048 x",
            "s 5000 2048 1 1",
            "s 1 2 3",
        ] {
            assert!(BodyOffer::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_chunk_index("2", 3), Ok(2));
        assert!(parse_chunk_index("3", 3).is_err() && parse_chunk_index("-1", 3).is_err());
    }

    #[test]
    fn bodies_come_only_from_the_senders_inbox() {
        let host = "NHOST1";
        let mine = body_subject(&host_inbox_prefix("l", host), "t1");
        let provider = body_subject(
            &crate::creds::provider_inbox_prefix("l", "shop", "kv"),
            "t2",
        );
        // A reply inbox (`<prefix>.<nuid>.<token>`) is no body.
        let reply = format!("{}.nuid.1", host_inbox_prefix("l", host));
        let as_provider = BodySender::Provider {
            app: "shop",
            name: "kv",
        };
        let cases = [
            (mine.as_str(), BodySender::Host(host), true),
            (mine.as_str(), BodySender::AnyHost, true),
            (mine.as_str(), BodySender::Host("NHOST2"), false),
            (mine.as_str(), as_provider, false),
            (provider.as_str(), as_provider, true),
            (provider.as_str(), BodySender::AnyHost, false),
            (reply.as_str(), BodySender::Host(host), false),
            (
                "_INBOX_l.host.NHOST1.body.a.b",
                BodySender::Host(host),
                false,
            ),
            ("_INBOX_l.host.NHOST1.body", BodySender::Host(host), false),
            ("_INBOX_l.host.NHOST1", BodySender::Host(host), false),
            ("_INBOX_l.host.NHOST1.*", BodySender::Host(host), false),
            ("_INBOX_l.host.NHOST1.a..b", BodySender::Host(host), false),
            ("_INBOX_other.host.NHOST1.x", BodySender::Host(host), false),
            ("_INBOX.x", BodySender::AnyHost, false),
            ("lattice.l.ctl.host.NHOST1", BodySender::AnyHost, false),
            ("$JS.API.STREAM.DELETE.x", as_provider, false),
        ];
        for (subject, sender, ok) in cases {
            let got = check_body_subject("l", subject, sender);
            assert_eq!(got.is_ok(), ok, "{subject} from {sender}: {got:?}");
        }
        let err = check_body_subject("l", "$JS.x", BodySender::Host(host)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the body is offered on '$JS.x', which is not under _INBOX_l.host.NHOST1.body. (the inbox of host NHOST1): a body is only fetched from the inbox of the peer that offers it"
        );
    }
}
