//! The lattice host: runs the WASI 0.2 components the controller places on it.
//!
//! - [`engine`]: the one wasmtime `Engine` per process (pooling allocator with a
//!   fallback, epoch ticker).
//! - [`cache`]: compiled components by digest.
//! - [`workload`]: the part of one app on this host; per component an
//!   `InstancePre`, a [`limiter::Limiter`] and a fresh `Store` per invocation.
//! - [`plugins`]: built-in capabilities (http server and client, keyvalue, config,
//!   logging, bus), keyed per app.
//! - [`links`]: component-to-component links, in-process or over NATS.
//! - [`agent`]: the NATS side (commands, pings, heartbeats, events, drain).
//!
//! Architecture invariant: a guest trap, timeout or overload is an answer to that
//! one invocation, never a host failure.

pub mod agent;
mod bindings;
pub mod cache;
pub mod config;
mod ctx;
pub mod engine;
mod host;
pub mod limiter;
pub mod links;
pub mod loopback;
pub mod plugins;
pub mod provider;
pub mod service;
pub mod workload;

pub use config::{HostConfig, Limits};
pub use host::{now_ms, Host};
