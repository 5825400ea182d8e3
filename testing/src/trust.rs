//! A lattice signing key for tests: signs host commands the way a controller does.

use lattice_protocol::messages::HostCommand;
use lattice_protocol::trust::{new_lattice_key, CommandEnvelope, Nonce};
use nkeys::KeyPair;

/// A lattice signing key of lattice `lattice`.
pub struct LatticeKey {
    key: KeyPair,
    lattice: String,
}

impl LatticeKey {
    /// A fresh key for lattice `lattice`.
    pub fn new(lattice: &str) -> Self {
        Self {
            key: new_lattice_key(),
            lattice: lattice.to_owned(),
        }
    }

    /// The same key, signing for lattice `lattice`.
    pub fn in_lattice(&self, lattice: &str) -> Self {
        Self {
            key: KeyPair::from_seed(&self.seed()).expect("its own seed"),
            lattice: lattice.to_owned(),
        }
    }

    /// Its public key (`C…`), for a host's `trust`.
    pub fn public_key(&self) -> String {
        self.key.public_key()
    }

    /// Its seed (`SC…`), for a controller's signing key.
    pub fn seed(&self) -> String {
        self.key.seed().expect("a generated key has a seed")
    }

    /// `command` for host `host`, signed under lease term `term`, issued now.
    pub fn sign(&self, host: &str, term: u64, command: &HostCommand) -> Vec<u8> {
        self.sign_at(host, term, now_ms(), &lattice_protocol::encode(command))
    }

    /// Any `body` for host `host`, signed under `term` as issued at `issued_ms`.
    pub fn sign_at(&self, host: &str, term: u64, issued_ms: u64, body: &[u8]) -> Vec<u8> {
        CommandEnvelope {
            lattice: self.lattice.clone(),
            host: host.to_owned(),
            term,
            issued_ms,
            nonce: Nonce::random(),
            body: body.to_vec(),
        }
        .sign(&self.key)
        .expect("a lattice key signs")
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}
