//! Where to connect: a link's (target) config, else the provider's, else
//! `postgres://postgres@127.0.0.1:5432/postgres`.
//!
//! A config is a `url` (`postgres://user:password@host:port/database?sslmode=...`,
//! or libpq's `key=value` form) and/or wasmCloud's `POSTGRES_HOST`,
//! `POSTGRES_PORT`, `POSTGRES_USERNAME`, `POSTGRES_PASSWORD`, `POSTGRES_DATABASE`,
//! `POSTGRES_TLS_REQUIRED` keys, which override the parts of `url`; so a wasmCloud
//! manifest's link config works as it is. `pool_size` (or `POSTGRES_POOL_SIZE`)
//! bounds the connections of one pool.

use lattice_provider::Config;
use std::fmt;
use std::str::FromStr;
use tokio_postgres::config::{Host, SslMode};

pub const URL: &str = "url";
pub const POOL_SIZE: &str = "pool_size";
pub const DEFAULT_POOL_SIZE: usize = 8;
/// The most connections one pool may have.
const MAX_POOL_SIZE: usize = 1_000;

const HOST: &str = "POSTGRES_HOST";
const PORT: &str = "POSTGRES_PORT";
const USERNAME: &str = "POSTGRES_USERNAME";
const PASSWORD: &str = "POSTGRES_PASSWORD";
const DATABASE: &str = "POSTGRES_DATABASE";
const TLS_REQUIRED: &str = "POSTGRES_TLS_REQUIRED";
const WASMCLOUD_POOL_SIZE: &str = "POSTGRES_POOL_SIZE";

/// Keys that say where to connect: a config with one of them is a connection
/// config.
const CONNECTION_KEYS: [&str; 6] = [URL, HOST, PORT, USERNAME, PASSWORD, DATABASE];
/// Every key read.
pub const KEYS: [&str; 9] = [
    URL,
    HOST,
    PORT,
    USERNAME,
    PASSWORD,
    DATABASE,
    TLS_REQUIRED,
    POOL_SIZE,
    WASMCLOUD_POOL_SIZE,
];

/// One database and how many connections to it: the key of a pool.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Settings {
    /// A host name or address, or the folder of a unix socket (starts with `/`).
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<String>,
    pub database: String,
    pub tls: bool,
    pub pool_size: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 5432,
            user: "postgres".into(),
            password: None,
            database: "postgres".into(),
            tls: false,
            pool_size: DEFAULT_POOL_SIZE,
        }
    }
}

/// Never shows the password.
impl fmt::Display for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        write!(
            f,
            "postgres://{}@{host}:{}/{}",
            self.user, self.port, self.database
        )
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self} (pool {}, tls {})", self.pool_size, self.tls)
    }
}

impl Settings {
    /// The settings `config` gives, on top of the defaults; `None` when it names
    /// no connection (then another config decides). `pool_size` when `config` has
    /// none.
    pub fn from_config(config: &Config, pool_size: usize) -> Result<Option<Self>, String> {
        if !CONNECTION_KEYS.iter().any(|k| config.contains_key(*k)) {
            return Ok(None);
        }
        let mut s = Settings {
            pool_size,
            ..Settings::default()
        };
        if let Some(url) = config.get(URL) {
            s.apply_url(url)?;
        }
        if let Some(host) = config.get(HOST) {
            s.host = host.clone();
        }
        if let Some(port) = config.get(PORT) {
            s.port = port
                .trim()
                .parse()
                .map_err(|_| format!("{PORT} '{port}' is not a port number"))?;
        }
        if let Some(user) = config.get(USERNAME) {
            s.user = user.clone();
            if !config.contains_key(DATABASE) && !has_database(config.get(URL)) {
                s.database = user.clone();
            }
        }
        if let Some(password) = config.get(PASSWORD) {
            s.password = Some(password.clone());
        }
        if let Some(database) = config.get(DATABASE) {
            s.database = database.clone();
        }
        if let Some(tls) = config.get(TLS_REQUIRED) {
            s.tls = matches!(tls.trim().to_lowercase().as_str(), "true" | "yes" | "1");
        }
        s.pool_size = pool_size_of(config)?.unwrap_or(pool_size);
        Ok(Some(s))
    }

    fn apply_url(&mut self, url: &str) -> Result<(), String> {
        let parsed = tokio_postgres::Config::from_str(url).map_err(|e| {
            format!(
                "'{}' is not a PostgreSQL URL ({e}); expected e.g. \
                 postgres://user:password@host:5432/database",
                lattice_provider::redact_url(url)
            )
        })?;
        match parsed.get_hosts() {
            [] => {}
            [Host::Tcp(host)] => self.host = host.clone(),
            [Host::Unix(path)] => self.host = path.display().to_string(),
            _ => return Err("the URL names several hosts; sqldb-postgres takes one".into()),
        }
        match parsed.get_ports() {
            [] => {}
            [port] => self.port = *port,
            _ => return Err("the URL names several ports; sqldb-postgres takes one".into()),
        }
        if let Some(user) = parsed.get_user() {
            self.user = user.to_owned();
            self.database = user.to_owned();
        }
        if let Some(password) = parsed.get_password() {
            let password = String::from_utf8(password.to_vec())
                .map_err(|_| "the URL's password is not UTF-8".to_owned())?;
            self.password = Some(password);
        }
        if let Some(database) = parsed.get_dbname() {
            self.database = database.to_owned();
        }
        self.tls = matches!(parsed.get_ssl_mode(), SslMode::Require);
        Ok(())
    }

    /// The client config of these settings.
    pub fn client_config(&self, application: &str) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        if self.host.starts_with('/') {
            c.host_path(&self.host);
        } else {
            c.host(&self.host);
        }
        c.port(self.port)
            .user(&self.user)
            .dbname(&self.database)
            .application_name(application);
        if let Some(password) = &self.password {
            c.password(password);
        }
        c
    }
}

fn has_database(url: Option<&String>) -> bool {
    url.and_then(|u| tokio_postgres::Config::from_str(u).ok())
        .is_some_and(|c| c.get_dbname().is_some())
}

/// `pool_size` (or `POSTGRES_POOL_SIZE`) of a config, checked.
pub fn pool_size_of(config: &Config) -> Result<Option<usize>, String> {
    let Some((key, text)) = [POOL_SIZE, WASMCLOUD_POOL_SIZE]
        .into_iter()
        .find_map(|k| config.get(k).map(|v| (k, v)))
    else {
        return Ok(None);
    };
    match text.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_POOL_SIZE).contains(&n) => Ok(Some(n)),
        _ => Err(format!(
            "{key} '{text}' is not a number of connections from 1 to {MAX_POOL_SIZE}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Config {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn settings(pairs: &[(&str, &str)]) -> Result<Option<Settings>, String> {
        Settings::from_config(&config(pairs), DEFAULT_POOL_SIZE)
    }

    #[test]
    fn a_url_gives_every_part() {
        let s = settings(&[(
            URL,
            "postgres://ann:s3cret@db.example:6543/shop?sslmode=require",
        )])
        .unwrap()
        .unwrap();
        assert_eq!(s.host, "db.example");
        assert_eq!(s.port, 6543);
        assert_eq!(s.user, "ann");
        assert_eq!(s.password.as_deref(), Some("s3cret"));
        assert_eq!(s.database, "shop");
        assert!(s.tls);
        assert_eq!(s.to_string(), "postgres://ann@db.example:6543/shop");
        assert!(!format!("{s:?}").contains("s3cret"));
    }

    #[test]
    fn wasmcloud_keys_work_alone_and_override_the_url() {
        let s = settings(&[
            (HOST, "pg"),
            (PORT, "5433"),
            (USERNAME, "bob"),
            (PASSWORD, "pw"),
            (DATABASE, "app"),
            (TLS_REQUIRED, "true"),
            (WASMCLOUD_POOL_SIZE, "3"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(s.to_string(), "postgres://bob@pg:5433/app");
        assert!(s.tls);
        assert_eq!(s.pool_size, 3);
        let s = settings(&[(URL, "postgres://a@h:1/d"), (PORT, "2"), (POOL_SIZE, "5")])
            .unwrap()
            .unwrap();
        assert_eq!(s.to_string(), "postgres://a@h:2/d");
        assert_eq!(s.pool_size, 5);
        // The database defaults to the user, as libpq's does.
        let s = settings(&[(USERNAME, "carl")]).unwrap().unwrap();
        assert_eq!(s.to_string(), "postgres://carl@127.0.0.1:5432/carl");
        let s = settings(&[(URL, "host=/run/pg port=7 user=u dbname=x")])
            .unwrap()
            .unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.database.as_str()),
            ("/run/pg", 7, "x")
        );
    }

    #[test]
    fn no_connection_key_is_no_connection_config() {
        assert_eq!(settings(&[]), Ok(None));
        assert_eq!(settings(&[(POOL_SIZE, "2")]), Ok(None));
    }

    #[test]
    fn bad_values_are_named() {
        let e = settings(&[(URL, "postgres://u:hunter2@h:notaport/d")]).unwrap_err();
        assert!(e.contains("is not a PostgreSQL URL"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        assert_eq!(
            settings(&[(PORT, "x")]).unwrap_err(),
            "POSTGRES_PORT 'x' is not a port number"
        );
        assert_eq!(
            settings(&[(HOST, "h"), (POOL_SIZE, "0")]).unwrap_err(),
            "pool_size '0' is not a number of connections from 1 to 1000"
        );
    }
}
