//! The lattice host: runs the WASI 0.2 components the controller places on it.
//!
//! - [`engine`]: the one wasmtime `Engine` per process (pooling allocator with a
//!   fallback, epoch ticker).
//! - [`cache`]: compiled components by digest.
//! - [`env`]: what one component is (identity, config, links, capability
//!   settings): a leaf of data every layer may read.
//! - [`ctx`]: the data of one `Store`, i.e. of one invocation.
//! - [`component`]: one component ready to invoke: an `InstancePre`, a
//!   [`limiter::Limiter`] and a fresh `Store` per invocation.
//! - [`workload`]: the part of one app on this host.
//! - [`capability`]: the trait every built-in capability implements;
//!   [`plugins`]: the built-in capabilities, keyed per app.
//! - [`telemetry`]: trace context and guests' output; [`backoff`]: restart delays.
//! - [`links`]: component-to-component links, in-process or over NATS.
//! - [`agent`]: the NATS side (commands, pings, heartbeats, events, drain).
//!
//! Architecture invariant: a guest trap, timeout or overload is an answer to that
//! one invocation, never a host failure.

pub mod agent;
pub mod backoff;
pub mod cache;
pub mod capability;
pub mod component;
pub mod config;
pub mod ctx;
pub mod engine;
pub mod env;
pub mod fence;
mod host;
pub mod limiter;
pub mod links;
pub mod loopback;
pub mod named_config;
pub mod plugins;
pub mod provider;
pub mod service;
pub mod telemetry;
pub mod workload;

pub use config::{HostConfig, Limits};
pub use host::{now_ms, ApplyError, Host};
