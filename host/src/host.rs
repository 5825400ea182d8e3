//! The host: one engine, one linker, the compiled-component cache, the plugins and
//! the workloads it runs. Cloneable handle; the state behind it is only touched in
//! short critical sections, never across an await.

use crate::cache::ComponentCache;
use crate::config::{automatic_labels, HostConfig};
use crate::ctx::Ctx;
use crate::engine::{build_engine, start_epoch_ticker};
use crate::limiter::Limiter;
use crate::links::trace::TraceContext;
use crate::links::{self, imports::Exports, CallFailure, Router};
use crate::loopback::Loopback;
use crate::plugins::{self, keyvalue, Plugins};
use crate::provider::{self, Provider, ProviderContext, ProviderSpec};
use crate::service::{Service, ServiceThreads};
use crate::workload::{ComponentEnv, ComponentRuntime, Workload};
use lattice_protocol::manifest::{Builtin, ComponentKind, Image, Manifest};
use lattice_protocol::messages::{ComponentReport, HostInfo, WorkloadReport, WorkloadSpec};
use lattice_protocol::subjects::Subjects;
use lattice_protocol::wire::CallErrorKind;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};
use wasmtime::component::Linker;
use wasmtime::Engine;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

/// A running host. Clone it freely.
#[derive(Clone)]
pub struct Host {
    inner: Arc<Inner>,
}

struct Inner {
    id: String,
    config: HostConfig,
    labels: Arc<Mutex<BTreeMap<String, String>>>,
    engine: Engine,
    pooling: bool,
    cache: ComponentCache,
    linker: Linker<Ctx>,
    plugins: Arc<Plugins>,
    router: Arc<Router>,
    services: ServiceThreads,
    workloads: Mutex<BTreeMap<String, Workload>>,
    started_at_ms: u64,
    draining: AtomicBool,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

impl Host {
    /// Build a host. `nats` enables `builtin://keyvalue-nats`.
    pub fn new(config: HostConfig, nats: Option<async_nats::Client>) -> anyhow::Result<Self> {
        let (engine, pooling) = build_engine(&config.limits, config.pooling)?;
        start_epoch_ticker(&engine);
        let mut linker = Linker::new(&engine);
        plugins::add_to_linker(&mut linker).map_err(anyhow::Error::from)?;
        let subjects = Subjects::new(&config.lattice);
        let kv = keyvalue::Registry::new(
            nats.clone()
                .map(|c| (async_nats::jetstream::new(c), subjects.clone())),
        );
        let mut labels = automatic_labels();
        labels.extend(config.labels.clone());
        let key = match &config.key_seed {
            Some(seed) => nkeys::KeyPair::from_seed(seed)
                .map_err(|e| anyhow::anyhow!("the host key seed is not a valid nkey seed: {e}"))?,
            None => nkeys::KeyPair::new_server(),
        };
        let plugins = Arc::new(Plugins::new(kv));
        let labels = Arc::new(Mutex::new(labels));
        let router = Arc::new(Router::new(
            key.public_key(),
            config.lattice.clone(),
            nats,
            config.links.clone(),
            labels.clone(),
        ));
        let _ = plugins.router.set(router.clone());
        Ok(Self {
            inner: Arc::new(Inner {
                id: key.public_key(),
                labels,
                router,
                services: ServiceThreads::default(),
                cache: ComponentCache::new(engine.clone()),
                engine,
                pooling,
                linker,
                plugins,
                workloads: Mutex::default(),
                started_at_ms: now_ms(),
                draining: AtomicBool::new(false),
                config,
            }),
        })
    }

    /// The host's public nkey.
    pub fn id(&self) -> &str {
        &self.inner.id
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

    /// Linked calls so far, by where they went.
    pub fn calls(&self) -> lattice_protocol::messages::CallCounts {
        self.inner.router.counters.snapshot()
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
        for app in self.apps() {
            self.inner.plugins.http_server.release(&app, &[]);
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

    fn workloads(&self) -> MutexGuard<'_, BTreeMap<String, Workload>> {
        self.inner
            .workloads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// What this host is and runs.
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
                    .map(|(name, rt)| ComponentReport {
                        name: name.clone(),
                        instances: rt.instances,
                        in_flight: rt.limiter.in_flight(),
                    })
                    .chain(
                        w.providers
                            .iter()
                            .map(|(name, (instances, _))| ComponentReport {
                                name: name.clone(),
                                instances: *instances,
                                in_flight: 0,
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
            calls: self.inner.router.counters.snapshot(),
        }
    }

    /// The runtime of one component, for embedding and tests.
    pub fn component(&self, app: &str, component: &str) -> Option<Arc<ComponentRuntime>> {
        self.workloads()
            .get(app)
            .and_then(|w| w.components.get(component).cloned())
    }

    /// What providers started here are given: where NATS is.
    fn provider_context(&self) -> Result<ProviderContext, String> {
        let (Some(nats_url), Some(nats)) = (
            self.inner.config.provider_nats_url.clone(),
            self.inner.router.nats.clone(),
        ) else {
            return Err(format!(
                "host {} has no NATS URL to give capability providers, so it cannot run them",
                self.id()
            ));
        };
        Ok(ProviderContext {
            lattice: self.inner.config.lattice.clone(),
            host_id: self.id().to_string(),
            nats_url,
            nats,
        })
    }

    /// Call `function` of `interface` (`namespace:package/interface`) exported by
    /// `component` of `app` on this host, in a fresh instance admitted by its
    /// limiter, as a linked call from another component would. For embedding,
    /// tests and benchmarks.
    pub async fn call(
        &self,
        app: &str,
        component: &str,
        interface: &str,
        function: &str,
        params: &[wasmtime::component::Val],
    ) -> Result<Vec<wasmtime::component::Val>, CallFailure> {
        let rt = self.component(app, component).ok_or_else(|| {
            CallFailure::new(
                CallErrorKind::Unavailable,
                format!("component '{component}' of app '{app}' does not run on this host"),
            )
        })?;
        let export = rt.exports.get(interface, function)?;
        links::router::invoke(&rt, export, params, TraceContext::new()).await
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

    /// Run exactly `spec` for its app, replacing what ran before. Returns the
    /// components whose instances changed, with their new count (0: stopped here).
    /// On error nothing changes and the message says what to fix.
    pub async fn apply(&self, spec: WorkloadSpec) -> Result<Vec<(String, u32)>, String> {
        if self.inner.draining.load(Ordering::SeqCst) {
            return Err(format!(
                "host {} is draining and takes no new work",
                self.id()
            ));
        }
        let manifest = spec.manifest;
        let app = manifest.name.clone();
        // The same version keeps its loopback network and its running service; a
        // new version starts both afresh.
        let (loopback, running_service, running_providers) = match self.workloads().get(&app) {
            Some(w) if w.version == manifest.version => {
                (w.loopback.clone(), w.service.clone(), w.providers.clone())
            }
            Some(w) => (Arc::new(Loopback::default()), None, w.providers.clone()),
            None => (Arc::new(Loopback::default()), None, BTreeMap::new()),
        };
        let mut components = BTreeMap::new();
        let mut providers = BTreeMap::new();
        for (name, &instances) in &spec.placements {
            if instances == 0 {
                continue;
            }
            if let Some(provider) = ProviderSpec::of(&manifest, name) {
                let links = provider::links_of(&manifest, name);
                let process = match running_providers.get(name) {
                    // Same executable and config: keep the process, tell it the links.
                    Some((_, p)) if p.spec == provider => {
                        p.set_links(links);
                        p.clone()
                    }
                    _ => Arc::new(Provider::start(self.provider_context()?, provider, links)?),
                };
                providers.insert(name.clone(), (instances, process));
                continue;
            }
            let rt = self.prepare(&manifest, name, instances, &loopback).await?;
            components.insert(name.clone(), Arc::new(rt));
        }
        let service = match (manifest.service(), running_service) {
            (Some(_), _) if components.is_empty() => None,
            (Some(_), Some(running)) => Some(running),
            (Some(svc), None) => {
                let rt = self.prepare(&manifest, &svc.name, 1, &loopback).await?;
                let policy = svc.restart.unwrap_or_default();
                let service = Service::start(&self.inner.services, Arc::new(rt), policy)?;
                Some(Arc::new(service))
            }
            (None, _) => None,
        };
        let routes = http_routes(&manifest, &components)?;
        let server = &self.inner.plugins.http_server;
        // Check every address first so a refused apply binds nothing.
        for (addr, _) in &routes {
            if let Some(owner) = server.owner(addr).filter(|o| *o != app) {
                return Err(format!(
                    "address {addr} is already used by app '{owner}'; app '{app}' cannot listen there (pick another `address` in its http-server link)"
                ));
            }
        }
        let mut bound = Vec::new();
        for (addr, rt) in routes {
            if let Err(e) = server.bind(&app, addr, rt) {
                server.release(&app, &self.current_addresses(&app));
                return Err(e);
            }
            bound.push(addr);
        }
        server.release(&app, &bound);
        let after: BTreeMap<String, u32> = components
            .iter()
            .map(|(n, rt)| (n.clone(), rt.instances))
            .chain(providers.iter().map(|(n, (i, _))| (n.clone(), *i)))
            .collect();
        let before = self.instances(&app);
        self.inner.router.register(&manifest, &components).await?;
        let workload = Workload {
            version: manifest.version.clone(),
            manifest,
            components,
            loopback,
            service,
            providers,
        };
        self.workloads().insert(app.clone(), workload);
        tracing::info!(%app, "workload applied");
        Ok(scaled(&before, &after))
    }

    fn current_addresses(&self, app: &str) -> Vec<SocketAddr> {
        self.workloads()
            .get(app)
            .map(|w| {
                http_routes(&w.manifest, &w.components)
                    .map(|r| r.into_iter().map(|(a, _)| a).collect())
                    .unwrap_or_default()
            })
            .unwrap_or_default()
    }

    /// Stop everything of `app`: close its listeners, drop its components and its
    /// in-memory keyvalue data. Returns whether it ran here.
    pub fn remove(&self, app: &str) -> bool {
        self.inner.plugins.http_server.release(app, &[]);
        self.inner.plugins.keyvalue.forget_app(app);
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

    async fn prepare(
        &self,
        manifest: &Manifest,
        name: &str,
        instances: u32,
        loopback: &Arc<Loopback>,
    ) -> Result<ComponentRuntime, String> {
        let app = &manifest.name;
        let component = manifest
            .component(name)
            .ok_or_else(|| format!("app '{app}' has no component named '{name}'"))?;
        if component.kind == ComponentKind::Capability {
            return Err(format!(
                "component '{name}' of app '{app}' is a capability and cannot be placed as a component"
            ));
        }
        let Image::File(path) = &component.image else {
            return Err(format!(
                "component '{name}' of app '{app}' is a builtin capability and cannot be placed as a component"
            ));
        };
        let path = path.strip_prefix("file://").unwrap_or(path);
        let (digest, compiled) = self
            .inner
            .cache
            .load_file(path)
            .await
            .map_err(|e| format!("component '{name}' of app '{app}': {e}"))?;
        let mut env = ComponentEnv::from_manifest(
            manifest,
            name,
            self.inner.plugins.clone(),
            &self.inner.config.links,
        )?;
        env.loopback = Some(loopback.clone());
        env.can_listen = component.kind == ComponentKind::Service;
        let engine = &self.inner.engine;
        let own_linker = links::imports::linker_for(
            &self.inner.linker,
            engine,
            &compiled,
            &env,
            &self.inner.router,
        )?;
        let linker = own_linker.as_ref().unwrap_or(&self.inner.linker);
        let pre = linker.instantiate_pre(&compiled).map_err(|e| {
            format!("component '{name}' of app '{app}' cannot be linked on this host: {e:#}")
        })?;
        let proxy = ProxyPre::new(pre.clone()).ok();
        let limits = self.inner.config.limits;
        Ok(ComponentRuntime {
            env: Arc::new(env),
            exports: Exports::of(engine, &compiled),
            pre,
            proxy,
            limiter: Limiter::new(instances, limits.max_queued, limits.queue_timeout),
            limits,
            instances,
            digest,
        })
    }
}

/// The HTTP listeners `manifest` asks for on this host: every link from a
/// `builtin://http-server` capability to a component placed here.
fn http_routes(
    manifest: &Manifest,
    placed: &BTreeMap<String, Arc<ComponentRuntime>>,
) -> Result<Vec<(SocketAddr, Arc<ComponentRuntime>)>, String> {
    let mut routes: Vec<(SocketAddr, Arc<ComponentRuntime>)> = Vec::new();
    for (source, link) in manifest.links() {
        if source.image != Image::Builtin(Builtin::HttpServer) {
            continue;
        }
        let Some(rt) = placed.get(&link.target) else {
            continue;
        };
        let address = link.source_config.get("address").ok_or_else(|| {
            format!(
                "the http-server link from '{}' to '{}' has no `address` in its source config",
                source.name, link.target
            )
        })?;
        let addr: SocketAddr = address
            .parse()
            .map_err(|e| format!("http-server address '{address}' is not host:port: {e}"))?;
        if rt.proxy.is_none() {
            return Err(format!(
                "component '{}' of app '{}' is linked from the http-server but does not export wasi:http/incoming-handler",
                link.target, manifest.name
            ));
        }
        if routes.iter().any(|(a, _)| *a == addr) {
            return Err(format!(
                "app '{}' asks for address {addr} twice",
                manifest.name
            ));
        }
        routes.push((addr, rt.clone()));
    }
    Ok(routes)
}

/// Components whose instance count differs between `before` and `after`.
fn scaled(before: &BTreeMap<String, u32>, after: &BTreeMap<String, u32>) -> Vec<(String, u32)> {
    let stopped = before
        .keys()
        .filter(|n| !after.contains_key(*n))
        .map(|n| (n.clone(), 0));
    let changed = after
        .iter()
        .filter(|(n, i)| before.get(*n) != Some(*i))
        .map(|(n, i)| (n.clone(), *i));
    changed.chain(stopped).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaled_lists_changes_and_stops() {
        let m = |v: &[(&str, u32)]| v.iter().map(|(n, i)| (n.to_string(), *i)).collect();
        let before = m(&[("a", 1), ("b", 2), ("c", 3)]);
        let after = m(&[("a", 1), ("b", 4), ("d", 1)]);
        assert_eq!(
            scaled(&before, &after),
            vec![("b".into(), 4), ("d".into(), 1), ("c".into(), 0)]
        );
        assert!(scaled(&after, &after).is_empty());
    }
}
