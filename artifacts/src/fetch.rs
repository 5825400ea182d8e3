//! [`Fetcher`]: turns a manifest [`Image`] into bytes a host may run, every byte
//! checked against a digest on the way: a component's bytes, or the path of a
//! provider executable kept (mode 0755) in the host's on-disk cache.
//!
//! - `file://`: read from this machine, only when the host allows file images;
//! - `artifact://sha256:…`: the on-disk cache, else the lattice's artifact store
//!   (then kept in the cache);
//! - an OCI reference: the OCI module ([`Fetcher::pull_oci`]).
//!
//! Every fetch has a deadline, at most [`FetchConfig::max_concurrent`] run at once,
//! and two workloads asking for the same digest at once fetch it once (the second
//! waits for the first and then finds it in the cache); the same holds for one
//! OCI image, by its manifest digest.
//!
//! The cache keeps, next to each artifact, a note of its kind (and a provider's
//! platform): a cache hit is checked against the kind asked for exactly as a
//! fetch from the store is, and an entry without a note is fetched again. A
//! provider executable is handed out as an [`Executable`], which reads and checks
//! the cached copy against its digest every time it is about to run.

use crate::cache::{CacheError, DiskCache};
use crate::digest::Digest;
use crate::store::{ArtifactKind, ArtifactStore, StoreConfig, StoreError};
use async_nats::jetstream;
use lattice_protocol::manifest::Image;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the host fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchConfig {
    /// Whether `file://` images may be read (a dev lattice on one machine).
    pub allow_file_load: bool,
    /// How long one fetch may take, waiting for a slot included (default 120 s).
    pub deadline: Duration,
    /// Fetches running at once (default 4); more wait for a slot.
    pub max_concurrent: usize,
    /// The store's bounds (the largest artifact fetched).
    pub store: StoreConfig,
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self {
            allow_file_load: false,
            deadline: Duration::from_secs(120),
            max_concurrent: 4,
            store: StoreConfig::default(),
        }
    }
}

/// Why an image could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("file images are not loaded on this host (start it with --allow-file-load, as `lattice up` does; or deploy with `lattice app deploy`, which uploads files to the artifact store)")]
    FileNotAllowed,
    #[error("cannot read {path}: {source}")]
    File {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} is {size} bytes, over the limit of {max} bytes")]
    TooLarge { what: String, size: u64, max: u64 },
    #[error("'{image}' does not name a digest: {reason}")]
    BadDigest { image: String, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error("this host has no NATS connection, so it cannot fetch from the artifact store")]
    NoNats,
    #[error("fetching {image} took longer than {}s", after.as_secs_f64())]
    TimedOut { image: String, after: Duration },
    #[error("artifact {digest} is a {actual:?}, not a {wanted:?}")]
    WrongKind {
        digest: String,
        actual: ArtifactKind,
        wanted: ArtifactKind,
    },
    #[error(
        "provider artifact {digest} was built for {os}/{arch}; this host is {here_os}/{here_arch}"
    )]
    WrongPlatform {
        digest: String,
        os: String,
        arch: String,
        here_os: &'static str,
        here_arch: &'static str,
    },
    #[error(transparent)]
    Oci(#[from] crate::oci::OciError),
    #[error("{image} is not fetched: the host has it (builtin:// capabilities are compiled in)")]
    NotFetched { image: String },
    #[error("fetch task failed: {0}")]
    Task(String),
    #[error("{path} is missing or no longer has digest {digest} (it changed on disk after it was fetched and checked); it is not run")]
    Changed { path: String, digest: String },
}

/// A provider executable as the host runs it: a path on this machine the host
/// checks itself (`file://`, bundled), or a copy in the cache that must still
/// have its digest every time it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Executable {
    path: PathBuf,
    cached: Option<(DiskCache, Digest)>,
}

impl Executable {
    /// A file on this machine, run as it is (the host checks where it is).
    pub fn unchecked(path: PathBuf) -> Self {
        Self { path, cached: None }
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The digest its cached copy must have (none for a file of this machine).
    pub fn digest(&self) -> Option<&Digest> {
        self.cached.as_ref().map(|(_, d)| d)
    }

    /// The path to run now. A cached copy is read and checked against its digest
    /// now; one that changed is removed and refused ([`FetchError::Changed`]).
    /// Blocking: call it from a blocking task.
    pub fn checked_path(&self) -> Result<PathBuf, FetchError> {
        let Some((cache, digest)) = &self.cached else {
            return Ok(self.path.clone());
        };
        cache
            .checked_path(digest)?
            .ok_or_else(|| FetchError::Changed {
                path: self.path.display().to_string(),
                digest: digest.to_string(),
            })
    }
}

/// A component's bytes and their digest.
#[derive(Debug, Clone)]
pub struct ComponentBytes {
    pub digest: Digest,
    pub bytes: Vec<u8>,
}

/// What the fetcher has done since it started, for tests and `info` logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FetchStats {
    /// Artifacts fetched from the lattice's store.
    pub store_fetches: u64,
    /// Artifacts found in the on-disk cache.
    pub cache_hits: u64,
    /// `file://` images read.
    pub file_reads: u64,
    /// Artifacts pulled from OCI registries (a pinned image found in the cache
    /// counts as a cache hit instead).
    pub oci_pulls: u64,
}

#[derive(Default)]
struct Counters {
    store_fetches: AtomicU64,
    cache_hits: AtomicU64,
    file_reads: AtomicU64,
    oci_pulls: AtomicU64,
}

/// Fetches images for one host. Cheap to clone.
#[derive(Clone)]
pub struct Fetcher {
    inner: Arc<Inner>,
}

struct Inner {
    /// The OCI registry client (`set_registry`; else HTTPS-only and anonymous).
    registry: std::sync::OnceLock<crate::oci::Registry>,
    lattice: String,
    js: Option<jetstream::Context>,
    /// Opened on first use: the bucket exists once something was uploaded.
    store: tokio::sync::Mutex<Option<ArtifactStore>>,
    cache: DiskCache,
    /// A private cache folder when the host has none, removed with the fetcher.
    _own_dir: Option<tempfile::TempDir>,
    config: FetchConfig,
    slots: tokio::sync::Semaphore,
    /// One lock per digest being fetched, so concurrent askers fetch it once.
    fetching: Mutex<HashMap<Digest, Arc<tokio::sync::Mutex<()>>>>,
    counters: Counters,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher")
            .field("lattice", &self.inner.lattice)
            .field("cache", &self.inner.cache)
            .field("config", &self.inner.config)
            .finish()
    }
}

impl Fetcher {
    /// A fetcher for `lattice`, fetching over `nats` (none: files only), keeping
    /// artifacts under `cache_dir` (none: a private temporary folder).
    pub fn new(
        lattice: &str,
        nats: Option<async_nats::Client>,
        cache_dir: Option<PathBuf>,
        config: FetchConfig,
    ) -> std::io::Result<Self> {
        let (dir, own) = match cache_dir {
            Some(dir) => (dir, None),
            None => {
                let tmp = tempfile::Builder::new()
                    .prefix("lattice-artifacts-")
                    .tempdir()?;
                (tmp.path().to_path_buf(), Some(tmp))
            }
        };
        Ok(Self {
            inner: Arc::new(Inner {
                lattice: lattice.to_string(),
                js: nats.map(jetstream::new),
                store: tokio::sync::Mutex::new(None),
                cache: DiskCache::new(dir),
                _own_dir: own,
                config,
                slots: tokio::sync::Semaphore::new(config.max_concurrent.max(1)),
                fetching: Mutex::default(),
                counters: Counters::default(),
                registry: std::sync::OnceLock::new(),
            }),
        })
    }

    /// What this fetcher has done so far.
    pub fn stats(&self) -> FetchStats {
        let c = &self.inner.counters;
        FetchStats {
            store_fetches: c.store_fetches.load(Ordering::Relaxed),
            cache_hits: c.cache_hits.load(Ordering::Relaxed),
            file_reads: c.file_reads.load(Ordering::Relaxed),
            oci_pulls: c.oci_pulls.load(Ordering::Relaxed),
        }
    }

    /// The digest an image names, when it names one (`artifact://`, or an OCI
    /// reference pinned `@sha256:…`): the host may find it compiled already.
    pub fn digest_of(image: &Image) -> Option<Digest> {
        match image {
            Image::Artifact(d) => d.parse().ok(),
            Image::Oci(r) => r.rsplit_once('@').and_then(|(_, d)| d.parse().ok()),
            _ => None,
        }
    }

    /// The bytes of a component image, checked against their digest.
    pub async fn component(&self, image: &Image) -> Result<ComponentBytes, FetchError> {
        let uri = image.to_uri();
        self.within(&uri, async {
            match image {
                Image::File(path) => {
                    let bytes = self.read_file(path).await?;
                    Ok(ComponentBytes {
                        digest: Digest::of(&bytes),
                        bytes,
                    })
                }
                Image::Artifact(d) => {
                    let digest = parse_digest(image, d)?;
                    let bytes = self.by_digest(digest, ArtifactKind::Component).await?;
                    Ok(ComponentBytes { digest, bytes })
                }
                Image::Oci(reference) => {
                    self.pull_oci(reference, crate::oci::Kind::Component).await
                }
                #[allow(unreachable_patterns)] // images other helpers may add
                other => Err(FetchError::NotFetched {
                    image: other.to_uri(),
                }),
            }
        })
        .await
    }

    /// A provider executable image: a `file://` path as it is (the host checks
    /// where it may run from), else a checked copy in the cache, with the digest
    /// it is checked against again before every start.
    pub async fn executable(&self, image: &Image) -> Result<Executable, FetchError> {
        let uri = image.to_uri();
        self.within(&uri, async {
            match image {
                Image::File(path) => {
                    if !self.inner.config.allow_file_load {
                        return Err(FetchError::FileNotAllowed);
                    }
                    let path = path.strip_prefix("file://").unwrap_or(path);
                    Ok(Executable::unchecked(PathBuf::from(path)))
                }
                Image::Artifact(d) => {
                    let digest = parse_digest(image, d)?;
                    self.by_digest(digest, ArtifactKind::Provider).await?;
                    Ok(self.cached_executable(digest))
                }
                Image::Oci(reference) => {
                    let platform = crate::oci::Platform::current();
                    let pulled = self
                        .pull_oci(reference, crate::oci::Kind::Provider(platform))
                        .await?;
                    // pull_oci kept it, mode 0755, under the digest just checked.
                    Ok(self.cached_executable(pulled.digest))
                }
                #[allow(unreachable_patterns)] // images other helpers may add
                other => Err(FetchError::NotFetched {
                    image: other.to_uri(),
                }),
            }
        })
        .await
    }

    fn cached_executable(&self, digest: Digest) -> Executable {
        let cache = self.inner.cache.clone();
        Executable {
            path: cache.path(&digest),
            cached: Some((cache, digest)),
        }
    }

    /// Use `registry` (the host's insecure-registry, credential and size
    /// settings) for OCI pulls. Set once, before the first pull.
    pub fn set_registry(&self, registry: crate::oci::Registry) {
        let _ = self.inner.registry.set(registry);
    }

    /// The OCI branch: a pinned reference (`name[:tag]@sha256:…`, as the
    /// controller stores it; an unpinned one is refused) is looked up in the
    /// cache through its manifest digest, else pulled (the OCI module checks the
    /// manifest against the pinned digest and the layer against the manifest) and
    /// kept in the cache under the layer's digest.
    async fn pull_oci(
        &self,
        reference: &str,
        kind: crate::oci::Kind,
    ) -> Result<ComponentBytes, FetchError> {
        use crate::oci::OciError;
        let Some(manifest) = reference
            .rsplit_once('@')
            .and_then(|(_, d)| d.parse::<Digest>().ok())
        else {
            return Err(OciError::Unpinned(reference.to_string()).into());
        };
        // Concurrent pulls of one image pull it once (the others then find it in
        // the cache).
        self.one_at_a_time(manifest, self.cached_or_pulled(reference, manifest, kind))
            .await
    }

    async fn cached_or_pulled(
        &self,
        reference: &str,
        manifest: Digest,
        kind: crate::oci::Kind,
    ) -> Result<ComponentBytes, FetchError> {
        use crate::oci::{Kind, Registry, RegistrySettings};
        // manifest digest (+ platform) -> layer digest: a note in `oci/`.
        let alias = match &kind {
            Kind::Component => manifest.hex(),
            Kind::Provider(p) => format!("{}-{}-{}", manifest.hex(), p.os, p.architecture),
        };
        let executable = matches!(kind, Kind::Provider(_));
        let (cache, known) = (self.inner.cache.clone(), alias.clone());
        let cached = blocking(move || {
            let layer = cache
                .note("oci", &known)
                .and_then(|t| t.trim().parse::<Digest>().ok());
            match layer {
                Some(layer) => Ok(cache.get(&layer)?.map(|bytes| (layer, bytes))),
                None => Ok::<_, CacheError>(None),
            }
        })
        .await?;
        if let Some((digest, bytes)) = cached {
            self.inner
                .counters
                .cache_hits
                .fetch_add(1, Ordering::Relaxed);
            return Ok(ComponentBytes { digest, bytes });
        }
        let registry = match self.inner.registry.get() {
            Some(r) => r.clone(),
            None => {
                let r = Registry::new(RegistrySettings::default())?;
                self.inner.registry.get_or_init(|| r).clone()
            }
        };
        let _slot = self
            .inner
            .slots
            .acquire()
            .await
            .map_err(|e| FetchError::Task(e.to_string()))?;
        let pulled = registry.pull(reference, &kind).await?;
        self.inner
            .counters
            .oci_pulls
            .fetch_add(1, Ordering::Relaxed);
        tracing::info!(%reference, layer = %pulled.layer, bytes = pulled.bytes.len(), "pulled from the registry");
        let cache = self.inner.cache.clone();
        let layer = pulled.layer;
        let note = match &kind {
            Kind::Component => kind_note(ArtifactKind::Component, None, None),
            Kind::Provider(p) => {
                kind_note(ArtifactKind::Provider, Some(&p.os), Some(&p.architecture))
            }
        };
        let bytes = blocking(move || {
            cache.put_note("kind", &layer.hex(), &note)?;
            cache.put(&layer, &pulled.bytes, executable)?;
            cache.put_note("oci", &alias, &layer.to_string())?;
            Ok::<_, CacheError>(pulled.bytes)
        })
        .await?;
        Ok(ComponentBytes {
            digest: layer,
            bytes,
        })
    }

    async fn within<T>(
        &self,
        image: &str,
        fetch: impl std::future::Future<Output = Result<T, FetchError>>,
    ) -> Result<T, FetchError> {
        let after = self.inner.config.deadline;
        tokio::time::timeout(after, fetch)
            .await
            .map_err(|_| FetchError::TimedOut {
                image: image.to_string(),
                after,
            })?
    }

    async fn read_file(&self, path: &str) -> Result<Vec<u8>, FetchError> {
        if !self.inner.config.allow_file_load {
            return Err(FetchError::FileNotAllowed);
        }
        let path = path.strip_prefix("file://").unwrap_or(path);
        let file_err = |source| FetchError::File {
            path: path.to_string(),
            source,
        };
        let size = tokio::fs::metadata(path).await.map_err(file_err)?.len();
        let max = self.inner.config.store.max_artifact_bytes;
        if size > max {
            return Err(FetchError::TooLarge {
                what: path.to_string(),
                size,
                max,
            });
        }
        let bytes = tokio::fs::read(path).await.map_err(file_err)?;
        self.inner
            .counters
            .file_reads
            .fetch_add(1, Ordering::Relaxed);
        Ok(bytes)
    }

    /// The bytes of `digest` from the cache, else from the store (then cached).
    async fn by_digest(&self, digest: Digest, kind: ArtifactKind) -> Result<Vec<u8>, FetchError> {
        self.one_at_a_time(digest, self.cached_or_fetched(digest, kind))
            .await
    }

    /// Run `fetch` while holding `digest`'s lock: one fetch of a digest at a time.
    async fn one_at_a_time<T>(
        &self,
        digest: Digest,
        fetch: impl std::future::Future<Output = Result<T, FetchError>>,
    ) -> Result<T, FetchError> {
        let one = {
            let mut fetching = lock(&self.inner.fetching);
            fetching.entry(digest).or_default().clone()
        };
        let result = {
            let _one_at_a_time = one.lock().await;
            fetch.await
        };
        // The last one out forgets the digest's lock (the map stays bounded by
        // the fetches in progress).
        let mut fetching = lock(&self.inner.fetching);
        if Arc::strong_count(&one) == 2 {
            fetching.remove(&digest);
        }
        result
    }

    async fn cached_or_fetched(
        &self,
        digest: Digest,
        kind: ArtifactKind,
    ) -> Result<Vec<u8>, FetchError> {
        let cache = self.inner.cache.clone();
        // A hit counts only with a note of its kind (older entries have none:
        // they are fetched again), checked as the store's metadata is below.
        let hit = blocking(move || {
            let Some(note) = cache.note("kind", &digest.hex()) else {
                return Ok(None);
            };
            Ok(cache.get(&digest)?.map(|bytes| (note, bytes)))
        })
        .await?;
        if let Some((note, bytes)) = hit {
            let mut words = note.split_whitespace();
            let actual = match words.next() {
                Some("provider") => ArtifactKind::Provider,
                _ => ArtifactKind::Component,
            };
            let (os, arch) = (words.next(), words.next());
            check_kind(&digest, actual, kind, os, arch)?;
            self.inner
                .counters
                .cache_hits
                .fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%digest, "artifact found in the cache");
            return Ok(bytes);
        }
        let _slot = self
            .inner
            .slots
            .acquire()
            .await
            .map_err(|e| FetchError::Task(e.to_string()))?;
        let store = self.store().await?;
        let (meta, bytes) = store.get(&digest).await?;
        check_kind(
            &digest,
            meta.kind,
            kind,
            meta.os.as_deref(),
            meta.arch.as_deref(),
        )?;
        self.inner
            .counters
            .store_fetches
            .fetch_add(1, Ordering::Relaxed);
        tracing::info!(%digest, size = bytes.len(), name = %meta.name, "artifact fetched from the lattice's store");
        let cache = self.inner.cache.clone();
        let executable = kind == ArtifactKind::Provider;
        let note = kind_note(meta.kind, meta.os.as_deref(), meta.arch.as_deref());
        blocking(move || {
            cache.put_note("kind", &digest.hex(), &note)?;
            cache.put(&digest, &bytes, executable)?;
            Ok(bytes)
        })
        .await
    }

    async fn store(&self) -> Result<ArtifactStore, FetchError> {
        let mut slot = self.inner.store.lock().await;
        if let Some(store) = slot.as_ref() {
            return Ok(store.clone());
        }
        let js = self.inner.js.clone().ok_or(FetchError::NoNats)?;
        let store = ArtifactStore::open(js, &self.inner.lattice, self.inner.config.store).await?;
        *slot = Some(store.clone());
        Ok(store)
    }
}

/// What the cache notes about an entry: `component`, or `provider <os> <arch>`.
fn kind_note(kind: ArtifactKind, os: Option<&str>, arch: Option<&str>) -> String {
    match kind {
        ArtifactKind::Component => "component".into(),
        ArtifactKind::Provider => format!(
            "provider {} {}",
            os.unwrap_or("unknown"),
            arch.unwrap_or("unknown")
        ),
    }
}

/// Refuse an artifact of another kind than `wanted`, or a provider built for
/// another platform than this host's.
fn check_kind(
    digest: &Digest,
    actual: ArtifactKind,
    wanted: ArtifactKind,
    os: Option<&str>,
    arch: Option<&str>,
) -> Result<(), FetchError> {
    if actual != wanted {
        return Err(FetchError::WrongKind {
            digest: digest.to_string(),
            actual,
            wanted,
        });
    }
    if wanted == ArtifactKind::Provider {
        let (here_os, here_arch) = (std::env::consts::OS, std::env::consts::ARCH);
        let (os, arch) = (os.unwrap_or_default(), arch.unwrap_or_default());
        if os != here_os || arch != here_arch {
            return Err(FetchError::WrongPlatform {
                digest: digest.to_string(),
                os: os.to_string(),
                arch: arch.to_string(),
                here_os,
                here_arch,
            });
        }
    }
    Ok(())
}

fn parse_digest(image: &Image, digest: &str) -> Result<Digest, FetchError> {
    digest.parse().map_err(|reason| FetchError::BadDigest {
        image: image.to_uri(),
        reason,
    })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Single inserts and removals: a poisoned map is still consistent.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, CacheError> + Send + 'static,
) -> Result<T, FetchError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| FetchError::Task(e.to_string()))?
        .map_err(FetchError::from)
}
