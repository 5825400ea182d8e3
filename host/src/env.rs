//! What one component is, as an invocation sees it: its identity, config, links and
//! the settings each built-in capability read from the manifest for it.
//!
//! Architecture invariant: this is a leaf of data. It imports nothing of the host
//! above it, so every layer (ctx, capabilities, links, workloads) may use it.

use crate::loopback::Loopback;
use crate::named_config::NamedConfigs;
use lattice_protocol::manifest::{Config, ConfigLayer};
use lattice_protocol::secrets::SecretValue;
use std::any::{Any, TypeId};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// What an invocation of one component may see: its identity, config and links.
pub struct ComponentEnv {
    pub app: String,
    pub component: String,
    /// Its config as written in the manifest.
    pub config: Config,
    /// Its config blocks when one names stored config (see [`Self::current_config`]).
    pub config_layers: Vec<ConfigLayer>,
    /// The lattice's named config as this host sees it now.
    pub named_configs: NamedConfigs,
    /// Its `properties.secrets`: the name it asks for to the value.
    pub secrets: Arc<BTreeMap<String, SecretValue>>,
    /// The workload's loopback network, where its TCP goes (`None`: no TCP).
    pub loopback: Option<Arc<Loopback>>,
    /// Whether it may listen on the loopback (only a service may).
    pub can_listen: bool,
    /// Its links to other Wasm components: `namespace:package/interface`, then
    /// link name, to the target.
    pub links: HashMap<String, HashMap<String, LinkTarget>>,
    /// Each built-in capability's settings for this component (from its links),
    /// keyed by the settings' type; see `capability::Capability::configure`.
    pub settings: Settings,
    /// Every link of this component, whatever its target, as
    /// (`namespace:package/interface`, link name): what `wasmcloud:bus@2`'s
    /// `set-link-name` may switch to.
    pub link_names: BTreeSet<(String, String)>,
    /// Where its log lines are published besides the host's tracing.
    pub logs: crate::telemetry::guest_logs::GuestLogs,
}

impl ComponentEnv {
    /// The environment of `component` of `app` with no links, config or settings.
    pub fn new(app: &str, component: &str) -> Self {
        Self {
            app: app.to_owned(),
            component: component.to_owned(),
            config: Config::default(),
            config_layers: Vec::new(),
            named_configs: NamedConfigs::default(),
            secrets: Arc::default(),
            loopback: None,
            can_listen: false,
            links: HashMap::new(),
            settings: Settings::default(),
            link_names: BTreeSet::new(),
            logs: Default::default(),
        }
    }
}

impl ComponentEnv {
    /// The config `wasi:config` reads now: the manifest's blocks merged in order,
    /// each named one with its current values.
    pub fn current_config(&self) -> Config {
        self.named_configs
            .resolve(&self.config, &self.config_layers)
    }

    /// One key of [`Self::current_config`].
    pub fn config_value(&self, key: &str) -> Option<String> {
        if self.config_layers.is_empty() {
            return self.config.get(key).cloned();
        }
        self.current_config().remove(key)
    }
}

/// Where a link to another Wasm component goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkTarget {
    /// The target component of the same app.
    pub component: String,
    /// The deadline of one call: the link's `timeout` source config, or the host's
    /// default.
    pub timeout: Duration,
}

/// Values of distinct types, one per type: what each capability keeps for a
/// component, without this leaf knowing the capabilities.
#[derive(Default)]
pub struct Settings(HashMap<TypeId, Box<dyn Any + Send + Sync>>);

impl Settings {
    /// Keep `value`, replacing an earlier value of its type.
    pub fn insert<T: Any + Send + Sync>(&mut self, value: T) {
        self.0.insert(TypeId::of::<T>(), Box::new(value));
    }

    /// The value of type `T`, if one was kept.
    pub fn get<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.0.get(&TypeId::of::<T>())?.downcast_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_kept_per_type() {
        #[derive(Debug, PartialEq)]
        struct A(u32);
        #[derive(Debug, PartialEq)]
        struct B(&'static str);
        let mut s = Settings::default();
        assert_eq!(s.get::<A>(), None);
        s.insert(A(1));
        s.insert(B("b"));
        s.insert(A(2));
        assert_eq!(s.get::<A>(), Some(&A(2)));
        assert_eq!(s.get::<B>(), Some(&B("b")));
    }
}
