//! NATS credentials: user JWTs in NATS's decentralized auth format
//! (`ed25519-nkey` JWS, claims version 2), account and operator JWTs, the
//! `.creds` text a client connects with, and what each role's user may do
//! ([`roles`]).
//!
//! A host that is given an account signing key mints one fresh user for every
//! provider process it starts ([`provider_permissions`] says what that user may
//! do: serve its own subjects, answer requests, call its own app's components),
//! so a provider never holds the host's credentials and cannot see or send host
//! traffic. With a *scoped* signing key ([`ScopedKey`], which `lattice nats-auth
//! init` makes) the server itself applies the provider template to every user the
//! key signs ([`provider_user_jwt`]), so a host holding that key cannot mint a
//! broader user.

pub mod roles;
pub mod setup;

pub use roles::{role_inbox_prefix, Role};
pub use setup::{AuthSeeds, LatticeAuth};

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// What a NATS user may publish and subscribe to. NATS applies a deny over an
/// allow.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Permissions {
    /// Subjects it may publish to.
    pub publish: Vec<String>,
    /// Subjects it may not publish to, even if `publish` allows them.
    pub publish_deny: Vec<String>,
    /// Subjects (and patterns) it may subscribe to.
    pub subscribe: Vec<String>,
    /// Subjects it may not subscribe to, even if `subscribe` allows them.
    pub subscribe_deny: Vec<String>,
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
/// itself (lattice-wide and by locality) and its health checks, answer them, call
/// components of its own app, receive the replies to those calls, and fetch the
/// large bodies hosts offer it (`<host inbox>.body.<token>` only: never a host's
/// reply inbox).
pub fn provider_permissions(lattice: &str, app: &str, name: &str) -> Permissions {
    let t = crate::wire::rpc::escape_token;
    provider_permissions_of_tokens(lattice, &t(app), &t(name))
}

/// [`provider_permissions`] of app and name already escaped (or template
/// placeholders).
fn provider_permissions_of_tokens(lattice: &str, app: &str, name: &str) -> Permissions {
    Permissions {
        // Calls to its app's components, on subjects naming it as the caller
        // (`wire::provider_call_subject`): it cannot speak for anyone else.
        publish: vec![
            format!("lattice.{lattice}.rpcp.{app}.{name}.>"),
            // Chunk requests for bodies hosts offer (`wire::body_subject`).
            format!("_INBOX_{lattice}.host.*.body.*"),
        ],
        subscribe: vec![
            // Calls to it from components on any host
            // (`wire::host_call_wildcard`), the same from hosts near it
            // (`wire::locality_component_wildcard`), and from its app's other
            // providers.
            format!("lattice.{lattice}.rpch.*.{app}.{name}.>"),
            format!("lattice.{lattice}.rpchl.*.*.*.{app}.{name}.>"),
            format!("lattice.{lattice}.rpcp.{app}.*.{name}.>"),
            format!("lattice.{lattice}.prov.{app}.{name}.>"),
            format!("_INBOX_{lattice}.{app}.{name}.>"),
        ],
        allow_responses: true,
        ..Permissions::default()
    }
}

/// The inbox prefix a connection with this user JWT should use: the first
/// subscribe grant of the form `_INBOX….>` (every role's set lists its own
/// first); `None` when it has none (e.g. a user allowed everything).
pub fn inbox_prefix_of(user_jwt: &str) -> Option<String> {
    let claims = claims(user_jwt)?;
    claims["nats"]["sub"]["allow"]
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .find(|s| s.starts_with("_INBOX") && s.ends_with(".>"))
        .map(|s| s.trim_end_matches(".>").to_string())
}

/// A scoped signing key of an account: a user it signs gets `template`'s
/// permissions, and NATS refuses a user it signs that asks for any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopedKey {
    /// The signing key's public key (`A…`).
    pub key: String,
    /// A name for the scope (e.g. `provider`).
    pub role: String,
    /// The permissions every user signed by the key gets; may use NATS template
    /// placeholders such as `{{tag(app)}}`.
    pub template: Permissions,
}

/// A user JWT for provider `name` of `app` on `lattice`, signed by `signer` for
/// `account`. When `scoped`, `signer` is the account's scoped provider key
/// ([`roles::provider_template`]): the JWT carries only the tags naming app and
/// provider and the server applies the template; else it carries
/// [`provider_permissions`] itself.
pub fn provider_user_jwt(
    lattice: &str,
    app: &str,
    name: &str,
    user: &str,
    account: &str,
    signer: &nkeys::KeyPair,
    scoped: bool,
) -> Result<String, CredsError> {
    let display = format!("provider {app}/{name}");
    if scoped {
        scoped_user_jwt(
            &display,
            user,
            account,
            &roles::provider_tags(app, name),
            signer,
        )
    } else {
        let permissions = provider_permissions(lattice, app, name);
        user_jwt(&display, user, account, &permissions, signer)
    }
}

/// A user JWT for a scoped signing key: no permissions or limits of its own
/// (NATS refuses a scoped user that has any), only `tags` for the key's template.
pub fn scoped_user_jwt(
    name: &str,
    user: &str,
    account: &str,
    tags: &[String],
    signer: &nkeys::KeyPair,
) -> Result<String, CredsError> {
    let nats = json!({
        "issuer_account": account,
        "tags": tags,
        "type": "user", "version": 2,
    });
    encode(name, user, nats, signer)
}

/// The `nats` permission fields of a user JWT or a scope template.
fn permission_claims(permissions: &Permissions) -> Value {
    let list = |allow: &[String], deny: &[String]| {
        let mut v = Map::new();
        if !allow.is_empty() {
            v.insert("allow".into(), json!(allow));
        }
        if !deny.is_empty() {
            v.insert("deny".into(), json!(deny));
        }
        Value::Object(v)
    };
    let mut nats = json!({
        "pub": list(&permissions.publish, &permissions.publish_deny),
        "sub": list(&permissions.subscribe, &permissions.subscribe_deny),
        "subs": -1, "data": -1, "payload": -1,
    });
    if permissions.allow_responses {
        nats["resp"] = json!({"max": 1, "ttl": 0});
    }
    nats
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
    let mut nats = permission_claims(permissions);
    nats["type"] = json!("user");
    nats["version"] = json!(2);
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
    account_jwt_scoped(name, account, signing_keys, &[], jetstream, operator)
}

/// [`account_jwt`] that also trusts `scoped` signing keys, each limited to its
/// template.
pub fn account_jwt_scoped(
    name: &str,
    account: &str,
    signing_keys: &[String],
    scoped: &[ScopedKey],
    jetstream: bool,
    operator: &nkeys::KeyPair,
) -> Result<String, CredsError> {
    let mut keys: Vec<Value> = signing_keys.iter().map(|k| json!(k)).collect();
    keys.extend(scoped.iter().map(|s| {
        json!({
            "kind": "user_scope",
            "key": s.key,
            "role": s.role,
            "template": permission_claims(&s.template),
            "description": "",
        })
    }));
    let storage = if jetstream { -1 } else { 0 };
    let nats = json!({
        "limits": {
            "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
            "wildcards": true, "conn": -1, "leaf": -1,
            "mem_storage": storage, "disk_storage": storage,
            "streams": storage, "consumer": storage,
        },
        "signing_keys": keys,
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
            "lattice.default.rpch.*.shop.kv.>"
        );
        assert_eq!(
            c["nats"]["pub"]["allow"][0],
            "lattice.default.rpcp.shop.kv.>"
        );
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
