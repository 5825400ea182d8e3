//! Named config in the JetStream KV bucket `lattice_<L>_config`: one key per
//! name, its values as JSON. Written only here, through the API (`lattice config
//! put|rm`); hosts watch the bucket and hand the current values to components at
//! each invocation (`wasi:config`), so a change needs no redeploy.

use super::store::{ensure_kv_bucket, StoreError};
use bytes::Bytes;
use lattice_bus::SharedKv;
use lattice_protocol::manifest::{check_named_config, Config, Limits};
use std::sync::Arc;

/// The lattice's named configs. Cheap to clone.
#[derive(Clone)]
pub struct ConfigStore {
    kv: SharedKv,
}

impl ConfigStore {
    /// Open (creating if missing, with `replicas` copies and at most `max_bytes`)
    /// the bucket.
    pub async fn open(
        js: &async_nats::jetstream::Context,
        bucket: &str,
        replicas: usize,
        max_bytes: u64,
    ) -> Result<Self, StoreError> {
        let kv = ensure_kv_bucket(js, bucket, 1, replicas, max_bytes)
            .await
            .map_err(|e| StoreError::Kv {
                bucket: bucket.to_string(),
                message: format!("creating or opening the bucket: {e}"),
            })?;
        Ok(Self::new(Arc::new(kv)))
    }

    /// The configs in `kv` (an in-memory `lattice_bus::fake::FakeKv` in unit tests).
    pub fn new(kv: SharedKv) -> Self {
        Self { kv }
    }

    fn error(&self, e: impl std::fmt::Display) -> String {
        format!("KV bucket {}: {e}", self.kv.bucket())
    }

    /// Store `values` as `name`, replacing what was there.
    pub async fn put(&self, name: &str, values: &Config) -> Result<(), String> {
        check_named_config(name, values, &Limits::default())?;
        let json = serde_json::to_vec(values).map_err(|e| self.error(e))?;
        self.kv
            .put(name, Bytes::from(json))
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// The config stored as `name`, if any.
    pub async fn get(&self, name: &str) -> Result<Option<Config>, String> {
        if !lattice_protocol::manifest::valid_config_name(name) {
            return Ok(None);
        }
        let Some(entry) = self.kv.entry(name).await.map_err(|e| self.error(e))? else {
            return Ok(None);
        };
        if entry.value.is_empty() {
            return Ok(None);
        }
        serde_json::from_slice(&entry.value)
            .map(Some)
            .map_err(|e| self.error(format!("config '{name}' is unreadable: {e}")))
    }

    /// Every stored name, sorted.
    pub async fn list(&self) -> Result<Vec<String>, String> {
        let mut keys = self.kv.keys().await.map_err(|e| self.error(e))?;
        keys.sort();
        Ok(keys)
    }

    /// Remove `name`; whether it was there.
    pub async fn remove(&self, name: &str) -> Result<bool, String> {
        if self.get(name).await?.is_none() {
            return Ok(false);
        }
        self.kv
            .delete(name, None)
            .await
            .map_err(|e| self.error(e))?;
        Ok(true)
    }
}
