//! Secrets (`lattice secret put|list|rm`) in the state bucket, under
//! `secret.<name>`, each sealed to the controller's secrets key: no other role
//! may read that bucket, and even its raw bytes hold no value in clear. A value is
//! opened only to be sealed again for one host, inside the signed command that
//! tells the host to run what uses it (see `lattice_protocol::secrets`).

use bytes::Bytes;
use lattice_bus::SharedKv;
use lattice_protocol::manifest::{valid_config_name, Manifest, CONFIG_NAME_RULE};
use lattice_protocol::secrets::{open, seal, SealedSecrets};
use std::collections::BTreeMap;
use std::sync::Arc;

const KEY_PREFIX: &str = "secret.";
/// The largest secret value (as NATS' default max payload leaves room for a
/// command carrying several).
pub const MAX_SECRET_BYTES: usize = 64 * 1024;

/// The lattice's secrets, when this controller has a secrets key. Cheap to clone.
#[derive(Clone)]
pub struct SecretStore {
    kv: SharedKv,
    key: Option<Arc<nkeys::XKey>>,
}

const NO_KEY: &str = "this controller has no secrets key, so it keeps no secrets: start it \
                      with --secrets-key FILE (made by `lattice keys new secrets --out FILE`; \
                      every controller of the lattice needs the same one)";

impl SecretStore {
    /// Secrets in `kv` (the state bucket), sealed with `key` (`SX…` seed).
    pub fn new(kv: SharedKv, seed: Option<&str>) -> Result<Self, String> {
        let key = match seed {
            Some(seed) => Some(Arc::new(
                lattice_protocol::secrets::key_from_seed(seed)
                    .map_err(|e| format!("the secrets key is not valid: {e}"))?,
            )),
            None => None,
        };
        Ok(Self { kv, key })
    }

    fn key(&self) -> Result<&nkeys::XKey, String> {
        self.key.as_deref().ok_or_else(|| NO_KEY.to_string())
    }

    /// The public secrets key (`X…`) the CLI seals new values to.
    pub fn public_key(&self) -> Result<String, String> {
        Ok(self.key()?.public_key())
    }

    fn error(&self, e: impl std::fmt::Display) -> String {
        format!("KV bucket {}: {e}", self.kv.bucket())
    }

    /// Store `sealed` (sealed by `sender` for this controller's key) as `name`.
    /// Returns the value's size.
    pub async fn put(&self, name: &str, sender: &str, sealed: &str) -> Result<usize, String> {
        let key = self.key()?;
        if !valid_config_name(name) {
            return Err(format!(
                "'{name}' is not a valid secret name: {CONFIG_NAME_RULE}"
            ));
        }
        let clear = open(sealed, key, sender).map_err(|e| e.to_string())?;
        if clear.len() > MAX_SECRET_BYTES {
            return Err(format!(
                "secret '{name}' is {} bytes, over the limit of {MAX_SECRET_BYTES}",
                clear.len()
            ));
        }
        let at_rest = seal(&clear, key, &key.public_key()).map_err(|e| e.to_string())?;
        self.kv
            .put(&format!("{KEY_PREFIX}{name}"), Bytes::from(at_rest))
            .await
            .map_err(|e| self.error(e))?;
        Ok(clear.len())
    }

    /// Every stored secret's name, sorted (never a value).
    pub async fn list(&self) -> Result<Vec<String>, String> {
        let keys = self.kv.keys().await.map_err(|e| self.error(e))?;
        let mut names: Vec<String> = keys
            .iter()
            .filter_map(|k| k.strip_prefix(KEY_PREFIX))
            .map(str::to_owned)
            .collect();
        names.sort();
        Ok(names)
    }

    async fn sealed(&self, name: &str) -> Result<Option<String>, String> {
        if !valid_config_name(name) {
            return Ok(None);
        }
        let entry = self
            .kv
            .entry(&format!("{KEY_PREFIX}{name}"))
            .await
            .map_err(|e| self.error(e))?;
        Ok(entry
            .filter(|e| !e.value.is_empty())
            .map(|e| String::from_utf8_lossy(&e.value).into_owned()))
    }

    /// Remove `name`; whether it was there.
    pub async fn remove(&self, name: &str) -> Result<bool, String> {
        if self.sealed(name).await?.is_none() {
            return Ok(false);
        }
        self.kv
            .delete(&format!("{KEY_PREFIX}{name}"), None)
            .await
            .map_err(|e| self.error(e))?;
        Ok(true)
    }

    /// The secrets `manifest` names that are not stored, as `'key' (component
    /// c)`; an error when it names any and this controller has no key.
    pub async fn missing(&self, manifest: &Manifest) -> Result<Vec<String>, String> {
        let mut missing = Vec::new();
        for c in &manifest.components {
            for r in manifest.secrets_of(&c.name) {
                self.key()?;
                let entry = format!("'{}' (component {})", r.key, c.name);
                if !missing.contains(&entry) && self.sealed(&r.key).await?.is_none() {
                    missing.push(entry);
                }
            }
        }
        Ok(missing)
    }

    /// The secrets the components `placements` puts on a host use, sealed for
    /// that host's key `recipient`; `None` when they use none.
    pub async fn seal_for(
        &self,
        manifest: &Manifest,
        placements: &BTreeMap<String, u32>,
        recipient: Option<&str>,
    ) -> Result<Option<SealedSecrets>, String> {
        let keys: std::collections::BTreeSet<&str> = placements
            .iter()
            .filter(|(_, n)| **n > 0)
            .flat_map(|(name, _)| manifest.secrets_of(name).map(|r| r.key.as_str()))
            .collect();
        if keys.is_empty() {
            return Ok(None);
        }
        let key = self.key()?;
        let recipient = recipient.ok_or(
            "the host announced no secrets key (an older host?), so it cannot be given secrets",
        )?;
        let mut values = BTreeMap::new();
        for name in keys {
            let sealed = self.sealed(name).await?.ok_or_else(|| {
                format!("secret '{name}' is not stored: `lattice secret put {name}`")
            })?;
            let clear = open(&sealed, key, &key.public_key()).map_err(|e| e.to_string())?;
            let for_host = seal(&clear, key, recipient).map_err(|e| e.to_string())?;
            values.insert(name.to_string(), for_host);
        }
        Ok(Some(SealedSecrets {
            sender: key.public_key(),
            recipient: recipient.to_string(),
            values,
        }))
    }
}
