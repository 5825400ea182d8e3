//! Restart delays: exponential backoff, shared by services and providers.

use lattice_protocol::manifest::Restart;
use std::time::Duration;

/// The delay before restart number `crashes` (1-based) in a row.
pub fn backoff(policy: &Restart, crashes: u32) -> Duration {
    let factor = 1u64 << crashes.saturating_sub(1).min(20);
    Duration::from_millis(
        policy
            .backoff_ms
            .saturating_mul(factor)
            .min(policy.max_backoff_ms),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let policy = Restart {
            max_restarts: 10,
            backoff_ms: 100,
            max_backoff_ms: 1_000,
        };
        let delays: Vec<u64> = (1..=6)
            .map(|n| backoff(&policy, n).as_millis() as u64)
            .collect();
        assert_eq!(delays, [100, 200, 400, 800, 1_000, 1_000]);
        assert_eq!(backoff(&policy, 400), Duration::from_millis(1_000));
    }
}
