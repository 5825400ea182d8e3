//! What the controller has told hosts and how they answered, so the reconcile loop is
//! idempotent: a command in flight or acknowledged is not sent again until the host's
//! heartbeat should reflect it, and a refused command is retried with exponential
//! backoff. Pure bookkeeping; the runtime records, `reconcile` reads.

use lattice_protocol::messages::HostCommand;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The last command sent to one host for one app, and its fate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub command: HostCommand,
    /// Identifies this send, so a late answer to an older send is ignored.
    pub seq: u64,
    pub phase: Phase,
    /// Consecutive failures of this same command.
    pub failures: u32,
    /// The host's (or the transport's) last error for this command.
    pub last_error: Option<String>,
}

/// Where an [`Attempt`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Sent; no answer yet.
    InFlight { since: Instant },
    /// The host said ok; its heartbeat should show it soon.
    Acked { at: Instant },
    /// Failed; not to be sent again before `until`.
    Backoff { until: Instant },
}

/// Exponential backoff: `base * 2^(failures-1)`, at most `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The wait after the `failures`-th consecutive failure (1-based).
    pub fn delay(&self, failures: u32) -> Duration {
        let exp = failures.saturating_sub(1).min(31);
        self.base.saturating_mul(1u32 << exp).min(self.max)
    }
}

/// Whether the loop should send `wanted` now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Send,
    Wait,
}

/// Every (host, app) the controller has sent a command for.
#[derive(Debug, Default)]
pub struct Attempts {
    /// App -> host -> attempt: lookups by `&str`, and every attempt of one app at hand.
    map: BTreeMap<String, BTreeMap<String, Attempt>>,
    next_seq: u64,
}

/// The app a command is about.
pub fn command_app(command: &HostCommand) -> &str {
    match command {
        HostCommand::Apply { workload } => &workload.manifest.name,
        HostCommand::Remove { app } => app,
        // Sent by people (`lattice host label`), never by the controller.
        HostCommand::SetLabels { .. } => "",
    }
}

impl Attempts {
    pub fn get(&self, host: &str, app: &str) -> Option<&Attempt> {
        self.map.get(app)?.get(host)
    }

    /// Every attempt for `app`, by host id.
    pub fn for_app(&self, app: &str) -> impl Iterator<Item = (&str, &Attempt)> {
        self.map
            .get(app)
            .into_iter()
            .flat_map(|hosts| hosts.iter().map(|(h, a)| (h.as_str(), a)))
    }

    /// Whether to send `wanted` to `host` now, given what was sent before.
    pub fn decide(
        &self,
        host: &str,
        wanted: &HostCommand,
        now: Instant,
        resend_after: Duration,
    ) -> Decision {
        let Some(a) = self.get(host, command_app(wanted)) else {
            return Decision::Send;
        };
        if &a.command != wanted {
            return Decision::Send;
        }
        let wait = match a.phase {
            Phase::InFlight { since } => now.saturating_duration_since(since) < resend_after,
            Phase::Acked { at } => now.saturating_duration_since(at) < resend_after,
            Phase::Backoff { until } => now < until,
        };
        if wait {
            Decision::Wait
        } else {
            Decision::Send
        }
    }

    /// Record that `command` was sent to `host`; returns the send's sequence number.
    /// Failures carry over when the same command is sent again.
    pub fn sent(&mut self, host: &str, command: HostCommand, now: Instant) -> u64 {
        self.next_seq += 1;
        let seq = self.next_seq;
        let hosts = self
            .map
            .entry(command_app(&command).to_string())
            .or_default();
        let (failures, last_error) = match hosts.get(host) {
            Some(prev) if prev.command == command => (prev.failures, prev.last_error.clone()),
            _ => (0, None),
        };
        hosts.insert(
            host.to_string(),
            Attempt {
                command,
                seq,
                phase: Phase::InFlight { since: now },
                failures,
                last_error,
            },
        );
        seq
    }

    /// Record the host's answer to send `seq`. Answers to superseded sends are ignored.
    /// Returns whether the answer was current.
    pub fn answered(
        &mut self,
        host: &str,
        app: &str,
        seq: u64,
        result: Result<(), String>,
        now: Instant,
        backoff: &Backoff,
    ) -> bool {
        let Some(a) = self.map.get_mut(app).and_then(|hosts| hosts.get_mut(host)) else {
            return false;
        };
        if a.seq != seq {
            return false;
        }
        match result {
            Ok(()) => {
                a.phase = Phase::Acked { at: now };
                a.failures = 0;
                a.last_error = None;
            }
            Err(error) => {
                a.failures += 1;
                a.last_error = Some(error);
                a.phase = Phase::Backoff {
                    until: now + backoff.delay(a.failures),
                };
            }
        }
        true
    }

    /// Forget everything about a host that left.
    pub fn forget_host(&mut self, host: &str) {
        for hosts in self.map.values_mut() {
            hosts.remove(host);
        }
        self.map.retain(|_, hosts| !hosts.is_empty());
    }

    /// Drop acknowledged attempts older than `keep`: they no longer hold anything back.
    pub fn prune(&mut self, now: Instant, keep: Duration) {
        for hosts in self.map.values_mut() {
            hosts.retain(|_, a| match a.phase {
                Phase::Acked { at } => now.saturating_duration_since(at) < keep,
                _ => true,
            });
        }
        self.map.retain(|_, hosts| !hosts.is_empty());
    }

    pub fn len(&self) -> usize {
        self.map.values().map(BTreeMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn remove(app: &str) -> HostCommand {
        HostCommand::Remove { app: app.into() }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let b = Backoff {
            base: Duration::from_millis(500),
            max: Duration::from_secs(30),
        };
        let got: Vec<u128> = (1..=9).map(|n| b.delay(n).as_millis()).collect();
        assert_eq!(
            got,
            [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
        );
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(30));
    }

    #[test]
    fn sent_commands_wait_until_answered_or_stale() {
        let t0 = Instant::now();
        let mut a = Attempts::default();
        let cmd = remove("a");
        assert_eq!(a.decide("H", &cmd, t0, 10 * S), Decision::Send);
        let seq = a.sent("H", cmd.clone(), t0);
        assert_eq!(a.decide("H", &cmd, t0 + S, 10 * S), Decision::Wait);
        let backoff = Backoff {
            base: S,
            max: 30 * S,
        };
        assert!(a.answered("H", "a", seq, Ok(()), t0 + S, &backoff));
        assert_eq!(a.decide("H", &cmd, t0 + 5 * S, 10 * S), Decision::Wait);
        assert_eq!(a.decide("H", &cmd, t0 + 11 * S, 10 * S), Decision::Send);
        a.prune(t0 + 20 * S, 10 * S);
        assert!(a.is_empty());
    }

    #[test]
    fn failures_back_off_and_late_answers_are_ignored() {
        let t0 = Instant::now();
        let backoff = Backoff {
            base: S,
            max: 30 * S,
        };
        let mut a = Attempts::default();
        let cmd = remove("a");
        let first = a.sent("H", cmd.clone(), t0);
        assert!(a.answered("H", "a", first, Err("busy".into()), t0, &backoff));
        assert_eq!(a.decide("H", &cmd, t0 + S / 2, 60 * S), Decision::Wait);
        assert_eq!(a.decide("H", &cmd, t0 + S, 60 * S), Decision::Send);
        let second = a.sent("H", cmd.clone(), t0 + S);
        // Still failing: the error survives the resend, and the wait doubles.
        assert_eq!(a.get("H", "a").unwrap().last_error.as_deref(), Some("busy"));
        assert!(!a.answered("H", "a", first, Ok(()), t0 + S, &backoff));
        assert!(a.answered("H", "a", second, Err("busy".into()), t0 + S, &backoff));
        assert_eq!(a.get("H", "a").unwrap().failures, 2);
        assert_eq!(a.decide("H", &cmd, t0 + 2 * S, 60 * S), Decision::Wait);
        assert_eq!(a.decide("H", &cmd, t0 + 3 * S, 60 * S), Decision::Send);
        a.forget_host("H");
        assert!(a.get("H", "a").is_none());
    }
}
