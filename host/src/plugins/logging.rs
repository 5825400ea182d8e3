//! `wasi:logging/logging@0.1.0-draft` into the host's tracing, tagged with the app
//! and component that logged.

use crate::bindings::wasi::logging::logging::{self, Level};
use crate::ctx::Ctx;
use wasmtime::component::{HasSelf, Linker};

pub fn add_to_linker(linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
    logging::add_to_linker::<Ctx, HasSelf<Ctx>>(linker, |c| c)
}

impl logging::Host for Ctx {
    async fn log(
        &mut self,
        level: Level,
        context: String,
        message: String,
    ) -> wasmtime::Result<()> {
        let (app, component) = (&self.env.app, &self.env.component);
        macro_rules! emit {
            ($lvl:ident) => {
                tracing::$lvl!(target: "guest", app = %app, component = %component, context = %context, "{message}")
            };
        }
        match level {
            Level::Trace => emit!(trace),
            Level::Debug => emit!(debug),
            Level::Info => emit!(info),
            Level::Warn => emit!(warn),
            Level::Error | Level::Critical => emit!(error),
        }
        Ok(())
    }
}
