//! [`Msg`]: what the other tasks tell or ask the state task. A leaf shared by the
//! state task and the tasks that talk to it.

use crate::brain::record::AppRecord;
use lattice_protocol::messages::{AppStatus, HostInfo, VersionInfo};
use tokio::sync::oneshot;

/// What other tasks tell or ask the state task.
pub(crate) enum Msg {
    /// This controller wrote an app record to KV: adopt it, reconcile, answer the
    /// app's status.
    Upsert {
        name: String,
        record: AppRecord,
        revision: u64,
        reply: oneshot::Sender<AppStatus>,
    },
    /// An app record changed in KV (`None`: deleted), seen by this controller's API or
    /// through the KV watch (writes of other controllers too).
    Stored {
        name: String,
        record: Option<AppRecord>,
        revision: u64,
    },
    Status {
        name: String,
        reply: oneshot::Sender<Option<AppStatus>>,
    },
    List {
        reply: oneshot::Sender<Vec<AppStatus>>,
    },
    /// The live hosts' last verified reports, sorted by id: all of them, or those
    /// whose id starts with `query`.
    Hosts {
        query: Option<String>,
        reply: oneshot::Sender<Vec<HostInfo>>,
    },
    History {
        name: String,
        reply: oneshot::Sender<Option<Vec<VersionInfo>>>,
    },
    /// The NATS connection changed: lost, or back (see `lattice_bus::connection`).
    Connection(lattice_bus::Connection),
    /// A host answered (or did not answer) command `seq`.
    CommandDone {
        host: String,
        app: String,
        seq: u64,
        result: Result<(), String>,
    },
}
