//! NATS credentials for capability providers: user JWTs in NATS's decentralized
//! auth format (`ed25519-nkey` JWS, claims version 2), signed with an account
//! signing key the host holds, and the `.creds` text a client connects with.
//!
//! A host that is given an account signing key mints one fresh user for every
//! provider process it starts ([`provider_permissions`] says what that user may
//! do: serve its own subjects, answer requests, call its own app's components),
//! so a provider never holds the host's credentials and cannot see or send host
//! traffic. Operator and account JWTs are here too, for test servers and for
//! setting up a lattice's NATS (`deploy/`).

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// What a NATS user may publish and subscribe to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Permissions {
    /// Subjects it may publish to.
    pub publish: Vec<String>,
    /// Subjects (and patterns) it may subscribe to.
    pub subscribe: Vec<String>,
    /// May publish one reply to the reply subject of each request it receives.
    pub allow_responses: bool,
}

/// A signing failure (a key that cannot sign: a public key, not a seed).
#[derive(Debug, thiserror::Error)]
#[error("cannot sign NATS credentials: {0}")]
pub struct CredsError(String);

/// The inbox prefix a provider's connection uses (its replies arrive below it).
pub fn provider_inbox_prefix(lattice: &str, app: &str, name: &str) -> String {
    let t = crate::wire::rpc::escape_token;
    format!("_INBOX_{lattice}.{}.{}", t(app), t(name))
}

/// What provider `name` of `app` may do on lattice `lattice`: receive calls to
/// itself and its health checks, answer them, call components of its own app,
/// and receive the replies to those calls.
pub fn provider_permissions(lattice: &str, app: &str, name: &str) -> Permissions {
    let t = crate::wire::rpc::escape_token;
    let inbox = provider_inbox_prefix(lattice, app, name);
    let (app, name) = (t(app), t(name));
    Permissions {
        publish: vec![format!("lattice.{lattice}.rpc.{app}.>")],
        subscribe: vec![
            format!("lattice.{lattice}.rpc.{app}.{name}.>"),
            format!("lattice.{lattice}.prov.{app}.{name}.>"),
            format!("{inbox}.>"),
        ],
        allow_responses: true,
    }
}

/// A user JWT for `user` (a public user nkey) of account `account`, signed by
/// `signer` (the account's key or one of its signing keys).
pub fn user_jwt(
    name: &str,
    user: &str,
    account: &str,
    permissions: &Permissions,
    signer: &nkeys::KeyPair,
) -> Result<String, CredsError> {
    let mut nats = json!({
        "pub": {"allow": permissions.publish},
        "sub": {"allow": permissions.subscribe},
        "subs": -1, "data": -1, "payload": -1,
        "type": "user", "version": 2,
    });
    if permissions.allow_responses {
        nats["resp"] = json!({"max": 1, "ttl": 0});
    }
    if signer.public_key() != account {
        nats["issuer_account"] = json!(account);
    }
    encode(name, user, nats, signer)
}

/// An account JWT signed by the operator, with no limits, trusting `signing_keys`
/// to sign its users; `jetstream` enables JetStream for it (not for a system
/// account).
pub fn account_jwt(
    name: &str,
    account: &str,
    signing_keys: &[String],
    jetstream: bool,
    operator: &nkeys::KeyPair,
) -> Result<String, CredsError> {
    let storage = if jetstream { -1 } else { 0 };
    let nats = json!({
        "limits": {
            "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
            "wildcards": true, "conn": -1, "leaf": -1,
            "mem_storage": storage, "disk_storage": storage,
            "streams": storage, "consumer": storage,
        },
        "signing_keys": signing_keys,
        "default_permissions": {"pub": {}, "sub": {}},
        "type": "account", "version": 2,
    });
    encode(name, account, nats, operator)
}

/// A self-signed operator JWT.
pub fn operator_jwt(name: &str, operator: &nkeys::KeyPair) -> Result<String, CredsError> {
    let nats = json!({"type": "operator", "version": 2});
    encode(name, &operator.public_key(), nats, operator)
}

/// The `.creds` text NATS clients read: the user JWT and the user's seed.
pub fn creds_file(jwt: &str, seed: &str) -> String {
    format!(
        "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
         ************************* IMPORTANT *************************\n\
         NKEY Seed printed below can be used to sign and prove identity.\n\
         NKEYs are sensitive and should be treated as secrets.\n\n\
         -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n\n\
         *************************************************************\n"
    )
}

/// The claims (second part) of a JWT, parsed; `None` if it is not one.
pub fn claims(jwt: &str) -> Option<Value> {
    use base64::Engine;
    let part = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The user JWT inside `.creds` text.
pub fn creds_jwt(creds: &str) -> Option<&str> {
    let start = creds.find("-----BEGIN NATS USER JWT-----")?;
    creds[start..].lines().nth(1).map(str::trim)
}

/// The account a user JWT belongs to: `issuer_account` when a signing key signed
/// it, else its issuer.
pub fn account_of(user_jwt: &str) -> Option<String> {
    let claims = claims(user_jwt)?;
    claims["nats"]["issuer_account"]
        .as_str()
        .or_else(|| claims["iss"].as_str())
        .map(str::to_string)
}

fn encode(
    name: &str,
    subject: &str,
    nats: Value,
    signer: &nkeys::KeyPair,
) -> Result<String, CredsError> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let iat = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let mut claims = Map::new();
    claims.insert("iat".into(), json!(iat));
    claims.insert("iss".into(), json!(signer.public_key()));
    claims.insert("name".into(), json!(name));
    claims.insert("sub".into(), json!(subject));
    claims.insert("nats".into(), nats);
    // A unique id for the token (NATS uses a hash of the claims; any unique
    // string is accepted).
    let digest = Sha256::digest(serde_json::to_vec(&claims).unwrap_or_default());
    claims.insert("jti".into(), json!(hex_upper(&digest[..20])));
    let header = b64.encode(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let body = b64.encode(serde_json::to_vec(&claims).unwrap_or_default());
    let input = format!("{header}.{body}");
    let signature = signer
        .sign(input.as_bytes())
        .map_err(|e| CredsError(e.to_string()))?;
    Ok(format!("{input}.{}", b64.encode(signature)))
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_jwts_carry_their_permissions_and_verify() {
        let account = nkeys::KeyPair::new_account();
        let signing = nkeys::KeyPair::new_account();
        let user = nkeys::KeyPair::new_user();
        let perms = provider_permissions("default", "shop", "kv");
        let jwt = user_jwt(
            "kv",
            &user.public_key(),
            &account.public_key(),
            &perms,
            &signing,
        )
        .unwrap();
        let c = claims(&jwt).unwrap();
        assert_eq!(c["sub"], user.public_key());
        assert_eq!(c["iss"], signing.public_key());
        assert_eq!(c["nats"]["issuer_account"], account.public_key());
        assert_eq!(
            c["nats"]["sub"]["allow"][0],
            "lattice.default.rpc.shop.kv.>"
        );
        assert_eq!(c["nats"]["pub"]["allow"][0], "lattice.default.rpc.shop.>");
        assert_eq!(account_of(&jwt), Some(account.public_key()));

        use base64::Engine;
        let (input, sig) = jwt.rsplit_once('.').unwrap();
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(sig)
            .unwrap();
        signing.verify(input.as_bytes(), &sig).unwrap();

        let creds = creds_file(&jwt, &user.seed().unwrap());
        assert_eq!(creds_jwt(&creds), Some(jwt.as_str()));
    }

    #[test]
    fn an_account_key_signing_its_own_users_names_no_issuer_account() {
        let account = nkeys::KeyPair::new_account();
        let user = nkeys::KeyPair::new_user();
        let jwt = user_jwt(
            "u",
            &user.public_key(),
            &account.public_key(),
            &Permissions::default(),
            &account,
        )
        .unwrap();
        assert!(claims(&jwt).unwrap()["nats"]
            .get("issuer_account")
            .is_none());
        let public = nkeys::KeyPair::from_public_key(&account.public_key()).unwrap();
        assert!(user_jwt(
            "u",
            &user.public_key(),
            &account.public_key(),
            &Permissions::default(),
            &public
        )
        .is_err());
    }

    #[test]
    fn provider_subjects_escape_names() {
        let perms = provider_permissions("default", "my.app", "kv");
        assert!(
            perms.subscribe.iter().all(|s| s.contains("my_2eapp")),
            "{perms:?}"
        );
    }
}
