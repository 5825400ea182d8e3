//! The key a host mints its providers' NATS users with.

use lattice_protocol::creds;
use std::sync::Arc;

/// An account signing key the host mints providers' NATS users with.
#[derive(Clone)]
pub struct ProviderSigner {
    key: Arc<nkeys::KeyPair>,
    account: String,
    /// The key is a scoped signing key of the account: the server applies its
    /// template (a provider's permissions) to every user it signs, so the users
    /// carry only their tags, and a host holding the key can mint nothing broader.
    scoped: bool,
}

impl std::fmt::Debug for ProviderSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderSigner")
            .field("signing_key", &self.key.public_key())
            .field("account", &self.account)
            .field("scoped", &self.scoped)
            .finish()
    }
}

impl ProviderSigner {
    /// `seed` is an account nkey seed (`SA...`): the account's own key or one of
    /// its signing keys. `account` is the account's public key, needed when `seed`
    /// is a signing key; by default the key's own public key.
    pub fn new(seed: &str, account: Option<String>) -> Result<Self, String> {
        let key = nkeys::KeyPair::from_seed(seed.trim())
            .map_err(|e| format!("the provider signing key is not an nkey seed: {e}"))?;
        if key.key_pair_type() != nkeys::KeyPairType::Account {
            return Err(format!(
                "the provider signing key must be an account key (a seed starting with SA), \
                 not a {:?} key",
                key.key_pair_type()
            ));
        }
        let account = account.unwrap_or_else(|| key.public_key());
        if !account.starts_with('A') {
            return Err(format!("'{account}' is not an account public key"));
        }
        Ok(Self {
            key: Arc::new(key),
            account,
            scoped: false,
        })
    }

    /// The key is a scoped signing key (see `lattice nats-auth init`).
    pub fn scoped(mut self, scoped: bool) -> Self {
        self.scoped = scoped;
        self
    }

    /// `.creds` for a new user that may act as provider `name` of `app` only.
    pub fn mint(&self, lattice: &str, app: &str, name: &str) -> Result<String, String> {
        let user = nkeys::KeyPair::new_user();
        let jwt = creds::provider_user_jwt(
            lattice,
            app,
            name,
            &user.public_key(),
            &self.account,
            &self.key,
            self.scoped,
        )
        .map_err(|e| e.to_string())?;
        let seed = user.seed().map_err(|e| e.to_string())?;
        Ok(creds::creds_file(&jwt, &seed))
    }
}
