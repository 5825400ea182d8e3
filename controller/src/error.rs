//! The controller's error type.

use crate::runtime::store::StoreError;

/// Why the controller could not start or keep running.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error(
        "the controller has no lattice signing key: hosts obey only signed commands. Make \
         one with `lattice keys new lattice --out FILE` and pass it with \
         `lattice controller --signing-key FILE` (or its seed in LATTICE_SIGNING_KEY); \
         start hosts with `--trust` and its public key (`lattice keys public FILE`)"
    )]
    NoSigningKey,
    #[error("the controller's signing key is not a lattice signing key (a seed starting with SC, made by `lattice keys new lattice --out FILE`): {problem}")]
    BadSigningKey { problem: String },
    #[error("{problem} (a seed starting with SX, made by `lattice keys new secrets --out FILE`)")]
    BadSecretsKey { problem: String },
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
    #[error(
        "bucket {bucket} (JetStream stream {stream}) has {actual} replica(s) but this \
         controller is configured for {wanted} (--replicas {wanted}): losing one NATS node \
         could lose what it holds. \
         Raise it on a cluster of at least {wanted} JetStream servers with `nats stream edit \
         {stream} --replicas {wanted}`, or start the controller with --replicas {actual}"
    )]
    TooFewReplicas {
        bucket: String,
        stream: String,
        actual: usize,
        wanted: usize,
    },
    #[error("opening the lattice's artifact store {bucket}: {message}")]
    ArtifactStore { bucket: String, message: String },
    #[error("the controller's OCI registry client: {0}")]
    Registry(#[from] lattice_artifacts::oci::OciError),
    #[error("subscribing to {subject}")]
    Subscribe {
        subject: String,
        #[source]
        source: lattice_bus::BoxError,
    },
}
