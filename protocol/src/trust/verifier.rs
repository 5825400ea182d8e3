//! What a host keeps to decide whether to obey a command: the keys it trusts, how
//! old a command may be, the commands it obeyed recently and the highest lease
//! term it obeyed. Pure: the time is an argument.

use super::keys::{self, KeyError, Nonce};
use super::replay::ReplayCache;
use super::Refusal;
use super::SignedCommand;
use nkeys::KeyPair;
use std::collections::BTreeSet;

/// How old a command may be, how far a controller's clock may run ahead, and how
/// many recent commands a host remembers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifierConfig {
    /// Refuse commands issued longer ago than this (default 30 s).
    pub max_age_ms: u64,
    /// Accept commands issued up to this far in the host's future (default 5 s).
    pub max_skew_ms: u64,
    /// How many obeyed commands are remembered to refuse replays (default 4096).
    pub replay_capacity: usize,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        Self {
            max_age_ms: 30_000,
            max_skew_ms: 5_000,
            replay_capacity: 4096,
        }
    }
}

/// A command that passed every check: its body may be obeyed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The lattice key that signed it.
    pub signer: String,
    /// The sender's lease term.
    pub term: u64,
    /// When it was issued (ms since the Unix epoch).
    pub issued_ms: u64,
    /// Its nonce.
    pub nonce: Nonce,
    /// The command's bytes (a [`HostCommand`](crate::messages::HostCommand) to [`decode`](crate::decode)).
    pub body: Vec<u8>,
}

/// What a host must keep across a restart so its fence still holds: the highest
/// lease term it obeyed, and the issue time of the latest command it obeyed
/// (nothing issued at or before it is obeyed again, which covers the replay
/// cache a restart empties). See [`CommandVerifier::fence`] and
/// [`CommandVerifier::restore`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Fence {
    /// The highest lease term obeyed.
    pub highest_term: u64,
    /// The latest issue time (ms since the Unix epoch) of an obeyed command.
    pub last_issued_ms: u64,
}

/// The state a host keeps to verify commands. See
/// [`CommandEnvelope::sign`](super::CommandEnvelope::sign) for an example.
#[derive(Debug, Clone)]
pub struct CommandVerifier {
    lattice: String,
    host: String,
    trusted: BTreeSet<String>,
    config: VerifierConfig,
    seen: ReplayCache,
    highest_term: u64,
    last_issued_ms: u64,
}

impl CommandVerifier {
    /// A verifier for host `host` of lattice `lattice` that trusts the public
    /// lattice keys `trusted`. Each must be a lattice signing key (`C…`).
    pub fn new<K: AsRef<str>>(
        lattice: &str,
        host: &str,
        trusted: impl IntoIterator<Item = K>,
        config: VerifierConfig,
    ) -> Result<Self, KeyError> {
        let mut out = Self {
            lattice: lattice.to_owned(),
            host: host.to_owned(),
            trusted: BTreeSet::new(),
            config,
            seen: ReplayCache::new(config.replay_capacity),
            highest_term: 0,
            last_issued_ms: 0,
        };
        for key in trusted {
            keys::check_lattice_key(key.as_ref())?;
            out.trusted.insert(key.as_ref().to_owned());
        }
        Ok(out)
    }

    /// The highest lease term obeyed so far (0 before any command).
    pub fn highest_term(&self) -> u64 {
        self.highest_term
    }

    /// What must outlive a restart: save it after each accepted command, before
    /// obeying it, and [`restore`](Self::restore) it when the host starts again.
    pub fn fence(&self) -> Fence {
        Fence {
            highest_term: self.highest_term,
            last_issued_ms: self.last_issued_ms,
        }
    }

    /// Seed a fresh verifier with what the host obeyed before a restart: commands
    /// from a lower term than `fence.highest_term`, and every command issued at or
    /// before `fence.last_issued_ms` (replays included, whose nonces the restart
    /// forgot), are refused. Only raises what the verifier holds, never lowers it.
    pub fn restore(&mut self, fence: Fence) {
        self.highest_term = self.highest_term.max(fence.highest_term);
        if fence.last_issued_ms > 0 {
            self.seen.raise_floor(fence.last_issued_ms);
        }
        self.last_issued_ms = self.last_issued_ms.max(fence.last_issued_ms);
    }

    /// [`SignedCommand::decode`] then [`CommandVerifier::verify`].
    pub fn verify_bytes(&mut self, bytes: &[u8], now_ms: u64) -> Result<Verified, Refusal> {
        self.verify(SignedCommand::decode(bytes)?, now_ms)
    }

    /// Check a command in this order: key trusted, signature, lattice, host, not
    /// from the future, not too old, term not stale, not replayed. Only an accepted
    /// command changes the state (its nonce is remembered, its term raises the
    /// highest term).
    pub fn verify(&mut self, command: SignedCommand, now_ms: u64) -> Result<Verified, Refusal> {
        let SignedCommand {
            envelope: e,
            signer,
            signature,
            signed,
        } = command;
        if !self.trusted.contains(&signer) {
            return Err(Refusal::UnknownKey { key: signer });
        }
        let signed_ok = KeyPair::from_public_key(&signer)
            .and_then(|k| k.verify(&signed, &signature))
            .is_ok();
        if !signed_ok {
            return Err(Refusal::BadSignature { key: signer });
        }
        if e.lattice != self.lattice {
            let expected = self.lattice.clone();
            return Err(Refusal::WrongLattice {
                expected,
                found: e.lattice,
            });
        }
        if e.host != self.host {
            let expected = self.host.clone();
            return Err(Refusal::WrongHost {
                expected,
                found: e.host,
            });
        }
        let ahead_ms = e.issued_ms.saturating_sub(now_ms);
        if ahead_ms > self.config.max_skew_ms {
            let max_skew_ms = self.config.max_skew_ms;
            return Err(Refusal::FromFuture {
                issued_ms: e.issued_ms,
                ahead_ms,
                max_skew_ms,
            });
        }
        let by_age = now_ms.saturating_sub(self.config.max_age_ms);
        self.seen.expire(by_age);
        let too_old = |oldest_ms| Refusal::TooOld {
            issued_ms: e.issued_ms,
            oldest_ms,
            now_ms,
        };
        if e.issued_ms < by_age {
            return Err(too_old(by_age));
        }
        // Older than what a full replay cache still remembers.
        self.seen
            .above_floor(e.issued_ms, e.nonce)
            .map_err(too_old)?;
        if e.term < self.highest_term {
            let highest = self.highest_term;
            return Err(Refusal::StaleTerm {
                term: e.term,
                highest,
            });
        }
        if self.seen.contains(e.issued_ms, e.nonce) {
            return Err(Refusal::Replayed { nonce: e.nonce });
        }
        self.seen.insert(e.issued_ms, e.nonce);
        self.highest_term = e.term;
        self.last_issued_ms = self.last_issued_ms.max(e.issued_ms);
        Ok(Verified {
            signer,
            term: e.term,
            issued_ms: e.issued_ms,
            nonce: e.nonce,
            body: e.body,
        })
    }
}
