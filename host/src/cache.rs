//! Compiled components, cached by the SHA-256 digest of their bytes, and whether
//! this host may run them.
//!
//! In memory: one `Component` per digest, so every workload using the same bytes
//! shares the compiled code; at most [`COMPILED_MAX`] digests (and
//! [`VERDICTS_MAX`] verdicts), the least recently used forgotten first, so a
//! stream of distinct components cannot grow the host without bound (a
//! forgotten one is compiled again at its next apply; running workloads keep
//! theirs). On disk: wasmtime's own
//! compilation cache (enabled on the engine when the host has a cache directory)
//! keys artifacts by the module bytes and compiler settings, so a restarted host
//! skips Cranelift for components it has seen.
//!
//! A host that trusts issuers (`--trust-issuer`) runs only components whose
//! embedded claims verify ([`lattice_artifacts::claims`]). The claims of a digest
//! are read and checked once, before it is compiled (untrusted code never reaches
//! Cranelift), and the verdict is kept beside the compiled component; only the
//! dates are checked again at every use, since time moves.

use lattice_artifacts::claims::{self, ClaimsError, TrustedIssuers, Verdict};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use wasmtime::component::Component;
use wasmtime::Engine;

/// Why a component could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read component file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a WebAssembly component: {reason}")]
    Invalid { path: String, reason: String },
    /// The host requires signed components and this one's claims do not admit it.
    #[error("{path} may not run here: this host requires components signed by a trusted issuer (--trust-issuer; see `lattice sign`), and {source}")]
    Refused {
        path: String,
        #[source]
        source: ClaimsError,
    },
}

/// The digest of some component bytes, as lowercase hex.
pub fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Compiled components kept in memory at most.
pub const COMPILED_MAX: usize = 256;
/// Claims verdicts kept at most (refused digests included).
pub const VERDICTS_MAX: usize = 4096;

/// A map of at most `max` entries that forgets the least recently used first.
struct Bounded<V> {
    entries: HashMap<String, (V, u64)>,
    max: usize,
    tick: u64,
}

impl<V> Bounded<V> {
    fn new(max: usize) -> Self {
        Self {
            entries: HashMap::new(),
            max: max.max(1),
            tick: 0,
        }
    }

    fn get(&mut self, key: &str) -> Option<&V> {
        self.tick += 1;
        let tick = self.tick;
        self.entries.get_mut(key).map(|(v, used)| {
            *used = tick;
            &*v
        })
    }

    fn insert(&mut self, key: String, value: V) {
        self.tick += 1;
        if self.entries.len() >= self.max && !self.entries.contains_key(&key) {
            // O(max) per insert, and inserts follow a compilation or a claims
            // check: nothing next to their cost.
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                self.entries.remove(&oldest);
            }
        }
        self.entries.insert(key, (value, self.tick));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

/// A cloneable handle to the host's compiled components.
#[derive(Clone)]
pub struct ComponentCache {
    engine: Engine,
    /// Whose signatures admit a component; empty: every component runs.
    trusted: Arc<TrustedIssuers>,
    cached: Arc<Mutex<Cached>>,
    /// Components compiled (not found by digest) since the host started.
    compiles: Arc<AtomicU64>,
    /// Components found compiled by digest since the host started.
    hits: Arc<AtomicU64>,
}

struct Cached {
    compiled: Bounded<Component>,
    /// What each digest's claims say, checked once (kept only while issuers are
    /// trusted): refused digests too, so a retried apply does not check again.
    verdicts: Bounded<Arc<Verdict>>,
}

impl ComponentCache {
    /// The cache of a host running components signed by `trusted` (any
    /// component when it is empty).
    pub fn new(engine: Engine, trusted: TrustedIssuers) -> Self {
        Self::bounded(engine, trusted, COMPILED_MAX, VERDICTS_MAX)
    }

    /// The same keeping at most `compiled` components and `verdicts` verdicts.
    pub fn bounded(
        engine: Engine,
        trusted: TrustedIssuers,
        compiled: usize,
        verdicts: usize,
    ) -> Self {
        Self {
            engine,
            trusted: Arc::new(trusted),
            cached: Arc::new(Mutex::new(Cached {
                compiled: Bounded::new(compiled),
                verdicts: Bounded::new(verdicts),
            })),
            compiles: Arc::default(),
            hits: Arc::default(),
        }
    }

    /// The compiled component with this digest (lowercase hex), if this host
    /// compiled it before: no fetch and no compilation needed. `what` names it
    /// in the error when its signature no longer admits it (expired since).
    pub fn get(&self, what: &str, digest: &str) -> Result<Option<Component>, LoadError> {
        let mut cached = self.lock();
        let Some(component) = cached.compiled.get(digest).cloned() else {
            return Ok(None);
        };
        if self.trusted.is_empty() {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(Some(component));
        }
        // Compiled under a trust list means its verdict was kept: without one,
        // it is treated as unseen and checked from its bytes.
        let Some(verdict) = cached.verdicts.get(digest) else {
            return Ok(None);
        };
        self.admit(what, verdict)?;
        self.hits.fetch_add(1, Ordering::Relaxed);
        Ok(Some(component))
    }

    /// How many components this host compiled (cache misses) since it started.
    pub fn compiles(&self) -> u64 {
        self.compiles.load(Ordering::Relaxed)
    }

    /// How many components this host found compiled by digest (cache hits).
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Load and compile the component at `path`, or return the cached one with the
    /// same digest. Compilation runs off the async executor.
    pub async fn load_file(&self, path: &str) -> Result<(String, Component), LoadError> {
        let bytes = tokio::fs::read(path)
            .await
            .map_err(|source| LoadError::Read {
                path: path.to_string(),
                source,
            })?;
        self.load_bytes(path, bytes).await
    }

    /// Compile `bytes` (named `what` in errors), or return the cached component;
    /// refused when this host trusts issuers and none of them signed it.
    pub async fn load_bytes(
        &self,
        what: &str,
        bytes: Vec<u8>,
    ) -> Result<(String, Component), LoadError> {
        let digest = digest(&bytes);
        if let Some(c) = self.get(what, &digest)? {
            return Ok((digest, c));
        }
        let invalid = |reason: String| LoadError::Invalid {
            path: what.to_string(),
            reason,
        };
        if !bytes.starts_with(b"\0asm") {
            return Err(invalid(
                "it does not start with the wasm magic bytes".into(),
            ));
        }
        if bytes.get(4..8) == Some(&[1, 0, 0, 0]) {
            return Err(invalid(
                "it is a core wasm module; build it for wasm32-wasip2 (or run `wasm-tools component new`) to get a component".into(),
            ));
        }
        if !self.trusted.is_empty() {
            let verdict = self.verdict(&digest, &bytes);
            self.admit(what, &verdict)?;
        }
        let engine = self.engine.clone();
        let component = tokio::task::spawn_blocking(move || Component::new(&engine, &bytes))
            .await
            .map_err(|e| invalid(format!("compilation task failed: {e}")))?
            .map_err(|e| invalid(format!("{e:#}")))?;
        self.compiles.fetch_add(1, Ordering::Relaxed);
        self.lock()
            .compiled
            .insert(digest.clone(), component.clone());
        Ok((digest, component))
    }

    /// The verdict on the claims of `bytes` (whose digest is `digest`): kept
    /// from a first look, or read and checked now and kept.
    fn verdict(&self, digest: &str, bytes: &[u8]) -> Arc<Verdict> {
        if let Some(verdict) = self.lock().verdicts.get(digest).cloned() {
            return verdict;
        }
        let verdict = Arc::new(claims::embedded(bytes));
        self.lock()
            .verdicts
            .insert(digest.to_string(), verdict.clone());
        verdict
    }

    /// Whether `verdict` lets the component run now.
    fn admit(&self, what: &str, verdict: &Verdict) -> Result<(), LoadError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.trusted
            .admit(verdict, now)
            .map_err(|source| LoadError::Refused {
                path: what.to_string(),
                source,
            })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cached> {
        // A panic while holding this lock cannot leave a map half-updated
        // (single insert/get), so a poisoned lock is safe to keep using.
        self.cached.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An empty component whose bytes differ by one custom section.
    fn component(n: u8) -> Vec<u8> {
        let mut bytes = b"\0asm\x0d\x00\x01\x00".to_vec();
        // Custom section: id 0, size 3, name "n" (length 1), one byte of data.
        bytes.extend_from_slice(&[0, 3, 1, b'n', n]);
        bytes
    }

    #[tokio::test]
    async fn distinct_components_do_not_grow_the_cache_past_its_bound() {
        let engine = Engine::default();
        let cache = ComponentCache::bounded(engine, TrustedIssuers::default(), 2, 2);
        let mut digests = Vec::new();
        for n in 0..5 {
            let (digest, _) = cache.load_bytes("c", component(n)).await.unwrap();
            digests.push(digest);
        }
        assert_eq!(cache.compiles(), 5);
        assert_eq!(cache.lock().compiled.len(), 2);
        // The two most recent are kept, the older ones were forgotten.
        assert!(cache.get("c", &digests[4]).unwrap().is_some());
        assert!(cache.get("c", &digests[3]).unwrap().is_some());
        assert!(cache.get("c", &digests[0]).unwrap().is_none());
        // 4 was used after 3: a sixth component forgets 3, not 4.
        assert!(cache.get("c", &digests[4]).unwrap().is_some());
        cache.load_bytes("c", component(5)).await.unwrap();
        assert!(cache.get("c", &digests[4]).unwrap().is_some());
        assert!(cache.get("c", &digests[3]).unwrap().is_none());
    }

    #[test]
    fn a_bounded_map_forgets_the_least_recently_used() {
        let mut map = Bounded::new(2);
        map.insert("a".into(), 1);
        map.insert("b".into(), 2);
        assert_eq!(map.get("a"), Some(&1));
        map.insert("c".into(), 3);
        assert_eq!(map.get("a").copied(), Some(1));
        assert_eq!(map.get("b").copied(), None);
        assert_eq!(map.get("c").copied(), Some(3));
        map.insert("c".into(), 4);
        assert_eq!(map.len(), 2);
        assert_eq!(map.get("c").copied(), Some(4));
    }
}
