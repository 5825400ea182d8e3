//! The brain: everything the controller decides, as pure functions and state
//! machines over plain data. Time comes in as an argument; nothing here touches NATS,
//! KV, tasks or a clock.
//!
//! - `model.rs`: the data the parts share ([`DesiredApp`](model::DesiredApp),
//!   [`ObservedHost`](model::ObservedHost), [`Context`](model::Context),
//!   [`Plan`](model::Plan), [`PlannedCommand`](model::PlannedCommand)).
//! - `reconcile.rs`: `reconcile(desired, observed, ctx) -> Plan`, using
//!   `placement.rs` (where instances go), `rollout.rs` (which hosts switch to a
//!   new version now) and `status.rs` (what to tell a person).
//! - `attempts.rs`: which commands are in flight, and backoff after failures.
//! - `lease.rs`: which of several controllers acts, as a state machine over the
//!   lease key's revisions.
//! - `record.rs`: an app's stored versions and the rules for changing them.
//!
//! Architecture invariant: the brain does no IO. No file here imports tokio,
//! `async_nats`, `lattice_bus` or `crate::runtime` (`tests/brain_does_no_io.rs`
//! checks it); `runtime/` feeds it and applies what it answers.

pub mod attempts;
pub mod lease;
pub mod model;
pub mod placement;
pub mod reconcile;
pub mod record;
mod rollout;
pub mod status;
