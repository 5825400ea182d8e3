//! A workload's service: one long-running instance of a component that exports
//! `wasi:cli/run`, started with the workload and stopped with it, restarted in a
//! fresh `Store` with exponential backoff when it crashes.
//!
//! Invariants: a crashed service never reuses its `Store` (a trapped instance cannot
//! be entered again); its memory limit is the host's like any component's; it has no
//! execution deadline, runs on the [`ServiceThreads`] (not the threads that serve
//! requests and NATS) and yields every epoch tick, so a spinning service cannot
//! starve the host's other work; dropping the [`Service`] stops it at once, which
//! drops its sockets and frees its ports on the workload's loopback.

use crate::backoff::backoff;
use crate::component::guest_message;
use crate::component::ComponentRuntime;
use lattice_protocol::manifest::Restart;
use lattice_protocol::messages::{ServiceReport, ServiceState};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmtime_wasi::p2::bindings::CommandPre;

/// The threads services run on, apart from the host's own runtime: the kernel
/// shares the CPU between them and the threads serving requests, so a busy service
/// slows nothing but other services. Started on first use.
#[derive(Default)]
pub struct ServiceThreads {
    runtime: std::sync::OnceLock<tokio::runtime::Runtime>,
}

impl ServiceThreads {
    fn spawn<F>(&self, task: F) -> Result<tokio::task::JoinHandle<()>, String>
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let runtime = match self.runtime.get() {
            Some(rt) => rt,
            None => {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("lattice-service")
                    .enable_all()
                    .build()
                    .map_err(|e| format!("cannot start the threads services run on: {e}"))?;
                self.runtime.get_or_init(|| rt)
            }
        };
        Ok(runtime.spawn(task))
    }
}

impl Drop for ServiceThreads {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which is not allowed inside another one.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// A running service; dropping it stops the service.
pub struct Service {
    report: Arc<Mutex<ServiceReport>>,
    task: tokio::task::JoinHandle<()>,
    /// The runtime it runs (its `InstancePre`, limits and environment).
    pub runtime: Arc<ComponentRuntime>,
}

impl Drop for Service {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Service {
    /// Start `rt` as a service under `policy`. Refused when the component does not
    /// export `wasi:cli/run`.
    pub fn start(
        threads: &ServiceThreads,
        rt: Arc<ComponentRuntime>,
        policy: Restart,
    ) -> Result<Self, String> {
        let command = CommandPre::new(rt.pre.clone()).map_err(|e| {
            rt.guest_error(format!(
                "a service must export wasi:cli/run (build it as a command, with `fn main`): {e:#}"
            ))
            .to_string()
        })?;
        let report = Arc::new(Mutex::new(ServiceReport {
            name: rt.env.component.clone(),
            state: ServiceState::Running,
            restarts: 0,
            crashes_in_a_row: 0,
            last_error: None,
        }));
        let task = threads.spawn(supervise(rt.clone(), command, policy, report.clone()))?;
        Ok(Self {
            report,
            task,
            runtime: rt,
        })
    }

    /// How it is doing now.
    pub fn report(&self) -> ServiceReport {
        self.report
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

async fn supervise(
    rt: Arc<ComponentRuntime>,
    command: CommandPre<crate::ctx::Ctx>,
    policy: Restart,
    report: Arc<Mutex<ServiceReport>>,
) {
    let (app, name) = (rt.env.app.clone(), rt.env.component.clone());
    let set = |f: &dyn Fn(&mut ServiceReport)| {
        f(&mut report.lock().unwrap_or_else(|p| p.into_inner()));
    };
    let mut crashes = 0u32;
    loop {
        set(&|r| r.state = ServiceState::Running);
        tracing::info!(%app, service = %name, "service starting");
        let started = Instant::now();
        let error = match run_once(&rt, &command).await {
            Ok(()) => {
                tracing::info!(%app, service = %name, "service finished");
                set(&|r| r.state = ServiceState::Exited);
                return;
            }
            Err(e) => e,
        };
        if started.elapsed() >= Duration::from_millis(policy.max_backoff_ms) {
            crashes = 0;
        }
        crashes += 1;
        let failed = crashes > policy.max_restarts;
        let delay = backoff(&policy, crashes);
        set(&|r| {
            r.last_error = Some(error.clone());
            r.crashes_in_a_row = crashes;
            if failed {
                r.state = ServiceState::Failed;
            } else {
                r.state = ServiceState::Restarting;
                r.restarts += 1;
            }
        });
        if failed {
            tracing::error!(%app, service = %name, crashes, "service crashed too often; giving up: {error}");
            return;
        }
        tracing::warn!(%app, service = %name, crashes, ?delay, "service crashed; restarting: {error}");
        tokio::time::sleep(delay).await;
    }
}

/// One run in a fresh store: `Ok` when `run` returned success (or the guest exited
/// with status 0), else why it stopped.
async fn run_once(
    rt: &ComponentRuntime,
    command: &CommandPre<crate::ctx::Ctx>,
) -> Result<(), String> {
    let mut store = rt.new_service_store();
    let outcome = async {
        let instance = command.instantiate_async(&mut store).await?;
        instance.wasi_cli_run().call_run(&mut store).await
    }
    .await;
    match outcome {
        Ok(Ok(())) => Ok(()),
        Ok(Err(())) => Err("wasi:cli/run returned an error".to_owned()),
        Err(e) => match e.downcast_ref::<wasmtime_wasi::I32Exit>() {
            Some(wasmtime_wasi::I32Exit(0)) => Ok(()),
            Some(wasmtime_wasi::I32Exit(code)) => Err(format!("exited with status {code}")),
            None => Err(guest_message(&e)),
        },
    }
}
