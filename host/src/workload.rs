//! A workload: the part of one app this host runs. Each Wasm component in it has a
//! compiled `InstancePre`, an admission [`Limiter`] and a read-only
//! [`ComponentEnv`]; every invocation gets a fresh `Store`.

use crate::config::Limits;
use crate::ctx::Ctx;
use crate::limiter::{Limiter, Overloaded};
use crate::links::imports::Exports;
use crate::links::{parse_timeout, LinkSettings};
use crate::loopback::Loopback;
use crate::plugins::Plugins;
use lattice_protocol::manifest::{Builtin, Config, Image, Manifest};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::InstancePre;
use wasmtime::{Store, StoreLimitsBuilder, UpdateDeadline};

/// What an invocation of one component may see: its identity, config and links.
pub struct ComponentEnv {
    pub app: String,
    pub component: String,
    pub config: Config,
    /// Link name -> (keyvalue backend, capability name), for this component's
    /// `wasi:keyvalue` links.
    pub keyvalue: BTreeMap<String, (KvBackend, String)>,
    /// Link name -> (blobstore builtin, capability name), for its `wasi:blobstore`
    /// links.
    pub blobstore: BTreeMap<String, (Builtin, String)>,
    /// The allow-list of its `builtin://http-client` link, if it has one.
    pub allowed_hosts: Option<Arc<Vec<String>>>,
    /// Names of its `wasmcloud:messaging` links to `builtin://messaging-nats`.
    pub messaging: std::collections::BTreeSet<String>,
    /// The workload's loopback network, where its TCP goes (`None`: no TCP).
    pub loopback: Option<Arc<Loopback>>,
    /// Whether it may listen on the loopback (only a service may).
    pub can_listen: bool,
    /// Its links to other Wasm components: `namespace:package/interface`, then
    /// link name, to the target.
    pub links: HashMap<String, HashMap<String, LinkTarget>>,
    pub plugins: Arc<Plugins>,
}

/// What serves a component's `wasi:keyvalue` link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvBackend {
    Builtin(Builtin),
    /// A capability provider, called over NATS.
    Provider,
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

impl ComponentEnv {
    /// Build the environment of component `name` from the manifest; an error names
    /// a link setting that makes no sense.
    pub fn from_manifest(
        manifest: &Manifest,
        name: &str,
        plugins: Arc<Plugins>,
        settings: &LinkSettings,
    ) -> Result<Self, String> {
        let component = manifest.component(name);
        let mut keyvalue = BTreeMap::new();
        let mut blobstore = BTreeMap::new();
        let mut allowed_hosts = None;
        let mut messaging = std::collections::BTreeSet::new();
        let mut links: HashMap<String, HashMap<String, LinkTarget>> = HashMap::new();
        for link in component.iter().flat_map(|c| c.links.iter()) {
            let image = manifest.component(&link.target).map(|t| &t.image);
            let to_provider = manifest.is_provider(&link.target);
            if to_provider && link.namespace == "wasi" && link.package == "keyvalue" {
                // The host keeps the bucket resources and forwards each operation.
                keyvalue.insert(
                    link.name.clone(),
                    (KvBackend::Provider, link.target.clone()),
                );
                continue;
            }
            if let Some(Image::File(_)) = image {
                let timeout = match link.source_config.get("timeout") {
                    Some(t) => parse_timeout(t).map_err(|e| {
                        format!(
                            "the link from '{name}' to '{}' of app '{}': {e}",
                            link.target, manifest.name
                        )
                    })?,
                    None => settings.call_timeout,
                };
                for interface in &link.interfaces {
                    let key = format!("{}:{}/{interface}", link.namespace, link.package);
                    let target = LinkTarget {
                        component: link.target.clone(),
                        timeout,
                    };
                    links
                        .entry(key)
                        .or_default()
                        .insert(link.name.clone(), target);
                }
                continue;
            }
            let Some(Image::Builtin(builtin)) = image else {
                continue;
            };
            match builtin {
                Builtin::KeyvalueNats | Builtin::KeyvalueMemory => {
                    keyvalue.insert(
                        link.name.clone(),
                        (KvBackend::Builtin(*builtin), link.target.clone()),
                    );
                }
                Builtin::BlobstoreFs | Builtin::BlobstoreNats => {
                    blobstore.insert(link.name.clone(), (*builtin, link.target.clone()));
                }
                Builtin::HttpClient => {
                    let hosts = link
                        .target_config
                        .get("allowed_hosts")
                        .map(|v| crate::plugins::http_client::parse_allowed_hosts(v))
                        .unwrap_or_default();
                    allowed_hosts = Some(Arc::new(hosts));
                }
                Builtin::MessagingNats => {
                    messaging.insert(link.name.clone());
                }
                Builtin::HttpServer => {}
            }
        }
        Ok(Self {
            app: manifest.name.clone(),
            component: name.to_string(),
            config: component.map(|c| c.config.clone()).unwrap_or_default(),
            keyvalue,
            blobstore,
            allowed_hosts,
            messaging,
            loopback: None,
            can_listen: false,
            links,
            plugins,
        })
    }

    /// The keyvalue backend behind link `name`.
    pub fn keyvalue_target(&self, name: &str) -> Option<(KvBackend, String)> {
        self.keyvalue.get(name).cloned()
    }
}

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
    /// Present when the component exports `wasi:http/incoming-handler`.
    pub proxy: Option<wasmtime_wasi_http::p2::bindings::ProxyPre<Ctx>>,
    /// The interface functions it exports, for links to it.
    pub exports: Exports,
    pub limiter: Limiter,
    pub limits: Limits,
    pub instances: u32,
    pub digest: String,
}

impl ComponentRuntime {
    /// A fresh store for one invocation, with the memory limit and an execution
    /// deadline enforced by epoch interruption (yielding to the executor every tick
    /// so a spinning guest never blocks other work).
    pub fn new_store(&self) -> Store<Ctx> {
        self.store_with_deadline(Some(self.limits.execution_timeout))
    }

    /// A store for a service's run: the same memory limit, no deadline (it runs
    /// for the workload's life), still yielding every epoch tick.
    pub fn new_service_store(&self) -> Store<Ctx> {
        self.store_with_deadline(None)
    }

    fn store_with_deadline(&self, timeout: Option<std::time::Duration>) -> Store<Ctx> {
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.limits.max_memory_bytes)
            .trap_on_grow_failure(false)
            .build();
        let mut store = Store::new(self.pre.engine(), Ctx::new(self.env.clone(), limits));
        store.limiter(|c| &mut c.limits);
        store.set_epoch_deadline(1);
        let Some(timeout) = timeout else {
            store.epoch_deadline_callback(|_| Ok(UpdateDeadline::Yield(1)));
            return store;
        };
        let deadline = Instant::now() + timeout;
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                Err(wasmtime::format_err!(
                    "execution deadline of {timeout:?} exceeded"
                ))
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        store
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

/// The part of one app running on this host.
pub struct Workload {
    pub version: String,
    pub manifest: Manifest,
    pub components: BTreeMap<String, Arc<ComponentRuntime>>,
    /// What `127.0.0.1` means to this workload's guests.
    pub loopback: Arc<Loopback>,
    /// The app's service, running beside the components.
    pub service: Option<Arc<crate::service::Service>>,
    /// Its components' `builtin://messaging-nats` subscriptions.
    pub deliveries: Vec<crate::plugins::messaging::Delivery>,
    /// The app's providers placed here: instances and the process.
    pub providers: BTreeMap<String, (u32, Arc<crate::provider::Provider>)>,
}
