//! What a host knows about links: which link targets run here, what the deployed
//! links allow, this host's identity and locality, and the call counters. The
//! caller ([`super::remote`]) and callee ([`super::serve`]) sides read it; the
//! [`super::Router`] keeps it up to date.

use super::settings::LinkSettings;
use crate::component::ComponentRuntime;
use lattice_protocol::manifest::Manifest;
use lattice_protocol::messages::{CallCounts, FailedCall, LinkCalls, MAX_FAILED_CALLS};
use lattice_rpc::chunks::Limit;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};

/// Linked calls counted by where they went (`lattice get hosts` shows them), per
/// link interface of each component, and the last ones that failed.
#[derive(Debug, Default)]
pub struct CallCounters {
    local: AtomicU64,
    remote: AtomicU64,
    served: AtomicU64,
    failed: AtomicU64,
    /// Per `(app, component, interface)`: weak, so a component's counters go
    /// with its linker (the closures that count hold them).
    links: Mutex<BTreeMap<LinkKey, Vec<Weak<LinkCount>>>>,
    /// Oldest first, at most [`MAX_FAILED_CALLS`].
    recent_failures: Mutex<VecDeque<FailedCall>>,
}

/// `(app, component, interface)`.
type LinkKey = (String, String, String);

/// Calls one component made through one imported interface, and how many failed.
#[derive(Debug, Default)]
pub struct LinkCount {
    calls: AtomicU64,
    failed: AtomicU64,
}

impl LinkCount {
    pub fn call(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    pub fn failure(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
    }
}

/// A failure message as a report keeps it: at most this many characters.
const FAILURE_MESSAGE_CHARS: usize = 200;

impl CallCounters {
    /// The counter of `component`'s calls through `interface` (`ns:pkg/iface`),
    /// for its linker to hold.
    pub fn link(&self, app: &str, component: &str, interface: &str) -> Arc<LinkCount> {
        let count = Arc::new(LinkCount::default());
        let mut links = self.links.lock().unwrap_or_else(|p| p.into_inner());
        // Forget the counters of components gone since.
        links.retain(|_, v| {
            v.retain(|w| w.strong_count() > 0);
            !v.is_empty()
        });
        links
            .entry((app.to_owned(), component.to_owned(), interface.to_owned()))
            .or_default()
            .push(Arc::downgrade(&count));
        count
    }

    /// Every live component's calls per interface (two versions of one
    /// component during a rollout are summed).
    pub fn link_calls(&self) -> Vec<LinkCalls> {
        let links = self.links.lock().unwrap_or_else(|p| p.into_inner());
        links
            .iter()
            .filter_map(|((app, source, interface), counts)| {
                let live: Vec<Arc<LinkCount>> = counts.iter().filter_map(Weak::upgrade).collect();
                (!live.is_empty()).then(|| LinkCalls {
                    app: app.clone(),
                    source: source.clone(),
                    interface: interface.clone(),
                    calls: live.iter().map(|c| c.calls.load(Ordering::Relaxed)).sum(),
                    failed: live.iter().map(|c| c.failed.load(Ordering::Relaxed)).sum(),
                })
            })
            .collect()
    }

    /// Count a failed call and keep it among the last [`MAX_FAILED_CALLS`].
    pub fn record_failed_call(&self, mut failed: FailedCall) {
        self.record_failure();
        if let Some((cut, _)) = failed.message.char_indices().nth(FAILURE_MESSAGE_CHARS) {
            failed.message.truncate(cut);
        }
        let mut recent = self
            .recent_failures
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if recent.len() >= MAX_FAILED_CALLS {
            recent.pop_front();
        }
        recent.push_back(failed);
    }

    /// The last failed calls, oldest first.
    pub fn failed_calls(&self) -> Vec<FailedCall> {
        let recent = self
            .recent_failures
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        recent.iter().cloned().collect()
    }

    pub fn snapshot(&self) -> CallCounts {
        CallCounts {
            local: self.local.load(Ordering::Relaxed),
            remote: self.remote.load(Ordering::Relaxed),
            served: self.served.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }

    pub fn record_local(&self) {
        self.local.fetch_add(1, Ordering::Relaxed);
    }

    pub fn record_remote(&self) {
        self.remote.fetch_add(1, Ordering::Relaxed);
    }

    fn record_failure(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
    }

    pub fn record_served(&self) {
        self.served.fetch_add(1, Ordering::Relaxed);
    }
}

/// What one app's links allow, and which of its components run here.
#[derive(Default)]
struct AppRoutes {
    /// Components placed on this host (weak: the workload owns them).
    components: HashMap<String, Weak<ComponentRuntime>>,
    /// Caller -> `(link name, interface key, target)` for every deployed link
    /// between two Wasm components (read per call without allocating).
    allowed: HashMap<String, Vec<(String, String, String)>>,
    /// The app's capability providers (separate processes): their bodies come
    /// from their own inbox prefix, not a host's.
    providers: HashSet<String>,
}

/// One per host.
pub struct Directory {
    pub host_id: String,
    pub lattice: String,
    pub nats: Option<async_nats::Client>,
    pub settings: LinkSettings,
    labels: Arc<Mutex<BTreeMap<String, String>>>,
    apps: RwLock<HashMap<String, AppRoutes>>,
    pub counters: CallCounters,
    /// Where this host's replies and offered bodies live.
    inbox_prefix: String,
    /// Sends calls over NATS (with `nats`).
    pub caller: Option<lattice_rpc::Caller>,
}

impl Directory {
    pub fn new(
        host_id: String,
        lattice: String,
        nats: Option<async_nats::Client>,
        settings: LinkSettings,
        labels: Arc<Mutex<BTreeMap<String, String>>>,
    ) -> Self {
        let inbox_prefix = lattice_protocol::wire::host_inbox_prefix(&lattice, &host_id);
        Self {
            apps: RwLock::default(),
            counters: CallCounters::default(),
            caller: nats.as_ref().map(|nats| {
                let limit = Self::limit_of(&settings);
                lattice_rpc::Caller::new(
                    nats.clone(),
                    &lattice,
                    inbox_prefix.clone(),
                    limit,
                    settings.responder_wait,
                )
            }),
            inbox_prefix,
            host_id,
            lattice,
            nats,
            settings,
            labels,
        }
    }

    fn limit_of(settings: &LinkSettings) -> Limit {
        Limit {
            bytes: settings.max_call_bytes,
            owner: "the host",
            setting: "--max-call-bytes",
        }
    }

    /// The most bytes one call's arguments or results may have.
    pub fn limit(&self) -> Limit {
        Self::limit_of(&self.settings)
    }

    /// `(key, value)` of each locality label this host has, most specific first.
    pub fn locality(&self) -> Vec<(String, String)> {
        let labels = self.labels.lock().unwrap_or_else(|p| p.into_inner());
        self.settings
            .locality_keys
            .iter()
            .filter_map(|k| labels.get(k).map(|v| (k.clone(), v.clone())))
            .collect()
    }

    /// Record `manifest`'s links and its components placed here, replacing what
    /// was recorded for the app; the components some link points at.
    pub fn set_app(
        &self,
        manifest: &Manifest,
        components: &BTreeMap<String, Arc<ComponentRuntime>>,
    ) -> HashSet<String> {
        let allowed = allowed_links(manifest);
        let targets = allowed
            .values()
            .flatten()
            .map(|(_, _, t)| t.clone())
            .collect();
        let routes = AppRoutes {
            components: components
                .iter()
                .map(|(n, rt)| (n.clone(), Arc::downgrade(rt)))
                .collect(),
            allowed,
            providers: manifest
                .components
                .iter()
                .filter(|c| c.is_provider())
                .map(|c| c.name.clone())
                .collect(),
        };
        self.apps_mut().insert(manifest.name.clone(), routes);
        targets
    }

    /// Forget `app`.
    pub fn remove_app(&self, app: &str) {
        self.apps_mut().remove(app);
    }

    fn apps_mut(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, AppRoutes>> {
        self.apps.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The runtime of `component` of `app` if it runs here.
    pub fn local(&self, app: &str, component: &str) -> Option<Arc<ComponentRuntime>> {
        let apps = self.apps.read().unwrap_or_else(|p| p.into_inner());
        apps.get(app)?.components.get(component)?.upgrade()
    }

    /// Whether `component` of `app` (an app with a workload here) is a capability
    /// provider.
    pub fn is_provider(&self, app: &str, component: &str) -> bool {
        let apps = self.apps.read().unwrap_or_else(|p| p.into_inner());
        apps.get(app)
            .is_some_and(|r| r.providers.contains(component))
    }

    /// The inbox prefix of this host's connection: its replies and the bodies it
    /// offers live under it.
    pub fn inbox_prefix(&self) -> &str {
        &self.inbox_prefix
    }

    /// Whether a deployed link of `app` lets `caller` call interface `key` of
    /// `target` under link name `link`.
    pub fn allows(&self, app: &str, caller: &str, link: &str, key: &str, target: &str) -> bool {
        let apps = self.apps.read().unwrap_or_else(|p| p.into_inner());
        apps.get(app)
            .and_then(|r| r.allowed.get(caller))
            .is_some_and(|links| {
                links
                    .iter()
                    .any(|(l, k, t)| l == link && k == key && t == target)
            })
    }
}

/// Every `(caller, link name, interface key, target)` the manifest's links between
/// Wasm components allow.
fn allowed_links(manifest: &Manifest) -> HashMap<String, Vec<(String, String, String)>> {
    let mut allowed: HashMap<String, Vec<_>> = HashMap::new();
    for (source, link) in manifest.links() {
        let target_is_wasm = manifest
            .component(&link.target)
            .is_some_and(|t| t.image.is_code());
        if !source.image.is_code() || !target_is_wasm {
            continue;
        }
        for interface in &link.interfaces {
            allowed.entry(source.name.clone()).or_default().push((
                link.name.clone(),
                format!("{}:{}/{interface}", link.namespace, link.package),
                link.target.clone(),
            ));
        }
    }
    allowed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(n: usize) -> FailedCall {
        FailedCall {
            at_ms: n as u64,
            app: "shop".into(),
            component: "auth".into(),
            call: "example:shop/orders.place-order".into(),
            kind: "unreachable".into(),
            message: "é".repeat(300),
            trace_id: format!("{n:032x}"),
        }
    }

    #[test]
    fn failed_calls_keep_the_last_few_with_short_messages() {
        let counters = CallCounters::default();
        for n in 0..MAX_FAILED_CALLS + 3 {
            counters.record_failed_call(failure(n));
        }
        let kept = counters.failed_calls();
        assert_eq!(kept.len(), MAX_FAILED_CALLS);
        assert_eq!(kept[0].at_ms, 3, "the oldest are forgotten first");
        assert_eq!(kept[0].message.chars().count(), FAILURE_MESSAGE_CHARS);
        assert_eq!(counters.snapshot().failed, (MAX_FAILED_CALLS + 3) as u64);
    }

    #[test]
    fn link_counts_are_summed_per_interface_and_go_with_their_component() {
        let counters = CallCounters::default();
        let v1 = counters.link("shop", "auth", "example:shop/orders");
        let v2 = counters.link("shop", "auth", "example:shop/orders");
        v1.call();
        v2.call();
        v2.failure();
        let calls = counters.link_calls();
        assert_eq!(calls.len(), 1);
        assert_eq!((calls[0].calls, calls[0].failed), (2, 1));
        drop((v1, v2));
        assert!(counters.link_calls().is_empty());
    }
}
