//! `wasi:logging/logging@0.1.0-draft` into the host's tracing, tagged with the app
//! and component that logged. (Guests' stdout and stderr: `telemetry::guest_output`.)

use crate::capability::Capability;
use crate::ctx::Ctx;
use bindings::wasi::logging::logging::{self, Level};
use wasmtime::component::{HasSelf, Linker};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "lattice:host/logging-imports",
        imports: { default: async | trappable },
    });
}

/// The capability.
pub struct Logging;

impl Capability for Logging {
    fn name(&self) -> &'static str {
        "logging"
    }

    fn add_to_linker(&self, linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
        logging::add_to_linker::<Ctx, HasSelf<Ctx>>(linker, |c| c)
    }
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
