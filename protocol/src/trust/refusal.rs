//! Why a host refuses a command, and why a controller ignores a report: typed, with
//! the sentence for the log in `Display` and a short label for counters in `kind`.

use super::Nonce;

/// Why a host refuses a command. `Display` is the sentence for the log;
/// [`Refusal::kind`] the label for a counter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No signature at all (e.g. a plain JSON command).
    #[error("the command is not signed: this host obeys only commands signed by a lattice key it trusts")]
    Unsigned,
    /// A signature line or header not in the protocol's form.
    #[error("the signed command is malformed: {problem}")]
    Malformed {
        /// What is wrong.
        problem: String,
    },
    /// Signed by a key this host does not trust.
    #[error("the command is signed by {key}, which this host does not trust (trust a lattice key with `lattice host --trust KEY`)")]
    UnknownKey {
        /// The signer's public key.
        key: String,
    },
    /// The signature does not match the bytes and the key.
    #[error("the command's signature does not match its content for key {key}: it was altered or forged")]
    BadSignature {
        /// The signer's public key.
        key: String,
    },
    /// Meant for another lattice.
    #[error("the command is for lattice '{found}', and this host is in lattice '{expected}'")]
    WrongLattice {
        /// This host's lattice.
        expected: String,
        /// The lattice the command names.
        found: String,
    },
    /// Meant for another host.
    #[error("the command is for host {found}, not this host ({expected})")]
    WrongHost {
        /// This host's id.
        expected: String,
        /// The host the command names.
        found: String,
    },
    /// Issued too long ago (or not after the oldest command this host remembers).
    #[error("the command was issued at {issued_ms} ms and this host accepts only commands issued from {oldest_ms} ms on (it is now {now_ms} ms): too old, or replayed")]
    TooOld {
        /// When the command says it was issued.
        issued_ms: u64,
        /// The oldest issue time accepted now.
        oldest_ms: u64,
        /// This host's clock.
        now_ms: u64,
    },
    /// Issued further in the future than the allowed clock skew.
    #[error("the command was issued at {issued_ms} ms, {ahead_ms} ms ahead of this host's clock (at most {max_skew_ms} ms allowed): check the clocks of controller and host")]
    FromFuture {
        /// When the command says it was issued.
        issued_ms: u64,
        /// How far ahead of the host's clock that is.
        ahead_ms: u64,
        /// The allowed skew.
        max_skew_ms: u64,
    },
    /// Obeyed once already.
    #[error("the command with nonce {nonce} was obeyed already: a replay")]
    Replayed {
        /// The repeated nonce.
        nonce: Nonce,
    },
    /// From a controller whose lease ended: a newer term was obeyed.
    #[error("the command comes from lease term {term}, and this host already obeyed term {highest}: its sender is no longer the leader")]
    StaleTerm {
        /// The command's term.
        term: u64,
        /// The highest term this host obeyed.
        highest: u64,
    },
}

impl Refusal {
    /// A short label for metrics: `unsigned`, `malformed`, `unknown-key`,
    /// `bad-signature`, `wrong-lattice`, `wrong-host`, `too-old`, `from-future`,
    /// `replayed`, `stale-term`.
    pub fn kind(&self) -> &'static str {
        match self {
            Refusal::Unsigned => "unsigned",
            Refusal::Malformed { .. } => "malformed",
            Refusal::UnknownKey { .. } => "unknown-key",
            Refusal::BadSignature { .. } => "bad-signature",
            Refusal::WrongLattice { .. } => "wrong-lattice",
            Refusal::WrongHost { .. } => "wrong-host",
            Refusal::TooOld { .. } => "too-old",
            Refusal::FromFuture { .. } => "from-future",
            Refusal::Replayed { .. } => "replayed",
            Refusal::StaleTerm { .. } => "stale-term",
        }
    }
}

/// Why a controller ignores a report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportRefusal {
    /// No signature (e.g. a plain JSON heartbeat).
    #[error("the report is not signed: hosts sign their reports with their own key")]
    Unsigned,
    /// Not in the protocol's form.
    #[error("the signed report is malformed: {problem}")]
    Malformed {
        /// What is wrong.
        problem: String,
    },
    /// Signed by something that is not a host key, or not the host it names.
    #[error("the report names host {host} but is signed by {key}: a host signs with its own key, which is its id")]
    NotTheHostsKey {
        /// The host the report names.
        host: String,
        /// The signer's key.
        key: String,
    },
    /// The signature does not match.
    #[error("the report's signature does not match its content for host {host}: it was altered or forged")]
    BadSignature {
        /// The host the report names.
        host: String,
    },
    /// From another lattice.
    #[error("the report of host {host} is for lattice '{found}', not '{expected}'")]
    WrongLattice {
        /// The host.
        host: String,
        /// This controller's lattice.
        expected: String,
        /// The lattice in the report.
        found: String,
    },
    /// Issued too long ago.
    #[error("the report of host {host} was issued at {issued_ms} ms, more than {max_age_ms} ms before now ({now_ms} ms): stale or replayed")]
    TooOld {
        /// The host.
        host: String,
        /// When it was issued.
        issued_ms: u64,
        /// This controller's clock.
        now_ms: u64,
        /// The allowed age.
        max_age_ms: u64,
    },
    /// Issued in the future beyond the allowed skew.
    #[error("the report of host {host} was issued {ahead_ms} ms ahead of this controller's clock (at most {max_skew_ms} ms allowed): check the clocks")]
    FromFuture {
        /// The host.
        host: String,
        /// How far ahead.
        ahead_ms: u64,
        /// The allowed skew.
        max_skew_ms: u64,
    },
    /// Validly signed, but the admission policy does not admit the host.
    #[error("host {host} is not admitted to this lattice: list it with `--admit {host}` or start it with a join token the controller accepts")]
    NotAdmitted {
        /// The host.
        host: String,
    },
    /// The join proof for an accepted token does not verify.
    #[error("host {host} presents a join proof for token {token} that does not verify: it was copied from another host or made with another token")]
    BadJoinProof {
        /// The host.
        host: String,
        /// The token's public key.
        token: String,
    },
}

impl ReportRefusal {
    /// A short label for metrics: `unsigned`, `malformed`, `not-the-hosts-key`,
    /// `bad-signature`, `wrong-lattice`, `too-old`, `from-future`, `not-admitted`,
    /// `bad-join-proof`.
    pub fn kind(&self) -> &'static str {
        match self {
            ReportRefusal::Unsigned => "unsigned",
            ReportRefusal::Malformed { .. } => "malformed",
            ReportRefusal::NotTheHostsKey { .. } => "not-the-hosts-key",
            ReportRefusal::BadSignature { .. } => "bad-signature",
            ReportRefusal::WrongLattice { .. } => "wrong-lattice",
            ReportRefusal::TooOld { .. } => "too-old",
            ReportRefusal::FromFuture { .. } => "from-future",
            ReportRefusal::NotAdmitted { .. } => "not-admitted",
            ReportRefusal::BadJoinProof { .. } => "bad-join-proof",
        }
    }
}
