//! The lattice controller: it keeps every app's desired state in JetStream KV, places
//! components on hosts and converges the lattice toward that placement.
//!
//! Two rooms, named for the invariant between them:
//!
//! - [`brain`]: what the controller decides, pure and table-tested.
//!   [`reconcile()`] (with [`placement`] and `status`) is a function from desired apps
//!   and observed hosts to host commands and app statuses; [`attempts`] is the
//!   bookkeeping of commands sent, so the loop is safe to repeat; [`lease`] decides
//!   which of several controllers acts; `record` holds an app's versions.
//! - [`runtime`]: the IO. The [`Controller`] and its tasks (state, API, election, KV
//!   watch) speak NATS through the `lattice_bus` seam; [`store`] keeps app records
//!   in KV with compare-and-set writes.
//!
//! Beside them: `config` ([`ControllerConfig`]), `error` ([`ControllerError`]) and
//! [`client`] ([`ApiClient`], the typed client of the controller API, and
//! [`ping_hosts`]) used by the CLI and tests.
//!
//! Architecture invariants: `brain` does no IO, so everything the controller decides
//! (and who decides, in `lease`) can be tested without NATS. Only `runtime` and
//! `client` perform IO. Of the controllers of one lattice, only the holder of a valid
//! lease sends host commands and publishes app and `host_lost` events.

pub mod brain;
pub mod client;
mod config;
mod error;
pub mod runtime;

pub use brain::model::{short_host_id, Context, DesiredApp, ObservedHost, Plan, PlannedCommand};
pub use brain::reconcile::reconcile;
pub use brain::{attempts, lease, placement, reconcile};
pub use client::{ping_hosts, ApiClient, ApiError, ArtifactUse, SetHostLabelsRequest};
pub use config::{ControllerConfig, StorageConfig};
pub use error::ControllerError;
pub use runtime::{store, Controller, Health, Metrics};
