//! Host reports the state task acts on: every heartbeat and host event must be a
//! report signed by the host it names and admitted by the controller's
//! [`ReportPolicy`]; everything else is ignored, counted, and logged at warn at
//! most once a minute per claimed host (a bounded table, so a flood of forged
//! names cannot grow memory or the log). A report accepted once is not accepted
//! again: within the age bound a captured report could otherwise be published
//! again, keeping a dead host alive or replaying its `host_stopped`. A leaf: the
//! state task owns one.

use lattice_protocol::decode;
use lattice_protocol::messages::Event;
use lattice_protocol::trust::{ReportPolicy, ReportRefusal};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

/// How often one claimed host's refusals are logged.
const WARN_EVERY: Duration = Duration::from_secs(60);
/// Claimed hosts remembered for rate-limiting the log.
const WARN_TABLE: usize = 1024;
/// Signatures remembered per host: more than a host sends within the age bound
/// (a heartbeat every 10 s and its events), the oldest forgotten first.
const SEEN_PER_HOST: usize = 256;

/// Why a report is ignored.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Ignored {
    #[error(transparent)]
    Refused(#[from] ReportRefusal),
    #[error("the signed report of host {host} does not hold a readable event: {problem}")]
    Unreadable { host: String, problem: String },
    #[error(
        "the report signed by host {signer} is about host {named}: a host reports only for itself"
    )]
    OtherHost { signer: String, named: String },
    #[error("the report signed by host {host} is a '{kind}' event, which hosts do not send")]
    NotAHostEvent { host: String, kind: &'static str },
    #[error("the report of host {host} issued at {issued_ms} ms was accepted before: a replay")]
    Replayed { host: String, issued_ms: u64 },
}

impl Ignored {
    /// The host the report claims to come from, when it says.
    fn claimed_host(&self) -> Option<&str> {
        match self {
            Ignored::Refused(r) => match r {
                ReportRefusal::Unsigned | ReportRefusal::Malformed { .. } => None,
                ReportRefusal::NotTheHostsKey { host, .. }
                | ReportRefusal::BadSignature { host }
                | ReportRefusal::WrongLattice { host, .. }
                | ReportRefusal::TooOld { host, .. }
                | ReportRefusal::FromFuture { host, .. }
                | ReportRefusal::NotAdmitted { host }
                | ReportRefusal::BadJoinProof { host, .. } => Some(host),
            },
            Ignored::Unreadable { host, .. }
            | Ignored::NotAHostEvent { host, .. }
            | Ignored::Replayed { host, .. } => Some(host),
            Ignored::OtherHost { signer, .. } => Some(signer),
        }
    }
}

/// Checks reports and keeps the count of refused ones.
pub(crate) struct Reports {
    policy: ReportPolicy,
    refused: u64,
    /// Claimed host (or `""` for unsigned and malformed reports) -> when its
    /// refusals were last logged.
    warned: BTreeMap<String, Instant>,
    /// Host -> (issue time, signature) of the reports accepted from it that are
    /// still within the age bound, oldest first.
    seen: HashMap<String, VecDeque<(u64, [u8; 64])>>,
}

impl Reports {
    pub(crate) fn new(policy: ReportPolicy) -> Self {
        Self {
            policy,
            refused: 0,
            warned: BTreeMap::new(),
            seen: HashMap::new(),
        }
    }

    /// Reports ignored since the controller started.
    #[cfg(test)]
    pub(crate) fn refused(&self) -> u64 {
        self.refused
    }

    /// The host event in `payload`, if it is a report this controller acts on
    /// (`now_ms`: the wall clock the report's age is checked against).
    pub(crate) fn check(&mut self, payload: &[u8], now_ms: u64, now: Instant) -> Option<Event> {
        match self.verify(payload, now_ms) {
            Ok(event) => Some(event),
            Err(ignored) => {
                self.refused += 1;
                if self.should_warn(ignored.claimed_host().unwrap_or(""), now) {
                    tracing::warn!(
                        reason = %ignored,
                        refused_total = self.refused,
                        "ignoring a host report (logged at most once a minute per host)"
                    );
                }
                None
            }
        }
    }

    fn verify(&mut self, payload: &[u8], now_ms: u64) -> Result<Event, Ignored> {
        let report = self.policy.check(payload, now_ms)?;
        let event: Event = decode(&report.body).map_err(|e| Ignored::Unreadable {
            host: report.host.clone(),
            problem: e.to_string(),
        })?;
        let named = match &event {
            Event::HostHeartbeat(info) => &info.host_id,
            Event::HostStarted { host_id, .. }
            | Event::HostStopped { host_id }
            | Event::WorkloadApplied { host_id, .. }
            | Event::WorkloadRemoved { host_id, .. }
            | Event::WorkloadFailed { host_id, .. }
            | Event::ComponentScaled { host_id, .. } => host_id,
            other => {
                return Err(Ignored::NotAHostEvent {
                    host: report.host,
                    kind: other.kind(),
                })
            }
        };
        if *named != report.host {
            return Err(Ignored::OtherHost {
                named: named.clone(),
                signer: report.host,
            });
        }
        self.first_time(&report, now_ms)?;
        Ok(event)
    }

    /// Remember `report`, refusing it if it was accepted before. Reports older
    /// than the age bound are refused by the policy, so only those younger are
    /// kept.
    fn first_time(
        &mut self,
        report: &lattice_protocol::trust::VerifiedReport,
        now_ms: u64,
    ) -> Result<(), Ignored> {
        let horizon = now_ms.saturating_sub(self.policy.max_age_ms);
        let seen = self.seen.entry(report.host.clone()).or_default();
        while seen.front().is_some_and(|(issued, _)| *issued < horizon) {
            seen.pop_front();
        }
        if seen.iter().any(|(_, s)| *s == report.signature) {
            return Err(Ignored::Replayed {
                host: report.host.clone(),
                issued_ms: report.issued_ms,
            });
        }
        if seen.len() >= SEEN_PER_HOST {
            seen.pop_front();
        }
        seen.push_back((report.issued_ms, report.signature));
        // Hosts that went quiet: forget them once their reports aged out.
        if self.seen.len() > WARN_TABLE {
            self.seen
                .retain(|_, s| s.back().is_some_and(|(issued, _)| *issued >= horizon));
        }
        Ok(())
    }

    /// Whether to log a refusal for `host` now; remembers that it did.
    fn should_warn(&mut self, host: &str, now: Instant) -> bool {
        if let Some(last) = self.warned.get(host) {
            if now.saturating_duration_since(*last) < WARN_EVERY {
                return false;
            }
        }
        if self.warned.len() >= WARN_TABLE && !self.warned.contains_key(host) {
            self.warned
                .retain(|_, last| now.saturating_duration_since(*last) < WARN_EVERY);
            if self.warned.len() >= WARN_TABLE {
                // Over a thousand forged names this minute: stay quiet (the count
                // still grows) rather than grow the table.
                return false;
            }
        }
        self.warned.insert(host.to_string(), now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lattice_protocol::encode;
    use lattice_protocol::messages::HostInfo;
    use lattice_protocol::trust::{new_host_key, sign_report, Admission};

    const NOW_MS: u64 = 1_000_000;

    fn info(id: &str) -> HostInfo {
        serde_json::from_value(serde_json::json!({
            "host_id": id, "lattice": "t", "labels": {}, "version": "x", "started_at_ms": 0,
        }))
        .unwrap()
    }

    fn beat(id: &str) -> Vec<u8> {
        encode(&Event::HostHeartbeat(info(id)))
    }

    #[test]
    fn only_a_host_signing_for_itself_is_heard() {
        let mut reports = Reports::new(ReportPolicy::new("t", Admission::any_host()));
        let now = Instant::now();
        let a = new_host_key();
        let b = new_host_key();
        let signed = sign_report(&a, "t", NOW_MS, &beat(&a.public_key()), None).unwrap();
        assert!(matches!(
            reports.check(&signed, NOW_MS, now),
            Some(Event::HostHeartbeat(i)) if i.host_id == a.public_key()
        ));
        // Unsigned, signed by a for b, about a controller's own event: all ignored.
        let forged = sign_report(&a, "t", NOW_MS, &beat(&b.public_key()), None).unwrap();
        let app = encode(&Event::AppDeleted { app: "x".into() });
        let app = sign_report(&a, "t", NOW_MS, &app, None).unwrap();
        for payload in [beat(&a.public_key()), forged, app] {
            assert!(reports.check(&payload, NOW_MS, now).is_none());
        }
        assert_eq!(reports.refused(), 3);
        // Not on the list: ignored.
        let mut listed = Reports::new(ReportPolicy::new(
            "t",
            Admission::listed([b.public_key()]).unwrap(),
        ));
        assert!(listed.check(&signed, NOW_MS, now).is_none());
    }

    #[test]
    fn a_report_is_accepted_once() {
        let mut reports = Reports::new(ReportPolicy::new("t", Admission::any_host()));
        let now = Instant::now();
        let a = new_host_key();
        let first = sign_report(&a, "t", NOW_MS, &beat(&a.public_key()), None).unwrap();
        let next = sign_report(&a, "t", NOW_MS + 10, &beat(&a.public_key()), None).unwrap();
        assert!(reports.check(&first, NOW_MS, now).is_some());
        // The same bytes again, even seconds later: a replay.
        assert!(reports.check(&first, NOW_MS + 5_000, now).is_none());
        assert!(reports.check(&next, NOW_MS + 5_000, now).is_some());
        assert!(reports.check(&next, NOW_MS + 29_000, now).is_none());
        assert_eq!(reports.refused(), 2);
        // Past the age bound the policy refuses it; the signature is forgotten.
        assert!(reports.check(&first, NOW_MS + 31_000, now).is_none());
        let seen = &reports.seen[&a.public_key()];
        assert!(seen.len() <= 2, "{}", seen.len());
        // The memory of one host is bounded.
        for i in 0..SEEN_PER_HOST as u64 * 2 {
            let beat = sign_report(&a, "t", NOW_MS + 100 + i, &beat(&a.public_key()), None);
            assert!(reports.check(&beat.unwrap(), NOW_MS + 1_000, now).is_some());
        }
        assert_eq!(reports.seen[&a.public_key()].len(), SEEN_PER_HOST);
    }

    #[test]
    fn warnings_are_rate_limited_per_host_and_bounded() {
        let mut reports = Reports::new(ReportPolicy::new("t", Admission::any_host()));
        let now = Instant::now();
        assert!(reports.should_warn("a", now));
        assert!(!reports.should_warn("a", now + Duration::from_secs(59)));
        assert!(reports.should_warn("b", now));
        assert!(reports.should_warn("a", now + WARN_EVERY));
        for i in 0..WARN_TABLE * 4 {
            reports.should_warn(&format!("forged-{i}"), now);
        }
        assert!(reports.warned.len() <= WARN_TABLE);
        // A minute later the table makes room again.
        assert!(reports.should_warn("c", now + WARN_EVERY * 2));
    }
}
