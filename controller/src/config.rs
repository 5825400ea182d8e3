//! [`ControllerConfig`]: the controller's timings and trust. A leaf: plain data.

use lattice_protocol::trust::Admission;
use std::time::Duration;

/// Timing and trust of the controller. The defaults suit a real lattice (tests
/// shorten the timings), except `signing_key`, which has no default: a controller
/// refuses to start without one.
#[derive(Clone, PartialEq, Eq)]
pub struct ControllerConfig {
    /// How often the reconcile loop runs even when nothing changed.
    pub tick: Duration,
    /// Deadline for a host to answer a command.
    pub command_timeout: Duration,
    /// The hosts' heartbeat interval. A controller that starts sends no host
    /// command before one interval has passed, so every live host has reported.
    pub host_heartbeat_interval: Duration,
    /// A host is lost after this many heartbeat intervals without a beat.
    pub missed_beats: u32,
    /// Unused since hosts sign their reports and answers to pings are not signed:
    /// a starting controller learns hosts from their heartbeats. Kept so configs
    /// that set it still build.
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
    /// The lattice signing key's seed (`SC…`, made by `lattice keys new lattice
    /// --out FILE`): every host command is signed with it. Required.
    pub signing_key: Option<String>,
    /// The secrets key's seed (`SX…`, made by `lattice keys new secrets --out
    /// FILE`): stored secrets are sealed to it, and opened with it only to seal
    /// them again for the hosts that run what uses them. Every controller of a
    /// lattice needs the same one. Without it, secrets are refused.
    pub secrets_key: Option<String>,
    /// Which hosts' signed reports this controller acts on (default: any host whose
    /// report is validly signed by its own key).
    pub admission: Admission,
    /// How the controller reaches OCI registries to pin a deployed version's
    /// image tags to digests (insecure registries, credentials, deadlines).
    pub registry: lattice_artifacts::oci::RegistrySettings,
    /// The lattice's JetStream storage: replicas and size limits of the state bucket
    /// and the artifact store, which the controller creates at start.
    pub storage: StorageConfig,
}

/// Replicas and size limits of the lattice's buckets. The controller creates the
/// state bucket and the artifact store with them, and refuses to start when a
/// bucket that exists has fewer replicas than `replicas`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageConfig {
    /// JetStream replicas of each bucket: 1 on a single server, 3 on a three-node
    /// cluster (which then survives losing one node).
    pub replicas: usize,
    /// Size limit of the state bucket (app records and the lease), set when it is
    /// created.
    pub state_max_bytes: u64,
    /// Size limit of the artifact store, set when it is created.
    pub artifacts_max_bytes: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            replicas: 1,
            state_max_bytes: 64 << 20,
            artifacts_max_bytes: lattice_artifacts::store::StoreConfig::default().max_store_bytes,
        }
    }
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
            signing_key: None,
            secrets_key: None,
            admission: Admission::any_host(),
            registry: lattice_artifacts::oci::RegistrySettings::default(),
            storage: StorageConfig::default(),
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

/// Never prints the signing key's seed.
impl std::fmt::Debug for ControllerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControllerConfig")
            .field("tick", &self.tick)
            .field("command_timeout", &self.command_timeout)
            .field("host_heartbeat_interval", &self.host_heartbeat_interval)
            .field("missed_beats", &self.missed_beats)
            .field("backoff_base", &self.backoff_base)
            .field("backoff_max", &self.backoff_max)
            .field("resend_after", &self.resend_after)
            .field("lease_ttl", &self.lease_ttl)
            .field("lease_renew", &self.lease_renew)
            .field(
                "signing_key",
                &self.signing_key.as_ref().map(|_| "(a seed, not shown)"),
            )
            .field(
                "secrets_key",
                &self.secrets_key.as_ref().map(|_| "(a seed, not shown)"),
            )
            .field("admission", &self.admission)
            .field("registry", &self.registry)
            .field("storage", &self.storage)
            .finish()
    }
}
