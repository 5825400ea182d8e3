//! The host-wide side of links: which link targets run here, where each call goes,
//! and how many went where.

use super::imports::{ExportedFunc, ImportedFunc};
use super::serve::Serving;
use super::trace::TraceContext;
use super::{remote, CallFailure, LinkSettings};
use crate::workload::{ComponentEnv, ComponentRuntime};
use lattice_protocol::manifest::{Image, Manifest};
use lattice_protocol::messages::CallCounts;
use lattice_protocol::wire::CallErrorKind;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Instant;
use wasmtime::component::Val;

/// Linked calls counted by where they went; `lattice get hosts` shows them.
#[derive(Debug, Default)]
pub struct CallCounters {
    local: AtomicU64,
    remote: AtomicU64,
    served: AtomicU64,
    failed: AtomicU64,
}

impl CallCounters {
    pub fn snapshot(&self) -> CallCounts {
        CallCounts {
            local: self.local.load(Ordering::Relaxed),
            remote: self.remote.load(Ordering::Relaxed),
            served: self.served.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }

    pub(super) fn record_failure(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn record_served(&self) {
        self.served.fetch_add(1, Ordering::Relaxed);
    }
}

/// What one app's links allow, and which of its link targets run here.
#[derive(Default)]
struct AppRoutes {
    /// Components placed on this host (weak: the workload owns them).
    components: HashMap<String, Weak<ComponentRuntime>>,
    /// `(caller, link name, interface key, target)` for every deployed link
    /// between two Wasm components.
    allowed: HashSet<(String, String, String, String)>,
    /// The NATS subscriptions of this host's link targets.
    serving: HashMap<String, Serving>,
}

/// One per host: routes linked calls and serves the ones that arrive over NATS.
pub struct Router {
    pub(super) host_id: String,
    pub(super) lattice: String,
    pub(crate) nats: Option<async_nats::Client>,
    pub(super) settings: LinkSettings,
    labels: Arc<Mutex<BTreeMap<String, String>>>,
    apps: RwLock<HashMap<String, AppRoutes>>,
    pub counters: CallCounters,
    /// Locality subjects that had no responders, until when to skip them.
    pub(super) far: Mutex<HashMap<String, Instant>>,
}

impl Router {
    pub fn new(
        host_id: String,
        lattice: String,
        nats: Option<async_nats::Client>,
        settings: LinkSettings,
        labels: Arc<Mutex<BTreeMap<String, String>>>,
    ) -> Self {
        Self {
            host_id,
            lattice,
            nats,
            settings,
            labels,
            apps: RwLock::default(),
            counters: CallCounters::default(),
            far: Mutex::default(),
        }
    }

    pub fn settings(&self) -> &LinkSettings {
        &self.settings
    }

    /// `(key, value)` of each locality label this host has, most specific first.
    pub(super) fn locality(&self) -> Vec<(String, String)> {
        let labels = self.labels.lock().unwrap_or_else(|p| p.into_inner());
        self.settings
            .locality_keys
            .iter()
            .filter_map(|k| labels.get(k).map(|v| (k.clone(), v.clone())))
            .collect()
    }

    /// Make `app`'s link targets on this host callable: in-process at once, and
    /// over NATS for the ones some link points at. Replaces what was registered.
    pub async fn register(
        self: &Arc<Self>,
        manifest: &Manifest,
        components: &BTreeMap<String, Arc<ComponentRuntime>>,
    ) -> Result<(), String> {
        let app = manifest.name.clone();
        let allowed = allowed_links(manifest);
        let targets: HashSet<&str> = allowed.iter().map(|(_, _, _, t)| t.as_str()).collect();
        let mut serving = self
            .apps_mut()
            .get_mut(&app)
            .map(|r| std::mem::take(&mut r.serving))
            .unwrap_or_default();
        serving.retain(|component, _| targets.contains(component.as_str()));
        if let Some(nats) = &self.nats {
            for component in components.keys() {
                if targets.contains(component.as_str()) && !serving.contains_key(component) {
                    let s = Serving::start(self, nats, &app, component).await?;
                    serving.insert(component.clone(), s);
                }
            }
        }
        let routes = AppRoutes {
            components: components
                .iter()
                .map(|(n, rt)| (n.clone(), Arc::downgrade(rt)))
                .collect(),
            allowed,
            serving,
        };
        self.apps_mut().insert(app, routes);
        Ok(())
    }

    /// Restart the serving subscriptions of every app (the new ones first, then the
    /// old drained): the locality subjects follow the host's labels now.
    pub async fn refresh_serving(self: &Arc<Self>) -> Result<(), String> {
        let Some(nats) = &self.nats else {
            return Ok(());
        };
        let wanted: Vec<(String, Vec<String>)> = {
            let apps = self.apps.read().unwrap_or_else(|p| p.into_inner());
            apps.iter()
                .map(|(app, r)| (app.clone(), r.serving.keys().cloned().collect()))
                .collect()
        };
        for (app, components) in wanted {
            for component in components {
                let fresh = Serving::start(self, nats, &app, &component).await?;
                let old = self
                    .apps_mut()
                    .get_mut(&app)
                    .and_then(|r| r.serving.insert(component, fresh));
                drop(old);
            }
        }
        Ok(())
    }

    /// Forget `app`: stop serving its calls.
    pub fn unregister(&self, app: &str) {
        self.apps_mut().remove(app);
    }

    fn apps_mut(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, AppRoutes>> {
        self.apps.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The runtime of `component` of `app` if it runs here.
    pub(super) fn local(&self, app: &str, component: &str) -> Option<Arc<ComponentRuntime>> {
        let apps = self.apps.read().unwrap_or_else(|p| p.into_inner());
        apps.get(app)?.components.get(component)?.upgrade()
    }

    /// Whether a deployed link of `app` lets `caller` call interface `key` of
    /// `target` under link name `link`.
    pub(super) fn allows(
        &self,
        app: &str,
        caller: &str,
        link: &str,
        key: &str,
        target: &str,
    ) -> bool {
        let apps = self.apps.read().unwrap_or_else(|p| p.into_inner());
        apps.get(app).is_some_and(|r| {
            r.allowed.contains(&(
                caller.to_owned(),
                link.to_owned(),
                key.to_owned(),
                target.to_owned(),
            ))
        })
    }

    /// Route one call of `func` made by the component `env` under link name `link`.
    pub async fn call(
        self: &Arc<Self>,
        env: &ComponentEnv,
        link: &str,
        func: &ImportedFunc,
        trace: TraceContext,
        params: &[Val],
    ) -> Result<Vec<Val>, CallFailure> {
        let no_link = || {
            let named = if link == lattice_protocol::manifest::DEFAULT_LINK_NAME {
                String::new()
            } else {
                format!(" named '{link}'")
            };
            CallFailure::new(
                CallErrorKind::NoLink,
                format!(
                    "component '{}' of app '{}' called {}, but no link{named} of the app gives it {}: add a link trait to the component",
                    env.component,
                    env.app,
                    func.display(),
                    func.interface_key
                ),
            )
        };
        let target = env
            .links
            .get(&func.interface_key)
            .and_then(|by_name| by_name.get(link))
            .ok_or_else(no_link)?;
        let signature = func.signature.as_ref().ok_or_else(no_link)?;
        if let Some(rt) = self.local(&env.app, &target.component) {
            self.counters.local.fetch_add(1, Ordering::Relaxed);
            let export = rt.exports.get(&func.interface_key, &func.function)?;
            if export.signature.fingerprint != signature.fingerprint {
                return Err(mismatch(&func.display(), &signature.fingerprint, export));
            }
            let timeout = target.timeout;
            return match tokio::time::timeout(timeout, invoke(&rt, export, params, trace)).await {
                Ok(result) => result,
                Err(_) => Err(CallFailure::new(
                    CallErrorKind::Timeout,
                    format!(
                        "'{}' did not answer {} within the link's timeout of {timeout:?}",
                        target.component,
                        func.display()
                    ),
                )),
            };
        }
        self.counters.remote.fetch_add(1, Ordering::Relaxed);
        remote::call(self, env, link, target, func, signature, trace, params).await
    }
}

impl Router {
    /// Send a call in the wire model over NATS (to a capability provider), counted
    /// as remote.
    pub async fn call_remote(
        &self,
        call: &super::remote::WireCall<'_>,
        args: &[lattice_protocol::wire::WitValue],
    ) -> Result<Vec<lattice_protocol::wire::WitValue>, CallFailure> {
        self.counters.remote.fetch_add(1, Ordering::Relaxed);
        let result = super::remote::call_wire(self, call, args).await;
        if result.is_err() {
            self.counters.record_failure();
        }
        result
    }
}

/// The failure when caller and callee were built against different signatures.
pub(super) fn mismatch(call: &str, caller: &str, export: &ExportedFunc) -> CallFailure {
    CallFailure::new(
        CallErrorKind::Signature,
        format!(
            "the caller and the target disagree on {call}: the target has {} (fingerprint {}), the caller was built against fingerprint {caller}; deploy matching versions of the interface",
            lattice_protocol::wire::signature(
                &export.signature.params,
                &export.signature.results
            ),
            export.signature.fingerprint
        ),
    )
}

/// Call `export` of a fresh instance of `rt`, admitted by its limiter.
pub(crate) async fn invoke(
    rt: &ComponentRuntime,
    export: &ExportedFunc,
    params: &[Val],
    trace: TraceContext,
) -> Result<Vec<Val>, CallFailure> {
    let _slot = rt.limiter.acquire().await.map_err(|reason| {
        CallFailure::new(CallErrorKind::Overloaded, rt.overloaded(reason).to_string())
    })?;
    let mut store = rt.new_store();
    store.data_mut().trace = Some(trace);
    let guest = |e: wasmtime::Error| {
        let text = guest_message(&e);
        let kind = if text.contains("execution deadline") {
            CallErrorKind::Timeout
        } else {
            CallErrorKind::Trap
        };
        CallFailure::new(kind, rt.guest_error(text).to_string())
    };
    let instance = rt.pre.instantiate_async(&mut store).await.map_err(guest)?;
    let func = instance.get_func(&mut store, export.index).ok_or_else(|| {
        CallFailure::new(
            CallErrorKind::Internal,
            rt.guest_error("its export vanished between apply and call")
                .to_string(),
        )
    })?;
    let mut results = vec![Val::Bool(false); export.signature.results.len()];
    func.call_async(&mut store, params, &mut results)
        .await
        .map_err(guest)?;
    Ok(results)
}

/// Every `(caller, link name, interface key, target)` the manifest's links between
/// Wasm components allow.
fn allowed_links(manifest: &Manifest) -> HashSet<(String, String, String, String)> {
    let mut allowed = HashSet::new();
    for (source, link) in manifest.links() {
        let target_is_wasm = manifest
            .component(&link.target)
            .is_some_and(|t| matches!(t.image, Image::File(_)));
        if !matches!(source.image, Image::File(_)) || !target_is_wasm {
            continue;
        }
        for interface in &link.interfaces {
            allowed.insert((
                source.name.clone(),
                link.name.clone(),
                format!("{}:{}/{interface}", link.namespace, link.package),
                link.target.clone(),
            ));
        }
    }
    allowed
}

/// A guest failure in one line: the error's causes joined by `: `, without the wasm
/// backtraces wasmtime adds as context.
pub fn guest_message(e: &wasmtime::Error) -> String {
    let parts: Vec<String> = e
        .chain()
        .map(ToString::to_string)
        .filter(|m| !m.starts_with("error while executing at wasm backtrace"))
        .collect();
    if parts.is_empty() {
        e.to_string()
    } else {
        parts.join(": ")
    }
}
