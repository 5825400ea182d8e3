//! `wasi:keyvalue@0.2.0-draft` (`store`, `atomics`, `batch`) with three backends,
//! picked by the target of the component's keyvalue link: `builtin://keyvalue-memory`,
//! `builtin://keyvalue-nats` (JetStream KV, so data survives restarts), and a
//! capability provider (e.g. `keyvalue-redis`) called over NATS ([`provider`]).
//!
//! Isolation: every bucket a component opens is keyed by its app. Memory: one map
//! per `(app, capability, identifier)`, so two memory capabilities of one app are
//! two stores. NATS: one JetStream bucket per app and identifier, shared by every
//! link of the app to JetStream (it is one real store).
//!
//! Increments on JetStream are compare-and-sets; [`coalesce`] lets concurrent
//! increments of one key on a host share one, so a hot counter stays fast.

mod bindings;
pub mod coalesce;
mod host_impl;
mod memory;
mod nats;
pub mod provider;

use crate::capability::{links_of, Capability, HostServices};
use crate::ctx::Ctx;
use crate::env::Settings;
use crate::links::Router;
use lattice_protocol::manifest::{Builtin, Image, Manifest};
use lattice_protocol::subjects::Subjects;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use wasmtime::component::Linker;

/// The capability: the host-wide buckets, and the router that reaches providers.
pub struct Keyvalue {
    registry: Registry,
    router: Arc<Router>,
}

impl Keyvalue {
    pub fn new(host: &HostServices) -> Self {
        let jetstream = host
            .nats
            .clone()
            .map(|c| (async_nats::jetstream::new(c), host.subjects.clone()));
        Self {
            registry: Registry::new(jetstream, host.bucket_replicas),
            router: host.router.clone(),
        }
    }
}

/// What serves a component's `wasi:keyvalue` link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvBackend {
    Builtin(Builtin),
    /// A capability provider, called over NATS.
    Provider,
}

/// A component's `wasi:keyvalue` links: link name -> (backend, capability name).
struct KvLinks {
    links: BTreeMap<String, (KvBackend, String)>,
    registry: Registry,
    router: Arc<Router>,
}

impl Capability for Keyvalue {
    fn name(&self) -> &'static str {
        "keyvalue"
    }

    fn add_to_linker(&self, linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
        host_impl::add_to_linker(linker)
    }

    fn configure(
        &self,
        manifest: &Manifest,
        component: &str,
        settings: &mut Settings,
    ) -> Result<(), String> {
        let mut links = BTreeMap::new();
        for (link, image) in links_of(manifest, component) {
            let backend = match image {
                _ if manifest.is_provider(&link.target) => {
                    if link.namespace != "wasi" || link.package != "keyvalue" {
                        continue;
                    }
                    KvBackend::Provider
                }
                Some(Image::Builtin(b @ (Builtin::KeyvalueNats | Builtin::KeyvalueMemory))) => {
                    KvBackend::Builtin(*b)
                }
                _ => continue,
            };
            links.insert(link.name.clone(), (backend, link.target.clone()));
        }
        if !links.is_empty() {
            settings.insert(KvLinks {
                links,
                registry: self.registry.clone(),
                router: self.router.clone(),
            });
        }
        Ok(())
    }

    fn forget_app(&self, app: &str) {
        self.registry.forget_app(app);
    }
}

/// How many keys one `list-keys` page holds.
const PAGE: usize = 1000;

/// A failure of a keyvalue backend, as the guest will see it (`error::other`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct KvError(pub String);

/// An opened bucket: the host side of the `bucket` resource.
#[derive(Clone)]
pub enum Bucket {
    Memory(memory::Bucket),
    Nats(nats::Bucket),
    Provider(provider::Bucket),
}

impl Bucket {
    /// `(db.system.name, bucket name)` of a built-in bucket; `None` for a
    /// provider's, whose operations are calls with spans of their own.
    pub fn builtin(&self) -> Option<(&'static str, &str)> {
        match self {
            Bucket::Memory(_) => Some(("memory", "")),
            Bucket::Nats(b) => Some(("nats", b.name())),
            Bucket::Provider(_) => None,
        }
    }

    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        match self {
            Bucket::Memory(b) => Ok(b.get(key)),
            Bucket::Nats(b) => b.get(key).await,
            Bucket::Provider(b) => b.get(key).await,
        }
    }

    pub async fn set(&self, key: &str, value: Vec<u8>) -> Result<(), KvError> {
        match self {
            Bucket::Memory(b) => {
                b.set(key, value);
                Ok(())
            }
            Bucket::Nats(b) => b.set(key, value).await,
            Bucket::Provider(b) => b.set(key, value).await,
        }
    }

    pub async fn delete(&self, key: &str) -> Result<(), KvError> {
        match self {
            Bucket::Memory(b) => {
                b.delete(key);
                Ok(())
            }
            Bucket::Nats(b) => b.delete(key).await,
            Bucket::Provider(b) => b.delete(key).await,
        }
    }

    /// One page of keys, in order, starting at `cursor`; the next cursor if more.
    pub async fn list_keys(&self, cursor: u64) -> Result<(Vec<String>, Option<u64>), KvError> {
        let all = match self {
            Bucket::Memory(b) => b.keys(),
            Bucket::Nats(b) => b.keys().await?,
            // The provider pages itself.
            Bucket::Provider(b) => return b.list_keys(cursor).await,
        };
        Ok(page(all, cursor))
    }

    /// `batch.get-many`: one call for a provider, key by key otherwise.
    pub async fn get_many(
        &self,
        keys: Vec<String>,
    ) -> Result<Vec<Option<(String, Vec<u8>)>>, KvError> {
        if let Bucket::Provider(b) = self {
            return b.get_many(keys).await;
        }
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let value = self.get(&key).await?;
            out.push(value.map(|v| (key, v)));
        }
        Ok(out)
    }

    /// `batch.set-many`: one call for a provider, key by key otherwise.
    pub async fn set_many(&self, pairs: Vec<(String, Vec<u8>)>) -> Result<(), KvError> {
        if let Bucket::Provider(b) = self {
            return b.set_many(pairs).await;
        }
        for (key, value) in pairs {
            self.set(&key, value).await?;
        }
        Ok(())
    }

    /// `batch.delete-many`: one call for a provider, key by key otherwise.
    pub async fn delete_many(&self, keys: Vec<String>) -> Result<(), KvError> {
        if let Bucket::Provider(b) = self {
            return b.delete_many(keys).await;
        }
        for key in keys {
            self.delete(&key).await?;
        }
        Ok(())
    }

    pub async fn increment(&self, key: &str, delta: u64) -> Result<u64, KvError> {
        match self {
            Bucket::Memory(b) => b.increment(key, delta),
            Bucket::Nats(b) => b.increment(key, delta).await,
            Bucket::Provider(b) => b.increment(key, delta).await,
        }
    }
}

fn page(mut keys: Vec<String>, cursor: u64) -> (Vec<String>, Option<u64>) {
    keys.sort();
    let start = usize::try_from(cursor)
        .unwrap_or(usize::MAX)
        .min(keys.len());
    let end = (start + PAGE).min(keys.len());
    let next = (end < keys.len()).then_some(end as u64);
    (keys.drain(start..end).collect(), next)
}

/// Parse a stored counter value.
fn parse_counter(key: &str, value: &[u8]) -> Result<u64, KvError> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .ok_or_else(|| {
            KvError(format!(
                "cannot increment key '{key}': its value is not a decimal number"
            ))
        })
}

/// `(app, capability, identifier)` of an in-memory bucket.
type MemoryKey = (String, String, String);

/// Host-wide keyvalue state: memory buckets and NATS bucket handles.
#[derive(Clone)]
pub struct Registry {
    memory: Arc<Mutex<HashMap<MemoryKey, memory::Bucket>>>,
    nats: Option<nats::Backend>,
}

impl Registry {
    /// A registry; `jetstream` enables `builtin://keyvalue-nats`, whose buckets
    /// are created with `replicas` JetStream replicas.
    pub fn new(
        jetstream: Option<(async_nats::jetstream::Context, Subjects)>,
        replicas: usize,
    ) -> Self {
        Self {
            memory: Arc::default(),
            nats: jetstream.map(|(js, subjects)| nats::Backend::new(js, subjects, replicas)),
        }
    }

    /// Open bucket `identifier` of `app` through its capability `capability`.
    pub async fn open(
        &self,
        (backend, capability): (Builtin, &str),
        app: &str,
        identifier: &str,
    ) -> Result<Bucket, KvError> {
        match backend {
            Builtin::KeyvalueMemory => {
                let mut map = self.memory.lock().unwrap_or_else(|p| p.into_inner());
                let bucket = map
                    .entry((
                        app.to_string(),
                        capability.to_string(),
                        identifier.to_string(),
                    ))
                    .or_default()
                    .clone();
                Ok(Bucket::Memory(bucket))
            }
            Builtin::KeyvalueNats => match &self.nats {
                Some(nats) => Ok(Bucket::Nats(nats.open(app, identifier).await?)),
                None => Err(KvError(
                    "this host has no JetStream connection for builtin://keyvalue-nats".into(),
                )),
            },
            other => Err(KvError(format!(
                "builtin://{} is not a keyvalue capability",
                other.name()
            ))),
        }
    }

    /// Forget the memory buckets of `app` (on undeploy).
    pub fn forget_app(&self, app: &str) {
        let mut map = self.memory.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|(a, _, _), _| a != app);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_keys_in_order() {
        let keys: Vec<String> = (0..2500).map(|i| format!("k{i:05}")).collect();
        let (p1, c1) = page(keys.clone(), 0);
        assert_eq!(p1.len(), PAGE);
        assert_eq!(p1[0], "k00000");
        let (p3, c3) = page(keys.clone(), 2000);
        assert_eq!(p3.len(), 500);
        assert_eq!(c3, None);
        assert_eq!(c1, Some(1000));
        assert_eq!(page(keys, 99_999), (vec![], None));
    }

    #[test]
    fn counters_must_be_numbers() {
        assert_eq!(parse_counter("a", b"41").unwrap(), 41);
        assert!(parse_counter("a", b"x").unwrap_err().0.contains("'a'"));
    }
}
