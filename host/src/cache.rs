//! Compiled components, cached by the SHA-256 digest of their bytes, and whether
//! this host may run them.
//!
//! In memory: one `Component` per digest for the life of the process, so every
//! workload using the same bytes shares the compiled code. On disk: wasmtime's own
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

#[derive(Default)]
struct Cached {
    compiled: HashMap<String, Component>,
    /// What each digest's claims say, checked once (kept only while issuers are
    /// trusted): refused digests too, so a retried apply does not check again.
    verdicts: HashMap<String, Arc<Verdict>>,
}

impl ComponentCache {
    /// The cache of a host running components signed by `trusted` (any
    /// component when it is empty).
    pub fn new(engine: Engine, trusted: TrustedIssuers) -> Self {
        Self {
            engine,
            trusted: Arc::new(trusted),
            cached: Arc::default(),
            compiles: Arc::default(),
            hits: Arc::default(),
        }
    }

    /// The compiled component with this digest (lowercase hex), if this host
    /// compiled it before: no fetch and no compilation needed. `what` names it
    /// in the error when its signature no longer admits it (expired since).
    pub fn get(&self, what: &str, digest: &str) -> Result<Option<Component>, LoadError> {
        let cached = self.lock();
        let Some(component) = cached.compiled.get(digest) else {
            return Ok(None);
        };
        if self.trusted.is_empty() {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(Some(component.clone()));
        }
        // Compiled under a trust list means its verdict was kept: without one,
        // it is treated as unseen and checked from its bytes.
        let Some(verdict) = cached.verdicts.get(digest) else {
            return Ok(None);
        };
        self.admit(what, verdict)?;
        self.hits.fetch_add(1, Ordering::Relaxed);
        Ok(Some(component.clone()))
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
        if let Some(verdict) = self.lock().verdicts.get(digest) {
            return verdict.clone();
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
