//! Connection pools: one bounded pool (deadpool) per distinct [`Settings`], made
//! at the first call that needs it and shared by every component whose link
//! leads to the same database. Waiting for a free connection, connecting and
//! checking a returned connection each have a deadline.

use crate::config::{self, Settings};
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod};
use lattice_provider::{Config, ProviderLink};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tokio_postgres::NoTls;
use tokio_postgres_rustls::MakeRustlsConnect;

/// How often a statement past its deadline is cancelled again while it runs on.
const CANCEL_EVERY: Duration = Duration::from_millis(100);
/// Cancels sent at most (so at most this times [`CANCEL_EVERY`] past the deadline).
const CANCEL_TRIES: u32 = 5;

/// How long a call waits for a free connection of a full pool.
const WAIT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long connecting (TCP, TLS, authentication) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time kept back from the caller's timeout to send the answer.
const REPLY_MARGIN: Duration = Duration::from_millis(250);

/// When a call's statements must be done: its caller's timeout from now, less
/// the time to answer.
pub fn deadline(timeout: Duration) -> Instant {
    Instant::now() + budget(timeout)
}

fn budget(timeout: Duration) -> Duration {
    if timeout > REPLY_MARGIN * 2 {
        timeout - REPLY_MARGIN
    } else {
        timeout / 2
    }
}

/// The pools of this provider, by settings.
pub struct Pools {
    /// The provider's own connection config, if it has one.
    provider: Option<Settings>,
    /// The provider's `pool_size`, for links that give none.
    pool_size: usize,
    /// `application_name` of the connections.
    application: String,
    pools: Mutex<HashMap<Settings, Db>>,
}

impl Pools {
    /// Pools whose default is the provider's config; an error names a config
    /// that makes no sense.
    pub fn new(config: &Config, application: String) -> Result<Self, String> {
        for key in config
            .keys()
            .filter(|k| !config::KEYS.contains(&k.as_str()))
        {
            tracing::warn!("ignoring config '{key}': sqldb-postgres does not read it");
        }
        let pool_size = config::pool_size_of(config)?.unwrap_or(config::DEFAULT_POOL_SIZE);
        let provider = Settings::from_config(config, pool_size)?;
        if let Some(s) = &provider {
            tracing::info!(database = %s, pool_size = s.pool_size, "the provider's database");
        }
        Ok(Self {
            provider,
            pool_size,
            application,
            pools: Mutex::new(HashMap::new()),
        })
    }

    /// The database of calls through `link`: its config's, else the provider's,
    /// else [`Settings::default`]; its pool size the link's, else the provider's.
    pub fn settings_for(&self, link: &ProviderLink) -> Result<Settings, String> {
        let pool_size = config::pool_size_of(&link.config)?.unwrap_or(self.pool_size);
        Ok(match Settings::from_config(&link.config, pool_size)? {
            Some(settings) => settings,
            None => Settings {
                pool_size,
                ..self.provider.clone().unwrap_or_default()
            },
        })
    }

    /// The database of calls through `link`, with its pool.
    pub fn for_link(&self, link: &ProviderLink) -> Result<Db, String> {
        let settings = self
            .settings_for(link)
            .map_err(|e| format!("the config of link '{}': {e}", link.name))?;
        Ok(self.db(&settings))
    }

    /// The pool of `settings`, made on first use (connections are made as calls
    /// need them).
    pub fn db(&self, settings: &Settings) -> Db {
        let mut pools = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(db) = pools.get(settings) {
            return db.clone();
        }
        let db = Db::new(settings.clone(), &self.application);
        tracing::info!(database = %settings, pool_size = settings.pool_size, tls = settings.tls, "using PostgreSQL");
        pools.insert(settings.clone(), db.clone());
        db
    }
}

/// How connections are secured.
#[derive(Clone)]
enum Tls {
    None,
    Rustls(MakeRustlsConnect),
}

/// One database and its pool: a handle, cheap to clone.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    settings: Arc<Settings>,
    tls: Tls,
}

impl Db {
    fn new(settings: Settings, application: &str) -> Self {
        let mut client = settings.client_config(application);
        client.connect_timeout(CONNECT_TIMEOUT);
        let managed = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let (manager, tls) = if settings.tls {
            client.ssl_mode(tokio_postgres::config::SslMode::Require);
            let tls = MakeRustlsConnect::new(tls_config());
            (
                Manager::from_config(client, tls.clone(), managed),
                Tls::Rustls(tls),
            )
        } else {
            (Manager::from_config(client, NoTls, managed), Tls::None)
        };
        let pool = Pool::builder(manager)
            .max_size(settings.pool_size)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(WAIT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .expect("a runtime is set, so timeouts are allowed");
        Self {
            pool,
            settings: Arc::new(settings),
            tls,
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// A connection of the pool, or why there is none.
    pub async fn client(&self) -> Result<Object, String> {
        self.pool.get().await.map_err(|e| {
            let s = &self.settings;
            match e {
                PoolError::Timeout(deadpool_postgres::TimeoutType::Wait) => format!(
                    "all {} connections to {s} stayed busy for {WAIT_TIMEOUT:?}",
                    s.pool_size
                ),
                PoolError::Timeout(_) => {
                    format!("cannot connect to {s} within {CONNECT_TIMEOUT:?}")
                }
                PoolError::Backend(e) => format!("cannot connect to {s}: {}", error_text(&e)),
                other => format!("cannot connect to {s}: {other}"),
            }
        })
    }

    /// A connection of the pool before `deadline`, or why there is none.
    pub async fn client_before(&self, deadline: Instant) -> Result<Object, String> {
        match tokio::time::timeout_at(deadline, self.client()).await {
            Ok(client) => client,
            Err(_) => Err(format!(
                "no connection to {} before the caller's deadline",
                self.settings
            )),
        }
    }

    /// Run `work` on `client` until `deadline`; past it, cancel what the
    /// connection runs until it has stopped, close it (a late cancel must not hit
    /// the next user's statement), and say how long it ran.
    pub async fn bounded<T, F, Fut>(
        &self,
        client: Object,
        deadline: Instant,
        work: F,
    ) -> Result<T, Duration>
    where
        F: FnOnce(Arc<Object>) -> Fut,
        Fut: Future<Output = T>,
    {
        let client = Arc::new(client);
        let started = Instant::now();
        // Boxed so it can be dropped (with its handle on the client) before the
        // connection is closed.
        let mut work = Box::pin(work(client.clone()));
        if let Ok(result) = tokio::time::timeout_at(deadline, &mut work).await {
            return Ok(result);
        }
        // A cancel only stops the statement the server runs at that moment: one
        // still on its way would run (and could write) after it. So cancel until
        // the statement ends, a bounded number of times.
        for _ in 0..CANCEL_TRIES {
            self.cancel(&client).await;
            if tokio::time::timeout(CANCEL_EVERY, &mut work).await.is_ok() {
                break;
            }
        }
        let ran = started.elapsed();
        drop(work);
        if let Ok(client) = Arc::try_unwrap(client) {
            drop(Object::take(client));
        }
        Err(ran)
    }

    /// Ask the server to cancel what `client` runs now.
    async fn cancel(&self, client: &Object) {
        let token = client.cancel_token();
        let done = match &self.tls {
            Tls::None => token.cancel_query(NoTls).await,
            Tls::Rustls(tls) => token.cancel_query(tls.clone()).await,
        };
        if let Err(e) = done {
            tracing::warn!(database = %self.settings, "cannot cancel a query: {e}");
        }
    }
}

/// TLS that checks the server's certificate against the Mozilla roots.
fn tls_config() -> rustls::ClientConfig {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// A client error with its cause (tokio-postgres's own text often stops at "error
/// connecting to server").
pub fn error_text(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return db_error_text(db);
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The server's message with its SQLSTATE, detail and hint.
pub fn db_error_text(db: &tokio_postgres::error::DbError) -> String {
    let mut text = format!(
        "{}: {} (SQLSTATE {})",
        db.severity(),
        db.message(),
        db.code().code()
    );
    if let Some(detail) = db.detail() {
        text.push_str(&format!("; detail: {detail}"));
    }
    if let Some(hint) = db.hint() {
        text.push_str(&format!("; hint: {hint}"));
    }
    if let Some(tokio_postgres::error::ErrorPosition::Original(at)) = db.position() {
        text.push_str(&format!("; at character {at}"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(pairs: &[(&str, &str)]) -> ProviderLink {
        ProviderLink {
            component: "c".into(),
            to_provider: true,
            name: "default".into(),
            namespace: "wasmcloud".into(),
            package: "postgres".into(),
            interfaces: vec!["query".into()],
            config: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            secrets: Default::default(),
        }
    }

    #[test]
    fn the_budget_leaves_time_to_answer() {
        assert_eq!(
            budget(Duration::from_secs(10)),
            Duration::from_millis(9_750)
        );
        assert_eq!(
            budget(Duration::from_millis(400)),
            Duration::from_millis(200)
        );
    }

    #[test]
    fn the_link_wins_then_the_provider_then_the_default() {
        let pools = Pools::new(&Config::new(), "t".into()).unwrap();
        let s = pools.settings_for(&link(&[])).unwrap();
        assert_eq!(s.to_string(), "postgres://postgres@127.0.0.1:5432/postgres");
        let provider = [
            ("url".to_owned(), "postgres://p@h:1/d".to_owned()),
            ("pool_size".to_owned(), "3".to_owned()),
        ]
        .into();
        let pools = Pools::new(&provider, "t".into()).unwrap();
        let s = pools.settings_for(&link(&[])).unwrap();
        assert_eq!(
            (s.to_string(), s.pool_size),
            ("postgres://p@h:1/d".into(), 3)
        );
        let s = pools
            .settings_for(&link(&[("url", "postgres://l@h:2/e")]))
            .unwrap();
        assert_eq!(
            (s.to_string(), s.pool_size),
            ("postgres://l@h:2/e".into(), 3)
        );
        let s = pools.settings_for(&link(&[("pool_size", "4")])).unwrap();
        assert_eq!(
            (s.to_string(), s.pool_size),
            ("postgres://p@h:1/d".into(), 4)
        );
        let e = pools.for_link(&link(&[("url", "nope://")])).err().unwrap();
        assert!(
            e.starts_with("the config of link 'default': 'nope://' is not a PostgreSQL URL"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn one_pool_per_database() {
        let pools = Pools::new(&Config::new(), "t".into()).unwrap();
        let a = pools
            .for_link(&link(&[("url", "postgres://a@127.0.0.1:1/a")]))
            .unwrap();
        pools
            .for_link(&link(&[("url", "postgres://a@127.0.0.1:1/a")]))
            .unwrap();
        pools
            .for_link(&link(&[("url", "postgres://b@127.0.0.1:1/b")]))
            .unwrap();
        assert_eq!(pools.pools.lock().unwrap().len(), 2);
        let e = a.client().await.err().unwrap();
        assert!(
            e.starts_with("cannot connect to postgres://a@127.0.0.1:1/a: "),
            "{e}"
        );
    }
}
