//! Signed, fenced host commands: what a controller sends on
//! `lattice.<L>.ctl.host.<id>`.
//!
//! ```text
//! lattice-sig C… <signature>
//! lattice-command/1
//! lattice default
//! host N…
//! term 7
//! issued_ms 1763780000000
//! nonce 0f1e2d3c4b5a69788796a5b4c3d2e1f0
//!
//! {"v":1,"command":"remove","app":"counter"}
//! ```
//!
//! The signature (ed25519, by the lattice signing key) covers every byte after the
//! first line. A host checks it with a [`CommandVerifier`](super::CommandVerifier).

use super::frame::{self, Fields, FrameError};
use super::keys::{self, KeyError, Nonce};
use super::Refusal;
use nkeys::{KeyPair, KeyPairType};

/// The kind line of a command envelope (protocol version 1).
pub const COMMAND_KIND: &str = "lattice-command/1";

/// What a controller signs: which host, under which lease term, when, and the
/// command itself (the [`HostCommand`](crate::messages::HostCommand) JSON, as
/// [`encode`](crate::encode) makes it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandEnvelope {
    /// The lattice name.
    pub lattice: String,
    /// The target host's id (its public nkey).
    pub host: String,
    /// The sending controller's lease term (the fencing token).
    pub term: u64,
    /// When the controller issued it, in milliseconds since the Unix epoch.
    pub issued_ms: u64,
    /// Makes this command unique: [`Nonce::random`] for each one.
    pub nonce: Nonce,
    /// The command's bytes.
    pub body: Vec<u8>,
}

/// Why a command cannot be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The key is not a signing key of the right type.
    #[error("cannot sign with this key: {source}")]
    Key {
        /// What is wrong with the key.
        #[source]
        source: KeyError,
    },
    /// A field that cannot travel in the header.
    #[error("cannot sign: {field} '{value}' is not valid: {rule}")]
    Field {
        /// The field's name, e.g. `lattice`.
        field: &'static str,
        /// Its value (cut to 64 characters).
        value: String,
        /// What a valid value looks like.
        rule: &'static str,
    },
}

impl CommandEnvelope {
    /// The bytes the signature covers (everything after the signature line).
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let head = format!(
            "{COMMAND_KIND}\nlattice {}\nhost {}\nterm {}\nissued_ms {}\nnonce {}\n\n",
            self.lattice, self.host, self.term, self.issued_ms, self.nonce
        );
        let mut out = Vec::with_capacity(head.len() + self.body.len());
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(&self.body);
        out
    }

    /// Sign with the lattice signing key: the bytes to send.
    ///
    /// ```
    /// use lattice_protocol::trust::{new_lattice_key, CommandEnvelope, CommandVerifier, Nonce, VerifierConfig};
    ///
    /// let lattice_key = new_lattice_key();
    /// let host = lattice_protocol::trust::new_host_key().public_key();
    /// let envelope = CommandEnvelope {
    ///     lattice: "default".into(),
    ///     host: host.clone(),
    ///     term: 1,
    ///     issued_ms: 1_000_000,
    ///     nonce: Nonce::random(),
    ///     body: br#"{"v":1,"command":"remove","app":"counter"}"#.to_vec(),
    /// };
    /// let bytes = envelope.sign(&lattice_key).unwrap();
    ///
    /// // On the host:
    /// let mut verifier = CommandVerifier::new("default", &host, [lattice_key.public_key()], VerifierConfig::default()).unwrap();
    /// let verified = verifier.verify_bytes(&bytes, 1_000_050).unwrap();
    /// assert_eq!(verified.body, envelope.body);
    /// // The same bytes again are a replay.
    /// assert!(verifier.verify_bytes(&bytes, 1_000_060).is_err());
    /// ```
    pub fn sign(&self, key: &KeyPair) -> Result<Vec<u8>, SignError> {
        keys::check_signer(key, KeyPairType::Cluster, keys::LATTICE_KEY)
            .map_err(|source| SignError::Key { source })?;
        check_field(
            "lattice",
            &self.lattice,
            crate::subjects::valid_lattice_name(&self.lattice),
            LATTICE_RULE,
        )?;
        check_field(
            "host",
            &self.host,
            keys::check_host_key(&self.host).is_ok(),
            HOST_RULE,
        )?;
        let signed = self.canonical_bytes();
        let signature = key.sign(&signed).map_err(|e| SignError::Key {
            source: KeyError {
                key: key.public_key(),
                expected: keys::LATTICE_KEY,
                problem: e.to_string(),
            },
        })?;
        Ok(frame::write(&key.public_key(), &signature, &signed))
    }
}

const LATTICE_RULE: &str = "1 to 64 of A-Z, a-z, 0-9, '_' and '-'";
const HOST_RULE: &str = "a host id is the host's public nkey, starting with N";

pub(super) fn check_field(
    field: &'static str,
    value: &str,
    ok: bool,
    rule: &'static str,
) -> Result<(), SignError> {
    if ok {
        return Ok(());
    }
    Err(SignError::Field {
        field,
        value: value.chars().take(64).collect(),
        rule,
    })
}

/// A command envelope as received: read, but its signature not yet checked.
/// Only a [`CommandVerifier`](super::CommandVerifier) hands out its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCommand {
    pub(super) envelope: CommandEnvelope,
    pub(super) signer: String,
    pub(super) signature: [u8; 64],
    pub(super) signed: Vec<u8>,
}

impl SignedCommand {
    /// Read the bytes of a command message. A plain (unsigned) command is
    /// [`Refusal::Unsigned`]; anything else not in the form above is
    /// [`Refusal::Malformed`].
    pub fn decode(bytes: &[u8]) -> Result<Self, Refusal> {
        let frame = frame::read(bytes).map_err(refusal)?;
        let mut f = Fields::open(frame.signed, COMMAND_KIND).map_err(refusal)?;
        let lattice = f.field("lattice").map_err(refusal)?.to_owned();
        let host = f.field("host").map_err(refusal)?.to_owned();
        let term = f.number("term").map_err(refusal)?;
        let issued_ms = f.number("issued_ms").map_err(refusal)?;
        let nonce_text = f.field("nonce").map_err(refusal)?;
        let nonce = Nonce::from_hex(nonce_text).ok_or_else(|| Refusal::Malformed {
            problem: "the nonce is not 32 lowercase hex digits".into(),
        })?;
        let body = f.body().map_err(refusal)?.to_vec();
        if !frame::valid_value(&lattice) || !frame::valid_value(&host) {
            return Err(Refusal::Malformed {
                problem: "an empty or overlong lattice or host field".into(),
            });
        }
        Ok(SignedCommand {
            envelope: CommandEnvelope {
                lattice,
                host,
                term,
                issued_ms,
                nonce,
                body,
            },
            signer: frame.signer.to_owned(),
            signature: frame.signature,
            signed: frame.signed.to_vec(),
        })
    }

    /// The public key that claims to have signed it.
    pub fn signer(&self) -> &str {
        &self.signer
    }

    /// The lease term it claims (for logs; not yet verified).
    pub fn term(&self) -> u64 {
        self.envelope.term
    }
}

fn refusal(e: FrameError) -> Refusal {
    match e {
        FrameError::Unsigned => Refusal::Unsigned,
        FrameError::Malformed(problem) => Refusal::Malformed { problem },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn envelope(host: &str) -> CommandEnvelope {
        CommandEnvelope {
            lattice: "default".into(),
            host: host.into(),
            term: 3,
            issued_ms: 1_000,
            nonce: Nonce([0xab; 16]),
            body: b"{\"v\":1}\n\nwith blank lines".to_vec(),
        }
    }

    #[test]
    fn decoding_gives_back_the_envelope_and_the_exact_signed_bytes() {
        let key = keys::new_lattice_key();
        let host = keys::new_host_key().public_key();
        let e = envelope(&host);
        let bytes = e.sign(&key).unwrap();
        let cmd = SignedCommand::decode(&bytes).unwrap();
        assert_eq!(cmd.envelope, e);
        assert_eq!(cmd.signed, e.canonical_bytes());
        assert_eq!(cmd.signer(), key.public_key());
        let text = String::from_utf8(bytes).unwrap();
        assert!(
            text.contains("\nlattice-command/1\nlattice default\nhost N"),
            "{text}"
        );
    }

    #[test]
    fn signing_refuses_wrong_keys_and_fields() {
        let host = keys::new_host_key();
        let e = envelope(&host.public_key());
        assert!(matches!(e.sign(&host), Err(SignError::Key { .. })));
        let mut bad = e.clone();
        bad.lattice = "a b".into();
        let err = bad.sign(&keys::new_lattice_key()).unwrap_err();
        assert!(err.to_string().contains("lattice 'a b'"), "{err}");
        let mut bad = e;
        bad.host = "host-1".into();
        assert!(matches!(
            bad.sign(&keys::new_lattice_key()),
            Err(SignError::Field { field: "host", .. })
        ));
    }

    #[test]
    fn malformed_envelopes_are_named() {
        let key = keys::new_lattice_key();
        let host = keys::new_host_key().public_key();
        let good = String::from_utf8(envelope(&host).sign(&key).unwrap()).unwrap();
        for (from, to, says) in [
            ("term 3", "term 03", "canonical number"),
            ("nonce abab", "nonce ABAB", "nonce"),
            (
                "lattice-command/1",
                "lattice-report/1",
                "expected a lattice-command/1",
            ),
            ("\nterm 3\n", "\n", "expected the field `term`"),
        ] {
            let text = good.replacen(from, to, 1);
            match SignedCommand::decode(text.as_bytes()) {
                Err(Refusal::Malformed { problem }) => assert!(problem.contains(says), "{problem}"),
                other => panic!("{from} -> {to}: {other:?}"),
            }
        }
        let plain = br#"{"v":1,"command":"remove","app":"a"}"#;
        assert_eq!(SignedCommand::decode(plain), Err(Refusal::Unsigned));
    }
}
