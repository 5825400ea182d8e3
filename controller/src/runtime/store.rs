//! App records in the JetStream KV bucket `lattice_<L>_state`.
//!
//! One key per app, `app.<name>`, holding an [`AppRecord`] as JSON: every stored
//! version (oldest first) and the deployed one. Every write is compare-and-set on the
//! key's revision (create for a new key), retried a bounded number of times when
//! another writer got there first.

pub use crate::brain::record::{
    valid_app_name, AppRecord, RecordError, StoredVersion, MAX_VERSIONS,
};
use async_nats::jetstream::{self, kv, stream};
use bytes::Bytes;
use futures::StreamExt;
use lattice_bus::{KvError, Operation, SharedKv};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Compare-and-set attempts before a write gives up.
const CAS_ATTEMPTS: usize = 8;
const KEY_PREFIX: &str = "app.";

/// Why the store could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("app name '{name}' is not valid: use 1 to 63 letters, digits, '-' or '_'")]
    InvalidName { name: String },
    #[error("KV bucket {bucket}: {message}")]
    Kv { bucket: String, message: String },
    #[error("app '{app}' in KV bucket {bucket} is unreadable: {source}")]
    Corrupt {
        bucket: String,
        app: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("app '{app}' changed concurrently {CAS_ATTEMPTS} times in a row; try again")]
    Contended { app: String },
}

/// Create a KV bucket (file storage, `history` values per key, `replicas` copies,
/// at most `max_bytes`) unless it exists, and open it. Creates the backing stream
/// directly because async-nats' `create_key_value` cannot read nats-server 2.9's
/// account info. A bucket that exists keeps its settings: see [`replicas_of`].
pub async fn ensure_kv_bucket(
    js: &jetstream::Context,
    bucket: &str,
    history: i64,
    replicas: usize,
    max_bytes: u64,
) -> Result<kv::Store, async_nats::Error> {
    if let Ok(store) = js.get_key_value(bucket).await {
        return Ok(store);
    }
    js.get_or_create_stream(stream::Config {
        name: format!("KV_{bucket}"),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: history.max(1),
        max_bytes: i64::try_from(max_bytes).unwrap_or(i64::MAX),
        storage: stream::StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        num_replicas: replicas.max(1),
        ..Default::default()
    })
    .await?;
    Ok(js.get_key_value(bucket).await?)
}

/// How many replicas the stream `stream` (`KV_<bucket>`, `OBJ_<bucket>`) has.
pub async fn replicas_of(
    js: &jetstream::Context,
    stream: &str,
) -> Result<usize, async_nats::Error> {
    let stream = js.get_stream(stream).await?;
    Ok(stream.cached_info().config.num_replicas)
}

/// The app records of one lattice. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    kv: SharedKv,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("bucket", &self.kv.bucket())
            .finish()
    }
}

impl Store {
    /// Open (creating if missing, with `replicas` copies and at most `max_bytes`)
    /// the bucket.
    pub async fn open(
        js: &jetstream::Context,
        bucket: &str,
        replicas: usize,
        max_bytes: u64,
    ) -> Result<Self, StoreError> {
        let kv = ensure_kv_bucket(js, bucket, 1, replicas, max_bytes)
            .await
            .map_err(|e| {
                // A single server cannot hold 3 replicas: say what to change.
                let hint = if replicas > 1 {
                    format!(
                        " (creating it with {replicas} replicas needs a JetStream cluster of at \
                         least {replicas} servers; on one server use --replicas 1)"
                    )
                } else {
                    String::new()
                };
                StoreError::Kv {
                    bucket: bucket.to_string(),
                    message: format!("creating or opening the bucket: {e}{hint}"),
                }
            })?;
        Ok(Self::new(Arc::new(kv)))
    }

    /// The records in `kv` (an in-memory `lattice_bus::fake::FakeKv` in unit tests).
    pub fn new(kv: SharedKv) -> Self {
        Self { kv }
    }

    /// The bucket itself (the controller lease lives there too).
    pub(crate) fn kv(&self) -> &SharedKv {
        &self.kv
    }

    fn bucket(&self) -> String {
        self.kv.bucket().to_string()
    }

    /// Every stored app with its revision.
    pub async fn load_all(&self) -> Result<BTreeMap<String, (AppRecord, u64)>, StoreError> {
        let keys = self
            .kv
            .keys()
            .await
            .map_err(|e| kv_error("listing keys", e))?;
        let mut apps = BTreeMap::new();
        for key in keys {
            let Some(name) = key.strip_prefix(KEY_PREFIX) else {
                continue;
            };
            if let Some(found) = self.get(name).await? {
                apps.insert(name.to_string(), found);
            }
        }
        Ok(apps)
    }

    /// One app's record and its revision.
    pub async fn get(&self, name: &str) -> Result<Option<(AppRecord, u64)>, StoreError> {
        check_name(name)?;
        let entry = self
            .kv
            .entry(&key(name))
            .await
            .map_err(|e| kv_error("reading", e))?;
        let Some(entry) = entry.filter(|e| e.operation == Operation::Put) else {
            return Ok(None);
        };
        let record =
            serde_json::from_slice(&entry.value).map_err(|source| StoreError::Corrupt {
                bucket: self.bucket(),
                app: name.to_string(),
                source,
            })?;
        Ok(Some((record, entry.revision)))
    }

    /// Read-modify-write one app with compare-and-set. `change` gets the current record
    /// (`None` if the app does not exist) and returns the new one, or refuses. Returns
    /// the record as written and its revision.
    pub async fn update(
        &self,
        name: &str,
        mut change: impl FnMut(Option<AppRecord>) -> Result<AppRecord, RecordError>,
    ) -> Result<(AppRecord, u64), StoreError> {
        check_name(name)?;
        for _ in 0..CAS_ATTEMPTS {
            let current = self.get(name).await?;
            let revision = current.as_ref().map(|(_, r)| *r);
            let record = change(current.map(|(r, _)| r))?;
            let bytes =
                Bytes::from(serde_json::to_vec(&record).expect("app records always serialize"));
            let written = match revision {
                None => self.kv.create(&key(name), bytes).await,
                Some(rev) => self.kv.update(&key(name), bytes, rev).await,
            };
            match written {
                Ok(revision) => return Ok((record, revision)),
                Err(KvError::Conflict { .. }) => continue, // someone else wrote first: read again
                Err(e) => {
                    let doing = if revision.is_none() {
                        "creating"
                    } else {
                        "updating"
                    };
                    return Err(kv_error(doing, e));
                }
            }
        }
        Err(StoreError::Contended {
            app: name.to_string(),
        })
    }

    /// Delete an app; returns its last record and that record's revision, or `None`
    /// if there was none.
    pub async fn delete(&self, name: &str) -> Result<Option<(AppRecord, u64)>, StoreError> {
        check_name(name)?;
        for _ in 0..CAS_ATTEMPTS {
            let Some((record, rev)) = self.get(name).await? else {
                return Ok(None);
            };
            match self.kv.delete(&key(name), Some(rev)).await {
                Ok(()) => return Ok(Some((record, rev))),
                Err(KvError::Conflict { .. }) => continue,
                Err(e) => return Err(kv_error("deleting", e)),
            }
        }
        Err(StoreError::Contended {
            app: name.to_string(),
        })
    }
}

/// One change to an app record, seen through [`Store::changes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreChange {
    pub name: String,
    /// The new record; `None` when the app was deleted.
    pub record: Option<AppRecord>,
    pub revision: u64,
}

impl Store {
    /// Every change to app records from now on, whoever makes it (another controller
    /// too). Unreadable records are reported as errors and the stream goes on.
    pub async fn changes(
        &self,
    ) -> Result<
        impl futures::Stream<Item = Result<StoreChange, StoreError>> + Send + use<>,
        StoreError,
    > {
        self.watch(false).await
    }

    /// Every app's current record (or its delete marker), then every change from
    /// then on: a watcher whose watch ended reads this to catch up with whatever
    /// changed while it was not watching.
    pub async fn current_and_changes(
        &self,
    ) -> Result<
        impl futures::Stream<Item = Result<StoreChange, StoreError>> + Send + use<>,
        StoreError,
    > {
        self.watch(true).await
    }

    async fn watch(
        &self,
        history: bool,
    ) -> Result<
        impl futures::Stream<Item = Result<StoreChange, StoreError>> + Send + use<>,
        StoreError,
    > {
        let bucket = self.bucket();
        let pattern = format!("{KEY_PREFIX}>");
        let watch = if history {
            self.kv.watch_with_history(&pattern).await
        } else {
            self.kv.watch(&pattern).await
        }
        .map_err(|e| kv_error("watching", e))?;
        Ok(watch.map(move |entry| {
            let entry = entry.map_err(|e| kv_error("watching", e))?;
            let name = entry
                .key
                .strip_prefix(KEY_PREFIX)
                .unwrap_or(&entry.key)
                .to_string();
            let record = match entry.operation {
                Operation::Put => Some(serde_json::from_slice(&entry.value).map_err(|source| {
                    StoreError::Corrupt {
                        bucket: bucket.clone(),
                        app: name.clone(),
                        source,
                    }
                })?),
                Operation::Delete | Operation::Purge => None,
            };
            Ok(StoreChange {
                name,
                record,
                revision: entry.revision,
            })
        }))
    }
}

fn key(name: &str) -> String {
    format!("{KEY_PREFIX}{name}")
}

fn check_name(name: &str) -> Result<(), StoreError> {
    if valid_app_name(name) {
        Ok(())
    } else {
        Err(StoreError::InvalidName {
            name: name.to_string(),
        })
    }
}

/// A KV failure as the store reports it: the bucket, what was being done, and the
/// client's own words.
fn kv_error(doing: &str, e: KvError) -> StoreError {
    match e {
        KvError::Other { bucket, source, .. } => StoreError::Kv {
            bucket,
            message: format!("{doing}: {source}"),
        },
        KvError::Conflict { ref bucket, .. } => StoreError::Kv {
            bucket: bucket.clone(),
            message: format!("{doing}: {e}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lattice_bus::fake::FakeKv;
    use lattice_protocol::manifest::Manifest;

    fn manifest(version: &str) -> Manifest {
        Manifest {
            name: "shop".into(),
            version: version.into(),
            description: None,
            components: vec![],
            rollout: None,
        }
    }

    /// Store `version` and deploy it.
    fn deploy(version: &str) -> impl FnMut(Option<AppRecord>) -> Result<AppRecord, RecordError> {
        let manifest = manifest(version);
        move |current| {
            let mut r = current.unwrap_or_default();
            r.store(manifest.clone(), 0)?;
            r.deploy("shop", None)?;
            Ok(r)
        }
    }

    #[tokio::test]
    async fn updates_are_compare_and_set_and_watched() {
        let store = Store::new(Arc::new(FakeKv::new("lattice_t_state")));
        let mut changes = store.changes().await.unwrap();
        let (_, rev1) = store.update("shop", deploy("1")).await.unwrap();
        let (record, rev2) = store.update("shop", deploy("2")).await.unwrap();
        assert!(rev2 > rev1);
        assert_eq!(record.deployed.as_deref(), Some("2"));
        assert_eq!(store.load_all().await.unwrap().len(), 1);
        assert_eq!(store.delete("shop").await.unwrap().unwrap().1, rev2);
        assert_eq!(store.get("shop").await.unwrap(), None);

        let seen: Vec<(String, bool, u64)> = changes
            .by_ref()
            .take(3)
            .map(|c| {
                let c = c.unwrap();
                (c.name, c.record.is_some(), c.revision)
            })
            .collect()
            .await;
        assert_eq!(
            seen,
            [
                ("shop".to_string(), true, rev1),
                ("shop".to_string(), true, rev2),
                ("shop".to_string(), false, rev2 + 1),
            ]
        );
    }
}
