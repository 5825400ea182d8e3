//! The NATS auth of one lattice: an operator, one account for the lattice (with
//! JetStream), a system account (JetStream needs one in operator mode), and the
//! account's scoped provider signing key. `lattice nats-auth init` writes it,
//! `lattice up` keeps one in its state directory, and the test server uses it, so
//! all three run the same setup.
//!
//! Only the seeds are secrets and worth keeping ([`AuthSeeds`]); the JWTs and the
//! server's config are made from them again whenever needed.

use super::{roles, CredsError, Permissions, Role, ScopedKey};

/// The seeds an [`LatticeAuth`] is made of.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthSeeds {
    /// The operator's seed (`SO…`).
    pub operator: String,
    /// The lattice account's seed (`SA…`): signs every role's user.
    pub account: String,
    /// The system account's seed (`SA…`).
    pub system: String,
    /// The account's scoped provider signing key (`SA…`): signs providers' users
    /// only, which get [`roles::provider_template`] whatever they ask for.
    pub provider: String,
}

impl std::fmt::Debug for AuthSeeds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthSeeds(..)")
    }
}

/// Operator, accounts and signing keys of one lattice's NATS.
pub struct LatticeAuth {
    lattice: String,
    operator: nkeys::KeyPair,
    account: nkeys::KeyPair,
    system: nkeys::KeyPair,
    provider: nkeys::KeyPair,
}

impl std::fmt::Debug for LatticeAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatticeAuth")
            .field("lattice", &self.lattice)
            .field("account", &self.account.public_key())
            .field("provider_key", &self.provider.public_key())
            .finish()
    }
}

fn key(seed: &str, what: &str, kind: nkeys::KeyPairType) -> Result<nkeys::KeyPair, CredsError> {
    let key = nkeys::KeyPair::from_seed(seed.trim())
        .map_err(|e| CredsError(format!("the {what} seed is not an nkey seed: {e}")))?;
    if key.key_pair_type() != kind {
        return Err(CredsError(format!(
            "the {what} seed is a {:?} key, not a {kind:?} key",
            key.key_pair_type()
        )));
    }
    Ok(key)
}

impl LatticeAuth {
    /// New keys for lattice `lattice`.
    pub fn generate(lattice: &str) -> Self {
        Self {
            lattice: lattice.to_string(),
            operator: nkeys::KeyPair::new_operator(),
            account: nkeys::KeyPair::new_account(),
            system: nkeys::KeyPair::new_account(),
            provider: nkeys::KeyPair::new_account(),
        }
    }

    /// The keys kept in `seeds`.
    pub fn from_seeds(lattice: &str, seeds: &AuthSeeds) -> Result<Self, CredsError> {
        use nkeys::KeyPairType::{Account, Operator};
        Ok(Self {
            lattice: lattice.to_string(),
            operator: key(&seeds.operator, "operator", Operator)?,
            account: key(&seeds.account, "account", Account)?,
            system: key(&seeds.system, "system account", Account)?,
            provider: key(&seeds.provider, "provider signing key", Account)?,
        })
    }

    /// The seeds to keep.
    pub fn seeds(&self) -> Result<AuthSeeds, CredsError> {
        let seed = |k: &nkeys::KeyPair| k.seed().map_err(|e| CredsError(e.to_string()));
        Ok(AuthSeeds {
            operator: seed(&self.operator)?,
            account: seed(&self.account)?,
            system: seed(&self.system)?,
            provider: seed(&self.provider)?,
        })
    }

    /// The lattice's name.
    pub fn lattice(&self) -> &str {
        &self.lattice
    }

    /// The lattice account's public key (`A…`).
    pub fn account(&self) -> String {
        self.account.public_key()
    }

    /// The account's own key (signs every role's user).
    pub fn account_key(&self) -> &nkeys::KeyPair {
        &self.account
    }

    /// The scoped provider signing key.
    pub fn provider_key(&self) -> &nkeys::KeyPair {
        &self.provider
    }

    /// The lattice account's JWT: JetStream on, the scoped provider key trusted.
    pub fn account_jwt(&self) -> Result<String, CredsError> {
        self.account_jwt_trusting(&[])
    }

    /// [`LatticeAuth::account_jwt`] also trusting unscoped `signing_keys` (for
    /// tests of hosts given such a key).
    pub fn account_jwt_trusting(&self, signing_keys: &[String]) -> Result<String, CredsError> {
        let scope = ScopedKey {
            key: self.provider.public_key(),
            role: "provider".into(),
            template: roles::provider_template(&self.lattice),
        };
        super::account_jwt_scoped(
            &format!("lattice-{}", self.lattice),
            &self.account.public_key(),
            signing_keys,
            &[scope],
            true,
            &self.operator,
        )
    }

    /// The operator-mode part of a nats-server config: the operator, the system
    /// account and both accounts preloaded in a memory resolver.
    pub fn server_config(&self) -> Result<String, CredsError> {
        self.server_config_trusting(&[])
    }

    /// [`LatticeAuth::server_config`] with the account also trusting unscoped
    /// `signing_keys`.
    pub fn server_config_trusting(&self, signing_keys: &[String]) -> Result<String, CredsError> {
        let operator = super::operator_jwt(&format!("lattice-{}", self.lattice), &self.operator)?;
        let system = self.system.public_key();
        let system_jwt = super::account_jwt("SYS", &system, &[], false, &self.operator)?;
        Ok(format!(
            "# NATS decentralized auth for lattice '{lattice}' (written by lattice nats-auth).\n\
             operator: \"{operator}\"\n\
             system_account: {system}\n\
             resolver: MEMORY\n\
             resolver_preload: {{\n  {account}: \"{account_jwt}\"\n  {system}: \"{system_jwt}\"\n}}\n\
             # Hosts at an edge leaf node (deploy/nats/leaf.conf, no JetStream there) use the\n\
             # core's JetStream in the lattice's account: without this, servers deny JetStream's\n\
             # API across leaf connections of any account but the system account (nats-server\n\
             # warns that the option is kept for compatibility).\n\
             default_js_domain: {{\n  {account}: \"\"\n}}\n",
            lattice = self.lattice,
            account = self.account.public_key(),
            account_jwt = self.account_jwt_trusting(signing_keys)?,
        ))
    }

    /// `.creds` of a new user of the lattice account with `permissions`.
    pub fn user_creds(&self, name: &str, permissions: &Permissions) -> Result<String, CredsError> {
        let user = nkeys::KeyPair::new_user();
        let jwt = super::user_jwt(
            name,
            &user.public_key(),
            &self.account.public_key(),
            permissions,
            &self.account,
        )?;
        let seed = user.seed().map_err(|e| CredsError(e.to_string()))?;
        Ok(super::creds_file(&jwt, &seed))
    }

    /// `.creds` of a new user for `role` on this lattice.
    pub fn role_creds(&self, role: Role<'_>) -> Result<String, CredsError> {
        let name = match role {
            Role::Host(id) => format!("host {id}"),
            Role::Controller => "controller".into(),
            Role::Cli => "cli".into(),
            Role::Messaging => "messaging".into(),
            Role::Leaf => "leaf".into(),
        };
        self.user_creds(&name, &role.permissions(&self.lattice))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_round_trip_and_the_account_trusts_the_scoped_key() {
        let auth = LatticeAuth::generate("dev");
        let again = LatticeAuth::from_seeds("dev", &auth.seeds().unwrap()).unwrap();
        assert_eq!(auth.account(), again.account());
        let account = super::super::claims(&auth.account_jwt().unwrap()).unwrap();
        let scope = &account["nats"]["signing_keys"][0];
        assert_eq!(scope["kind"], "user_scope");
        assert_eq!(scope["key"], auth.provider_key().public_key());
        assert_eq!(
            scope["template"]["pub"]["allow"][0],
            "lattice.dev.rpcp.{{tag(app)}}.{{tag(provider)}}.>"
        );
        let config = auth.server_config().unwrap();
        assert!(config.contains(&auth.account()), "{config}");

        let mut seeds = auth.seeds().unwrap();
        seeds.operator = seeds.account.clone();
        let err = LatticeAuth::from_seeds("dev", &seeds).unwrap_err();
        assert!(err.to_string().contains("operator"), "{err}");
    }

    #[test]
    fn role_creds_carry_the_role_and_its_inbox() {
        let auth = LatticeAuth::generate("dev");
        let creds = auth.role_creds(Role::Cli).unwrap();
        let jwt = super::super::creds_jwt(&creds).unwrap();
        assert_eq!(super::super::account_of(jwt), Some(auth.account()));
        assert_eq!(
            super::super::inbox_prefix_of(jwt).as_deref(),
            Some("_INBOX_dev_cli")
        );
    }
}
