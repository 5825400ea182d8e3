//! The call transport of the lattice, shared by hosts and capability providers:
//! no wasmtime, no component types, only bytes on NATS subjects.
//!
//! - [`Caller`]: send one call (locality subjects first, then the lattice-wide
//!   one, tried again while nobody answers), offer its arguments in chunks when
//!   they pass the server's `max_payload`, and read the answer: the results,
//!   fetched in chunks when they were offered, or the `lattice-error` failure.
//! - [`serve`]: answer the calls of a set of subscriptions, at most a bound at
//!   once (the rest `overloaded` at once), and drain on stop; [`arguments`] and
//!   [`Answer`] move a served call's bytes in and out, in chunks when large.
//! - [`CallError`]: why a call produced no results, as the `lattice-error` kind
//!   and a message for people.
//!
//! What a call means (who may make it, its types) is the caller's and callee's
//! business: the host checks links and signatures of components, the provider
//! SDK those of its functions; both read the call the same way
//! (`lattice_protocol::wire::read_call`).

pub mod chunks;
mod client;
mod error;
pub mod names;
mod server;

pub use client::{Caller, Outgoing};
pub use error::CallError;
pub use server::{arguments, caller_trace, incoming, reply, serve, Answer, Incoming, ServeLimits};
