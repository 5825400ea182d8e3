//! NATS subjects of one lattice. Every subject starts with `lattice.<name>.` so many
//! lattices can share one NATS deployment without seeing each other.
//!
//! | subject | pattern | purpose |
//! |---|---|---|
//! | `lattice.L.ctl.host.<host>` | request/reply | a [`HostCommand`](crate::messages::HostCommand) for one host |
//! | `lattice.L.ctl.hosts.ping` | scatter/gather | every host answers with its [`HostInfo`](crate::messages::HostInfo) |
//! | `lattice.L.api.<op>` | request/reply, queue group `controller` | the controller API |
//! | `lattice.L.ctl.controller.<id>.<op>` | request/reply | the API of one controller (followers forward to the leader) |
//! | `lattice.L.evt.<kind>` | publish | events, including host heartbeats |

/// Queue group the controllers share for the API.
pub const CONTROLLER_QUEUE: &str = "controller";

/// Subjects of one lattice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subjects {
    prefix: String,
}

impl Subjects {
    /// Subjects for the lattice `name`. Names are checked by [`valid_lattice_name`].
    pub fn new(name: &str) -> Self {
        Self {
            prefix: format!("lattice.{name}"),
        }
    }

    /// Commands for one host.
    pub fn host_command(&self, host_id: &str) -> String {
        format!("{}.ctl.host.{host_id}", self.prefix)
    }

    /// Scatter/gather ping answered by every host.
    pub fn hosts_ping(&self) -> String {
        format!("{}.ctl.hosts.ping", self.prefix)
    }

    /// One controller API operation, e.g. `deploy`.
    pub fn api(&self, op: &str) -> String {
        format!("{}.api.{op}", self.prefix)
    }

    /// Wildcard over the whole controller API.
    pub fn api_all(&self) -> String {
        format!("{}.api.>", self.prefix)
    }

    /// The API of one controller, by its id: where followers forward requests to the
    /// leader. `op` as in [`Subjects::api`]; `>` for all.
    pub fn controller_api(&self, controller_id: &str, op: &str) -> String {
        format!("{}.ctl.controller.{controller_id}.{op}", self.prefix)
    }

    /// One kind of event, e.g. `host_heartbeat`.
    pub fn event(&self, kind: &str) -> String {
        format!("{}.evt.{kind}", self.prefix)
    }

    /// Where hosts publish the log lines of `app`'s guests, all components:
    /// `lattice.<L>.log.<app>.>` (each line on `….<app>.<component>`).
    pub fn app_logs(&self, app: &str) -> String {
        format!(
            "{}.log.{}.>",
            self.prefix,
            crate::wire::rpc::escape_token(app)
        )
    }

    /// Wildcard over every event.
    pub fn events_all(&self) -> String {
        format!("{}.evt.>", self.prefix)
    }

    /// The JetStream KV bucket that holds the controller's state.
    pub fn state_bucket(&self) -> String {
        format!("lattice_{}_state", self.prefix_name())
    }

    /// The JetStream KV bucket of named config (`lattice config put`): written by
    /// controllers, read by hosts.
    pub fn config_bucket(&self) -> String {
        format!("lattice_{}_config", self.prefix_name())
    }

    /// The JetStream object store holding the lattice's artifacts (components and
    /// provider executables), one object per artifact named by its SHA-256 hex.
    pub fn artifact_bucket(&self) -> String {
        format!("lattice_{}_artifacts", self.prefix_name())
    }

    /// The JetStream KV bucket behind `builtin://keyvalue-nats` for one app and one
    /// bucket identifier the component opened. Keyed per app so apps never share data.
    pub fn app_kv_bucket(&self, app: &str, identifier: &str) -> String {
        format!(
            "lattice_{}_kv_{}_{}",
            self.prefix_name(),
            sanitize(app),
            sanitize(identifier)
        )
    }

    /// The JetStream object store holding container `container` of `app`'s
    /// `builtin://blobstore-nats`.
    pub fn app_blob_bucket(&self, app: &str, container: &str) -> String {
        format!(
            "lattice_{}_blob_{}_{}",
            self.prefix_name(),
            sanitize(app),
            sanitize(container)
        )
    }

    fn prefix_name(&self) -> &str {
        self.prefix.trim_start_matches("lattice.")
    }
}

/// Replace every character a JetStream bucket name does not allow with `-`, and keep
/// distinct inputs distinct by appending a short checksum when anything was replaced.
fn sanitize(s: &str) -> String {
    let clean: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if clean == s {
        clean
    } else {
        let sum = s
            .bytes()
            .fold(0u32, |acc, b| acc.wrapping_mul(31).wrapping_add(b as u32));
        format!("{clean}-{sum:08x}")
    }
}

/// A lattice name is 1..=64 characters of `[A-Za-z0-9_-]`: it becomes one subject
/// token and part of bucket names.
pub fn valid_lattice_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_scoped_by_lattice() {
        let a = Subjects::new("a");
        let b = Subjects::new("b");
        assert_eq!(a.host_command("NH1"), "lattice.a.ctl.host.NH1");
        assert_ne!(a.api("deploy"), b.api("deploy"));
        assert_eq!(a.event("host_heartbeat"), "lattice.a.evt.host_heartbeat");
        assert_eq!(a.state_bucket(), "lattice_a_state");
        assert_eq!(a.artifact_bucket(), "lattice_a_artifacts");
        assert_eq!(a.config_bucket(), "lattice_a_config");
    }

    #[test]
    fn kv_buckets_are_distinct_per_app_and_identifier() {
        let s = Subjects::new("default");
        assert_eq!(
            s.app_kv_bucket("counter", "default"),
            "lattice_default_kv_counter_default"
        );
        assert_ne!(s.app_kv_bucket("a.b", "x"), s.app_kv_bucket("a-b", "x"));
        assert_ne!(s.app_kv_bucket("a", "b_c"), s.app_kv_bucket("a_b", "c"));
        assert_eq!(
            s.app_blob_bucket("shop", "photos"),
            "lattice_default_blob_shop_photos"
        );
        assert_ne!(s.app_blob_bucket("a", "b/c"), s.app_blob_bucket("a", "b-c"));
    }

    #[test]
    fn lattice_names() {
        assert!(valid_lattice_name("default"));
        assert!(valid_lattice_name("prod_eu-1"));
        assert!(!valid_lattice_name(""));
        assert!(!valid_lattice_name("a.b"));
        assert!(!valid_lattice_name("a*"));
    }
}
