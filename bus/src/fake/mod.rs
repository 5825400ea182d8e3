//! An in-memory stand-in for one NATS server, for unit tests: [`FakeBus`] (core NATS)
//! and [`FakeKv`] (one KV bucket). Cheap to clone; clones share the same "server".
//!
//! It keeps the rules code relies on: `*` matches one token and `>` the rest,
//! each message of a queue group goes to one member, a request to a subject nobody
//! listens on fails at once with no responders, and KV revisions grow across the
//! bucket with compare-and-set writes. It does not model connection loss, payload
//! limits or JetStream beyond KV.

mod bus;
mod kv;
mod subject;

pub use bus::FakeBus;
pub use kv::FakeKv;
pub use subject::matches;
