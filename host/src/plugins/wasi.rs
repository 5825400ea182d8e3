//! WASI 0.2 itself: wasmtime-wasi's interfaces, wasi:http's types and outgoing
//! handler (whose requests `http_client` polices), and `wasi:sockets/tcp` on the
//! workload's private loopback (shadowing wasmtime-wasi's kernel sockets).

use crate::capability::Capability;
use crate::ctx::Ctx;
use wasmtime::component::Linker;

/// The capability.
pub struct Wasi;

impl Capability for Wasi {
    fn name(&self) -> &'static str {
        "wasi"
    }

    fn add_to_linker(&self, linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
        wasmtime_wasi::p2::add_to_linker_async(linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
        crate::loopback::tcp::add_to_linker(linker)
    }
}
