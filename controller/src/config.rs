//! [`ControllerConfig`]: the controller's timings. A leaf: plain data.

use std::time::Duration;

/// Timing of the controller. The defaults suit a real lattice; tests shorten them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControllerConfig {
    /// How often the reconcile loop runs even when nothing changed.
    pub tick: Duration,
    /// Deadline for a host to answer a command.
    pub command_timeout: Duration,
    /// The hosts' heartbeat interval.
    pub host_heartbeat_interval: Duration,
    /// A host is lost after this many heartbeat intervals without a beat.
    pub missed_beats: u32,
    /// How long to collect answers to the start-up host ping.
    pub ping_gather: Duration,
    /// First wait after a host refuses a command; doubles per failure ...
    pub backoff_base: Duration,
    /// ... up to this.
    pub backoff_max: Duration,
    /// An acknowledged command that the host's heartbeat does not reflect after this
    /// long is sent again.
    pub resend_after: Duration,
    /// How long the leader's lease lasts without renewal: a dead leader is replaced
    /// after about this long (plus half a renewal).
    pub lease_ttl: Duration,
    /// How often the leader renews its lease; followers look twice as often.
    pub lease_renew: Duration,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        Self {
            tick: Duration::from_millis(500),
            command_timeout: Duration::from_secs(5),
            host_heartbeat_interval: Duration::from_secs(1),
            missed_beats: 3,
            ping_gather: Duration::from_millis(300),
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            resend_after: Duration::from_secs(10),
            lease_ttl: Duration::from_secs(3),
            lease_renew: Duration::from_secs(1),
        }
    }
}

impl ControllerConfig {
    /// How long a host may stay silent before it is lost.
    pub fn host_timeout(&self) -> Duration {
        self.host_heartbeat_interval
            .saturating_mul(self.missed_beats.max(1))
    }
}
