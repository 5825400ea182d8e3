//! The host: one engine, one linker, the compiled-component cache, the plugins and
//! the workloads it runs. Cloneable handle; the state behind it is only touched in
//! short critical sections, never across an await.

use crate::cache::ComponentCache;
use crate::capability::{Capability, HostServices};
use crate::component::{invoke, ComponentRuntime};
use crate::config::{automatic_labels, HostConfig};
use crate::ctx::Ctx;
use crate::engine::{build_engine, start_epoch_ticker};
use crate::links::failure::CallError;
use crate::links::router::Router;
use crate::links::types::{from_wire, to_wire};
use crate::loopback::Loopback;
use crate::plugins;
use crate::service::ServiceThreads;
use crate::workload::Workload;

mod apply;
mod error;

pub use error::ApplyError;
use lattice_protocol::messages::{ComponentReport, HostInfo, WorkloadReport};
use lattice_protocol::subjects::Subjects;
use lattice_protocol::trust::{sign_report, JoinToken};
use lattice_protocol::wire::{CallErrorKind, WitValue};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use wasmtime::component::Linker;
use wasmtime::Engine;

/// A running host. Clone it freely.
#[derive(Clone)]
pub struct Host {
    inner: Arc<Inner>,
}

struct Inner {
    id: String,
    /// The host's identity: it signs every report.
    key: nkeys::KeyPair,
    /// The join token whose proof goes with every report, if any.
    join: Option<JoinToken>,
    /// Commands refused (unsigned, forged, stale, replayed) since the start.
    refused: AtomicU64,
    config: HostConfig,
    labels: Arc<Mutex<BTreeMap<String, String>>>,
    engine: Engine,
    pooling: bool,
    cache: ComponentCache,
    /// Where component and provider bytes come from, checked by digest.
    fetcher: lattice_artifacts::Fetcher,
    linker: Linker<Ctx>,
    capabilities: Vec<Arc<dyn Capability>>,
    router: Arc<Router>,
    services: ServiceThreads,
    workloads: Mutex<BTreeMap<String, Workload>>,
    /// Named config as last seen (kept current by `agent` when on NATS).
    named_configs: crate::named_config::NamedConfigs,
    /// Guests' log lines, published on NATS once the agent connects.
    guest_logs: crate::telemetry::guest_logs::GuestLogs,
    /// Secrets for this host are sealed to this key; new at every start, never
    /// leaves the process.
    secrets_key: nkeys::XKey,
    started_at_ms: u64,
    draining: AtomicBool,
    /// What all warm pools of this host keep idle together.
    warm_budget: crate::component::WarmBudget,
}

pub use lattice_protocol::now_ms;

impl Host {
    /// Build a host. `nats` enables `builtin://keyvalue-nats`.
    pub fn new(config: HostConfig, nats: Option<async_nats::Client>) -> anyhow::Result<Self> {
        let (engine, pooling) = build_engine(&config.limits, config.pooling)?;
        start_epoch_ticker(&engine);
        let subjects = Subjects::new(&config.lattice);
        let mut labels = automatic_labels();
        labels.extend(config.labels.clone());
        let key = match &config.key_seed {
            Some(seed) => nkeys::KeyPair::from_seed(seed)
                .map_err(|e| anyhow::anyhow!("the host key seed is not a valid nkey seed: {e}"))?,
            None => nkeys::KeyPair::new_server(),
        };
        if key.key_pair_type() != nkeys::KeyPairType::Server {
            anyhow::bail!(
                "the host key must be a server nkey (a seed starting with SN), not a {:?} key",
                key.key_pair_type()
            );
        }
        let join = match &config.join_token {
            Some(seed) => Some(
                JoinToken::from_seed(seed)
                    .map_err(|e| anyhow::anyhow!("the join token is not valid: {e}"))?,
            ),
            None => None,
        };
        let labels = Arc::new(Mutex::new(labels));
        let router = Arc::new(Router::new(
            key.public_key(),
            config.lattice.clone(),
            nats.clone(),
            config.links.clone(),
            labels.clone(),
        ));
        let capabilities = plugins::builtins(&HostServices {
            host_id: key.public_key(),
            subjects,
            nats: nats.clone(),
            messaging_nats: config.messaging_nats.clone(),
            http_server: config.http_server,
            router: router.clone(),
            blobstore_dir: config.blobstore_dir.clone(),
            bucket_replicas: config.bucket_replicas,
        });
        let fetcher = lattice_artifacts::Fetcher::new(
            &config.lattice,
            nats.clone(),
            config.cache_dir.as_ref().map(|d| d.join("artifacts")),
            lattice_artifacts::FetchConfig {
                allow_file_load: config.allow_file_load,
                ..config.artifacts
            },
        )
        .map_err(|e| anyhow::anyhow!("cannot make the host's artifact cache folder: {e}"))?;
        fetcher.set_registry(lattice_artifacts::oci::Registry::new(
            config.registry.clone(),
        )?);
        let mut linker = Linker::new(&engine);
        for capability in &capabilities {
            capability.add_to_linker(&mut linker).map_err(|e| {
                anyhow::anyhow!("capability {} cannot be linked: {e}", capability.name())
            })?;
        }
        Ok(Self {
            inner: Arc::new(Inner {
                id: key.public_key(),
                key,
                join,
                refused: AtomicU64::new(0),
                labels,
                router,
                services: ServiceThreads::default(),
                cache: ComponentCache::new(engine.clone(), config.trusted_issuers.clone()),
                fetcher,
                engine,
                pooling,
                linker,
                capabilities,
                workloads: Mutex::default(),
                named_configs: Default::default(),
                guest_logs: Default::default(),
                secrets_key: lattice_protocol::secrets::new_key(),
                started_at_ms: now_ms(),
                draining: AtomicBool::new(false),
                warm_budget: crate::component::WarmBudget::new(crate::engine::WARM_INSTANCES),
                config,
            }),
        })
    }

    /// What this host fetched since it started (from the artifact store, its
    /// disk cache, files), and how many components it compiled: a second start
    /// of the same digest adds to neither.
    pub fn artifact_stats(&self) -> (lattice_artifacts::fetch::FetchStats, u64) {
        (self.inner.fetcher.stats(), self.inner.cache.compiles())
    }

    /// The compiled-component cache: (hits, compiles) since the host started.
    pub fn compile_cache(&self) -> (u64, u64) {
        (self.inner.cache.hits(), self.inner.cache.compiles())
    }

    /// `body` (an event's JSON) signed with the host's key, with its join proof:
    /// the bytes to publish.
    pub fn sign_report(&self, body: &[u8]) -> Result<Vec<u8>, String> {
        let config = &self.inner.config;
        sign_report(
            &self.inner.key,
            &config.lattice,
            now_ms(),
            body,
            self.inner.join.as_ref(),
        )
        .map_err(|e| e.to_string())
    }

    /// Count a refused command.
    pub fn count_refused_command(&self) {
        self.inner.refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Commands refused since the host started.
    pub fn refused_commands(&self) -> u64 {
        self.inner.refused.load(Ordering::Relaxed)
    }

    /// The host's public nkey.
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// The host's NATS connection, if it has one.
    pub fn nats(&self) -> Option<async_nats::Client> {
        self.inner.router.nats().cloned()
    }

    /// Named config as this host sees it.
    pub fn named_configs(&self) -> &crate::named_config::NamedConfigs {
        &self.inner.named_configs
    }

    /// Where guests' log lines go besides the host's tracing.
    pub fn guest_logs(&self) -> &crate::telemetry::guest_logs::GuestLogs {
        &self.inner.guest_logs
    }

    pub fn config(&self) -> &HostConfig {
        &self.inner.config
    }

    /// Whether the pooling allocator is in use.
    pub fn pooling(&self) -> bool {
        self.inner.pooling
    }

    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// Stop taking new work.
    pub fn set_draining(&self) {
        self.inner.draining.store(true, Ordering::SeqCst);
    }

    /// The host's labels now.
    pub fn labels(&self) -> BTreeMap<String, String> {
        self.inner
            .labels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Change labels at run time. `hostcore.*` labels are the host's own.
    pub fn set_labels(
        &self,
        set: BTreeMap<String, String>,
        unset: &[String],
    ) -> Result<(), String> {
        if let Some(k) = set.keys().chain(unset).find(|k| k.starts_with("hostcore.")) {
            return Err(format!(
                "label '{k}' is set by the host itself and cannot be changed"
            ));
        }
        if let Some(k) = set.keys().find(|k| k.is_empty()) {
            return Err(format!("label key '{k}' is empty"));
        }
        let mut labels = self.inner.labels.lock().unwrap_or_else(|p| p.into_inner());
        labels.extend(set);
        for k in unset {
            labels.remove(k);
        }
        Ok(())
    }

    /// Re-subscribe every link target this host serves, and tell its provider
    /// processes, so the locality subjects follow labels changed at run time.
    pub async fn refresh_locality(&self) -> Result<(), crate::links::serve::ServeError> {
        let locality = self.inner.router.locality();
        for workload in self.workloads().values() {
            for (_, provider) in workload.providers.values() {
                provider.set_locality(locality.clone());
            }
        }
        self.inner.router.refresh_serving().await
    }

    /// Linked calls so far, by where they went.
    pub fn calls(&self) -> lattice_protocol::messages::CallCounts {
        self.inner.router.counters().snapshot()
    }

    /// Invocations running now, over every component.
    pub fn in_flight(&self) -> u32 {
        self.workloads()
            .values()
            .flat_map(|w| w.components.values())
            .map(|rt| rt.limiter.in_flight())
            .sum()
    }

    /// Stop taking work and let what runs finish: close every listener, then wait
    /// until no invocation is in flight or `deadline` passes, then remove every
    /// workload. Returns the invocations still running at the deadline.
    pub async fn drain(&self, deadline: std::time::Duration) -> u32 {
        self.set_draining();
        for capability in &self.inner.capabilities {
            capability.drain();
        }
        let until = tokio::time::Instant::now() + deadline;
        while self.in_flight() > 0 && tokio::time::Instant::now() < until {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let left = self.in_flight();
        for app in self.apps() {
            self.remove(&app);
        }
        left
    }

    pub(crate) fn workloads(&self) -> MutexGuard<'_, BTreeMap<String, Workload>> {
        self.inner
            .workloads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// What this host is and runs: its heartbeat's report.
    pub fn info(&self) -> HostInfo {
        let workloads = self
            .workloads()
            .iter()
            .map(|(app, w)| WorkloadReport {
                app: app.clone(),
                version: w.version.clone(),
                components: w
                    .components
                    .iter()
                    .map(|(name, rt)| {
                        let (invocations, traps) = rt.outcomes.counts();
                        ComponentReport {
                            name: name.clone(),
                            instances: rt.instances,
                            in_flight: rt.limiter.in_flight(),
                            invocations,
                            traps,
                        }
                    })
                    .chain(
                        w.providers
                            .iter()
                            .map(|(name, (instances, _))| ComponentReport {
                                name: name.clone(),
                                instances: *instances,
                                in_flight: 0,
                                invocations: 0,
                                traps: 0,
                            }),
                    )
                    .collect(),
                service: w.service.as_ref().map(|s| s.report()),
                providers: w.providers.values().map(|(_, p)| p.report()).collect(),
            })
            .collect();
        HostInfo {
            host_id: self.inner.id.clone(),
            lattice: self.inner.config.lattice.clone(),
            labels: self.labels(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            started_at_ms: self.inner.started_at_ms,
            draining: self.inner.draining.load(Ordering::SeqCst),
            workloads,
            calls: self.inner.router.counters().snapshot(),
            refused_commands: self.refused_commands(),
            secrets_key: Some(self.inner.secrets_key.public_key()),
            link_calls: self.inner.router.counters().link_calls(),
            failed_calls: self.inner.router.counters().failed_calls(),
        }
    }

    /// The runtime of one component, for embedding and tests.
    pub fn component(&self, app: &str, component: &str) -> Option<Arc<ComponentRuntime>> {
        self.workloads()
            .get(app)
            .and_then(|w| w.components.get(component).cloned())
    }

    /// Call `function` of `interface` (`namespace:package/interface`) exported by
    /// `component` of `app` on this host, in a fresh instance admitted by its
    /// limiter, as a linked call from another component would. For embedding
    /// and tests; [`Host::call_wire`] takes the wire model.
    pub async fn call(
        &self,
        app: &str,
        component: &str,
        interface: &str,
        function: &str,
        params: &[wasmtime::component::Val],
    ) -> Result<Vec<wasmtime::component::Val>, CallError> {
        let args = params
            .iter()
            .map(to_wire)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| CallError::new(CallErrorKind::BadArguments, e))?;
        let results = self
            .call_wire(app, component, interface, function, args)
            .await?;
        Ok(results.into_iter().map(from_wire).collect())
    }

    /// [`Host::call`] with arguments and results in the wire model, as calls
    /// cross hosts: byte strings are not turned into a value per byte. For
    /// embedding and benchmarks.
    pub async fn call_wire(
        &self,
        app: &str,
        component: &str,
        interface: &str,
        function: &str,
        args: Vec<WitValue>,
    ) -> Result<Vec<WitValue>, CallError> {
        let rt = self.component(app, component).ok_or_else(|| {
            CallError::new(
                CallErrorKind::Unavailable,
                format!("component '{component}' of app '{app}' does not run on this host"),
            )
        })?;
        let export = rt.exports.get(interface, function)?;
        let types = &export.signature.params;
        let wrong = |why: String| {
            let takes = lattice_protocol::wire::signature(types, &export.signature.results);
            CallError::new(
                CallErrorKind::BadArguments,
                format!("{interface}.{function} is {takes}: {why}"),
            )
        };
        if args.len() != types.len() {
            return Err(wrong(format!("{} arguments given", args.len())));
        }
        for (i, (ty, value)) in types.iter().zip(&args).enumerate() {
            lattice_protocol::wire::typecheck(ty, value)
                .map_err(|e| wrong(format!("argument {}: {e}", i + 1)))?;
        }
        invoke(&rt, export, args, None).await
    }

    /// The loopback network of `app`'s workload here, weakly: for tests that check
    /// it is gone once the app is.
    pub fn loopback(&self, app: &str) -> Option<std::sync::Weak<Loopback>> {
        self.workloads()
            .get(app)
            .map(|w| Arc::downgrade(&w.loopback))
    }

    /// Instances per component of `app` on this host.
    pub fn instances(&self, app: &str) -> BTreeMap<String, u32> {
        self.workloads()
            .get(app)
            .map(|w| {
                w.components
                    .iter()
                    .map(|(n, rt)| (n.clone(), rt.instances))
                    .chain(w.providers.iter().map(|(n, (i, _))| (n.clone(), *i)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Stop everything of `app`: drop its components and what every capability
    /// keeps for it (listeners, in-memory keyvalue data). Returns whether it ran here.
    pub fn remove(&self, app: &str) -> bool {
        for capability in &self.inner.capabilities {
            capability.forget_app(app);
        }
        self.inner.router.unregister(app);
        let removed = self.workloads().remove(app).is_some();
        if removed {
            tracing::info!(%app, "workload removed");
        }
        removed
    }

    /// Every app this host runs.
    pub fn apps(&self) -> Vec<String> {
        self.workloads().keys().cloned().collect()
    }
}
