//! How a component's invocations ended, since it was made ready: what a rollout
//! judges a new version by, and what the admin address's `/metrics` shows.
//! Lock-free counters; reading them never stops an invocation.

use lattice_telemetry::{Histogram, HistogramReading};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the invocation-duration histogram's buckets; the last,
/// implicit bucket is `+Inf`.
pub const DURATION_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// How one admitted invocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It returned (an error value the guest chose is a return too).
    Returned,
    /// It trapped, or answered nothing.
    Trapped,
    /// It ran past its execution deadline.
    TimedOut,
}

#[derive(Debug)]
pub struct Outcomes {
    ended: AtomicU64,
    trapped: AtomicU64,
    timed_out: AtomicU64,
    overloaded: AtomicU64,
    durations: Histogram,
}

impl Default for Outcomes {
    fn default() -> Self {
        Self {
            ended: AtomicU64::new(0),
            trapped: AtomicU64::new(0),
            timed_out: AtomicU64::new(0),
            overloaded: AtomicU64::new(0),
            durations: Histogram::new(&DURATION_BUCKETS),
        }
    }
}

/// A reading of [`Outcomes`].
#[derive(Debug, Clone, PartialEq)]
pub struct OutcomeCounts {
    pub ended: u64,
    /// Trapped or timed out: a rollout counts both as failures.
    pub trapped: u64,
    pub timed_out: u64,
    /// Refused before they started: no free slot within the queue's bound.
    pub overloaded: u64,
    /// How long the ended ones ran.
    pub durations: HistogramReading,
}

impl Outcomes {
    /// One admitted invocation ended after `took`.
    pub fn record(&self, outcome: Outcome, took: Duration) {
        self.ended.fetch_add(1, Ordering::Relaxed);
        match outcome {
            Outcome::Returned => {}
            Outcome::Trapped => {
                self.trapped.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::TimedOut => {
                self.trapped.fetch_add(1, Ordering::Relaxed);
                self.timed_out.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.durations.record(took);
    }

    /// One invocation refused for want of a slot.
    pub fn refused(&self) {
        self.overloaded.fetch_add(1, Ordering::Relaxed);
    }

    /// (ended, trapped or timed out).
    pub fn counts(&self) -> (u64, u64) {
        (
            self.ended.load(Ordering::Relaxed),
            self.trapped.load(Ordering::Relaxed),
        )
    }

    pub fn read(&self) -> OutcomeCounts {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        OutcomeCounts {
            ended: load(&self.ended),
            trapped: load(&self.trapped),
            timed_out: load(&self.timed_out),
            overloaded: load(&self.overloaded),
            durations: self.durations.read(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_land_in_their_counters_and_buckets() {
        let o = Outcomes::default();
        o.record(Outcome::Returned, Duration::from_micros(300));
        o.record(Outcome::Trapped, Duration::from_millis(3));
        o.record(Outcome::TimedOut, Duration::from_secs(10));
        o.refused();
        let c = o.read();
        assert_eq!(
            (c.ended, c.trapped, c.timed_out, c.overloaded),
            (3, 2, 1, 1)
        );
        let d = &c.durations;
        assert_eq!(d.buckets[0], 1, "300 µs <= 0.5 ms");
        assert_eq!(d.buckets[3], 1, "3 ms in (2.5 ms, 5 ms]");
        assert_eq!(d.buckets[DURATION_BUCKETS.len()], 1, "10 s in +Inf");
        assert_eq!(d.count(), 3);
        assert!((d.sum_seconds - 10.0033).abs() < 1e-9, "{}", d.sum_seconds);
        assert_eq!(o.counts(), (3, 2));
    }
}
