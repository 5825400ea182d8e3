//! The claims' JSON Web Token as `wascap` writes it: `header.claims.signature`,
//! each part base64url without padding, the header `{"typ":"jwt","alg":"Ed25519"}`,
//! the signature an nkey (Ed25519) signature of `header.claims` by the issuer.

use super::model::{Claims, ClaimsError};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

const TYPE: &str = "jwt";
const ALGORITHM: &str = "Ed25519";

#[derive(Serialize, Deserialize)]
struct Header {
    typ: String,
    alg: String,
}

fn token_error(reason: impl Into<String>) -> ClaimsError {
    ClaimsError::Token {
        reason: reason.into(),
    }
}

fn segment<T: Serialize>(value: &T) -> Result<String, ClaimsError> {
    let json = serde_json::to_vec(value).map_err(|e| token_error(e.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(json))
}

fn parse_segment<T: for<'de> Deserialize<'de>>(what: &str, text: &str) -> Result<T, ClaimsError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|e| token_error(format!("its {what} is not base64url: {e}")))?;
    serde_json::from_slice(&bytes).map_err(|e| token_error(format!("its {what} is not valid: {e}")))
}

/// `claims` as a token signed by `issuer`.
pub fn encode(claims: &Claims, issuer: &nkeys::KeyPair) -> Result<String, ClaimsError> {
    let header = segment(&Header {
        typ: TYPE.into(),
        alg: ALGORITHM.into(),
    })?;
    let signed = format!("{header}.{}", segment(claims)?);
    let signature = issuer
        .sign(signed.as_bytes())
        .map_err(|e| ClaimsError::Key {
            reason: e.to_string(),
        })?;
    Ok(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature)))
}

/// The claims of `token`, whose signature by the issuer it names checks out.
pub fn decode(token: &str) -> Result<Claims, ClaimsError> {
    let parts: Vec<&str> = token.trim().split('.').collect();
    let [header, body, signature] = parts.as_slice() else {
        return Err(token_error(format!(
            "it has {} parts, not 3 (header.claims.signature)",
            parts.len()
        )));
    };
    let head: Header = parse_segment("header", header)?;
    if head.alg != ALGORITHM || head.typ != TYPE {
        return Err(token_error(format!(
            "its header says typ {:?}, alg {:?}; wasmCloud claims are typ \"{TYPE}\", alg \"{ALGORITHM}\"",
            head.typ, head.alg
        )));
    }
    let claims: Claims = parse_segment("claims", body)?;
    if claims.issuer.is_empty() || claims.subject.is_empty() {
        return Err(token_error("it names no issuer (iss) or no subject (sub)"));
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|e| token_error(format!("its signature is not base64url: {e}")))?;
    let key =
        nkeys::KeyPair::from_public_key(&claims.issuer).map_err(|e| ClaimsError::BadSignature {
            issuer: claims.issuer.clone(),
            reason: format!("the issuer is not a public nkey: {e}"),
        })?;
    key.verify(format!("{header}.{body}").as_bytes(), &signature)
        .map_err(|e| ClaimsError::BadSignature {
            issuer: claims.issuer.clone(),
            reason: e.to_string(),
        })?;
    Ok(claims)
}
