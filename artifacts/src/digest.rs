//! [`Digest`]: the SHA-256 name of some bytes, written `sha256:<64 lowercase hex>`
//! as OCI and the artifact store write it.

use sha2::Sha256;
use std::fmt;
use std::str::FromStr;

/// The SHA-256 digest of some bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

/// Bytes that do not have the digest they were expected to have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("digest mismatch: expected {expected}, the bytes have {actual}")]
pub struct Mismatch {
    /// The digest asked for.
    pub expected: Digest,
    /// The digest of the bytes received.
    pub actual: Digest,
}

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        use sha2::Digest as _;
        Self(Sha256::digest(bytes).into())
    }

    /// `Ok` when `bytes` have this digest.
    pub fn verify(&self, bytes: &[u8]) -> Result<(), Mismatch> {
        let actual = Self::of(bytes);
        if actual == *self {
            Ok(())
        } else {
            Err(Mismatch {
                expected: *self,
                actual,
            })
        }
    }

    /// The 64 lowercase hex digits, without `sha256:` (a file or object name).
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl FromStr for Digest {
    type Err = String;

    /// Parse `sha256:<64 lowercase hex>`.
    fn from_str(text: &str) -> Result<Self, String> {
        lattice_protocol::manifest::check_digest(text)?;
        let mut bytes = [0u8; 32];
        let hex = text.strip_prefix("sha256:").unwrap_or(text);
        hex::decode_to_slice(hex, &mut bytes).map_err(|e| format!("'{text}': {e}"))?;
        Ok(Self(bytes))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn written_as_oci_writes_it_and_read_back() {
        let d = Digest::of(b"hello");
        let text = d.to_string();
        assert_eq!(
            text,
            "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(text.parse::<Digest>().unwrap(), d);
        assert!("sha256:2CF24DBA".parse::<Digest>().is_err());
        assert!("md5:abc".parse::<Digest>().is_err());
    }

    #[test]
    fn verify_names_both_digests() {
        let d = Digest::of(b"hello");
        assert!(d.verify(b"hello").is_ok());
        let err = d.verify(b"hellO").unwrap_err();
        assert_eq!(err.expected, d);
        assert!(err.to_string().contains(&d.to_string()));
    }
}
