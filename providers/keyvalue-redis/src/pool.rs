//! Redis connections: one shared `ConnectionManager` (a multiplexed connection that
//! reconnects by itself) per distinct URL, made at the first call that needs it and
//! shared by every component linked to that URL.

use lattice_provider::{redact_url as redact, Config, ProviderLink};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Where Redis is when neither the link nor the provider says.
pub const DEFAULT_URL: &str = "redis://127.0.0.1:6379";

/// The config key of the Redis URL, on a link (target config) or on the provider.
pub const URL_KEY: &str = "url";

/// The secret (`properties.secrets`) holding the password for URLs without one.
pub const PASSWORD_SECRET: &str = "password";

/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Reconnection attempts within one command (100 ms, then 200 ms apart), so a
/// caller learns soon that Redis is down; the next command tries again.
const RETRIES: usize = 2;
/// How long one command may wait for Redis. Calls have the caller's deadline too;
/// this bounds a connection that hangs without failing.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

/// The connections of this provider, by URL.
pub struct Pool {
    default_url: String,
    /// The `password` secret: used for every URL that names no password.
    password: Option<String>,
    managers: Mutex<HashMap<String, ConnectionManager>>,
}

impl Pool {
    /// A pool whose default URL is the provider's `url` config (else
    /// [`DEFAULT_URL`]); an error names a config that makes no sense.
    pub fn new(config: &Config, password: Option<String>) -> Result<Self, String> {
        for key in config.keys().filter(|k| *k != URL_KEY) {
            tracing::warn!("ignoring config '{key}': keyvalue-redis reads only '{URL_KEY}'");
        }
        let default_url = config
            .get(URL_KEY)
            .map_or(DEFAULT_URL, String::as_str)
            .to_owned();
        client(&default_url, None)
            .map_err(|e| format!("the provider's config '{URL_KEY}': {e}"))?;
        Ok(Self {
            default_url,
            password,
            managers: Mutex::new(HashMap::new()),
        })
    }

    /// The Redis URL of calls through `link`: its `url` secret (a URL with a
    /// password, kept out of the manifest), else its `url` config, else the
    /// provider's.
    pub fn url_for<'a>(&'a self, link: &'a ProviderLink) -> &'a str {
        link.secret_text(URL_KEY)
            .or(link.config.get(URL_KEY).map(String::as_str))
            .unwrap_or(&self.default_url)
    }

    /// The shared connection to `url` (a handle: cheap to clone). It connects on
    /// first use and reconnects after failures; commands fail meanwhile.
    pub fn connection(&self, url: &str) -> Result<ConnectionManager, String> {
        let mut managers = self.managers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(manager) = managers.get(url) {
            return Ok(manager.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(RETRIES)
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT));
        let client = client(url, self.password.as_deref())?;
        let manager = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| format!("cannot set up a connection to {}: {e}", redact(url)))?;
        tracing::info!(url = %redact(url), "using Redis");
        managers.insert(url.to_owned(), manager.clone());
        Ok(manager)
    }
}

/// Whether `url` is a Redis URL; the error says what is wrong.
pub fn check(url: &str) -> Result<(), String> {
    client(url, None).map(drop)
}

/// A client of `url`, with `password` when the URL names none.
fn client(url: &str, password: Option<&str>) -> Result<redis::Client, String> {
    use redis::IntoConnectionInfo;
    let bad = |e: redis::RedisError| {
        format!(
            "'{}' is not a Redis URL ({e}); expected e.g. {DEFAULT_URL} or redis://:password@host:6379/0",
            redact(url)
        )
    };
    let mut info = url.into_connection_info().map_err(bad)?;
    if let Some(password) = password.filter(|_| info.redis_settings().password().is_none()) {
        let settings = info.redis_settings().clone().set_password(password);
        info = info.set_redis_settings(settings);
    }
    redis::Client::open(info).map_err(bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lattice_provider::SecretValue;

    fn link(url: Option<&str>) -> ProviderLink {
        ProviderLink {
            component: "c".into(),
            to_provider: true,
            name: "default".into(),
            namespace: "wasi".into(),
            package: "keyvalue".into(),
            interfaces: vec!["store".into()],
            config: url
                .map(|u| (URL_KEY.to_owned(), u.to_owned()))
                .into_iter()
                .collect(),
            secrets: Default::default(),
        }
    }

    #[test]
    fn a_link_url_secret_wins_over_its_config() {
        let pool = Pool::new(&Config::new(), None).unwrap();
        let mut with_secret = link(Some("redis://config:1"));
        with_secret.secrets.insert(
            URL_KEY.to_owned(),
            SecretValue::String("redis://:pw@secret:2".into()),
        );
        assert_eq!(pool.url_for(&with_secret), "redis://:pw@secret:2");
    }

    #[test]
    fn the_link_url_wins_then_the_provider_then_the_default() {
        let pool = Pool::new(&Config::new(), None).unwrap();
        assert_eq!(pool.url_for(&link(None)), DEFAULT_URL);
        assert_eq!(pool.url_for(&link(Some("redis://l:1"))), "redis://l:1");
        let config = [(URL_KEY.to_owned(), "redis://p:2".to_owned())].into();
        let pool = Pool::new(&config, None).unwrap();
        assert_eq!(pool.url_for(&link(None)), "redis://p:2");
        assert_eq!(pool.url_for(&link(Some("redis://l:1"))), "redis://l:1");
    }

    #[test]
    fn a_bad_url_is_a_clear_error_without_its_password() {
        let config = [(URL_KEY.to_owned(), "http://:secret@host:1".to_owned())].into();
        let e = Pool::new(&config, None).err().unwrap();
        assert!(
            e.starts_with("the provider's config 'url': 'http://***@host:1' is not a Redis URL"),
            "{e}"
        );
        assert!(!e.contains("secret"));
    }

    #[tokio::test]
    async fn one_connection_per_url() {
        let pool = Pool::new(&Config::new(), None).unwrap();
        pool.connection("redis://127.0.0.1:1").unwrap();
        pool.connection("redis://127.0.0.1:1").unwrap();
        pool.connection("redis://127.0.0.1:2").unwrap();
        assert_eq!(pool.managers.lock().unwrap().len(), 2);
        assert!(pool.connection("nope://x").is_err());
    }
}
