//! `wasi:config/store@0.2.0-draft`, the same interface as `@0.2.0-rc.1` (the only
//! version wasmCloud 2 serves; pre-releases match only themselves) and its older
//! name `wasi:config/runtime`: the component's `properties.config` from the
//! manifest, with named config (`lattice config put`) read at each call.

use crate::capability::Capability;
use crate::ctx::Ctx;
use bindings::wasi::config::{runtime, store};
use wasmtime::component::{HasSelf, Linker};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "lattice:host/config-imports",
        imports: { default: async | trappable },
    });
}

/// `wasi:config/store@0.2.0-rc.1` (`wit/compat/config-0.2.0-rc.1`).
mod rc1 {
    wasmtime::component::bindgen!({
        path: "../wit/compat/config-0.2.0-rc.1",
        world: "imports",
        imports: { default: async | trappable },
    });
}

/// The capability (its data is the component's config, in `ComponentEnv`).
pub struct Config;

impl Capability for Config {
    fn name(&self) -> &'static str {
        "config"
    }

    fn add_to_linker(&self, linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
        store::add_to_linker::<Ctx, HasSelf<Ctx>>(linker, |c| c)?;
        rc1::wasi::config::store::add_to_linker::<Ctx, HasSelf<Ctx>>(linker, |c| c)?;
        runtime::add_to_linker::<Ctx, HasSelf<Ctx>>(linker, |c| c)
    }
}

impl store::Host for Ctx {
    async fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<String>, store::Error>> {
        Ok(Ok(self.env.config_value(&key)))
    }

    async fn get_all(&mut self) -> wasmtime::Result<Result<Vec<(String, String)>, store::Error>> {
        Ok(Ok(self.env.current_config().into_iter().collect()))
    }
}

impl runtime::Host for Ctx {
    async fn get(
        &mut self,
        key: String,
    ) -> wasmtime::Result<Result<Option<String>, runtime::ConfigError>> {
        Ok(Ok(self.env.config_value(&key)))
    }

    async fn get_all(
        &mut self,
    ) -> wasmtime::Result<Result<Vec<(String, String)>, runtime::ConfigError>> {
        Ok(Ok(self.env.current_config().into_iter().collect()))
    }
}

impl rc1::wasi::config::store::Host for Ctx {
    async fn get(
        &mut self,
        key: String,
    ) -> wasmtime::Result<Result<Option<String>, rc1::wasi::config::store::Error>> {
        Ok(Ok(self.env.config_value(&key)))
    }

    async fn get_all(
        &mut self,
    ) -> wasmtime::Result<Result<Vec<(String, String)>, rc1::wasi::config::store::Error>> {
        Ok(Ok(self.env.current_config().into_iter().collect()))
    }
}
