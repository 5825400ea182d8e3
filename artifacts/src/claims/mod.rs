//! Component signatures, compatible with wasmCloud: the claims JWT that `wascap`
//! (and so `wash claims sign`) embeds in a Wasm binary, signed by an issuer's
//! account nkey (`A…`), naming a subject (a module key, `M…`) and carrying the
//! SHA-256 of the code without the claims. Pure: no IO, time is an argument.
//!
//! - [`sign`] embeds claims (what `lattice sign` does);
//! - [`embedded`] reads them back, checking the signature and that the code is the
//!   code that was signed: what a host computes once per digest ([`signed_claims`]
//!   and [`check_code`] are its two halves, for `lattice inspect`);
//! - [`TrustedIssuers::admit`] decides whether a host that requires signatures
//!   runs a component: signed, by a trusted issuer, untampered, within its dates.
//!
//! Stricter than `wascap`: the hash of claims older than its revision 3
//! (0.10.1), which it does not check, is checked here too (those that still
//! match, as the hash of a plain core module does, verify; the others must be
//! signed again), and only a top-level claims section counts.

mod jwt;
mod model;
pub mod section;

use std::collections::BTreeSet;

pub use model::{
    human_time, Claims, ClaimsError, ComponentMetadata, CLAIMS_REVISION, CLAIMS_SECTION,
    LEGACY_CLAIMS_SECTION,
};

/// What a component's bytes carry, computed once per digest: no claims, claims
/// whose signature and hash check out, or why its claims do not hold.
pub type Verdict = Result<Option<Claims>, ClaimsError>;

/// The claims embedded in `wasm`, if any, with their signature checked against
/// the issuer they name and their hash against the code. Dates are not checked
/// here (they depend on when): see [`Claims::check_time`].
pub fn embedded(wasm: &[u8]) -> Verdict {
    let Some(claims) = signed_claims(wasm)? else {
        return Ok(None);
    };
    check_code(&claims, wasm)?;
    Ok(Some(claims))
}

/// The claims embedded in `wasm`, if any, signed by the issuer they name; whether
/// they vouch for this code is [`check_code`]'s question (for `lattice inspect`,
/// which shows claims that do not).
pub fn signed_claims(wasm: &[u8]) -> Result<Option<Claims>, ClaimsError> {
    section::find(wasm)?.map(jwt::decode).transpose()
}

/// Whether `claims` vouch for the code of `wasm`: they carry a hash equal to the
/// hash of the code without its claims, whatever their revision.
pub fn check_code(claims: &Claims, wasm: &[u8]) -> Result<(), ClaimsError> {
    let signed = claims.hash().ok_or(ClaimsError::NoHash)?;
    let actual = section::code_hash(wasm)?;
    if signed != actual {
        return Err(ClaimsError::HashMismatch {
            signed: signed.to_owned(),
            actual,
        });
    }
    Ok(())
}

/// What to say in new claims; the issuer and the hash come from the signing.
#[derive(Debug, Clone, Default)]
pub struct NewClaims {
    /// The component's public module key (`M…`).
    pub subject: String,
    /// A descriptive name.
    pub name: Option<String>,
    /// Now, seconds since the epoch.
    pub issued_at: u64,
    /// When the signature stops being valid (seconds since the epoch).
    pub expires: Option<u64>,
    /// When the signature starts being valid (seconds since the epoch).
    pub not_before: Option<u64>,
}

/// `wasm` with its claims replaced by `new`, signed by `issuer` (an account
/// key), binding the hash of its code: as `wash claims sign` makes them.
pub fn sign(wasm: &[u8], new: &NewClaims, issuer: &nkeys::KeyPair) -> Result<Vec<u8>, ClaimsError> {
    let issuer_key = issuer.public_key();
    if !is_account_key(&issuer_key) {
        return Err(ClaimsError::NotAnAccount { key: issuer_key });
    }
    let code = section::strip(wasm)?;
    let hash = hex::encode_upper(<sha2::Sha256 as sha2::Digest>::digest(&code));
    // A token id unique to this code, subject and time; nothing relies on it.
    let id_source = format!("{hash}.{}.{}", new.subject, new.issued_at);
    let id = hex::encode_upper(<sha2::Sha256 as sha2::Digest>::digest(id_source.as_bytes()));
    let claims = Claims {
        expires: new.expires,
        id: id.chars().take(22).collect(),
        issued_at: new.issued_at,
        issuer: issuer_key,
        subject: new.subject.clone(),
        not_before: new.not_before,
        metadata: Some(ComponentMetadata {
            name: new.name.clone(),
            hash,
            ..ComponentMetadata::default()
        }),
        revision: Some(CLAIMS_REVISION),
    };
    let token = jwt::encode(&claims, issuer)?;
    Ok(section::with_custom_section(
        &code,
        CLAIMS_SECTION,
        token.as_bytes(),
    ))
}

fn is_account_key(key: &str) -> bool {
    key.starts_with('A') && nkeys::KeyPair::from_public_key(key).is_ok()
}

/// The issuers a host runs components from (`lattice host --trust-issuer A…`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedIssuers {
    keys: BTreeSet<String>,
}

impl TrustedIssuers {
    /// The set of `keys`, each an account public key (`A…`).
    pub fn new<K: AsRef<str>>(keys: impl IntoIterator<Item = K>) -> Result<Self, ClaimsError> {
        let mut set = BTreeSet::new();
        for key in keys {
            let key = key.as_ref().trim();
            if !is_account_key(key) {
                return Err(ClaimsError::NotAnAccount { key: key.into() });
            }
            set.insert(key.to_owned());
        }
        Ok(Self { keys: set })
    }

    /// Whether no issuer is trusted (then signatures are not required).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The trusted keys, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(String::as_str)
    }

    /// Whether a component whose bytes gave `verdict` may run at `now`
    /// (seconds since the epoch): signed, its claims holding, by a trusted
    /// issuer, within its dates. Anything runs when no issuer is trusted.
    pub fn admit(&self, verdict: &Verdict, now: u64) -> Result<(), ClaimsError> {
        if self.is_empty() {
            return Ok(());
        }
        let claims = match verdict {
            Ok(Some(claims)) => claims,
            Ok(None) => return Err(ClaimsError::Unsigned),
            Err(e) => return Err(e.clone()),
        };
        if !self.keys.contains(&claims.issuer) {
            return Err(ClaimsError::UntrustedIssuer {
                issuer: claims.issuer.clone(),
            });
        }
        claims.check_time(now)
    }
}

#[cfg(test)]
mod tests;
