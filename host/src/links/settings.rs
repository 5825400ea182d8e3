//! How a host handles linked calls: locality preference, default deadline, size limit.

use std::time::Duration;

/// Link settings of a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkSettings {
    /// Label keys whose values a caller's host prefers to share with the callee's,
    /// most specific first (default `zone`, then `region`).
    pub locality_keys: Vec<String>,
    /// Deadline of one call when its link sets no `timeout`.
    pub call_timeout: Duration,
    /// The largest arguments or results one call may carry.
    pub max_call_bytes: usize,
    /// How long a call keeps trying while nothing anywhere subscribes to its
    /// subject (a NATS connection, route or leaf link of the lattice may be
    /// reconnecting) before it fails as "no instance runs anywhere"; never past
    /// the call's deadline.
    pub responder_wait: Duration,
}

impl Default for LinkSettings {
    fn default() -> Self {
        Self {
            locality_keys: vec!["zone".to_owned(), "region".to_owned()],
            call_timeout: Duration::from_secs(10),
            max_call_bytes: 64 << 20,
            responder_wait: Duration::from_secs(2),
        }
    }
}
