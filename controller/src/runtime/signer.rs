//! Signing host commands with the lattice signing key: every command a controller
//! sends is a `CommandEnvelope` naming the lattice, the host, the sender's lease
//! term, the time and a fresh nonce (see `docs/protocol.md`, "Signed commands and
//! reports"). A leaf: the state task's sender and the API task both use it.

use crate::error::ControllerError;
use lattice_protocol::encode;
use lattice_protocol::messages::HostCommand;
use lattice_protocol::trust::{check_lattice_key, CommandEnvelope, Nonce, SignError};
use nkeys::KeyPair;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The lattice signing key of one lattice. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Signer {
    key: Arc<KeyPair>,
    lattice: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("public_key", &self.key.public_key())
            .field("lattice", &self.lattice)
            .finish()
    }
}

impl Signer {
    /// The signer for `lattice` from the configured seed: refused when there is
    /// none (secure by default) or it is not a lattice signing key's seed (`SC…`).
    pub(crate) fn from_seed(seed: Option<&str>, lattice: &str) -> Result<Self, ControllerError> {
        let seed = seed
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or(ControllerError::NoSigningKey)?;
        // The error never echoes the seed.
        let key = KeyPair::from_seed(seed).map_err(|e| ControllerError::BadSigningKey {
            problem: e.to_string(),
        })?;
        check_lattice_key(&key.public_key())
            .map_err(|e| ControllerError::BadSigningKey { problem: e.problem })?;
        Ok(Self {
            key: Arc::new(key),
            lattice: lattice.to_string(),
        })
    }

    /// The public key hosts must trust (`lattice host --trust C…`).
    pub(crate) fn public_key(&self) -> String {
        self.key.public_key()
    }

    /// `command` for `host`, signed under lease `term`, issued now.
    pub(crate) fn sign(
        &self,
        host: &str,
        term: u64,
        command: &HostCommand,
    ) -> Result<Vec<u8>, SignError> {
        CommandEnvelope {
            lattice: self.lattice.clone(),
            host: host.to_string(),
            term,
            issued_ms: now_ms(),
            nonce: Nonce::random(),
            body: encode(command),
        }
        .sign(&self.key)
    }
}

/// Milliseconds since the Unix epoch, by this machine's clock.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lattice_protocol::trust::{new_host_key, new_lattice_key, CommandVerifier, VerifierConfig};

    #[test]
    fn only_a_lattice_seed_is_taken_and_errors_never_show_it() {
        assert!(matches!(
            Signer::from_seed(None, "t"),
            Err(ControllerError::NoSigningKey)
        ));
        let message = Signer::from_seed(Some(" "), "t").unwrap_err().to_string();
        assert!(
            message.contains("lattice keys new lattice --out"),
            "{message}"
        );
        let host_seed = new_host_key().seed().unwrap();
        let err = Signer::from_seed(Some(&host_seed), "t").unwrap_err();
        assert!(
            matches!(err, ControllerError::BadSigningKey { .. }),
            "{err}"
        );
        assert!(!err.to_string().contains(&host_seed), "{err}");
        assert!(Signer::from_seed(Some("SCnot-a-seed"), "t").is_err());
    }

    #[test]
    fn signed_commands_verify_on_the_host() {
        let key = new_lattice_key();
        let signer = Signer::from_seed(Some(&key.seed().unwrap()), "t").unwrap();
        assert_eq!(signer.public_key(), key.public_key());
        let host = new_host_key().public_key();
        let command = HostCommand::Remove { app: "a".into() };
        let bytes = signer.sign(&host, 4, &command).unwrap();
        let mut verifier =
            CommandVerifier::new("t", &host, [key.public_key()], VerifierConfig::default())
                .unwrap();
        let verified = verifier.verify_bytes(&bytes, now_ms()).unwrap();
        assert_eq!(verified.body, encode(&command));
        assert_eq!(verifier.highest_term(), 4);
    }
}
