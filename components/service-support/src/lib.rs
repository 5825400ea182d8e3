//! What the example services (`tcp-echo-service`, `cache-service`, `cron-service`,
//! `crashy-service`) share. It is a plain library, not a component: each service links
//! it into its own `wasi:cli/run` binary.
//!
//! - [`config`]: typed settings read through `wasi:config/store@0.2.0-draft`, with a
//!   default when the key is not set.
//! - [`serve`]: one thread serving many TCP connections at once, with nonblocking
//!   `std::net` sockets and `poll(2)` (wasi-libc turns it into `wasi:io/poll.poll` over
//!   the sockets' pollables). A service supplies only its protocol, as a [`Service`].

pub mod config;
pub mod serve;

pub use serve::{serve, Service};
