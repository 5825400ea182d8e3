//! Built-in capabilities ("plugins"): implemented inside the host, shared by every
//! workload on it, and keyed per app so two apps never see each other's data.
//!
//! Each plugin is its own module with an `add_to_linker` (filled once per host into
//! the shared `Linker`) and, where it keeps state, a host-wide registry in
//! [`Plugins`].

pub mod blobstore;
pub mod bus;
pub mod config;
pub mod http_client;
pub mod http_server;
pub mod keyvalue;
pub mod logging;
pub mod messaging;

use crate::ctx::Ctx;
use wasmtime::component::Linker;

/// Host-wide state of the plugins.
pub struct Plugins {
    pub keyvalue: keyvalue::Registry,
    pub blobstore: blobstore::Registry,
    pub http_server: http_server::HttpServer,
    /// The host's router, for plugins that forward to capability providers.
    pub router: std::sync::OnceLock<std::sync::Arc<crate::links::Router>>,
}

impl Plugins {
    pub fn new(keyvalue: keyvalue::Registry, blobstore: blobstore::Registry) -> Self {
        Self {
            keyvalue,
            blobstore,
            http_server: http_server::HttpServer::default(),
            router: std::sync::OnceLock::new(),
        }
    }
}

/// Fill the host's linker with WASI 0.2, wasi:http and every plugin interface.
pub fn add_to_linker(linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
    crate::loopback::tcp::add_to_linker(linker)?;
    keyvalue::add_to_linker(linker)?;
    config::add_to_linker(linker)?;
    logging::add_to_linker(linker)?;
    bus::add_to_linker(linker)?;
    messaging::add_to_linker(linker)?;
    blobstore::add_to_linker(linker)?;
    Ok(())
}
