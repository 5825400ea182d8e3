//! Which hosts a controller takes reports (and so gives work) from.
//!
//! Three ways in, any of which admits a validly signed report:
//! - **any host**: every host key is admitted (a dev lattice);
//! - **listed**: the host's key is on the controller's list (`--admit KEY`);
//! - **join token**: the report carries a join proof made with a token the
//!   controller accepts.
//!
//! A join token is an nkey of the *service* type (seed `SV…`, public `V…`), shared
//! by the hosts allowed to join, like a Kubernetes bootstrap token. A host never
//! sends the token: it signs `lattice-join/1\n<lattice>\n<host id>` with it and
//! sends that signature, so whoever reads the (public) heartbeats learns only a
//! proof bound to that one host key, useless without the host's own key. The
//! controller holds only the token's *public* key, so reading a controller's
//! configuration does not let anyone join. Revoking a token is removing its
//! public key; a controller that wants joined hosts to stay after that remembers
//! them with [`Admission::admit_host`].

use super::frame;
use super::keys::{self, KeyError};
use nkeys::{KeyPair, KeyPairType};
use std::collections::BTreeSet;

/// The controller's admission policy. See [`ReportPolicy`](super::ReportPolicy)
/// for an example.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Admission {
    any_host: bool,
    hosts: BTreeSet<String>,
    join_keys: BTreeSet<String>,
}

/// How a report's host was admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admitted {
    /// The policy admits any validly signed host.
    AnyHost,
    /// The host's key is listed.
    Listed,
    /// The host proved it holds the join token with this public key.
    JoinToken {
        /// The token's public key.
        key: String,
    },
}

impl Admission {
    /// Admit every host whose report is validly signed.
    pub fn any_host() -> Self {
        Self {
            any_host: true,
            ..Self::default()
        }
    }

    /// Admit only the hosts with these ids (public host keys).
    pub fn listed<K: AsRef<str>>(hosts: impl IntoIterator<Item = K>) -> Result<Self, KeyError> {
        let mut out = Self::default();
        for host in hosts {
            out.admit_host(host.as_ref())?;
        }
        Ok(out)
    }

    /// Also admit hosts holding the join token whose public key is `key` (`V…`).
    pub fn with_join_key(mut self, key: &str) -> Result<Self, KeyError> {
        keys::check_join_key(key)?;
        self.join_keys.insert(key.to_owned());
        Ok(self)
    }

    /// Add a host to the list (e.g. one that joined with a token, to keep it
    /// admitted after the token is revoked).
    pub fn admit_host(&mut self, host: &str) -> Result<(), KeyError> {
        keys::check_host_key(host)?;
        self.hosts.insert(host.to_owned());
        Ok(())
    }

    /// Decide for a host whose report is validly signed, carrying `join` (the
    /// token's public key and the proof) if any. `Err(Some(key))`: the proof for
    /// that accepted token is wrong; `Err(None)`: not admitted.
    pub(super) fn decide(
        &self,
        lattice: &str,
        host: &str,
        join: Option<(&str, &str)>,
    ) -> Result<Admitted, Option<String>> {
        if self.hosts.contains(host) {
            return Ok(Admitted::Listed);
        }
        if let Some((key, proof)) = join.filter(|(key, _)| self.join_keys.contains(*key)) {
            if proof_ok(key, proof, lattice, host) {
                return Ok(Admitted::JoinToken {
                    key: key.to_owned(),
                });
            }
            return Err(Some(key.to_owned()));
        }
        if self.any_host {
            return Ok(Admitted::AnyHost);
        }
        Err(None)
    }
}

/// A join token: the secret hosts share to be admitted by a controller.
#[derive(Debug)]
pub struct JoinToken {
    key: KeyPair,
}

impl JoinToken {
    /// A fresh token.
    pub fn generate() -> Self {
        Self {
            key: KeyPair::new_service(),
        }
    }

    /// A token from its seed (`SV…`), as `lattice host --join-token` takes it.
    pub fn from_seed(seed: &str) -> Result<Self, KeyError> {
        let key = KeyPair::from_seed(seed).map_err(|e| KeyError {
            key: "(a seed)".into(),
            expected: keys::JOIN_KEY,
            problem: e.to_string(),
        })?;
        keys::check_signer(&key, KeyPairType::Service, keys::JOIN_KEY)?;
        Ok(Self { key })
    }

    /// The seed to hand to hosts (a secret).
    pub fn seed(&self) -> String {
        // A generated or seed-read key always has its seed.
        self.key.seed().unwrap_or_default()
    }

    /// The public key to give the controller (`V…`).
    pub fn public_key(&self) -> String {
        self.key.public_key()
    }

    /// The proof for `host` in `lattice`: base64url of the signature over
    /// `lattice-join/1\n<lattice>\n<host>`.
    pub fn proof(&self, lattice: &str, host: &str) -> String {
        let signature = self
            .key
            .sign(&join_message(lattice, host))
            .unwrap_or_default();
        frame::b64(&signature)
    }
}

fn join_message(lattice: &str, host: &str) -> Vec<u8> {
    format!("lattice-join/1\n{lattice}\n{host}").into_bytes()
}

fn proof_ok(key: &str, proof: &str, lattice: &str, host: &str) -> bool {
    let Some(signature) = frame::unb64(proof) else {
        return false;
    };
    KeyPair::from_public_key(key)
        .and_then(|k| k.verify(&join_message(lattice, host), &signature))
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions() {
        let token = JoinToken::generate();
        let host = keys::new_host_key().public_key();
        let other = keys::new_host_key().public_key();
        let proof = token.proof("default", &host);
        let by_token = Admission::default()
            .with_join_key(&token.public_key())
            .unwrap();
        let key = token.public_key();
        let join = Some((key.as_str(), proof.as_str()));
        assert_eq!(
            by_token.decide("default", &host, join),
            Ok(Admitted::JoinToken { key: key.clone() })
        );
        // A proof is bound to its host and lattice.
        assert_eq!(
            by_token.decide("default", &other, join),
            Err(Some(key.clone()))
        );
        assert_eq!(by_token.decide("prod", &host, join), Err(Some(key.clone())));
        assert_eq!(by_token.decide("default", &host, None), Err(None));
        let listed = Admission::listed([&host]).unwrap();
        assert_eq!(listed.decide("default", &host, None), Ok(Admitted::Listed));
        assert_eq!(listed.decide("default", &other, None), Err(None));
        assert_eq!(
            Admission::any_host().decide("d", &other, None),
            Ok(Admitted::AnyHost)
        );
        assert!(Admission::listed(["C-not-a-host"]).is_err());
        assert!(Admission::default().with_join_key(&host).is_err());
    }

    #[test]
    fn tokens_read_back_from_their_seed() {
        let token = JoinToken::generate();
        assert!(token.seed().starts_with("SV"));
        let again = JoinToken::from_seed(&token.seed()).unwrap();
        assert_eq!(again.public_key(), token.public_key());
        let wrong = keys::new_lattice_key().seed().unwrap();
        assert!(JoinToken::from_seed(&wrong).is_err());
    }
}
