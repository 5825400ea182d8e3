//! The data the brain's parts share: what is wanted, what hosts report, what to send.
//! A leaf: it imports nothing of the brain but [`Attempts`].

use super::attempts::Attempts;
use lattice_protocol::manifest::Manifest;
use lattice_protocol::messages::{AppStatus, HostCommand, HostInfo, WorkloadReport};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// One stored app as the controller wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredApp {
    pub name: String,
    /// The newest stored version (for status).
    pub latest_version: String,
    /// The manifest of the deployed version; `None` when stored but undeployed.
    pub deployed: Option<Manifest>,
}

/// One live host as last reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedHost {
    pub id: String,
    pub labels: BTreeMap<String, String>,
    /// Draining hosts get no work.
    pub draining: bool,
    pub workloads: Vec<WorkloadReport>,
    /// Its public secrets key, from its signed report: secrets it is given are
    /// sealed to it.
    pub secrets_key: Option<String>,
}

impl From<HostInfo> for ObservedHost {
    fn from(info: HostInfo) -> Self {
        Self {
            id: info.host_id,
            labels: info.labels,
            draining: info.draining,
            workloads: info.workloads,
            secrets_key: info.secrets_key,
        }
    }
}

impl ObservedHost {
    /// What this host reports for `app`.
    pub fn workload(&self, app: &str) -> Option<&WorkloadReport> {
        self.workloads.iter().find(|w| w.app == app)
    }
}

/// What else reconcile needs to know: what was sent before, and the time.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub attempts: &'a Attempts,
    pub now: Instant,
    /// How long an acknowledged command may go unreflected in heartbeats before it
    /// is sent again.
    pub resend_after: Duration,
}

/// A command for one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedCommand {
    pub host_id: String,
    pub command: HostCommand,
}

/// The output of one reconcile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub commands: Vec<PlannedCommand>,
    /// Status of every stored app, by name.
    pub statuses: BTreeMap<String, AppStatus>,
}

/// A host id short enough for tables and sentences: its first 12 characters.
pub fn short_host_id(id: &str) -> &str {
    id.char_indices().nth(12).map_or(id, |(i, _)| &id[..i])
}
