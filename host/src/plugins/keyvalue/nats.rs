//! The NATS JetStream KV keyvalue backend: one JetStream bucket per app and bucket
//! identifier (see `Subjects::app_kv_bucket`), created on first open.
//!
//! Keys the JetStream key syntax allows are stored as they are; any other key is
//! stored as `_x_<hex>` so every string a guest uses is a valid, distinct key.

use super::coalesce::{CasStore, Coalescer, Limits};
use super::{parse_counter, KvError};
use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use futures::TryStreamExt;
use lattice_protocol::subjects::Subjects;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

const ENCODED: &str = "_x_";

#[derive(Clone)]
pub struct Backend {
    js: jetstream::Context,
    subjects: Subjects,
    /// JetStream replicas of each bucket created.
    replicas: usize,
    stores: Arc<Mutex<HashMap<String, Arc<kv::Store>>>>,
    coalescer: Coalescer,
}

#[derive(Clone)]
pub struct Bucket {
    name: Arc<str>,
    store: Arc<kv::Store>,
    coalescer: Coalescer,
}

fn err(what: &str, e: impl std::fmt::Display) -> KvError {
    KvError(format!("NATS keyvalue {what} failed: {e}"))
}

impl Backend {
    pub fn new(js: jetstream::Context, subjects: Subjects, replicas: usize) -> Self {
        Self {
            js,
            subjects,
            replicas,
            stores: Arc::default(),
            coalescer: Coalescer::new(Limits::default()),
        }
    }

    pub async fn open(&self, app: &str, identifier: &str) -> Result<Bucket, KvError> {
        let name = self.subjects.app_kv_bucket(app, identifier);
        let cached = self
            .stores
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&name)
            .cloned();
        if let Some(store) = cached {
            return Ok(self.bucket(&name, store));
        }
        let store = Arc::new(match self.js.get_key_value(&name).await {
            Ok(store) => store,
            Err(_) => self
                .js
                .create_key_value(kv::Config {
                    bucket: name.clone(),
                    history: 1,
                    storage: jetstream::stream::StorageType::File,
                    num_replicas: self.replicas,
                    ..Default::default()
                })
                .await
                .map_err(|e| err(&format!("creating bucket {name}"), e))?,
        });
        self.stores
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.clone(), store.clone());
        Ok(self.bucket(&name, store))
    }

    fn bucket(&self, name: &str, store: Arc<kv::Store>) -> Bucket {
        Bucket {
            name: Arc::from(name),
            store,
            coalescer: self.coalescer.clone(),
        }
    }
}

impl Bucket {
    /// The JetStream KV bucket's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        let value = self
            .store
            .get(encode_key(key))
            .await
            .map_err(|e| err("get", e))?;
        Ok(value.map(|b| b.to_vec()))
    }

    pub async fn set(&self, key: &str, value: Vec<u8>) -> Result<(), KvError> {
        self.store
            .put(encode_key(key), Bytes::from(value))
            .await
            .map_err(|e| err("set", e))?;
        Ok(())
    }

    pub async fn delete(&self, key: &str) -> Result<(), KvError> {
        self.store
            .delete(encode_key(key))
            .await
            .map_err(|e| err("delete", e))
    }

    pub async fn keys(&self) -> Result<Vec<String>, KvError> {
        let keys = self.store.keys().await.map_err(|e| err("list-keys", e))?;
        let keys: Vec<String> = keys.try_collect().await.map_err(|e| err("list-keys", e))?;
        Ok(keys.iter().map(|k| decode_key(k)).collect())
    }

    /// Atomic increment: a compare-and-set on the key's revision, through the
    /// host's [`Coalescer`] so concurrent increments of one key share one write.
    pub async fn increment(&self, key: &str, delta: u64) -> Result<u64, KvError> {
        let counter = Counter(self.store.clone());
        self.coalescer
            .increment(counter, &self.name, &encode_key(key), delta)
            .await
            .map_err(|e| KvError(e.0.replace(&encode_key(key), key)))
    }
}

/// A bucket as the coalescer sees it: counters under compare-and-set.
#[derive(Clone)]
struct Counter(Arc<kv::Store>);

impl CasStore for Counter {
    async fn read(&self, key: &str) -> Result<(u64, Option<u64>), KvError> {
        let entry = self.0.entry(key).await.map_err(|e| err("increment", e))?;
        Ok(match entry {
            Some(e) if e.operation == kv::Operation::Put => {
                (parse_counter(&decode_key(key), &e.value)?, Some(e.revision))
            }
            // Deleted or purged: counting starts again, on the tombstone's revision.
            Some(e) => (0, Some(e.revision)),
            None => (0, None),
        })
    }

    async fn write(
        &self,
        key: &str,
        value: u64,
        revision: Option<u64>,
    ) -> Result<Option<u64>, KvError> {
        let value = Bytes::from(value.to_string());
        match revision {
            Some(revision) => match self.0.update(key, value, revision).await {
                Ok(written) => Ok(Some(written)),
                Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(None),
                Err(e) => Err(err("increment", e)),
            },
            None => match self.0.create(key, value).await {
                Ok(written) => Ok(Some(written)),
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(None),
                Err(e) => Err(err("increment", e)),
            },
        }
    }
}

fn key_is_plain(key: &str) -> bool {
    !key.is_empty()
        && !key.starts_with('.')
        && !key.ends_with('.')
        && !key.contains("..")
        && !key.starts_with(ENCODED)
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-/_=.".contains(c))
}

fn encode_key(key: &str) -> String {
    if key_is_plain(key) {
        key.to_string()
    } else {
        format!("{ENCODED}{}", hex::encode(key))
    }
}

fn decode_key(stored: &str) -> String {
    stored
        .strip_prefix(ENCODED)
        .and_then(|h| hex::decode(h).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_else(|| stored.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        for key in [
            "hello",
            "a.b",
            "with space",
            "",
            ".x",
            "_x_41",
            "ünï",
            "a..b",
        ] {
            let enc = encode_key(key);
            assert!(
                key_is_plain(&enc) || enc.starts_with(ENCODED),
                "{key} -> {enc}"
            );
            assert_eq!(decode_key(&enc), key);
        }
        assert_eq!(encode_key("hello"), "hello");
    }
}
