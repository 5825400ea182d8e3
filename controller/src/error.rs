//! The controller's error type.

use crate::runtime::store::StoreError;

/// Why the controller could not start or keep running.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error("'{lattice}' is not a valid lattice name: use 1 to 64 letters, digits, '-' or '_'")]
    InvalidLattice { lattice: String },
    #[error(
        "opening the controller's state in JetStream (is JetStream enabled on the NATS server?)"
    )]
    Store {
        #[source]
        source: StoreError,
    },
    #[error("opening the controller's state in JetStream timed out after {secs}s (is JetStream enabled on the NATS server?)")]
    StoreTimeout { secs: u64 },
    #[error("subscribing to {subject}")]
    Subscribe {
        subject: String,
        #[source]
        source: lattice_bus::BoxError,
    },
}
