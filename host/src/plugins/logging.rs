//! `wasi:logging/logging@0.1.0-draft`, and the same interface unversioned (as
//! wasmCloud 1.x serves it to components whose WIT names no version), into the
//! host's tracing, tagged with the app and component that logged. (Guests' stdout
//! and stderr: `telemetry::guest_output`.)

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

/// `wasi:logging/logging` without a version (`wit/compat/logging-unversioned`).
mod unversioned {
    wasmtime::component::bindgen!({
        path: "../wit/compat/logging-unversioned",
        world: "imports",
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
        logging::add_to_linker::<Ctx, HasSelf<Ctx>>(linker, |c| c)?;
        unversioned::wasi::logging::logging::add_to_linker::<Ctx, HasSelf<Ctx>>(linker, |c| c)
    }
}

impl unversioned::wasi::logging::logging::Host for Ctx {
    async fn log(
        &mut self,
        level: unversioned::wasi::logging::logging::Level,
        context: String,
        message: String,
    ) -> wasmtime::Result<()> {
        use unversioned::wasi::logging::logging::Level as L;
        let level = match level {
            L::Trace => Level::Trace,
            L::Debug => Level::Debug,
            L::Info => Level::Info,
            L::Warn => Level::Warn,
            L::Error => Level::Error,
            L::Critical => Level::Critical,
        };
        logging::Host::log(self, level, context, message).await
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
        let name = match level {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error | Level::Critical => "error",
        };
        let line = if context.is_empty() {
            message.clone()
        } else {
            format!("{context}: {message}")
        };
        self.env.logs.send(app, component, name, &line);
        if let Some(span) = self.span.get() {
            use crate::telemetry::trace::KeyValue;
            span.event(
                "guest log",
                vec![
                    KeyValue::new("log.severity", name),
                    KeyValue::new("log.context", context.clone()),
                    KeyValue::new("log.record.original", message.clone()),
                ],
            );
        }
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
