//! Which subjects a guest may use through built-in messaging, which runs on a
//! connection the guest does not own.
//!
//! Refused for everyone: subjects of the lattice itself (`lattice.>`), of NATS
//! itself (any first token starting with `$`: `$JS`, `$KV`, `$O`, `$SYS`, …), and
//! inboxes (`_INBOX.>` and `_INBOX_*.>`, the conventional reply-subject prefixes):
//! a guest's own inboxes are the ones the host makes for its `request` calls, which
//! the guest never names. The one exception is [`SubjectUse::Reply`]: the answer to
//! a message the host handed this guest goes to that message's reply subject,
//! whoever's inbox it is. A subscription pattern is refused when it *could match* a
//! refused subject (`>`, `*.>`, `lattice.*.evt.>`).
//!
//! An app may be narrowed further to subjects under one prefix (`app_prefix`,
//! e.g. `shop.orders`: `shop.orders` itself and everything below it).

/// What the guest does with a subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectUse {
    /// `consumer.publish` or `consumer.request` to this subject.
    Publish,
    /// Subscribe to this subject or pattern (`*` and a final `>` allowed).
    Subscribe,
    /// The reply-to a guest sets on a message it publishes.
    ReplyTo,
    /// Publishing the answer to a message the host delivered to this guest, on that
    /// message's reply subject (which the host, not the guest, vouches for).
    Reply,
}

impl SubjectUse {
    fn verb(self) -> &'static str {
        match self {
            SubjectUse::Publish => "publish to",
            SubjectUse::Subscribe => "subscribe to",
            SubjectUse::ReplyTo => "ask for replies on",
            SubjectUse::Reply => "reply on",
        }
    }
}

/// The longest subject a guest may use, in bytes.
pub const MAX_GUEST_SUBJECT: usize = 1024;

/// Why a guest may not use a subject. `Display` names the subject and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubjectRefusal {
    /// Empty, too long, or with a character subjects cannot hold.
    #[error("'{subject}' is not a valid subject: {rule}")]
    Invalid {
        /// The subject (cut to 120 characters).
        subject: String,
        /// What a valid subject looks like.
        rule: &'static str,
    },
    /// A wildcard where only a literal subject fits.
    #[error("a guest cannot {verb} '{subject}': wildcards (`*`, `>`) are only for subscriptions, and `>` only as the last token")]
    Wildcard {
        /// The subject.
        subject: String,
        /// What the guest tried.
        verb: &'static str,
    },
    /// A subject (or a pattern that could match one) the lattice or NATS uses.
    #[error("a guest cannot {verb} '{subject}': {rule}")]
    Reserved {
        /// The subject.
        subject: String,
        /// What the guest tried.
        verb: &'static str,
        /// The rule, e.g. "subjects under `lattice.>` belong to the lattice itself".
        rule: &'static str,
    },
    /// Outside the app's allowed prefix.
    #[error("a guest of this app cannot {verb} '{subject}': its manifest allows only subjects under '{prefix}'")]
    OutsidePrefix {
        /// The subject.
        subject: String,
        /// What the guest tried.
        verb: &'static str,
        /// The app's prefix.
        prefix: String,
    },
    /// The app's prefix itself is not a literal subject.
    #[error("the app's allowed subject prefix '{prefix}' is not valid: use literal tokens, e.g. shop.orders")]
    BadPrefix {
        /// The prefix as configured.
        prefix: String,
    },
}

const RESERVED: [(&[&str], &str); 4] = [
    (
        &["lattice", ">"],
        "subjects under `lattice.>` belong to the lattice itself",
    ),
    (
        &["_INBOX", ">"],
        "`_INBOX.>` holds other clients' reply inboxes",
    ),
    // `$…` and `_INBOX_…` first tokens are matched by prefix below.
    (
        &["$", ">"],
        "subjects starting with `$` belong to NATS itself ($JS, $KV, $O, $SYS, ...)",
    ),
    (
        &["_INBOX_", ">"],
        "`_INBOX_*.>` holds other clients' reply inboxes",
    ),
];

/// Whether a guest may use `subject` for `kind`, given its app's allowed prefix.
///
/// ```
/// use lattice_protocol::trust::{guest_subject_allowed, SubjectUse};
///
/// assert!(guest_subject_allowed("orders.new", SubjectUse::Publish, None).is_ok());
/// let err = guest_subject_allowed("lattice.default.ctl.host.N1", SubjectUse::Publish, None).unwrap_err();
/// assert!(err.to_string().contains("belong to the lattice itself"));
/// assert!(guest_subject_allowed(">", SubjectUse::Subscribe, None).is_err());
/// assert!(guest_subject_allowed("shop.>", SubjectUse::Subscribe, Some("shop")).is_ok());
/// assert!(guest_subject_allowed("other.x", SubjectUse::Publish, Some("shop")).is_err());
/// ```
pub fn guest_subject_allowed(
    subject: &str,
    kind: SubjectUse,
    app_prefix: Option<&str>,
) -> Result<(), SubjectRefusal> {
    let short = || subject.chars().take(120).collect::<String>();
    let invalid = |rule| SubjectRefusal::Invalid {
        subject: short(),
        rule,
    };
    if subject.is_empty() {
        return Err(invalid("it is empty"));
    }
    if subject.len() > MAX_GUEST_SUBJECT {
        return Err(invalid("it is longer than 1024 bytes"));
    }
    if subject.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("it holds a space or a control character"));
    }
    let tokens: Vec<&str> = subject.split('.').collect();
    if tokens.iter().any(|t| t.is_empty()) {
        return Err(invalid(
            "it has an empty token (a leading, trailing or double '.')",
        ));
    }
    let verb = kind.verb();
    let wildcard = |t: &&str| t.contains(['*', '>']);
    let misplaced = tokens.iter().enumerate().any(|(i, t)| {
        (t.contains('*') && *t != "*") || (t.contains('>') && (*t != ">" || i + 1 != tokens.len()))
    });
    if misplaced || (kind != SubjectUse::Subscribe && tokens.iter().any(wildcard)) {
        return Err(SubjectRefusal::Wildcard {
            subject: short(),
            verb,
        });
    }
    for (pattern, rule) in RESERVED {
        if kind == SubjectUse::Reply && pattern[0].starts_with("_INBOX") {
            continue; // the reply subject of a delivered message is usually an inbox
        }
        if overlaps(&tokens, pattern) {
            return Err(SubjectRefusal::Reserved {
                subject: short(),
                verb,
                rule,
            });
        }
    }
    match app_prefix {
        // A reply goes where the requester asked: the prefix does not narrow it.
        Some(prefix) if kind != SubjectUse::Reply => within(&tokens, prefix).map_err(|bad| {
            if bad {
                SubjectRefusal::BadPrefix {
                    prefix: prefix.to_owned(),
                }
            } else {
                SubjectRefusal::OutsidePrefix {
                    subject: short(),
                    verb,
                    prefix: prefix.to_owned(),
                }
            }
        }),
        _ => Ok(()),
    }
}

/// Whether some subject matches both `tokens` and the reserved `pattern`. A first
/// token `$` or `_INBOX_` in the pattern stands for any token starting with it,
/// followed by anything (even nothing).
fn overlaps(tokens: &[&str], pattern: &[&str]) -> bool {
    match (tokens, pattern[0]) {
        ([], _) => false,
        ([">", ..], _) => true,
        ([first, ..], prefix @ ("$" | "_INBOX_")) => *first == "*" || first.starts_with(prefix),
        ([first, rest @ ..], literal) => {
            (*first == "*" || *first == literal) && match_rest(rest, &pattern[1..])
        }
    }
}

fn match_rest(a: &[&str], b: &[&str]) -> bool {
    match (a.first(), b.first()) {
        (None, None) => true,
        (Some(&">"), Some(_)) | (Some(_), Some(&">")) => true,
        (None, _) | (_, None) => false,
        (Some(x), Some(y)) => (*x == "*" || *y == "*" || x == y) && match_rest(&a[1..], &b[1..]),
    }
}

/// `Ok` when every subject `tokens` can match lies at or under `prefix`;
/// `Err(true)` when the prefix itself is not literal, `Err(false)` when outside.
fn within(tokens: &[&str], prefix: &str) -> Result<(), bool> {
    let prefix = prefix.strip_suffix(".>").unwrap_or(prefix);
    let parts: Vec<&str> = prefix.split('.').collect();
    let literal =
        |t: &&str| !t.is_empty() && !t.contains(['*', '>']) && !t.contains(char::is_whitespace);
    if !parts.iter().all(literal) {
        return Err(true);
    }
    let inside = tokens.len() >= parts.len() && tokens.iter().zip(&parts).all(|(t, p)| t == p);
    inside.then_some(()).ok_or(false)
}
