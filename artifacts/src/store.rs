//! The lattice's own artifact store: a content-addressed JetStream object store
//! (bucket `lattice_<lattice>_artifacts`, see [`Subjects::artifact_bucket`]), one
//! object per artifact, named by the 64 hex digits of its SHA-256 digest, with its
//! kind, size, display name and (for providers) OS and architecture as object
//! metadata.
//!
//! Invariants: an object's bytes are checked against the digest in its name on
//! the way in ([`ArtifactStore::put`] computes it) and on the way out
//! ([`ArtifactStore::get`] refuses bytes that do not match, naming both digests);
//! no artifact over [`StoreConfig::max_artifact_bytes`] is written or read; the
//! bucket itself is bounded by [`StoreConfig::max_store_bytes`].

use crate::digest::{Digest, Mismatch};
use async_nats::jetstream::{self, object_store, ErrorCode};
use lattice_protocol::subjects::Subjects;
use std::collections::HashMap;
use tokio::io::AsyncReadExt;

/// Object metadata keys.
const KIND: &str = "lattice-kind";
const NAME: &str = "lattice-name";
const OS: &str = "lattice-os";
const ARCH: &str = "lattice-arch";

/// Bounds of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreConfig {
    /// The largest artifact that may be stored or fetched (default 64 MiB).
    pub max_artifact_bytes: u64,
    /// The bucket's size limit, set when the bucket is created (default 1 GiB).
    /// A bucket that exists keeps the limit it was created with.
    pub max_store_bytes: u64,
    /// JetStream replicas of the bucket, set when it is created (default 1; 3 on a
    /// three-node cluster). The controller creates the bucket at start with the
    /// lattice's `--replicas`.
    pub replicas: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            max_artifact_bytes: 64 << 20,
            max_store_bytes: 1 << 30,
            replicas: 1,
        }
    }
}

/// What an artifact is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArtifactKind {
    /// A Wasm component.
    Component,
    /// A provider executable, for one OS and architecture.
    Provider,
}

impl ArtifactKind {
    fn name(self) -> &'static str {
        match self {
            ArtifactKind::Component => "component",
            ArtifactKind::Provider => "provider",
        }
    }
}

/// What is said about an artifact besides its bytes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ArtifactMeta {
    /// `sha256:<hex>`.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
    pub kind: ArtifactKind,
    /// A name for people, e.g. the file name it was uploaded from.
    pub name: String,
    /// For a provider: the OS it runs on (Rust's `std::env::consts::OS`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    /// For a provider: the architecture (`std::env::consts::ARCH`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
}

/// What [`ArtifactStore::put`] is told about the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewArtifact {
    pub kind: ArtifactKind,
    pub name: String,
    pub os: Option<String>,
    pub arch: Option<String>,
}

impl NewArtifact {
    /// A component named `name`.
    pub fn component(name: &str) -> Self {
        Self {
            kind: ArtifactKind::Component,
            name: name.to_string(),
            os: None,
            arch: None,
        }
    }

    /// A provider executable named `name` for this machine's OS and architecture.
    pub fn local_provider(name: &str) -> Self {
        Self {
            kind: ArtifactKind::Provider,
            name: name.to_string(),
            os: Some(std::env::consts::OS.to_string()),
            arch: Some(std::env::consts::ARCH.to_string()),
        }
    }
}

/// Why the store refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("artifact {what} is {size} bytes, over the artifact store's limit of {max} bytes")]
    TooLarge { what: String, size: u64, max: u64 },
    #[error("artifact store {bucket}: {source}")]
    DigestMismatch {
        bucket: String,
        #[source]
        source: Mismatch,
    },
    #[error(
        "artifact store {bucket} is full: {used} of {max} bytes used, {size} more do not fit; \
         remove unused artifacts with `lattice artifact rm DIGEST`"
    )]
    Full {
        bucket: String,
        used: u64,
        max: u64,
        size: u64,
    },
    #[error("artifact {digest} is not in the artifact store {bucket}")]
    NotFound { bucket: String, digest: String },
    #[error(
        "the artifact store {bucket} does not exist yet: nothing was uploaded to this lattice \
         (`lattice app deploy` or `lattice artifact push` uploads)"
    )]
    NoBucket { bucket: String },
    #[error(
        "artifact store {bucket}: object {object} has metadata that is not an artifact's: {reason}"
    )]
    BadObject {
        bucket: String,
        object: String,
        reason: String,
    },
    #[error("artifact store {bucket}: {doing} failed: {reason}")]
    Nats {
        bucket: String,
        doing: String,
        reason: String,
    },
}

/// A handle to one lattice's artifact store. Cheap to clone.
#[derive(Clone)]
pub struct ArtifactStore {
    js: jetstream::Context,
    store: object_store::ObjectStore,
    bucket: String,
    config: StoreConfig,
}

impl std::fmt::Debug for ArtifactStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArtifactStore")
            .field("bucket", &self.bucket)
            .field("config", &self.config)
            .finish()
    }
}

impl ArtifactStore {
    /// Open the store of `lattice`, creating its bucket (bounded by
    /// `config.max_store_bytes`) when it does not exist yet.
    pub async fn open_or_create(
        js: jetstream::Context,
        lattice: &str,
        config: StoreConfig,
    ) -> Result<Self, StoreError> {
        let bucket = Subjects::new(lattice).artifact_bucket();
        match Self::open(js.clone(), lattice, config).await {
            Err(StoreError::NoBucket { .. }) => {}
            other => return other,
        }
        let created = js
            .create_object_store(object_store::Config {
                bucket: bucket.clone(),
                description: Some(format!("lattice '{lattice}': artifacts by SHA-256 digest")),
                max_bytes: i64::try_from(config.max_store_bytes).unwrap_or(i64::MAX),
                num_replicas: config.replicas.max(1),
                ..Default::default()
            })
            .await;
        match created {
            Ok(store) => Ok(Self {
                js,
                store,
                bucket,
                config,
            }),
            // Another client created it first.
            Err(_) => Self::open(js, lattice, config).await,
        }
    }

    /// Open the store of `lattice`; [`StoreError::NoBucket`] when nothing was
    /// ever uploaded.
    pub async fn open(
        js: jetstream::Context,
        lattice: &str,
        config: StoreConfig,
    ) -> Result<Self, StoreError> {
        let bucket = Subjects::new(lattice).artifact_bucket();
        if let Err(e) = js.get_stream(format!("OBJ_{bucket}")).await {
            return Err(match e.kind() {
                jetstream::context::GetStreamErrorKind::JetStream(js)
                    if js.error_code() == ErrorCode::STREAM_NOT_FOUND =>
                {
                    StoreError::NoBucket { bucket }
                }
                _ => nats(&bucket, "opening the bucket", e),
            });
        }
        let store = js
            .get_object_store(&bucket)
            .await
            .map_err(|e| nats(&bucket, "opening the bucket", e))?;
        Ok(Self {
            js,
            store,
            bucket,
            config,
        })
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The bounds this handle applies.
    pub fn config(&self) -> StoreConfig {
        self.config
    }

    /// Store `bytes` under their digest. Idempotent: bytes already stored are not
    /// uploaded again (the stored metadata is answered).
    pub async fn put(&self, bytes: &[u8], new: NewArtifact) -> Result<ArtifactMeta, StoreError> {
        let size = bytes.len() as u64;
        self.check_size(&new.name, size)?;
        let digest = Digest::of(bytes);
        match self.info(&digest).await {
            Ok(meta) if meta.size == size => return Ok(meta),
            Ok(_) | Err(StoreError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        let (used, max) = self.usage().await?;
        if max > 0 && used.saturating_add(size) > max {
            return Err(StoreError::Full {
                bucket: self.bucket.clone(),
                used,
                max,
                size,
            });
        }
        let mut metadata = HashMap::from([
            (KIND.to_string(), new.kind.name().to_string()),
            (NAME.to_string(), new.name.clone()),
        ]);
        if let Some(os) = &new.os {
            metadata.insert(OS.to_string(), os.clone());
        }
        if let Some(arch) = &new.arch {
            metadata.insert(ARCH.to_string(), arch.clone());
        }
        let object = object_store::ObjectMetadata {
            name: digest.hex(),
            description: Some(format!("{} {}", new.kind.name(), new.name)),
            metadata,
            ..Default::default()
        };
        let mut reader = bytes;
        if let Err(e) = self.store.put(object, &mut reader).await {
            let text = e.to_string();
            // The server refuses a chunk once the bucket's max_bytes is reached.
            if text.contains("maximum bytes") || text.contains("insufficient resources") {
                let (used, max) = self.usage().await.unwrap_or((used, max));
                return Err(StoreError::Full {
                    bucket: self.bucket.clone(),
                    used,
                    max,
                    size,
                });
            }
            return Err(nats(&self.bucket, &format!("uploading {digest}"), text));
        }
        tracing::info!(bucket = %self.bucket, %digest, size, name = %new.name, "artifact stored");
        Ok(ArtifactMeta {
            digest: digest.to_string(),
            size,
            kind: new.kind,
            name: new.name,
            os: new.os,
            arch: new.arch,
        })
    }

    /// The metadata of `digest`, without its bytes.
    pub async fn info(&self, digest: &Digest) -> Result<ArtifactMeta, StoreError> {
        match self.store.info(digest.hex()).await {
            Ok(info) if !info.deleted => self.meta_of(&info),
            Ok(_) => Err(self.not_found(digest)),
            Err(e) if e.kind() == object_store::InfoErrorKind::NotFound => {
                Err(self.not_found(digest))
            }
            Err(e) => Err(nats(&self.bucket, &format!("reading {digest}"), e)),
        }
    }

    /// The bytes of `digest`, checked against it: bytes that do not have that
    /// digest are refused with [`StoreError::DigestMismatch`] naming both.
    pub async fn get(&self, digest: &Digest) -> Result<(ArtifactMeta, Vec<u8>), StoreError> {
        let meta = self.info(digest).await?;
        self.check_size(&digest.to_string(), meta.size)?;
        let mut object = match self.store.get(digest.hex()).await {
            Ok(o) => o,
            Err(e) if e.kind() == object_store::GetErrorKind::NotFound => {
                return Err(self.not_found(digest))
            }
            Err(e) => return Err(nats(&self.bucket, &format!("fetching {digest}"), e)),
        };
        let mut bytes = Vec::with_capacity(usize::try_from(meta.size).unwrap_or(0));
        // One byte over the bound is enough to know it is over.
        let mut limited = (&mut object).take(self.config.max_artifact_bytes + 1);
        limited
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| nats(&self.bucket, &format!("fetching {digest}"), e))?;
        self.check_size(&digest.to_string(), bytes.len() as u64)?;
        digest
            .verify(&bytes)
            .map_err(|source| StoreError::DigestMismatch {
                bucket: self.bucket.clone(),
                source,
            })?;
        Ok((meta, bytes))
    }

    /// Every artifact, by digest.
    pub async fn list(&self) -> Result<Vec<ArtifactMeta>, StoreError> {
        use futures::TryStreamExt;
        let infos: Vec<object_store::ObjectInfo> = self
            .store
            .list()
            .await
            .map_err(|e| nats(&self.bucket, "listing", e))?
            .try_collect()
            .await
            .map_err(|e| nats(&self.bucket, "listing", e))?;
        let mut out = Vec::new();
        for info in infos.iter().filter(|i| !i.deleted) {
            out.push(self.meta_of(info)?);
        }
        out.sort_by(|a, b| a.digest.cmp(&b.digest));
        Ok(out)
    }

    /// Remove `digest`; [`StoreError::NotFound`] when it is not there. Whether a
    /// deployed version still uses it is the caller's question (the controller
    /// knows the versions).
    pub async fn remove(&self, digest: &Digest) -> Result<(), StoreError> {
        self.info(digest).await?;
        self.store
            .delete(digest.hex())
            .await
            .map_err(|e| nats(&self.bucket, &format!("removing {digest}"), e))
    }

    /// Bytes used by the bucket and its limit (0: none).
    pub async fn usage(&self) -> Result<(u64, u64), StoreError> {
        let mut stream = self
            .js
            .get_stream(format!("OBJ_{}", self.bucket))
            .await
            .map_err(|e| nats(&self.bucket, "reading the bucket's size", e))?;
        let info = stream
            .info()
            .await
            .map_err(|e| nats(&self.bucket, "reading the bucket's size", e))?;
        Ok((info.state.bytes, info.config.max_bytes.max(0) as u64))
    }

    fn check_size(&self, what: &str, size: u64) -> Result<(), StoreError> {
        if size > self.config.max_artifact_bytes {
            return Err(StoreError::TooLarge {
                what: what.to_string(),
                size,
                max: self.config.max_artifact_bytes,
            });
        }
        Ok(())
    }

    fn not_found(&self, digest: &Digest) -> StoreError {
        StoreError::NotFound {
            bucket: self.bucket.clone(),
            digest: digest.to_string(),
        }
    }

    fn meta_of(&self, info: &object_store::ObjectInfo) -> Result<ArtifactMeta, StoreError> {
        let bad = |reason: &str| StoreError::BadObject {
            bucket: self.bucket.clone(),
            object: info.name.clone(),
            reason: reason.to_string(),
        };
        let digest: Digest = format!("sha256:{}", info.name)
            .parse()
            .map_err(|e: String| bad(&e))?;
        let kind = match info.metadata.get(KIND).map(String::as_str) {
            Some("component") => ArtifactKind::Component,
            Some("provider") => ArtifactKind::Provider,
            _ => return Err(bad("no kind (component or provider)")),
        };
        Ok(ArtifactMeta {
            digest: digest.to_string(),
            size: info.size as u64,
            kind,
            name: info.metadata.get(NAME).cloned().unwrap_or_default(),
            os: info.metadata.get(OS).cloned(),
            arch: info.metadata.get(ARCH).cloned(),
        })
    }
}

fn nats(bucket: &str, doing: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Nats {
        bucket: bucket.to_string(),
        doing: doing.to_string(),
        reason: e.to_string(),
    }
}
