//! Named config (`lattice config put`) as this host last saw it. A watch on the
//! lattice's config bucket keeps a map of name to values; `wasi:config` resolves
//! a component's config blocks against it at every call, so a change reaches the
//! next invocation without a redeploy. The map is bounded by the bucket's own
//! size limit (set by the controller).
//!
//! The watch starts before the bucket is read, so no change falls between the
//! two; after a reconnect, or when the watch ends, it starts over from the
//! bucket's current contents (whatever changed meanwhile is picked up).

use async_nats::jetstream::kv::{self, Operation};
use futures::StreamExt;
use lattice_protocol::manifest::{resolve_config, Config, ConfigLayer};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::task::JoinHandle;

/// How long one read of the bucket may take.
const READ_DEADLINE: Duration = Duration::from_secs(5);

/// Name to values, shared by every component of the host. Cheap to clone.
#[derive(Clone, Default)]
pub struct NamedConfigs {
    map: Arc<RwLock<HashMap<String, Config>>>,
}

impl NamedConfigs {
    /// A component's config: `config` alone without layers, else its layers
    /// merged in order with each named config's current values.
    pub fn resolve(&self, config: &Config, layers: &[ConfigLayer]) -> Config {
        if layers.is_empty() {
            return config.clone();
        }
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        resolve_config(config, layers, |name| map.get(name))
    }

    /// The values stored as `name`, as last seen.
    pub fn get(&self, name: &str) -> Option<Config> {
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        map.get(name).cloned()
    }

    fn set(&self, name: &str, values: Option<Config>) {
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        match values {
            Some(v) => map.insert(name.to_owned(), v),
            None => map.remove(name),
        };
    }

    fn replace(&self, all: HashMap<String, Config>) {
        *self.map.write().unwrap_or_else(|p| p.into_inner()) = all;
    }

    /// Keep this map equal to `bucket` until the task is aborted.
    pub fn watch(&self, client: async_nats::Client, bucket: String) -> JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut connection = lattice_bus::watch_connection(client.clone());
            let js = async_nats::jetstream::new(client);
            const FIRST_PAUSE: Duration = Duration::from_millis(250);
            const MAX_PAUSE: Duration = Duration::from_secs(5);
            let mut pause = FIRST_PAUSE;
            loop {
                let since = *connection.borrow_and_update();
                match this.follow(&js, &bucket, &mut connection, since).await {
                    Ok(()) => pause = FIRST_PAUSE,
                    Err(e) => {
                        // Before a controller made the bucket, this is expected.
                        tracing::debug!(bucket = %bucket, error = %e, "named config not followed");
                        pause = (pause * 2).min(MAX_PAUSE);
                    }
                }
                tokio::time::sleep(pause).await;
            }
        })
    }

    /// Load the bucket and follow its changes until the watch ends or NATS
    /// reconnects.
    async fn follow(
        &self,
        js: &async_nats::jetstream::Context,
        bucket: &str,
        connection: &mut tokio::sync::watch::Receiver<lattice_bus::Connection>,
        since: lattice_bus::Connection,
    ) -> Result<(), String> {
        let kv = tokio::time::timeout(READ_DEADLINE, js.get_key_value(bucket))
            .await
            .map_err(|_| "opening the bucket timed out".to_string())?
            .map_err(|e| format!("opening the bucket: {e}"))?;
        let mut changes = kv.watch(">").await.map_err(|e| e.to_string())?;
        let all = tokio::time::timeout(READ_DEADLINE, load_all(&kv))
            .await
            .map_err(|_| "reading the bucket timed out".to_string())??;
        tracing::debug!(bucket = %bucket, configs = all.len(), "named config loaded");
        self.replace(all);
        let mut connection_open = true;
        loop {
            tokio::select! {
                entry = changes.next() => {
                    let Some(entry) = entry else { return Ok(()) };
                    let entry = entry.map_err(|e| e.to_string())?;
                    let values = match entry.operation {
                        Operation::Put => parse(&entry.key, &entry.value),
                        Operation::Delete | Operation::Purge => None,
                    };
                    tracing::info!(config = %entry.key, "named config changed");
                    self.set(&entry.key, values);
                }
                changed = connection.changed(), if connection_open => {
                    connection_open = changed.is_ok();
                    if connection.borrow_and_update().reconnected_since(&since) {
                        return Ok(());
                    }
                }
            }
        }
    }
}

async fn load_all(kv: &kv::Store) -> Result<HashMap<String, Config>, String> {
    let mut keys = kv.keys().await.map_err(|e| e.to_string())?;
    let mut all = HashMap::new();
    while let Some(key) = keys.next().await {
        let key = key.map_err(|e| e.to_string())?;
        if let Some(value) = kv.get(&key).await.map_err(|e| e.to_string())? {
            if let Some(values) = parse(&key, &value) {
                all.insert(key, values);
            }
        }
    }
    Ok(all)
}

/// A stored config's values; `None` (with a warning) when unreadable.
fn parse(name: &str, bytes: &[u8]) -> Option<Config> {
    match serde_json::from_slice(bytes) {
        Ok(values) => Some(values),
        Err(e) => {
            tracing::warn!(config = %name, error = %e, "stored config is unreadable; ignoring it");
            None
        }
    }
}
