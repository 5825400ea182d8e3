//! Why a host did not apply a workload: one variant per step of `Host::apply`,
//! each saying what to fix in the sentence people read (the agent replies with it
//! and publishes it in `workload_failed`; tests match the variant).

use crate::links::serve::ServeError;

/// Why `Host::apply` changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The host is draining (`lattice host drain`, or stopping).
    #[error("host {host} is draining and takes no new work")]
    Draining { host: String },
    /// The manifest does not pass the parser's checks and budgets.
    #[error("host {host} refuses app '{app}': its manifest is not valid: {reason}")]
    InvalidManifest {
        host: String,
        app: String,
        reason: String,
    },
    /// More instances of a component than the budget allows.
    #[error("host {host} refuses app '{app}': {instances} instances of '{component}' is over the budget of {max}")]
    OverBudget {
        host: String,
        app: String,
        component: String,
        instances: u32,
        max: u32,
    },
    /// An image this host may not run (a file it does not load, a provider
    /// executable from an image or outside its provider folder).
    #[error("{0}")]
    ImageNotAllowed(String),
    /// The secrets the command carries cannot be opened for the components.
    #[error("{0}")]
    Secrets(String),
    /// An image could not be fetched, checked against its digest, admitted by
    /// its signatures or compiled.
    #[error("{0}")]
    Image(String),
    /// A component could not be linked or instantiated here.
    #[error("{0}")]
    Component(String),
    /// A provider process could not be started.
    #[error("{0}")]
    Provider(String),
    /// The app's service could not be started.
    #[error("{0}")]
    Service(String),
    /// A capability could not start for the app (e.g. `http-server` listening).
    #[error("{reason}")]
    Capability {
        capability: &'static str,
        reason: String,
    },
    /// Its link targets could not be served over NATS.
    #[error(transparent)]
    Serve(#[from] ServeError),
}
