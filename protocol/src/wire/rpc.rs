//! The envelope of a cross-host call: its subject, header names, error kinds and the
//! signature both sides must agree on. Transport itself lives in the host.
//!
//! A call to `place-order` of `example:shop/orders` exported by component `business`
//! of app `shop` in lattice `default`, made by a component on host `NH…`, travels on
//! `lattice.default.rpch.NH….shop.business.example.shop.orders.place-order`, with
//! the encoded arguments ([`encode_args`](super::encode_args)) as payload. The
//! subject names its sender (a host, or a provider on `rpcp`), and each sender's
//! NATS user may publish only under its own name, so the callee can check the
//! `lattice-call` header against it ([`check_caller`]).

use super::types::WitType;
use std::borrow::Cow;
use std::fmt::Write as _;

/// Where a call goes: a function of an interface exported by one component of an app.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CallTarget {
    /// The target's app.
    pub app: String,
    /// The target component's name in the manifest.
    pub component: String,
    /// `example` in `example:shop/orders`.
    pub namespace: String,
    /// `shop` in `example:shop/orders`.
    pub package: String,
    /// `orders` in `example:shop/orders`.
    pub interface: String,
    /// The function's name in the interface, e.g. `place-order`.
    pub function: String,
}

impl CallTarget {
    /// The function as people and spans name it: `ns:pkg/iface.function`.
    pub fn function_name(&self) -> String {
        format!(
            "{}:{}/{}.{}",
            self.namespace, self.package, self.interface, self.function
        )
    }

    /// Read a subject made by [`host_call_subject`], [`locality_subject`] or
    /// [`provider_call_subject`]: `(lattice, target)`, or `None` for anything else
    /// (wrong shape, or a token that is not canonically escaped). Callees use
    /// [`parse_call_subject`], which also says who the subject names as the caller.
    pub fn parse_subject(subject: &str) -> Option<(&str, CallTarget)> {
        parse_call_subject(subject).map(|r| (r.lattice, r.target))
    }

    fn parse_route(subject: &str) -> Option<CallRoute<'_>> {
        let mut tokens = subject.split('.');
        let (Some("lattice"), Some(lattice)) = (tokens.next(), tokens.next()) else {
            return None;
        };
        match tokens.next()? {
            // A host's calls: the calling host, then the target.
            "rpch" => {
                let host = unescape_token(tokens.next()?)?;
                finish(lattice, tokens, SubjectCaller::Host(host))
            }
            // Locality subjects: the calling host, the label's key and value,
            // then the target.
            "rpchl" => {
                let host = unescape_token(tokens.next()?)?;
                unescape_token(tokens.next()?)?;
                unescape_token(tokens.next()?)?;
                finish(lattice, tokens, SubjectCaller::Host(host))
            }
            // A provider's calls: the app (the target's too), the provider's
            // name, then the target's component and the rest.
            "rpcp" => {
                let app = tokens.next()?;
                let provider = unescape_token(tokens.next()?)?;
                finish(
                    lattice,
                    std::iter::once(app).chain(tokens),
                    SubjectCaller::Provider(provider),
                )
            }
            // A person's call through the CLI (`lattice call`): the target only.
            "rpcc" => finish(lattice, tokens, SubjectCaller::Cli),
            _ => None,
        }
    }

    fn parts(&self) -> [&str; 6] {
        [
            &self.app,
            &self.component,
            &self.namespace,
            &self.package,
            &self.interface,
            &self.function,
        ]
    }
}

/// The six target parts after the subject's prefix; exactly six.
fn finish<'a>(
    lattice: &'a str,
    tokens: impl Iterator<Item = &'a str>,
    caller: SubjectCaller,
) -> Option<CallRoute<'a>> {
    let mut parts = tokens.map(unescape_token);
    let mut next = || parts.next().flatten();
    let target = CallTarget {
        app: next()?,
        component: next()?,
        namespace: next()?,
        package: next()?,
        interface: next()?,
        function: next()?,
    };
    // Exactly six parts: a seventh token, valid or not, is refused.
    parts.next().is_none().then_some(CallRoute {
        lattice,
        target,
        caller,
    })
}

/// A call subject, read by [`parse_call_subject`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRoute<'a> {
    /// The lattice.
    pub lattice: &'a str,
    /// The function called.
    pub target: CallTarget,
    /// Who the subject says makes the call. A host's NATS user may publish calls
    /// only under its own id, a provider's only under its own name, so NATS
    /// vouches for this where the lattice runs with per-role credentials.
    pub caller: SubjectCaller,
}

/// The caller a call subject names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectCaller {
    /// A host, by id, on a [`host_call_subject`] or [`locality_subject`]: a call
    /// from one of the components it runs.
    Host(String),
    /// A provider of the target's app, by name, on a [`provider_call_subject`].
    Provider(String),
    /// A person through the CLI (`lattice call`), on a [`cli_call_subject`]: only
    /// the CLI's user may publish those.
    Cli,
}

/// What a call from the CLI says in its [`CallHeader`] as host, component and link.
pub const CLI_CALLER: &str = "cli";

/// Read any call subject ([`host_call_subject`], [`locality_subject`],
/// [`provider_call_subject`]); `None` for anything else.
pub fn parse_call_subject(subject: &str) -> Option<CallRoute<'_>> {
    CallTarget::parse_route(subject)
}

/// The subject a call from a component on host `host` (its id) travels on:
/// `lattice.<L>.rpch.<host>.<app>.<component>.<ns>.<pkg>.<iface>.<fn>`, each part
/// after `rpch` one token escaped by [`escape_token`]. A host's user may publish
/// only `lattice.<L>.rpch.<its id>.>` ([`host_permissions`](crate::creds::roles::host_permissions)),
/// so the host token is the sender's, whatever its `lattice-call` header says.
/// `lattice` is a valid lattice name (see [`crate::subjects::valid_lattice_name`]).
pub fn host_call_subject(lattice: &str, host: &str, target: &CallTarget) -> String {
    let mut s = format!("lattice.{lattice}.rpch.{}", escape_token(host));
    for part in target.parts() {
        s.push('.');
        s.push_str(&escape_token(part));
    }
    s
}

/// The subject a provider's call to a component of its app travels on:
/// `lattice.<L>.rpcp.<app>.<provider>.<component>.<ns>.<pkg>.<iface>.<fn>`. A
/// provider's user may publish only `lattice.<L>.rpcp.<app>.<provider>.>`
/// ([`provider_permissions`](crate::creds::provider_permissions)), so the caller
/// token is its own name, whatever its `lattice-call` header says.
pub fn provider_call_subject(lattice: &str, provider: &str, target: &CallTarget) -> String {
    let mut s = format!(
        "lattice.{lattice}.rpcp.{}.{}",
        escape_token(&target.app),
        escape_token(provider)
    );
    for part in &target.parts()[1..] {
        s.push('.');
        s.push_str(&escape_token(part));
    }
    s
}

/// The subject of a call a person makes through the CLI (`lattice call`):
/// `lattice.<L>.rpcc.<app>.<component>.<ns>.<pkg>.<iface>.<fn>`. Only the CLI's
/// user may publish `lattice.<L>.rpcc.>`
/// ([`cli_permissions`](crate::creds::roles::cli_permissions)); no link is needed,
/// since whoever holds the CLI's credentials may deploy anything anyway.
pub fn cli_call_subject(lattice: &str, target: &CallTarget) -> String {
    let mut s = format!("lattice.{lattice}.rpcc");
    for part in target.parts() {
        s.push('.');
        s.push_str(&escape_token(part));
    }
    s
}

/// What every component a host runs subscribes to (in queue group [`RPC_QUEUE`])
/// for calls from the CLI: `lattice.<L>.rpcc.<app>.<component>.>`.
pub fn cli_call_wildcard(lattice: &str, app: &str, component: &str) -> String {
    format!(
        "lattice.{lattice}.rpcc.{}.{}.>",
        escape_token(app),
        escape_token(component)
    )
}

/// What one serving component subscribes to (in queue group [`RPC_QUEUE`]) for
/// calls from its app's providers: `lattice.<L>.rpcp.<app>.*.<component>.>`.
pub fn provider_call_wildcard(lattice: &str, app: &str, component: &str) -> String {
    format!(
        "lattice.{lattice}.rpcp.{}.*.{}.>",
        escape_token(app),
        escape_token(component)
    )
}

/// Whether the `lattice-call` header of a call agrees with what NATS vouches for
/// about its sender; the error says why not. `route` is the subject the call came
/// on, `is_provider` says whether a component of the target's app is a provider.
///
/// - On a provider's subject ([`provider_call_subject`]) the header must name that
///   provider: a provider cannot speak for another provider or for a component.
/// - On a host's subject ([`host_call_subject`], [`locality_subject`]) the header's
///   host must be the subject's: a host cannot speak for another host (whose id
///   also says where chunked arguments are fetched from). And the header must not
///   name one of the app's providers: providers call on their own subjects only,
///   so a call naming one anywhere else is forged.
pub fn check_caller(
    route: &CallRoute<'_>,
    header: &CallHeader,
    is_provider: impl Fn(&str) -> bool,
) -> Result<(), String> {
    match &route.caller {
        SubjectCaller::Provider(provider) if header.component != *provider => Err(format!(
            "the call came on provider '{provider}'s subject but says it is from '{}'",
            header.component
        )),
        SubjectCaller::Provider(_) => Ok(()),
        SubjectCaller::Host(host) if header.host != *host => Err(format!(
            "the call came on host '{host}'s subject but says it is from host '{}' (lattice.<L>.rpch.<host>.…)",
            header.host
        )),
        SubjectCaller::Host(_) if is_provider(&header.component) => Err(format!(
            "the call says it is from provider '{}' but did not come on that provider's subject (lattice.<L>.rpcp.<app>.<provider>.…)",
            header.component
        )),
        SubjectCaller::Host(_) => Ok(()),
        SubjectCaller::Cli
            if header.host != CLI_CALLER
                || header.component != CLI_CALLER
                || header.app != route.target.app =>
        {
            Err(format!(
                "the call came on the CLI's subject (lattice.<L>.rpcc.…) but says it is from component '{}' of app '{}' on host '{}'",
                header.component, header.app, header.host
            ))
        }
        SubjectCaller::Cli => Ok(()),
    }
}

/// The first checks of every served call, in order, the same for a host and a
/// provider: the subject is a call subject of `component` of `app` (`callee`
/// names it in messages, e.g. `'echo'` or `provider 'kv'`); the call has a
/// well-formed `lattice-call` header (`header`); the header agrees with the
/// subject ([`check_caller`]). What follows (links, signature, size) is the
/// callee's.
pub fn read_call<'a>(
    subject: &'a str,
    header: Option<&str>,
    app: &str,
    component: &str,
    callee: impl FnOnce() -> String,
    is_provider: impl Fn(&str) -> bool,
) -> Result<(CallRoute<'a>, CallHeader), String> {
    let route = parse_call_subject(subject)
        .filter(|r| r.target.app == app && r.target.component == component)
        .ok_or_else(|| format!("'{subject}' is not a call subject of {}", callee()))?;
    let header = header
        .ok_or_else(|| {
            format!(
                "it has no {} header, and no call header line starts its payload",
                headers::CALL
            )
        })
        .and_then(CallHeader::parse)
        .map_err(|e| format!("the call does not say who makes it: {e}"))?;
    check_caller(&route, &header, is_provider)?;
    Ok((route, header))
}

/// What one serving component (or provider) subscribes to, in queue group
/// [`RPC_QUEUE`], for calls from components on any host: every function of every
/// interface it exports, `lattice.<L>.rpch.*.<app>.<component>.>`.
pub fn host_call_wildcard(lattice: &str, app: &str, component: &str) -> String {
    format!(
        "lattice.{lattice}.rpch.*.{}.{}.>",
        escape_token(app),
        escape_token(component)
    )
}

/// Queue group of a component's serving instances, on every host.
pub const RPC_QUEUE: &str = "rpc";

/// One NATS subject token from any string: `A`-`Z`, `a`-`z`, `0`-`9` and `-` stay as
/// they are (so WIT identifiers and app names read as themselves); every other byte of
/// the UTF-8 text becomes `_` and two lowercase hex digits (`.` → `_2e`, `_` → `_5f`,
/// `[static]` → `_5bstatic_5d`); the empty string becomes `_`.
/// Borrowed when nothing needs escaping, as for most names.
pub fn escape_token(s: &str) -> Cow<'_, str> {
    if s.is_empty() {
        return Cow::Borrowed("_");
    }
    if all_plain(s) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for b in s.bytes() {
        if plain(b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "_{b:02x}");
        }
    }
    Cow::Owned(out)
}

/// The inverse of [`escape_token`]; `None` for a token it would never produce.
pub fn unescape_token(token: &str) -> Option<String> {
    if token == "_" {
        return Some(String::new());
    }
    // Most tokens (names, ids) have nothing escaped.
    if !token.is_empty() && all_plain(token) {
        return Some(token.to_owned());
    }
    let mut bytes = Vec::with_capacity(token.len());
    let mut rest = token.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if plain(b) {
            bytes.push(b);
            rest = tail;
            continue;
        }
        let [b'_', hi, lo, tail @ ..] = rest else {
            return None;
        };
        let byte = (hex(*hi)? << 4) | hex(*lo)?;
        if plain(byte) {
            return None; // not canonical: this byte is never escaped
        }
        bytes.push(byte);
        rest = tail;
    }
    if bytes.is_empty() {
        return None;
    }
    String::from_utf8(bytes).ok()
}

fn plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}

/// Whether every byte of `s` is [`plain`]: without stopping at the first that
/// is not, so the check runs on whole vectors (host keys and trace contexts are
/// 55-56 bytes, and every call's subject and header hold several).
fn all_plain(s: &str) -> bool {
    s.bytes().fold(true, |all, b| all & plain(b))
}

fn hex(d: u8) -> Option<u8> {
    match d {
        b'0'..=b'9' => Some(d - b'0'),
        b'a'..=b'f' => Some(d - b'a' + 10),
        _ => None,
    }
}

/// NATS header names of a call (request) and its reply.
pub mod headers {
    /// Who calls, through which link, against which signature and for how long:
    /// a [`CallHeader`](super::CallHeader). One header rather than six, since
    /// every header costs the server and both clients on every call.
    pub const CALL: &str = "lattice-call";
    /// W3C trace context, as peers before the `lattice-call` header carried it
    /// (read when that header has no trace token; never sent).
    pub const TRACEPARENT: &str = "traceparent";
    /// W3C trace context, vendor part (passed on when present).
    pub const TRACESTATE: &str = "tracestate";
    /// On a reply: the call failed, of this [`CallErrorKind`](super::CallErrorKind);
    /// the payload is a UTF-8 message for people.
    pub const ERROR: &str = "lattice-error";
    /// The payload is not inline but offered in chunks: `<subject> <total bytes>
    /// <chunk bytes>`; fetch chunk `i` by a request to `<subject>` with header
    /// [`CHUNK`] = `i`.
    pub const BODY: &str = "lattice-body";
    /// On a chunk request: the chunk's index, from 0.
    pub const CHUNK: &str = "lattice-chunk";
    /// On a call from the CLI (`lattice.<L>.rpcc.…`) with an empty payload: do not
    /// call, answer the function's signature as JSON (a
    /// [`Signature`](crate::wire::types::Signature)) so the CLI can read and write
    /// its values.
    pub const DESCRIBE: &str = "lattice-describe";
}

/// The `lattice-call` header of a request: six or seven space-separated tokens,
/// each [`escape_token`]-escaped:
///
/// ```text
/// <caller host key> <caller app> <caller component> <link name> <signature fingerprint> <timeout ms> [<traceparent>]
/// ```
///
/// The seventh token, the caller's W3C trace context, is optional (older peers
/// sent it as a `traceparent` header of its own). It lives here because every
/// header costs the server and both clients on every call, and because
/// nats-server builds a map of every message's headers when they hold a sampled
/// `traceparent` (for its own message tracing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallHeader {
    /// The calling host's public nkey.
    pub host: String,
    /// The caller's app.
    pub app: String,
    /// The calling component's name in the manifest.
    pub component: String,
    /// The name of the link the call travels (`default` unless named).
    pub link: String,
    /// [`signature_fingerprint`] of the function as the caller was built against it.
    pub signature: String,
    /// How long the caller waits: the callee gives up after it too.
    pub timeout_ms: u64,
    /// The W3C `traceparent` of the caller's span for this call, as sent (the
    /// callee reads it with `TraceContext::parse` and starts a new trace when it
    /// is malformed).
    pub trace: Option<String>,
}

impl CallHeader {
    /// The header value.
    pub fn encode(&self) -> String {
        Self::encode_parts(
            &self.host,
            &self.app,
            &self.component,
            &self.link,
            &self.signature,
            self.timeout_ms,
            self.trace.as_deref(),
        )
    }

    /// The header value of a `CallHeader` with these fields, without making one:
    /// a caller builds one per call.
    pub fn encode_parts(
        host: &str,
        app: &str,
        component: &str,
        link: &str,
        signature: &str,
        timeout_ms: u64,
        trace: Option<&str>,
    ) -> String {
        let trace_len = trace.map_or(0, |t| t.len() + 1);
        let mut out = String::with_capacity(
            host.len()
                + app.len()
                + component.len()
                + link.len()
                + signature.len()
                + 26
                + trace_len,
        );
        for part in [host, app, component, link, signature] {
            out.push_str(&escape_token(part));
            out.push(' ');
        }
        let _ = write!(out, "{timeout_ms}");
        if let Some(trace) = trace {
            out.push(' ');
            out.push_str(&escape_token(trace));
        }
        out
    }

    /// The trace token of a header's `text` as sent, when it has one: for a
    /// callee that starts the call's span before it reads the rest.
    pub fn trace_of(text: &str) -> Option<&str> {
        let mut tokens = text.split(' ');
        let trace = tokens.nth(6)?;
        tokens.next().is_none().then_some(trace)
    }

    /// Read a header made by [`CallHeader::encode`]; the error says what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        // The parts, without collecting them: a callee reads one header per call.
        let mut parts = [""; 7];
        let mut count = 0;
        for part in text.split(' ') {
            if let Some(slot) = parts.get_mut(count) {
                *slot = part;
            }
            count += 1;
        }
        let [host, app, component, link, signature, timeout, trace] = parts;
        let trace = match count {
            6 => None,
            7 => Some(trace),
            _ => {
                return Err(format!(
                    "the {} header has {count} parts, expected 6 or 7: host app component link signature timeout-ms [traceparent]",
                    headers::CALL,
                ))
            }
        };
        let token = |t: &str| {
            unescape_token(t).ok_or_else(|| {
                format!("'{t}' in the {} header is not a valid token", headers::CALL)
            })
        };
        Ok(Self {
            host: token(host)?,
            app: token(app)?,
            component: token(component)?,
            link: token(link)?,
            signature: token(signature)?,
            timeout_ms: timeout.parse().map_err(|_| {
                format!(
                    "timeout '{timeout}' in the {} header is not a number",
                    headers::CALL
                )
            })?,
            trace: trace.map(token).transpose()?,
        })
    }
}

/// How far into a request without headers its call header line may end. A
/// call header made from a valid manifest is at most about 1.1 KiB: app and
/// component names are DNS labels, a link name at most 253 bytes (each
/// escaped byte three characters), the host key 56, the trace context 55.
pub const MAX_CALL_LINE: usize = 4096;

/// The call header of a request without headers: the payload's first line, and
/// where the arguments after it start; `None` when no line of UTF-8 ends within
/// [`MAX_CALL_LINE`] bytes. (No token of a call header holds a newline.)
pub fn split_call_line(payload: &[u8]) -> Option<(&str, usize)> {
    let head = &payload[..payload.len().min(MAX_CALL_LINE)];
    let nl = head.iter().position(|b| *b == b'\n')?;
    let line = std::str::from_utf8(&head[..nl]).ok()?;
    Some((line, nl + 1))
}

/// Locality-preferring variant of [`host_call_subject`]: served by the target's
/// instances on hosts whose label `key` is `value`.
/// `lattice.<L>.rpchl.<host>.<key>.<value>.<app>.<component>.<ns>.<pkg>.<iface>.<fn>`;
/// a host's user may publish only `lattice.<L>.rpchl.<its id>.>`.
pub fn locality_subject(
    lattice: &str,
    host: &str,
    key: &str,
    value: &str,
    target: &CallTarget,
) -> String {
    let mut s = format!(
        "lattice.{lattice}.rpchl.{}.{}.{}",
        escape_token(host),
        escape_token(key),
        escape_token(value)
    );
    for part in target.parts() {
        s.push('.');
        s.push_str(&escape_token(part));
    }
    s
}

/// What one serving component subscribes to on a host whose label `key` is `value`:
/// `lattice.<L>.rpchl.*.<key>.<value>.<app>.<component>.>`.
pub fn locality_component_wildcard(
    lattice: &str,
    key: &str,
    value: &str,
    app: &str,
    component: &str,
) -> String {
    format!(
        "lattice.{lattice}.rpchl.*.{}.{}.{}.{}.>",
        escape_token(key),
        escape_token(value),
        escape_token(app),
        escape_token(component)
    )
}

/// Why a call failed, as the `lattice-error` reply header says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallErrorKind {
    /// No deployed link allows this caller to call this function.
    Refused,
    /// Caller and callee disagree on the function's signature (fingerprints differ).
    Signature,
    /// The payload did not decode against the function's parameters.
    BadArguments,
    /// The callee trapped.
    Trap,
    /// The callee did not finish in time.
    Timeout,
    /// The callee has no free instance and its queue is full.
    Overloaded,
    /// The callee's host failed otherwise.
    Internal,
    /// Caller side: no instance of the target answers anywhere in the lattice.
    Unavailable,
    /// Caller side: the calling component has no link for the interface.
    NoLink,
    /// Arguments or results are over the host's `max_call_bytes`.
    TooLarge,
}

impl CallErrorKind {
    /// Every kind, for tables and tests.
    pub const ALL: [CallErrorKind; 10] = [
        CallErrorKind::Refused,
        CallErrorKind::Signature,
        CallErrorKind::BadArguments,
        CallErrorKind::Trap,
        CallErrorKind::Timeout,
        CallErrorKind::Overloaded,
        CallErrorKind::Internal,
        CallErrorKind::Unavailable,
        CallErrorKind::NoLink,
        CallErrorKind::TooLarge,
    ];

    /// The kind as the `lattice-error` header says it.
    pub fn as_str(self) -> &'static str {
        match self {
            CallErrorKind::Refused => "refused",
            CallErrorKind::Signature => "signature",
            CallErrorKind::BadArguments => "bad-arguments",
            CallErrorKind::Trap => "trap",
            CallErrorKind::Timeout => "timeout",
            CallErrorKind::Overloaded => "overloaded",
            CallErrorKind::Internal => "internal",
            CallErrorKind::Unavailable => "unavailable",
            CallErrorKind::NoLink => "no-link",
            CallErrorKind::TooLarge => "too-large",
        }
    }

    /// Read a `lattice-error` header value.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// The canonical text of a function type: `func(u64, string) -> result<u8, string>`
/// (params in order, `, `-separated; ` -> T` for one result, ` -> (T, U)` for several,
/// nothing for none), each type as its [`Display`](WitType#impl-Display-for-WitType).
pub fn signature(params: &[WitType], results: &[WitType]) -> String {
    let join = |types: &[WitType]| {
        types
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    match results {
        [] => format!("func({})", join(params)),
        [one] => format!("func({}) -> {one}", join(params)),
        many => format!("func({}) -> ({})", join(params), join(many)),
    }
}

/// 64-bit FNV-1a of [`signature`]'s UTF-8 text, as 16 lowercase hex digits. The wire
/// encoding carries no names or kinds, so both sides compare this before decoding.
pub fn signature_fingerprint(params: &[WitType], results: &[WitType]) -> String {
    let hash = signature(params, results)
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(function: &str) -> CallTarget {
        CallTarget {
            app: "shop".into(),
            component: "business".into(),
            namespace: "example".into(),
            package: "shop".into(),
            interface: "orders".into(),
            function: function.into(),
        }
    }

    #[test]
    fn a_served_call_is_read_in_order_subject_header_caller() {
        let t = target("place-order");
        let header = |host: &str, component: &str| {
            CallHeader {
                host: host.into(),
                app: "shop".into(),
                component: component.into(),
                link: "default".into(),
                signature: "0123".into(),
                timeout_ms: 1000,
                trace: None,
            }
            .encode()
        };
        let from_host = host_call_subject("default", "NA", &t);
        let from_kv = provider_call_subject("default", "kv", &t);
        let mut other = t.clone();
        other.component = "other".into();
        let elsewhere = host_call_subject("default", "NA", &other);
        let good = header("NA", "web");
        // (what, subject, header, Ok or a part of the refusal)
        type Case<'a> = (&'a str, &'a str, Option<String>, Result<(), &'a str>);
        let cases: [Case; 7] = [
            ("a host's call", &from_host, Some(good.clone()), Ok(())),
            (
                "a provider's call",
                &from_kv,
                Some(header("NA", "kv")),
                Ok(()),
            ),
            (
                "another component's subject",
                &elsewhere,
                Some(good.clone()),
                Err("is not a call subject of 'business'"),
            ),
            (
                "no header",
                &from_host,
                None,
                Err("the call does not say who makes it: it has no lattice-call header, and no call header line starts its payload"),
            ),
            (
                "a bad header",
                &from_host,
                Some("x".into()),
                Err("the call does not say who makes it"),
            ),
            (
                "another host's name",
                &from_host,
                Some(header("NB", "web")),
                Err("came on host 'NA's subject but says it is from host 'NB'"),
            ),
            (
                "a provider on a host's subject",
                &from_host,
                Some(header("NA", "kv")),
                Err("says it is from provider 'kv' but did not come on that provider's subject"),
            ),
        ];
        for (what, subject, header, want) in cases {
            let got = read_call(
                subject,
                header.as_deref(),
                "shop",
                "business",
                || "'business'".to_owned(),
                |c| c == "kv",
            );
            match (got, want) {
                (Ok((route, h)), Ok(())) => {
                    assert_eq!(route.target, t, "{what}");
                    assert_eq!(h.app, "shop", "{what}");
                }
                (Err(e), Err(want)) => assert!(e.contains(want), "{what}: {e}"),
                (got, want) => panic!("{what}: got {:?}, want {want:?}", got.map(|_| ())),
            }
        }
    }

    #[test]
    fn subjects_read_as_wit_names_and_name_the_calling_host() {
        let t = target("place-order");
        let s = host_call_subject("default", "NHOSTA", &t);
        assert_eq!(
            s,
            "lattice.default.rpch.NHOSTA.shop.business.example.shop.orders.place-order"
        );
        assert_eq!(CallTarget::parse_subject(&s), Some(("default", t.clone())));
        let route = parse_call_subject(&s).unwrap();
        assert_eq!(route.caller, SubjectCaller::Host("NHOSTA".into()));
        assert_eq!(
            host_call_wildcard("default", "shop", "business"),
            "lattice.default.rpch.*.shop.business.>"
        );
        let near = locality_subject("default", "NHOSTA", "zone", "eu-1a", &t);
        assert_eq!(
            near,
            "lattice.default.rpchl.NHOSTA.zone.eu-1a.shop.business.example.shop.orders.place-order"
        );
        let route = parse_call_subject(&near).unwrap();
        assert_eq!((route.lattice, &route.target), ("default", &t));
        assert_eq!(route.caller, SubjectCaller::Host("NHOSTA".into()));
        assert_eq!(
            locality_component_wildcard("default", "zone", "eu.1", "shop", "business"),
            "lattice.default.rpchl.*.zone.eu_2e1.shop.business.>"
        );
        // The old subjects, which named no sender, are not call subjects.
        for old in [
            "lattice.default.rpc.shop.business.example.shop.orders.place-order",
            "lattice.default.rpcl.zone.a.shop.business.example.shop.orders.place-order",
            "lattice.default.rpch.shop.business.example.shop.orders.place-order",
            "lattice.default.rpchl.NH.zone.shop.business.example.shop.orders.place-order",
        ] {
            assert_eq!(parse_call_subject(old), None, "{old}");
        }
    }

    #[test]
    fn a_providers_call_subject_names_the_provider() {
        let t = target("place-order");
        let s = provider_call_subject("default", "gate.way", &t);
        assert_eq!(
            s,
            "lattice.default.rpcp.shop.gate_2eway.business.example.shop.orders.place-order"
        );
        let route = parse_call_subject(&s).unwrap();
        assert_eq!(route.target, t);
        assert_eq!(route.caller, SubjectCaller::Provider("gate.way".into()));
        assert_eq!(
            provider_call_wildcard("default", "shop", "business"),
            "lattice.default.rpcp.shop.*.business.>"
        );
        assert_eq!(
            parse_call_subject("lattice.l.rpcp.shop.gw.a.b.c.d"),
            None,
            "five parts after the provider"
        );
    }

    #[test]
    fn the_clis_call_subject_names_only_the_target() {
        let t = target("place-order");
        let s = cli_call_subject("default", &t);
        assert_eq!(
            s,
            "lattice.default.rpcc.shop.business.example.shop.orders.place-order"
        );
        let route = parse_call_subject(&s).unwrap();
        assert_eq!((route.lattice, &route.target), ("default", &t));
        assert_eq!(route.caller, SubjectCaller::Cli);
        assert_eq!(
            cli_call_wildcard("default", "shop", "business"),
            "lattice.default.rpcc.shop.business.>"
        );
        assert_eq!(parse_call_subject("lattice.l.rpcc.shop.a.b.c.d"), None);
    }

    #[test]
    fn the_header_must_agree_with_the_sender_the_subject_names() {
        let t = target("place-order");
        let from_cli = cli_call_subject("default", &t);
        let from_provider = provider_call_subject("default", "gate.way", &t);
        let from_host = host_call_subject("default", "NHOSTA", &t);
        let near_host = locality_subject("default", "NHOSTA", "zone", "a", &t);
        let header = |host: &str, component: &str| CallHeader {
            host: host.into(),
            app: "shop".into(),
            component: component.into(),
            link: "default".into(),
            signature: "f".into(),
            timeout_ms: 1,
            trace: None,
        };
        let providers = |c: &str| c == "gate.way" || c == "kv";
        #[rustfmt::skip]
        let table: &[(&str, &str, &str, Result<(), &str>)] = &[
            // A provider speaks only for itself (whatever host it names).
            (&from_provider, "NHOSTA", "gate.way", Ok(())),
            (&from_provider, "NHOSTB", "gate.way", Ok(())),
            (&from_provider, "NHOSTA", "kv", Err("came on provider 'gate.way's subject but says it is from 'kv'")),
            (&from_provider, "NHOSTA", "auth", Err("says it is from 'auth'")),
            // A host speaks only for itself, and for components, never a provider.
            (&from_host, "NHOSTA", "auth", Ok(())),
            (&near_host, "NHOSTA", "auth", Ok(())),
            (&from_host, "NHOSTB", "auth", Err("came on host 'NHOSTA's subject but says it is from host 'NHOSTB'")),
            (&near_host, "NHOSTB", "auth", Err("came on host 'NHOSTA's subject but says it is from host 'NHOSTB'")),
            (&from_host, "NHOSTA", "kv", Err("says it is from provider 'kv' but did not come on that provider's subject")),
            (&near_host, "NHOSTA", "gate.way", Err("says it is from provider 'gate.way'")),
            (&from_host, "NHOSTB", "kv", Err("says it is from host 'NHOSTB'")),
            // The CLI says it is the CLI, calling into the target's app.
            (&from_cli, CLI_CALLER, CLI_CALLER, Ok(())),
            (&from_cli, "NHOSTA", CLI_CALLER, Err("came on the CLI's subject")),
            (&from_cli, CLI_CALLER, "auth", Err("says it is from component 'auth'")),
            (&from_host, CLI_CALLER, CLI_CALLER, Err("says it is from host 'cli'")),
        ];
        for (subject, host, component, expected) in table {
            let route = parse_call_subject(subject).unwrap();
            let got = check_caller(&route, &header(host, component), providers);
            match (expected, &got) {
                (Ok(()), Ok(())) => {}
                (Err(part), Err(e)) if e.contains(part) => {}
                _ => {
                    panic!("{subject} from {host}/{component}: expected {expected:?}, got {got:?}")
                }
            }
        }
    }

    #[test]
    fn odd_names_are_escaped_reversibly() {
        let t = target("[static]cart.new");
        let s = host_call_subject("l", "N.1", &t);
        assert_eq!(
            s,
            "lattice.l.rpch.N_2e1.shop.business.example.shop.orders._5bstatic_5dcart_2enew"
        );
        assert_eq!(
            parse_call_subject(&s).unwrap().caller,
            SubjectCaller::Host("N.1".into())
        );
        assert_eq!(CallTarget::parse_subject(&s).unwrap().1, t);
        for raw in ["", "_", "a.b", "a_2eb", "ü*>", " x", "UPPER-case"] {
            let token = escape_token(raw);
            assert!(
                !token.is_empty() && !token.contains(['.', '*', '>', ' ']),
                "{token}"
            );
            assert_eq!(unescape_token(&token).as_deref(), Some(raw), "{raw:?}");
        }
    }

    #[test]
    fn non_canonical_tokens_and_shapes_are_refused() {
        for token in ["_61", "_2E", "_2", "a_", "_zz", "__", "_ff"] {
            assert_eq!(unescape_token(token), None, "{token}");
        }
        assert_eq!(
            CallTarget::parse_subject("lattice.l.rpch.N.a.b.c.d.e"),
            None
        );
        assert_eq!(
            CallTarget::parse_subject("lattice.l.rpch.N.a.b.c.d.e.f.g"),
            None
        );
        assert_eq!(
            CallTarget::parse_subject("lattice.l.rpch._61.a.b.c.d.e.f"),
            None
        );
        assert_eq!(CallTarget::parse_subject("lattice.l.api.a.b.c.d.e.f"), None);
    }

    #[test]
    fn call_headers_round_trip_and_name_problems() {
        let h = CallHeader {
            host: "NABC".into(),
            app: "shop".into(),
            component: "auth".into(),
            link: "my link".into(),
            signature: "1926bfa0a15a6c3c".into(),
            timeout_ms: 2000,
            trace: None,
        };
        let text = h.encode();
        assert_eq!(text, "NABC shop auth my_20link 1926bfa0a15a6c3c 2000");
        assert_eq!(CallHeader::parse(&text), Ok(h.clone()));
        let traced = CallHeader {
            trace: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into()),
            ..h
        };
        let text = traced.encode();
        assert_eq!(
            text,
            "NABC shop auth my_20link 1926bfa0a15a6c3c 2000 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        );
        assert_eq!(CallHeader::parse(&text), Ok(traced.clone()));
        assert_eq!(CallHeader::trace_of(&text), traced.trace.as_deref());
        assert_eq!(CallHeader::trace_of("a b c d e 1"), None);
        assert_eq!(CallHeader::trace_of("a b c d e 1 t u"), None);
        assert!(CallHeader::parse("a b c").unwrap_err().contains("3 parts"));
        assert!(CallHeader::parse("a b c d e 1 t u")
            .unwrap_err()
            .contains("8 parts, expected 6 or 7"));
        assert!(CallHeader::parse("a b c d e soon")
            .unwrap_err()
            .contains("timeout 'soon'"));
    }

    #[test]
    fn error_kinds_round_trip() {
        for kind in CallErrorKind::ALL {
            assert_eq!(CallErrorKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(CallErrorKind::parse("nope"), None);
    }

    #[test]
    fn signatures_are_canonical_text() {
        let params = [WitType::U64, WitType::list(WitType::String)];
        let result = [WitType::result(Some(WitType::U8), Some(WitType::String))];
        assert_eq!(
            signature(&params, &result),
            "func(u64, list<string>) -> result<u8, string>"
        );
        assert_eq!(signature(&[], &[]), "func()");
        assert_eq!(
            signature(&[], &[WitType::U8, WitType::Char]),
            "func() -> (u8, char)"
        );
        // FNV-1a 64 of the UTF-8 bytes of "func()".
        assert_eq!(signature_fingerprint(&[], &[]), "1926bfa0a15a6c3c");
        assert_ne!(
            signature_fingerprint(&params, &result),
            signature_fingerprint(&params, &[])
        );
    }
}
