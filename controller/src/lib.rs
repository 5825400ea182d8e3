//! The lattice controller: it keeps every app's desired state in JetStream KV, places
//! components on hosts and converges the lattice toward that placement.
//!
//! - [`reconcile`] (with [`placement`] and `status`): the brain, a pure function from
//!   desired apps and observed hosts to host commands and app statuses.
//! - [`attempts`]: bookkeeping of commands sent, so the loop is safe to repeat.
//! - [`store`]: app records (versions, deployed version) in KV, compare-and-set writes.
//! - [`lease`]: which of several controllers acts (a lease in KV; pure state
//!   machine, driven by `election`).
//! - [`runtime`]: the [`Controller`]: NATS subscriptions, the reconcile loop, the API.
//! - [`client`]: [`ApiClient`], the typed client of the controller API, and
//!   [`ping_hosts`].
//!
//! Architecture invariants: only `runtime` (with `api`, `state`, `commands`,
//! `election`), `store` and `client` perform IO; everything the controller decides is
//! decided in `reconcile` (and who decides, in `lease`) and can be tested without
//! NATS. Of the controllers of one lattice, only the holder of a valid lease sends
//! host commands and publishes app and `host_lost` events.

mod api;
pub mod attempts;
pub mod client;
mod commands;
mod election;
mod error;
pub mod lease;
pub mod placement;
pub mod reconcile;
pub mod runtime;
mod state;
mod status;
pub mod store;

pub use client::{ping_hosts, ApiClient, ApiError};
pub use error::ControllerError;
pub use reconcile::{reconcile, Context, DesiredApp, ObservedHost, Plan, PlannedCommand};
pub use runtime::{Controller, ControllerConfig};

/// A host id short enough for tables and sentences: its first 12 characters.
pub fn short_host_id(id: &str) -> &str {
    id.char_indices().nth(12).map_or(id, |(i, _)| &id[..i])
}

/// How long publishing one message may wait for the NATS client (e.g. while it
/// reconnects).
pub(crate) const PUBLISH_DEADLINE: std::time::Duration = std::time::Duration::from_secs(1);

/// Publish an event on `lattice.L.evt.<kind>`; a failure is logged, never fatal.
pub(crate) async fn publish_event(
    client: &async_nats::Client,
    subjects: &lattice_protocol::subjects::Subjects,
    event: &lattice_protocol::messages::Event,
) {
    let subject = subjects.event(event.kind());
    let publishing = client.publish(subject, lattice_protocol::encode(event).into());
    match tokio::time::timeout(PUBLISH_DEADLINE, publishing).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, kind = event.kind(), "could not publish event"),
        Err(_) => tracing::warn!(
            kind = event.kind(),
            "could not publish event: NATS is not taking messages"
        ),
    }
}
