//! One Wasm component of a workload, ready to invoke: its compiled `InstancePre`, an
//! admission [`Limiter`], its read-only [`ComponentEnv`], and a fresh `Store` per
//! invocation. [`invoke`] calls an export; [`http`] serves a request through
//! `wasi:http/incoming-handler`.

pub mod http;
mod invoke;
pub mod outcomes;
pub mod warm;

pub use invoke::{admit, guest_message, invoke, invoke_admitted};
pub use outcomes::{Outcome, OutcomeCounts, Outcomes};
pub use warm::{WarmBudget, WarmInstance, WarmPool};

use crate::config::Limits;
use crate::ctx::Ctx;
use crate::env::ComponentEnv;
use crate::limiter::{Limiter, Overloaded};
use crate::links::funcs::Exports;
use std::sync::Arc;
use std::time::Instant;
use wasmtime::component::InstancePre;
use wasmtime::{Store, StoreLimitsBuilder, UpdateDeadline};

/// Why an invocation failed.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("component '{component}' of app '{app}' is overloaded: {reason}")]
    Overloaded {
        app: String,
        component: String,
        reason: Overloaded,
    },
    #[error("component '{component}' of app '{app}' failed: {message}")]
    Guest {
        app: String,
        component: String,
        message: String,
    },
}

/// One Wasm component of a workload, ready to invoke.
pub struct ComponentRuntime {
    pub env: Arc<ComponentEnv>,
    pub pre: InstancePre<Ctx>,
    /// Where its `wasi:http/incoming-handler` export is, when it has one.
    pub proxy: Option<wasmtime_wasi_http::p2::bindings::ProxyIndices>,
    /// The interface functions it exports, for links to it.
    pub exports: Exports,
    pub limiter: Limiter,
    pub limits: Limits,
    pub instances: u32,
    pub digest: String,
    /// How its invocations ended, for the host's reports.
    pub outcomes: Outcomes,
    /// Its idle warm instances, when the manifest asked for them.
    pub warm: Option<WarmPool>,
}

impl ComponentRuntime {
    /// A fresh store for one invocation, with the memory limit and an execution
    /// deadline enforced by epoch interruption (yielding to the executor every tick
    /// so a spinning guest never blocks other work).
    pub fn new_store(&self) -> Store<Ctx> {
        let mut store = self.new_service_store();
        self.arm(&mut store);
        store
    }

    /// A store for a service's run: the same memory limit, no deadline (it runs
    /// for the workload's life), still yielding every epoch tick.
    pub fn new_service_store(&self) -> Store<Ctx> {
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.limits.max_memory_bytes)
            .trap_on_grow_failure(false)
            .build();
        let mut store = Store::new(self.pre.engine(), Ctx::new(self.env.clone(), limits));
        store.limiter(|c| &mut c.limits);
        store.set_epoch_deadline(1);
        let timeout = self.limits.execution_timeout;
        store.epoch_deadline_callback(move |store| match store.data().deadline {
            Some(deadline) if Instant::now() >= deadline => Err(wasmtime::format_err!(
                "execution deadline of {timeout:?} exceeded"
            )),
            _ => Ok(UpdateDeadline::Yield(1)),
        });
        store
    }

    /// Start the execution deadline of an invocation in `store` (a fresh one, or
    /// a warm instance's between invocations).
    pub fn arm(&self, store: &mut Store<Ctx>) {
        store.data_mut().deadline = Some(Instant::now() + self.limits.execution_timeout);
        store.set_epoch_deadline(1);
    }

    /// An instance for one invocation, its deadline armed: a warm one when the
    /// component keeps them and one is idle, else a fresh one.
    pub async fn instance(&self) -> wasmtime::Result<WarmInstance> {
        if let Some(mut warm) = self.warm.as_ref().and_then(WarmPool::take) {
            self.arm(&mut warm.store);
            return Ok(warm);
        }
        let mut store = self.new_store();
        let instance = self.pre.instantiate_async(&mut store).await?;
        Ok(WarmInstance::new(store, instance))
    }

    /// An invocation in `instance` returned: keep it for the next one when the
    /// component keeps warm instances (else it is dropped here).
    pub fn returned(&self, instance: WarmInstance) {
        if let Some(pool) = &self.warm {
            pool.give_back(instance);
        }
    }

    /// Create a fresh store and instantiate the component in it, then drop both:
    /// the fixed per-invocation cost, without calling any export. For benchmarks
    /// (`host/benches/instantiate.rs`).
    pub async fn instantiate_only(&self) -> anyhow::Result<()> {
        let mut store = self.new_store();
        self.pre
            .instantiate_async(&mut store)
            .await
            .map_err(anyhow::Error::from)?;
        Ok(())
    }

    pub fn overloaded(&self, reason: Overloaded) -> InvokeError {
        InvokeError::Overloaded {
            app: self.env.app.clone(),
            component: self.env.component.clone(),
            reason,
        }
    }

    pub fn guest_error(&self, message: impl Into<String>) -> InvokeError {
        InvokeError::Guest {
            app: self.env.app.clone(),
            component: self.env.component.clone(),
            message: message.into(),
        }
    }
}
