//! Secrets (`lattice secret put`): values sealed with curve25519 keys (nkeys'
//! xkeys, `X…` public keys, `SX…` seeds), as wasmCloud's NATS KV secrets backend
//! seals them, so a value is never in clear on NATS or at rest:
//!
//! - the CLI seals a new value to the controller's secrets key with a one-time
//!   key of its own (`secret_put`);
//! - the controller keeps it sealed to its own key in its state bucket
//!   (`secret.<name>`, which no other role may read);
//! - when it commands a host to run a component (or provider) given secrets, it
//!   seals each one to that host's key (a fresh one per host process, announced in
//!   its signed heartbeats) inside the signed command;
//! - the host opens them in memory and hands them to the guest through
//!   `wasmcloud:secrets` or to the provider on its stdin at start.
//!
//! Every type holding a clear value prints `<redacted>` with `Debug`.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Why a value could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// A key that is not a curve key.
    #[error("'{key}' is not a curve (xkey) key: {reason}")]
    BadKey {
        /// The key as given.
        key: String,
        /// What nkeys said.
        reason: String,
    },
    /// A sealed value that is not base64.
    #[error("the sealed value is not base64: {0}")]
    NotBase64(String),
    /// Sealing failed.
    #[error("cannot seal the value: {0}")]
    Seal(String),
    /// Opening failed: another recipient, another sender, or tampered with.
    #[error("cannot open the sealed value (sealed for another key, or tampered with): {0}")]
    Open(String),
}

/// A new curve key pair (`SX…` seed).
pub fn new_key() -> nkeys::XKey {
    nkeys::XKey::new()
}

/// The key pair of `seed` (`SX…`).
pub fn key_from_seed(seed: &str) -> Result<nkeys::XKey, SecretError> {
    nkeys::XKey::from_seed(seed.trim()).map_err(|e| SecretError::BadKey {
        key: "(seed)".into(),
        reason: e.to_string(),
    })
}

fn public(key: &str) -> Result<nkeys::XKey, SecretError> {
    nkeys::XKey::from_public_key(key).map_err(|e| SecretError::BadKey {
        key: key.to_string(),
        reason: e.to_string(),
    })
}

/// `value` sealed by `sender` for the holder of `recipient` (a public `X…` key),
/// as base64.
pub fn seal(value: &[u8], sender: &nkeys::XKey, recipient: &str) -> Result<String, SecretError> {
    let sealed = sender
        .seal(value, &public(recipient)?)
        .map_err(|e| SecretError::Seal(e.to_string()))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(sealed))
}

/// The value `sealed` (base64) holds, sealed by `sender` (a public `X…` key) for
/// `recipient`.
pub fn open(sealed: &str, recipient: &nkeys::XKey, sender: &str) -> Result<Vec<u8>, SecretError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(sealed)
        .map_err(|e| SecretError::NotBase64(e.to_string()))?;
    recipient
        .open(&bytes, &public(sender)?)
        .map_err(|e| SecretError::Open(e.to_string()))
}

/// The secrets `refs` give, from `opened` (stored name to value), under the names
/// asked for. The first of a name wins: the parser allows a name twice only for
/// the same stored secret.
pub fn given<'a>(
    refs: impl IntoIterator<Item = &'a crate::manifest::SecretRef>,
    opened: &BTreeMap<String, SecretValue>,
) -> BTreeMap<String, SecretValue> {
    let mut out = BTreeMap::new();
    for r in refs {
        if let Some(value) = opened.get(&r.key) {
            out.entry(r.name.clone()).or_insert_with(|| value.clone());
        }
    }
    out
}

/// Secrets sealed for one host inside a signed `apply` command: stored name to
/// sealed value, all sealed by `sender`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedSecrets {
    /// The controller's public secrets key (`X…`).
    pub sender: String,
    /// The host key they are sealed for (`X…`): a host whose key changed (it
    /// restarted) cannot open them and says so.
    pub recipient: String,
    /// Stored name to sealed value (base64).
    pub values: BTreeMap<String, String>,
}

/// A secret's value in clear, as `wasmcloud:secrets` gives it: text when it is
/// UTF-8, else bytes. `Debug` never prints it.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretValue {
    /// UTF-8 text.
    String(String),
    /// Anything else, as base64 in JSON.
    Bytes(#[serde(with = "b64")] Vec<u8>),
}

impl SecretValue {
    /// Text when `bytes` is UTF-8, else bytes.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        match String::from_utf8(bytes) {
            Ok(s) => Self::String(s),
            Err(e) => Self::Bytes(e.into_bytes()),
        }
    }

    /// The value's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::String(s) => s.as_bytes(),
            Self::Bytes(b) => b,
        }
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

mod b64 {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_for_its_recipient_from_its_sender() {
        let (cli, controller, host) = (new_key(), new_key(), new_key());
        let sealed = seal(b"hunter2", &cli, &controller.public_key()).unwrap();
        assert!(!sealed.contains("hunter2"));
        let opened = open(&sealed, &controller, &cli.public_key()).unwrap();
        assert_eq!(opened, b"hunter2");
        // Another recipient, or a claimed sender that did not seal it, fails.
        assert!(open(&sealed, &host, &cli.public_key()).is_err());
        assert!(open(&sealed, &controller, &host.public_key()).is_err());
        // Tampering is caught.
        let mut bytes = base64::engine::general_purpose::STANDARD
            .decode(&sealed)
            .unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let tampered = base64::engine::general_purpose::STANDARD.encode(bytes);
        assert!(open(&tampered, &controller, &cli.public_key()).is_err());
        assert!(seal(b"x", &cli, "not-a-key").is_err());
    }

    #[test]
    fn values_are_text_when_utf8_and_never_debug_printed() {
        let text = SecretValue::from_bytes(b"pa55".to_vec());
        assert_eq!(text, SecretValue::String("pa55".into()));
        let bytes = SecretValue::from_bytes(vec![0xff, 0]);
        assert_eq!(bytes.as_bytes(), [0xff, 0]);
        assert_eq!(
            format!("{text:?} {bytes:?}"),
            "SecretValue(<redacted>) SecretValue(<redacted>)"
        );
        let json = serde_json::to_string(&bytes).unwrap();
        assert_eq!(json, r#"{"bytes":"/wA="}"#);
        assert_eq!(serde_json::from_str::<SecretValue>(&json).unwrap(), bytes);
    }
}
