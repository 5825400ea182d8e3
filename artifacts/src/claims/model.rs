//! The claims themselves, as data: what `wascap` puts in the token, and why
//! claims are missing, do not hold, or are not enough. A leaf: the token, the
//! section and the rules all build on it.

use serde::{Deserialize, Serialize};

/// The section `wascap` 0.9 and later write the claims JWT into.
pub const CLAIMS_SECTION: &str = "wasmcloud_jwt";
/// The section older `wascap` versions wrote; still read (and stripped).
pub const LEGACY_CLAIMS_SECTION: &str = "jwt";

/// The claims revision `wascap` writes since 0.10.1, which re-encodes the code
/// as [`super::section::strip`] does before hashing it. `wascap` skips the hash
/// check of older claims; here every revision's hash must match.
pub const CLAIMS_REVISION: u32 = 3;

/// The claims embedded in a component, as `wascap`'s `Claims<Component>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Seconds since the epoch after which the claims are void.
    #[serde(rename = "exp", default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<u64>,
    /// The token's id.
    #[serde(rename = "jti")]
    pub id: String,
    /// When the claims were made, seconds since the epoch.
    #[serde(rename = "iat")]
    pub issued_at: u64,
    /// The public account key (`A…`) that signed the claims.
    #[serde(rename = "iss")]
    pub issuer: String,
    /// The component's own public key (`M…`).
    #[serde(rename = "sub")]
    pub subject: String,
    /// Seconds since the epoch before which the claims are not valid yet.
    #[serde(rename = "nbf", default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<u64>,
    /// What the claims say about the component, its code hash first of all.
    #[serde(rename = "wascap", default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<ComponentMetadata>,
    /// `wascap`'s format revision ([`CLAIMS_REVISION`] in claims made now).
    #[serde(
        rename = "wascap_revision",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub revision: Option<u32>,
}

/// The `wascap` part of a component's claims.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentMetadata {
    /// A descriptive name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Upper-case hex SHA-256 of the code without its claims ([`super::section::code_hash`]).
    pub hash: String,
    /// Free-form tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// A revision number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rev: Option<i32>,
    /// A version string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ver: Option<String>,
    /// wasmCloud's call alias.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_alias: Option<String>,
    /// Whether the binary is a capability provider (never, for a component).
    #[serde(default)]
    pub prov: bool,
}

impl Claims {
    /// The name in the claims, if any.
    pub fn name(&self) -> Option<&str> {
        self.metadata.as_ref()?.name.as_deref()
    }

    /// The code hash the claims vouch for.
    pub fn hash(&self) -> Option<&str> {
        Some(self.metadata.as_ref()?.hash.as_str())
    }

    /// Whether the claims are valid at `now` (seconds since the epoch), as
    /// wasmCloud decides: expired once `exp` is in the past, not yet valid
    /// while `nbf` is in the future.
    pub fn check_time(&self, now: u64) -> Result<(), ClaimsError> {
        match (self.expires, self.not_before) {
            (Some(at), _) if at < now => Err(ClaimsError::Expired { at }),
            (_, Some(at)) if now < at => Err(ClaimsError::NotYetValid { at }),
            _ => Ok(()),
        }
    }
}

/// Why claims are missing, do not hold, or are not enough.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimsError {
    /// The bytes are not WebAssembly that can be walked.
    #[error("it cannot be read as WebAssembly: {reason}")]
    Malformed {
        /// What the parser said.
        reason: String,
    },
    /// The claims section does not hold a well-formed claims token.
    #[error("its claims token is not valid: {reason}")]
    Token {
        /// What is wrong with it.
        reason: String,
    },
    /// A key could not sign.
    #[error("the signing key cannot sign: {reason}")]
    Key {
        /// What nkeys said.
        reason: String,
    },
    /// The token is not signed by the issuer it names.
    #[error("its claims are not signed by the issuer they name ({issuer}): {reason}")]
    BadSignature {
        /// The issuer the claims name.
        issuer: String,
        /// What the verification said.
        reason: String,
    },
    /// The claims carry no code hash, so they vouch for no code.
    #[error("its claims carry no code hash (no `wascap` metadata), so they vouch for no code")]
    NoHash,
    /// The code is not the code that was signed.
    #[error("its code was changed after it was signed (hash mismatch, tampered): the claims vouch for {signed}, the code hashes to {actual}")]
    HashMismatch {
        /// The hash in the claims.
        signed: String,
        /// The hash of the code.
        actual: String,
    },
    /// Past the claims' `exp`.
    #[error("its signature expired at {} (sign it again)", human_time(*at))]
    Expired {
        /// The `exp`, seconds since the epoch.
        at: u64,
    },
    /// Before the claims' `nbf`.
    #[error("its signature is not valid yet: not before {}", human_time(*at))]
    NotYetValid {
        /// The `nbf`, seconds since the epoch.
        at: u64,
    },
    /// No claims at all.
    #[error("it is unsigned (no `{CLAIMS_SECTION}` claims section)")]
    Unsigned,
    /// Signed, by an issuer not on the list.
    #[error("it is signed by issuer {issuer}, which is not trusted")]
    UntrustedIssuer {
        /// The issuer the claims name.
        issuer: String,
    },
    /// A key given as an issuer is not an account's public key.
    #[error("'{key}' is not an account public key (A…, from `lattice keys new account`)")]
    NotAnAccount {
        /// The key as given.
        key: String,
    },
}

/// `at` (seconds since the epoch) as RFC 3339, UTC.
pub fn human_time(at: u64) -> String {
    i64::try_from(at)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{at} seconds after the epoch"))
}
