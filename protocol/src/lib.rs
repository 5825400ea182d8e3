//! The lattice protocol: everything two lattice processes must agree on, and nothing
//! that performs IO.
//!
//! - [`subjects`]: the NATS subjects of one lattice.
//! - [`messages`]: the control-plane messages (hosts, controller API, events) and
//!   their versioned JSON codec.
//! - [`wire`]: component-model values in cross-host calls (type-directed
//!   MessagePack) and the call envelope.
//! - [`manifest`]: the application manifest model, its YAML parser and validation.
//! - [`provider`]: what hosts and capability providers (separate processes) tell
//!   each other, and the provider-facing forms of resourceful interfaces.
//! - [`creds`]: NATS user JWTs and `.creds` for providers' own credentials.
//! - [`nats_tls`]: the CA and client certificate files a process connects to NATS
//!   with.
//! - [`trust`]: signed, fenced host commands, signed host reports, host admission
//!   and the subjects guests may use.
//!
//! Architecture invariant: this crate has no tokio, no NATS client and no wasmtime;
//! every type here can be built and checked in a unit test.

#![warn(missing_docs)]

pub mod creds;
pub mod manifest;
pub mod messages;
pub mod nats_tls;
pub mod provider;
pub mod secrets;
pub mod subjects;
pub mod trust;
pub mod wire;

pub use messages::{decode, encode, CodecError, PROTOCOL_VERSION};

/// Milliseconds since the Unix epoch, now: the clock of every `*_ms` field.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
