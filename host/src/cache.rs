//! Compiled components, cached by the SHA-256 digest of their bytes.
//!
//! In memory: one `Component` per digest for the life of the process, so every
//! workload using the same bytes shares the compiled code. On disk: wasmtime's own
//! compilation cache (enabled on the engine when the host has a cache directory)
//! keys artifacts by the module bytes and compiler settings, so a restarted host
//! skips Cranelift for components it has seen.

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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
}

/// The digest of some component bytes, as lowercase hex.
pub fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A cloneable handle to the host's compiled components.
#[derive(Clone)]
pub struct ComponentCache {
    engine: Engine,
    compiled: Arc<Mutex<HashMap<String, Component>>>,
    /// Components compiled (not found by digest) since the host started.
    compiles: Arc<AtomicU64>,
}

impl ComponentCache {
    pub fn new(engine: Engine) -> Self {
        Self {
            engine,
            compiled: Arc::default(),
            compiles: Arc::default(),
        }
    }

    /// The compiled component with this digest (lowercase hex), if this host
    /// compiled it before: no fetch and no compilation needed.
    pub fn get(&self, digest: &str) -> Option<Component> {
        self.lock().get(digest).cloned()
    }

    /// How many components this host compiled (cache misses) since it started.
    pub fn compiles(&self) -> u64 {
        self.compiles.load(Ordering::Relaxed)
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

    /// Compile `bytes` (named `what` in errors), or return the cached component.
    pub async fn load_bytes(
        &self,
        what: &str,
        bytes: Vec<u8>,
    ) -> Result<(String, Component), LoadError> {
        let digest = digest(&bytes);
        if let Some(c) = self.lock().get(&digest) {
            return Ok((digest, c.clone()));
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
        let engine = self.engine.clone();
        let component = tokio::task::spawn_blocking(move || Component::new(&engine, &bytes))
            .await
            .map_err(|e| invalid(format!("compilation task failed: {e}")))?
            .map_err(|e| invalid(format!("{e:#}")))?;
        self.compiles.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(digest.clone(), component.clone());
        Ok((digest, component))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Component>> {
        // A panic while holding this lock cannot leave the map half-updated
        // (single insert/get), so a poisoned lock is safe to keep using.
        self.compiled.lock().unwrap_or_else(|p| p.into_inner())
    }
}
