//! Leader election: which of several controllers of one lattice acts.
//!
//! Every controller serves the API and keeps the same view of apps (KV watch) and
//! hosts (heartbeats), but only the *leader* sends host commands and publishes app
//! and `host_lost` events. The leader holds a lease: the key `leader` in the state
//! bucket, holding a [`LeaseRecord`], written only with compare-and-set on its
//! revision.
//!
//! - The leader renews every `renew` by updating the key on the revision it last
//!   wrote. Its leadership is valid until `ttl` after the *start* of its last
//!   successful renewal; a renewal that fails because the revision moved means
//!   someone else holds the lease, and it steps down at once.
//! - A follower reads the key and remembers when it first saw each revision, on its
//!   own monotonic clock. When one revision stays unchanged for `ttl` (the longer of
//!   its own and the holder's), the holder is presumed dead and the follower takes
//!   over with a compare-and-set on exactly that revision: of several followers, one
//!   wins; a leader that renewed meanwhile makes the takeover fail.
//! - A vacant key (never written, or deleted by a leader that stopped politely) is
//!   created; creation fails if someone else created it first.
//!
//! Why not a server-side TTL on the key: per-key TTLs need nats-server 2.11, and the
//! server's expiry clock is not the leader's. Here no clocks are compared between
//! machines: the leader's validity ends before any follower can observe the revision
//! as stale, because the follower's timer starts *after* the write that the leader's
//! timer starts *before*. Only clock *rates* must roughly agree.
//!
//! Commands a dead leader left in flight need no hand-over: the new leader recomputes
//! everything from heartbeats, and `apply`/`remove` are idempotent on hosts, so a
//! command delivered twice is harmless. What a lease cannot rule out is an old leader
//! that stalls (e.g. is paused) between checking its lease and sending; the window is
//! one send, and the `term` in the record is the fencing token hosts could check.
//!
//! This module is the pure state machine ([`Elector`]); `election.rs` drives it over
//! KV.

use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// The KV key of the lease in the state bucket.
pub const LEASE_KEY: &str = "leader";

/// The value of the lease key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    /// The holder's controller id.
    pub holder: String,
    /// Grows by one with every change of holder.
    pub term: u64,
    /// How long the holder's lease lasts without renewal, in milliseconds.
    pub ttl_ms: u64,
}

/// What reading the lease key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// No lease: the key was never written (`revision` 0) or was deleted.
    Vacant,
    /// A lease at this revision; `record` is `None` when its value is unreadable.
    Held {
        revision: u64,
        record: Option<LeaseRecord>,
    },
}

/// A write the elector wants done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// Create the key (it must be vacant).
    Create(LeaseRecord),
    /// Compare-and-set: replace the value at exactly `revision`.
    Update { revision: u64, record: LeaseRecord },
}

impl Write {
    pub fn record(&self) -> &LeaseRecord {
        match self {
            Write::Create(r) | Write::Update { record: r, .. } => r,
        }
    }
}

/// How a [`Write`] went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// Done; the key is now at this revision.
    Ok(u64),
    /// The key was not as expected: someone else wrote it.
    Conflict,
    /// No answer (NATS trouble): it may or may not have happened.
    Failed,
}

/// This controller as leader: valid until `until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leadership {
    pub term: u64,
    pub until: Instant,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Role {
    Follower {
        /// The last revision read, what it held and when it was first seen.
        watching: Option<Watched>,
        /// The highest term seen, so a new lease's term is above every old one.
        last_term: u64,
    },
    Leader {
        term: u64,
        revision: u64,
        until: Instant,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Watched {
    revision: u64,
    record: Option<LeaseRecord>,
    since: Instant,
}

/// The lease state machine of one controller. Pure: the caller reads and writes the
/// key and passes in the time.
#[derive(Debug, Clone)]
pub struct Elector {
    me: String,
    ttl: Duration,
    role: Role,
}

impl Elector {
    /// An elector for controller `me` whose lease lasts `ttl` without renewal.
    pub fn new(me: impl Into<String>, ttl: Duration) -> Self {
        Self {
            me: me.into(),
            ttl,
            role: Role::Follower {
                watching: None,
                last_term: 0,
            },
        }
    }

    pub fn id(&self) -> &str {
        &self.me
    }

    /// Whether the next step needs a fresh read of the key. A leader renews without
    /// reading.
    pub fn needs_read(&self) -> bool {
        matches!(self.role, Role::Follower { .. })
    }

    /// Decide the next write, given the key as just read (`None` when
    /// [`needs_read`](Self::needs_read) is false).
    pub fn step(&mut self, now: Instant, seen: Option<Seen>) -> Option<Write> {
        match &mut self.role {
            Role::Leader { term, revision, .. } => Some(Write::Update {
                revision: *revision,
                record: record(&self.me, *term, self.ttl),
            }),
            Role::Follower {
                watching,
                last_term,
            } => match seen? {
                Seen::Vacant => {
                    *watching = None;
                    Some(Write::Create(record(&self.me, *last_term + 1, self.ttl)))
                }
                Seen::Held {
                    revision,
                    record: held,
                } => {
                    let term = held.as_ref().map_or(0, |r| r.term);
                    *last_term = (*last_term).max(term);
                    let next = record(&self.me, *last_term + 1, self.ttl);
                    // Our own lease (a renewal whose answer we lost): take it back at
                    // once; nobody else acts on a lease that names us.
                    if held.as_ref().is_some_and(|r| r.holder == self.me) {
                        return Some(Write::Update {
                            revision,
                            record: next,
                        });
                    }
                    let stale_after = held
                        .as_ref()
                        .map_or(self.ttl, |r| Duration::from_millis(r.ttl_ms).max(self.ttl));
                    match watching {
                        Some(w) if w.revision == revision => {
                            if now.saturating_duration_since(w.since) >= stale_after {
                                Some(Write::Update {
                                    revision,
                                    record: next,
                                })
                            } else {
                                None
                            }
                        }
                        _ => {
                            *watching = Some(Watched {
                                revision,
                                record: held,
                                since: now,
                            });
                            None
                        }
                    }
                }
            },
        }
    }

    /// Record how `write`, started at `started`, went.
    pub fn written(&mut self, started: Instant, write: &Write, result: Written) {
        match result {
            Written::Ok(revision) => {
                let term = write.record().term;
                self.role = Role::Leader {
                    term,
                    revision,
                    // From the start of the write: no follower can have seen this
                    // revision earlier.
                    until: started + self.ttl,
                }
            }
            Written::Conflict => {
                let last_term = match &self.role {
                    Role::Leader { term, .. } => *term,
                    Role::Follower { last_term, .. } => *last_term,
                };
                self.role = Role::Follower {
                    watching: None,
                    last_term,
                };
            }
            // A leader stays one until its lease runs out; a follower learns nothing.
            Written::Failed => {}
        }
    }

    /// This controller's leadership, if it holds a lease valid at `now`.
    pub fn leadership(&self, now: Instant) -> Option<Leadership> {
        match self.role {
            Role::Leader { term, until, .. } if now < until => Some(Leadership { term, until }),
            _ => None,
        }
    }

    /// Who holds the lease as far as this controller knows (itself included), even
    /// if that holder may have died.
    pub fn holder(&self) -> Option<&str> {
        match &self.role {
            Role::Leader { .. } => Some(&self.me),
            Role::Follower { watching, .. } => watching
                .as_ref()
                .and_then(|w| w.record.as_ref())
                .map(|r| r.holder.as_str()),
        }
    }

    /// The revision to delete on a polite stop, when this controller is the leader.
    pub fn release(&self) -> Option<u64> {
        match self.role {
            Role::Leader { revision, .. } => Some(revision),
            Role::Follower { .. } => None,
        }
    }

    /// Forget leadership after deleting the lease (polite stop).
    pub fn released(&mut self) {
        if let Role::Leader { term, .. } = self.role {
            self.role = Role::Follower {
                watching: None,
                last_term: term,
            };
        }
    }
}

fn record(me: &str, term: u64, ttl: Duration) -> LeaseRecord {
    LeaseRecord {
        holder: me.to_string(),
        term,
        ttl_ms: u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX),
    }
}

#[cfg(test)]
#[path = "lease_tests.rs"]
mod tests;
