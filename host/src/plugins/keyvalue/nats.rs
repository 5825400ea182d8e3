//! The NATS JetStream KV keyvalue backend: one JetStream bucket per app and bucket
//! identifier (see `Subjects::app_kv_bucket`), created on first open.
//!
//! Keys the JetStream key syntax allows are stored as they are; any other key is
//! stored as `_x_<hex>` so every string a guest uses is a valid, distinct key.

use super::{parse_counter, KvError};
use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use futures::TryStreamExt;
use lattice_protocol::subjects::Subjects;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Compare-and-set attempts for one increment before giving up.
const CAS_ATTEMPTS: usize = 100;
const ENCODED: &str = "_x_";

#[derive(Clone)]
pub struct Backend {
    js: jetstream::Context,
    subjects: Subjects,
    stores: Arc<Mutex<HashMap<String, Arc<kv::Store>>>>,
}

#[derive(Clone)]
pub struct Bucket {
    store: Arc<kv::Store>,
}

fn err(what: &str, e: impl std::fmt::Display) -> KvError {
    KvError(format!("NATS keyvalue {what} failed: {e}"))
}

impl Backend {
    pub fn new(js: jetstream::Context, subjects: Subjects) -> Self {
        Self {
            js,
            subjects,
            stores: Arc::default(),
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
            return Ok(Bucket { store });
        }
        let store = Arc::new(match self.js.get_key_value(&name).await {
            Ok(store) => store,
            Err(_) => self
                .js
                .create_key_value(kv::Config {
                    bucket: name.clone(),
                    history: 1,
                    storage: jetstream::stream::StorageType::File,
                    ..Default::default()
                })
                .await
                .map_err(|e| err(&format!("creating bucket {name}"), e))?,
        });
        self.stores
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name, store.clone());
        Ok(Bucket { store })
    }
}

impl Bucket {
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

    /// Atomic increment with compare-and-set on the key's revision.
    pub async fn increment(&self, key: &str, delta: u64) -> Result<u64, KvError> {
        let key = encode_key(key);
        for _ in 0..CAS_ATTEMPTS {
            let entry = self
                .store
                .entry(key.clone())
                .await
                .map_err(|e| err("increment", e))?;
            let live = entry.as_ref().filter(|e| e.operation == kv::Operation::Put);
            let next = match live {
                Some(e) => parse_counter(&decode_key(&key), &e.value)?.wrapping_add(delta),
                None => delta,
            };
            let value = Bytes::from(next.to_string());
            let written = match &entry {
                Some(e) => self
                    .store
                    .update(&key, value, e.revision)
                    .await
                    .map(|_| ())
                    .map_err(|e| {
                        (
                            e.kind() == kv::UpdateErrorKind::WrongLastRevision,
                            e.to_string(),
                        )
                    }),
                None => self
                    .store
                    .create(&key, value)
                    .await
                    .map(|_| ())
                    .map_err(|e| {
                        (
                            e.kind() == kv::CreateErrorKind::AlreadyExists,
                            e.to_string(),
                        )
                    }),
            };
            match written {
                Ok(()) => return Ok(next),
                Err((true, _)) => continue,
                Err((false, e)) => return Err(err("increment", e)),
            }
        }
        Err(KvError(format!(
            "increment of '{key}' lost {CAS_ATTEMPTS} compare-and-set races in a row; try again"
        )))
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
