//! What a controller measures of its own work, for the admin address's
//! `/metrics` and OTLP pushes: how long placement and whole reconciles take, the
//! host commands it sent and how they ended, hosts lost, and how long ago each
//! live host's last heartbeat arrived. Written by the state task and the command
//! senders, read by scrapers; reading never blocks them for longer than copying
//! the heartbeat table.

use lattice_telemetry::{Family, Histogram};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Upper bounds (seconds) of the placement and reconcile histograms.
const TURN_BUCKETS: [f64; 10] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.1, 1.0,
];
/// Upper bounds (seconds) of the command round-trip histogram.
const COMMAND_BUCKETS: [f64; 10] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0];

#[derive(Debug)]
pub struct Metrics {
    placement: Histogram,
    reconcile: Histogram,
    commands: Histogram,
    command_failures: AtomicU64,
    hosts_lost: AtomicU64,
    /// When each live host's last verified heartbeat arrived.
    heartbeats: Mutex<BTreeMap<String, Instant>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            placement: Histogram::new(&TURN_BUCKETS),
            reconcile: Histogram::new(&TURN_BUCKETS),
            commands: Histogram::new(&COMMAND_BUCKETS),
            command_failures: AtomicU64::new(0),
            hosts_lost: AtomicU64::new(0),
            heartbeats: Mutex::new(BTreeMap::new()),
        }
    }
}

impl Metrics {
    /// Computing a plan (placement of every app on the live hosts) took `took`.
    pub(crate) fn placed(&self, took: Duration) {
        self.placement.record(took);
    }

    /// A whole reconcile (plan, commands handed to senders, events published).
    pub(crate) fn reconciled(&self, took: Duration) {
        self.reconcile.record(took);
    }

    /// A host command was answered (or failed) after `took`.
    pub(crate) fn command(&self, took: Duration, ok: bool) {
        self.commands.record(took);
        if !ok {
            self.command_failures.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn heartbeat(&self, host_id: &str, at: Instant) {
        self.beats().insert(host_id.to_string(), at);
    }

    /// A host is gone: `lost` when it went silent rather than said it stopped.
    pub(crate) fn forget(&self, host_id: &str, lost: bool) {
        self.beats().remove(host_id);
        if lost {
            self.hosts_lost.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn beats(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Instant>> {
        self.heartbeats.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every metric, read now.
    pub fn families(&self) -> Vec<Family> {
        let now = Instant::now();
        let ages = self
            .beats()
            .iter()
            .map(|(id, at)| {
                let age = now.saturating_duration_since(*at).as_secs_f64();
                (vec![("host_id", id.clone())], age)
            })
            .collect::<Vec<_>>();
        vec![
            Family::gauge(
                "lattice_controller_hosts",
                "live hosts, as heartbeats show them",
                vec![(vec![], ages.len() as f64)],
            ),
            Family::gauge(
                "lattice_controller_heartbeat_age_seconds",
                "time since each live host's last verified heartbeat",
                ages,
            )
            .in_unit("s"),
            Family::counter(
                "lattice_controller_hosts_lost_total",
                "hosts declared lost after missing their heartbeats",
                vec![(vec![], self.hosts_lost.load(Ordering::Relaxed))],
            ),
            Family::seconds(
                "lattice_controller_placement_duration_seconds",
                "computing one plan: every app placed on the live hosts",
                vec![(vec![], self.placement.read())],
            ),
            Family::seconds(
                "lattice_controller_reconcile_duration_seconds",
                "one reconcile: plan, commands handed over, events published",
                vec![(vec![], self.reconcile.read())],
            ),
            Family::seconds(
                "lattice_controller_command_duration_seconds",
                "host commands from sending to the host's answer (or failure)",
                vec![(vec![], self.commands.read())],
            ),
            Family::counter(
                "lattice_controller_command_failures_total",
                "host commands refused, failed or unanswered",
                vec![(vec![], self.command_failures.load(Ordering::Relaxed))],
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lattice_telemetry::metrics::Points;

    #[test]
    fn heartbeat_ages_follow_live_hosts_and_losses_count() {
        let m = Metrics::default();
        let t = Instant::now() - Duration::from_secs(3);
        m.heartbeat("H1", t);
        m.heartbeat("H2", Instant::now());
        m.forget("H2", true);
        m.forget("H3", false);
        m.command(Duration::from_millis(2), false);
        let families = m.families();
        let find = |name: &str| families.iter().find(|f| f.name == name).unwrap();
        let Points::Gauge(ages) = &find("lattice_controller_heartbeat_age_seconds").points else {
            panic!("a gauge");
        };
        assert_eq!(ages.len(), 1, "{ages:?}");
        assert_eq!(ages[0].0, vec![("host_id", "H1".to_string())]);
        assert!(ages[0].1 >= 3.0, "{ages:?}");
        assert_eq!(
            find("lattice_controller_hosts_lost_total").points,
            Points::Counter(vec![(vec![], 1)])
        );
        assert_eq!(
            find("lattice_controller_command_failures_total").points,
            Points::Counter(vec![(vec![], 1)])
        );
    }
}
