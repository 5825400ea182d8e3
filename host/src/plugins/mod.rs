//! Built-in capabilities ("plugins"): implemented inside the host, shared by every
//! workload on it, and keyed per app so two apps never see each other's data.
//!
//! Each one is a module (a folder when it has more than one idea) that implements
//! [`Capability`]: its linker step, the settings it reads from a component's links,
//! what it starts per app, and its own host-wide state. [`builtins`] is the one
//! registry the host iterates.

pub mod blobstore;
pub mod bus;
pub mod config;
pub mod http_client;
pub mod http_server;
pub mod keyvalue;
pub mod logging;
pub mod messaging;
pub mod secrets;
pub mod wasi;

use crate::capability::{Capability, HostServices};
use std::sync::Arc;

/// Every built-in capability of a host, in the order their apps' parts start.
pub fn builtins(host: &HostServices) -> Vec<Arc<dyn Capability>> {
    vec![
        Arc::new(wasi::Wasi),
        Arc::new(keyvalue::Keyvalue::new(host)),
        Arc::new(blobstore::Blobstore::new(host)),
        Arc::new(config::Config),
        Arc::new(secrets::Secrets),
        Arc::new(logging::Logging),
        Arc::new(bus::Bus),
        Arc::new(http_client::HttpClient),
        Arc::new(messaging::Messaging::new(host)),
        // Last: its binding cannot be undone by a guard (see its `start`).
        Arc::new(http_server::HttpServer::new(host.http_server)),
    ]
}
