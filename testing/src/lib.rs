//! Test support shared by the lattice crates' integration tests.
//!
//! - [`components`]: guest components built from `components/` for wasm32-wasip2.
//! - [`nats`]: a real `nats-server` (JetStream on) on a random port, cleaned up on drop.
//! - [`nats_cluster`]: a JetStream cluster of real `nats-server`s on random
//!   ports (routes between them, a store folder each), with node kill and restart
//!   on the same ports and store, for durability tests.
//! - [`delay_proxy`]: a TCP proxy with a settable one-way delay that can cut and
//!   restore its link (latency where the kernel has no netem).
//! - [`topology`]: a core NATS cluster and two edge sites with leaf nodes, in
//!   Linux network namespaces, running the real `lattice` binary (root only).
//! - [`process`]: child processes (`lattice host`, `lattice controller`) with a log,
//!   SIGINT/SIGKILL, and a kill on drop.
//! - [`redis`]: a real `redis-server` (no persistence) on a random port, for
//!   provider tests, killed on drop.
//! - [`provider`]: a provider's real executable run as a host runs it, called
//!   over NATS directly.
//! - [`postgres`]: a real PostgreSQL (a fresh cluster, trust authentication) on a
//!   random port, for provider tests, stopped on drop.
//! - [`keyvalue`]: a keyvalue provider called as a host calls it for one
//!   component, and the WIT values of those calls.
//! - [`registry`]: a real OCI registry (Debian's `docker-registry`) on a random
//!   port, plain HTTP, optionally with htpasswd auth, killed on drop.
//! - [`tls`]: a throwaway CA with server and client certificates (rcgen), for
//!   TLS to NATS ([`nats::NatsServerBuilder::tls`]) and HTTPS.
//! - `browser` (feature `browser`): a real headless Chromium driven over the
//!   DevTools protocol (open a page, evaluate, screenshot), for the dashboard.
//! - `otlp` (feature `otlp`): a real OTLP/HTTP receiver that keeps the spans it
//!   is sent, for the telemetry tests.
//! - [`manifest`]: test manifests built from parts (header, components, links)
//!   instead of YAML written out in every test.
//! - `host` (feature `host`, so crates that do not need a host do not compile
//!   wasmtime): the in-process host harness, a real `lattice_host::Host` set up for
//!   tests and the HTTP helpers that talk to it.
//!
//! Architecture invariant: only tests depend on this crate; it never fakes NATS, it
//! starts the real server.

// Test support: an unwrap that fails here is a failed test, as in the tests.
#![allow(clippy::unwrap_used)]

#[cfg(feature = "browser")]
pub mod browser;
pub mod components;
pub mod delay_proxy;
#[cfg(feature = "host")]
pub mod host;
pub mod imports;
pub mod keyvalue;
pub mod manifest;
pub mod nats;
pub mod nats_cluster;
#[cfg(feature = "otlp")]
pub mod otlp;
pub mod postgres;
pub mod process;
pub mod provider;
pub mod redis;
pub mod registry;
pub mod tls;
pub mod topology;
pub mod trust;
