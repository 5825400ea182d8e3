//! Rolling upgrades: which hosts running an older version of an app may be told to
//! switch to the deployed version now. At most `spec.rollout.maxUnavailable` hosts
//! (default one) switch at a time; the next one starts when a switching host
//! reports the new version; a host that fails to apply it, or that switched and
//! reports most invocations of a component of the new version trapping (more
//! than half, once there are [`MIN_JUDGED`]), halts the rollout, so the hosts
//! not yet switched keep the old version (and keep serving) while the status
//! says why. Hosts that do not run the app yet are placed at once: they have
//! nothing to lose. Pure, like the rest of the brain.

use super::attempts::Attempts;
use super::model::ObservedHost;
use super::placement::AppPlacement;
use lattice_protocol::manifest::Manifest;
use lattice_protocol::messages::HostCommand;
use std::collections::BTreeSet;

/// Invocations of a component on a switched host before its traps can halt a
/// rollout: fewer say too little.
pub(crate) const MIN_JUDGED: u64 = 10;

/// One app's rollout at this reconcile.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    /// Hosts on an older version that may be told to switch now (in flight or
    /// newly allowed).
    pub allowed: BTreeSet<String>,
    /// Hosts on an older version that must wait.
    pub waiting: usize,
    /// A switching host failed, or a switched one traps: no new host starts
    /// until that changes.
    pub halted: bool,
    /// Why, when a switched host's traps halted it (a failed apply speaks for
    /// itself in the host's failure).
    pub trapping: Option<String>,
}

impl Gate {
    /// Whether `host`, which reports `version` of the app, may be sent the
    /// deployed version's apply now.
    pub fn may_switch(&self, host: &str, reported_version: &str, deployed: &str) -> bool {
        reported_version == deployed || self.allowed.contains(host)
    }
}

/// The gate of `manifest` placed as `placement` on `hosts` (sorted by id), given
/// what was already sent.
pub(crate) fn gate(
    app: &str,
    manifest: &Manifest,
    placement: &AppPlacement,
    hosts: &[&ObservedHost],
    attempts: &Attempts,
) -> Gate {
    let version = &manifest.version;
    // Hosts to place that run another version of the app, in id order.
    let upgrading: Vec<&str> = hosts
        .iter()
        .filter(|h| placement.per_host.contains_key(&h.id))
        .filter(|h| h.workload(app).is_some_and(|w| &w.version != version))
        .map(|h| h.id.as_str())
        .collect();
    let sent_new = |host: &str| {
        attempts.get(host, app).filter(|a| {
            matches!(&a.command, HostCommand::Apply { workload } if &workload.manifest.version == version)
        })
    };
    let in_flight: Vec<&str> = upgrading
        .iter()
        .copied()
        .filter(|h| sent_new(h).is_some())
        .collect();
    // While hosts still run another version, a switched host whose new
    // instances mostly trap stops the rest.
    let trapping = (!upgrading.is_empty())
        .then(|| trapping(app, version, hosts))
        .flatten();
    let halted = trapping.is_some()
        || in_flight
            .iter()
            .any(|h| sent_new(h).is_some_and(|a| a.last_error.is_some()));
    let at_once = manifest
        .rollout_policy()
        .max_unavailable
        .hosts_at_once(placement.per_host.len());
    let room = if halted {
        0
    } else {
        at_once.saturating_sub(in_flight.len())
    };
    let mut allowed: BTreeSet<String> = in_flight.iter().map(|h| h.to_string()).collect();
    allowed.extend(
        upgrading
            .iter()
            .filter(|h| !allowed.contains(**h))
            .take(room)
            .map(|h| h.to_string())
            .collect::<Vec<_>>(),
    );
    Gate {
        waiting: upgrading.len() - allowed.len(),
        allowed,
        halted,
        trapping,
    }
}

/// The first component of `version` on a host that runs it whose invocations
/// trapped more often than not (of at least [`MIN_JUDGED`]), as a sentence.
fn trapping(app: &str, version: &str, hosts: &[&ObservedHost]) -> Option<String> {
    hosts.iter().find_map(|h| {
        let w = h.workload(app).filter(|w| w.version == version)?;
        let c = w
            .components
            .iter()
            .find(|c| c.invocations >= MIN_JUDGED && c.traps.saturating_mul(2) > c.invocations)?;
        Some(format!(
            "component '{}' of version {version} trapped on {} of {} invocations on host {}",
            c.name,
            c.traps,
            c.invocations,
            super::model::short_host_id(&h.id)
        ))
    })
}
