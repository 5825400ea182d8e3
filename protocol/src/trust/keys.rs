//! The three kinds of nkey the trust protocol uses, told apart by their prefix.
//!
//! | key | nkey type | public key starts with | held by |
//! |---|---|---|---|
//! | lattice signing key | cluster | `C` | the lattice's controllers: signs host commands |
//! | host key | server | `N` | each host: its id, signs its reports |
//! | join token | service | `V` | hosts allowed to join: signs a join proof |
//!
//! Why a *cluster* key for the lattice: it is an nkey type NATS's own
//! authorization never uses, so an operator or account seed (which can mint NATS
//! users) cannot be passed for the lattice key by mistake, and a leaked lattice key
//! grants nothing on NATS; wasmCloud 0.x signed invocations with a cluster key for
//! the same reason. Each verifier checks the prefix, so a host's own key or a join
//! token can never pass for the lattice key, whatever a configuration says.

use nkeys::{KeyPair, KeyPairType};
use std::fmt;

/// A key that is not what its place needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{key}' is not a {expected}: {problem}")]
pub struct KeyError {
    /// The key as given (a public key; seeds are never echoed).
    pub key: String,
    /// What it should have been, e.g. `lattice signing key (a public nkey starting with C)`.
    pub expected: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

pub(super) const LATTICE_KEY: &str = "lattice signing key (a public nkey starting with C)";
pub(super) const HOST_KEY: &str = "host key (a public nkey starting with N)";
pub(super) const JOIN_KEY: &str = "join token key (a public nkey starting with V)";

/// A fresh lattice signing key (an nkey of the cluster type, seed `SC…`). Its
/// public key is what hosts are told to trust.
///
/// ```
/// let key = lattice_protocol::trust::new_lattice_key();
/// assert!(key.public_key().starts_with('C'));
/// assert!(lattice_protocol::trust::check_lattice_key(&key.public_key()).is_ok());
/// ```
pub fn new_lattice_key() -> KeyPair {
    KeyPair::new_cluster()
}

/// A fresh host key (an nkey of the server type): the host's id is its public key.
pub fn new_host_key() -> KeyPair {
    KeyPair::new_server()
}

/// Check that `public` is a lattice signing key's public key.
pub fn check_lattice_key(public: &str) -> Result<(), KeyError> {
    check(public, KeyPairType::Cluster, LATTICE_KEY)
}

/// Check that `public` is a host's public key (a host id).
pub fn check_host_key(public: &str) -> Result<(), KeyError> {
    check(public, KeyPairType::Server, HOST_KEY)
}

/// Check that `public` is a join token's public key.
pub fn check_join_key(public: &str) -> Result<(), KeyError> {
    check(public, KeyPairType::Service, JOIN_KEY)
}

pub(super) fn check(
    public: &str,
    want: KeyPairType,
    expected: &'static str,
) -> Result<(), KeyError> {
    let short: String = public.chars().take(64).collect();
    let error = |problem: String| KeyError {
        key: short.clone(),
        expected,
        problem,
    };
    let key = KeyPair::from_public_key(public).map_err(|e| error(e.to_string()))?;
    if key.key_pair_type() != want {
        return Err(error(
            format!("it is a {:?} key", key.key_pair_type()).to_lowercase(),
        ));
    }
    Ok(())
}

/// A key pair that can sign, of the right type.
pub(super) fn check_signer(
    key: &KeyPair,
    want: KeyPairType,
    expected: &'static str,
) -> Result<(), KeyError> {
    check(&key.public_key(), want, expected)?;
    if key.seed().is_err() {
        return Err(KeyError {
            key: key.public_key(),
            expected,
            problem: "it is a public key only: signing needs the seed".into(),
        });
    }
    Ok(())
}

/// 16 random bytes that make one command unique; shown as 32 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Nonce(pub [u8; 16]);

impl Nonce {
    /// A nonce from the operating system's random source.
    pub fn random() -> Self {
        Nonce(rand::random())
    }

    /// Read 32 lowercase hex digits.
    pub fn from_hex(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        if bytes.len() != 32 {
            return None;
        }
        let mut out = [0u8; 16];
        for (i, pair) in bytes.chunks(2).enumerate() {
            out[i] = (hex(pair[0])? << 4) | hex(pair[1])?;
        }
        Some(Nonce(out))
    }
}

fn hex(d: u8) -> Option<u8> {
    match d {
        b'0'..=b'9' => Some(d - b'0'),
        b'a'..=b'f' => Some(d - b'a' + 10),
        _ => None,
    }
}

impl fmt::Display for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Nonce({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_types_are_told_apart() {
        let lattice = new_lattice_key().public_key();
        let host = new_host_key().public_key();
        let join = KeyPair::new_service().public_key();
        assert!(check_lattice_key(&lattice).is_ok());
        assert!(check_host_key(&host).is_ok());
        assert!(check_join_key(&join).is_ok());
        let err = check_lattice_key(&host).unwrap_err();
        assert_eq!(err.problem, "it is a server key");
        assert!(check_lattice_key(&KeyPair::new_account().public_key()).is_err());
        assert!(check_host_key("NOPE").is_err());
        let public_only = KeyPair::from_public_key(&lattice).unwrap();
        let err = check_signer(&public_only, KeyPairType::Cluster, LATTICE_KEY).unwrap_err();
        assert!(err.problem.contains("seed"), "{err}");
    }

    #[test]
    fn nonces_read_back() {
        let n = Nonce::random();
        assert_eq!(Nonce::from_hex(&n.to_string()), Some(n));
        assert_ne!(Nonce::random(), n);
        assert_eq!(Nonce::from_hex("00"), None);
        assert_eq!(Nonce::from_hex(&"A".repeat(32)), None);
    }
}
