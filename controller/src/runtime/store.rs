//! App records in the JetStream KV bucket `lattice_<L>_state`.
//!
//! One key per app, `app.<name>`, holding an [`AppRecord`] as JSON: every stored
//! version (oldest first) and the deployed one. Every write is compare-and-set on the
//! key's revision (create for a new key), retried a bounded number of times when
//! another writer got there first.

use async_nats::jetstream::{self, kv, stream};
use futures::{StreamExt, TryStreamExt};
use lattice_protocol::manifest::Manifest;
use lattice_protocol::messages::VersionInfo;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How many versions one app keeps; the oldest undeployed ones go first.
pub const MAX_VERSIONS: usize = 32;
/// Compare-and-set attempts before a write gives up.
const CAS_ATTEMPTS: usize = 8;
const KEY_PREFIX: &str = "app.";

/// One stored version of an app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredVersion {
    pub version: String,
    pub manifest: Manifest,
    pub stored_at_ms: u64,
}

/// Everything the controller keeps about one app.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppRecord {
    /// Stored versions, oldest first (insertion order, as wadm).
    pub versions: Vec<StoredVersion>,
    /// The version that is the desired state, if any.
    #[serde(default)]
    pub deployed: Option<String>,
}

/// Why a change to an app record was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error(
        "app '{app}' already has a version {version} with different content; \
         give the changed manifest a new version"
    )]
    VersionConflict { app: String, version: String },
    #[error(
        "app '{app}' has no version {version}; `lattice app history {app}` lists the stored ones"
    )]
    NoSuchVersion { app: String, version: String },
    #[error("app '{app}' not found; `lattice app list` shows the stored apps")]
    NoSuchApp { app: String },
    #[error("a manifest needs a version (metadata.annotations.version)")]
    MissingVersion,
}

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

impl AppRecord {
    /// The newest stored version.
    pub fn latest(&self) -> Option<&StoredVersion> {
        self.versions.last()
    }

    pub fn version(&self, version: &str) -> Option<&StoredVersion> {
        self.versions.iter().find(|v| v.version == version)
    }

    /// The manifest of the deployed version.
    pub fn deployed_manifest(&self) -> Option<&Manifest> {
        self.deployed
            .as_deref()
            .and_then(|v| self.version(v))
            .map(|v| &v.manifest)
    }

    /// Store `manifest` as a new version. Storing a version again with identical
    /// content changes nothing; with different content it is refused.
    pub fn store(&mut self, manifest: Manifest, now_ms: u64) -> Result<(), RecordError> {
        if manifest.version.is_empty() {
            return Err(RecordError::MissingVersion);
        }
        if let Some(existing) = self.version(&manifest.version) {
            if existing.manifest == manifest {
                return Ok(());
            }
            return Err(RecordError::VersionConflict {
                app: manifest.name,
                version: manifest.version,
            });
        }
        self.versions.push(StoredVersion {
            version: manifest.version.clone(),
            manifest,
            stored_at_ms: now_ms,
        });
        while self.versions.len() > MAX_VERSIONS {
            let deployed = self.deployed.clone();
            match self
                .versions
                .iter()
                .position(|v| Some(&v.version) != deployed.as_ref())
            {
                Some(i) => {
                    self.versions.remove(i);
                }
                None => break,
            }
        }
        Ok(())
    }

    /// Make `version` (the newest when `None`) the desired state; returns it.
    pub fn deploy(&mut self, app: &str, version: Option<&str>) -> Result<String, RecordError> {
        let found = match version {
            Some(v) => self.version(v),
            None => self.latest(),
        };
        let Some(found) = found else {
            return Err(RecordError::NoSuchVersion {
                app: app.to_string(),
                version: version.unwrap_or("(latest)").to_string(),
            });
        };
        let v = found.version.clone();
        self.deployed = Some(v.clone());
        Ok(v)
    }

    /// Stored versions for `history`, oldest first.
    pub fn history(&self) -> Vec<VersionInfo> {
        self.versions
            .iter()
            .map(|v| VersionInfo {
                version: v.version.clone(),
                stored_at_ms: v.stored_at_ms,
                deployed: self.deployed.as_deref() == Some(v.version.as_str()),
            })
            .collect()
    }
}

/// Whether `name` can be an app name (and so a KV key token).
pub fn valid_app_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Create a KV bucket (file storage, `history` values per key) unless it exists, and
/// open it. Creates the backing stream directly because async-nats'
/// `create_key_value` cannot read nats-server 2.9's account info.
pub async fn ensure_kv_bucket(
    js: &jetstream::Context,
    bucket: &str,
    history: i64,
) -> Result<kv::Store, async_nats::Error> {
    if let Ok(store) = js.get_key_value(bucket).await {
        return Ok(store);
    }
    js.get_or_create_stream(stream::Config {
        name: format!("KV_{bucket}"),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: history.max(1),
        storage: stream::StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        num_replicas: 1,
        ..Default::default()
    })
    .await?;
    Ok(js.get_key_value(bucket).await?)
}

/// The app records of one lattice. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    kv: kv::Store,
    bucket: String,
}

impl Store {
    /// Open (creating if missing) the bucket.
    pub async fn open(js: &jetstream::Context, bucket: &str) -> Result<Self, StoreError> {
        let kv = ensure_kv_bucket(js, bucket, 1)
            .await
            .map_err(|e| kv_error(bucket, "creating or opening the bucket", e))?;
        Ok(Self {
            kv,
            bucket: bucket.to_string(),
        })
    }

    /// The bucket itself (the controller lease lives there too).
    pub(crate) fn kv(&self) -> &kv::Store {
        &self.kv
    }

    /// Every stored app with its revision.
    pub async fn load_all(&self) -> Result<BTreeMap<String, (AppRecord, u64)>, StoreError> {
        let keys: Vec<String> = self
            .kv
            .keys()
            .await
            .map_err(|e| kv_error(&self.bucket, "listing keys", e))?
            .try_collect()
            .await
            .map_err(|e| kv_error(&self.bucket, "listing keys", e))?;
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
            .entry(key(name))
            .await
            .map_err(|e| kv_error(&self.bucket, "reading", e))?;
        let Some(entry) = entry.filter(|e| e.operation == kv::Operation::Put) else {
            return Ok(None);
        };
        let record =
            serde_json::from_slice(&entry.value).map_err(|source| StoreError::Corrupt {
                bucket: self.bucket.clone(),
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
            let bytes = serde_json::to_vec(&record).expect("app records always serialize");
            let written = match revision {
                None => self
                    .kv
                    .create(key(name), bytes.into())
                    .await
                    .map_err(|e| match e.kind() {
                        kv::CreateErrorKind::AlreadyExists => None,
                        _ => Some(kv_error(&self.bucket, "creating", e)),
                    }),
                Some(rev) => {
                    self.kv
                        .update(key(name), bytes.into(), rev)
                        .await
                        .map_err(|e| match e.kind() {
                            kv::UpdateErrorKind::WrongLastRevision => None,
                            _ => Some(kv_error(&self.bucket, "updating", e)),
                        })
                }
            };
            match written {
                Ok(revision) => return Ok((record, revision)),
                Err(None) => continue, // someone else wrote first: read again
                Err(Some(e)) => return Err(e),
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
            match self.kv.delete_expect_revision(key(name), Some(rev)).await {
                Ok(()) => return Ok(Some((record, rev))),
                Err(e) if e.kind() == kv::DeleteErrorKind::WrongLastRevision => continue,
                Err(e) => return Err(kv_error(&self.bucket, "deleting", e)),
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
        let bucket = self.bucket.clone();
        let watch = self
            .kv
            .watch(format!("{KEY_PREFIX}>"))
            .await
            .map_err(|e| kv_error(&self.bucket, "watching", e))?;
        Ok(watch.map(move |entry| {
            let entry = entry.map_err(|e| kv_error(&bucket, "watching", e))?;
            let name = entry
                .key
                .strip_prefix(KEY_PREFIX)
                .unwrap_or(&entry.key)
                .to_string();
            let record = match entry.operation {
                kv::Operation::Put => {
                    Some(serde_json::from_slice(&entry.value).map_err(|source| {
                        StoreError::Corrupt {
                            bucket: bucket.clone(),
                            app: name.clone(),
                            source,
                        }
                    })?)
                }
                kv::Operation::Delete | kv::Operation::Purge => None,
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

fn kv_error(bucket: &str, doing: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Kv {
        bucket: bucket.to_string(),
        message: format!("{doing}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(version: &str, description: &str) -> Manifest {
        Manifest {
            name: "shop".into(),
            version: version.into(),
            description: Some(description.into()),
            components: vec![],
        }
    }

    #[test]
    fn versions_are_appended_idempotent_and_never_overwritten() {
        let mut r = AppRecord::default();
        r.store(manifest("1", "a"), 10).unwrap();
        r.store(manifest("2", "b"), 20).unwrap();
        r.store(manifest("1", "a"), 30).unwrap();
        assert_eq!(r.versions.len(), 2);
        assert_eq!(r.versions[0].stored_at_ms, 10);
        let err = r.store(manifest("1", "changed"), 40).unwrap_err();
        assert_eq!(
            err.to_string(),
            "app 'shop' already has a version 1 with different content; give the changed \
             manifest a new version"
        );
        assert_eq!(r.latest().unwrap().version, "2");
    }

    #[test]
    fn deploy_latest_or_named_version_and_history() {
        let mut r = AppRecord::default();
        r.store(manifest("1", "a"), 10).unwrap();
        r.store(manifest("2", "b"), 20).unwrap();
        assert_eq!(r.deploy("shop", None).unwrap(), "2");
        assert_eq!(r.deploy("shop", Some("1")).unwrap(), "1");
        assert_eq!(
            r.deployed_manifest().unwrap().description.as_deref(),
            Some("a")
        );
        let h = r.history();
        assert!(h[0].deployed && !h[1].deployed);
        let err = r.deploy("shop", Some("9")).unwrap_err();
        assert!(
            err.to_string().contains("lattice app history shop"),
            "{err}"
        );
    }

    #[test]
    fn history_is_bounded_but_keeps_the_deployed_version() {
        let mut r = AppRecord::default();
        r.store(manifest("0", "x"), 0).unwrap();
        r.deploy("shop", Some("0")).unwrap();
        for i in 1..=MAX_VERSIONS + 5 {
            r.store(manifest(&i.to_string(), "x"), i as u64).unwrap();
        }
        assert_eq!(r.versions.len(), MAX_VERSIONS);
        assert_eq!(r.versions[0].version, "0");
        assert_eq!(r.latest().unwrap().version, (MAX_VERSIONS + 5).to_string());
    }

    #[test]
    fn app_names() {
        assert!(valid_app_name("shop-1_a"));
        assert!(!valid_app_name(""));
        assert!(!valid_app_name("a.b"));
        assert!(!valid_app_name("a b"));
        assert!(!valid_app_name(&"x".repeat(64)));
    }
}
