//! The normalized application model: what a manifest means once parsed and validated.
//! Hosts and the controller only ever see this form, never raw YAML.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// Configuration values: the merged `properties` of every named config block.
pub type Config = BTreeMap<String, String>;

/// One validated application manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// `metadata.name`: DNS-label-like, `[a-z0-9-]`, at most 63 characters.
    pub name: String,
    /// `metadata.annotations.version`. Empty when the manifest gives none: the
    /// controller then assigns one (a ULID, as wadm does) when it stores the
    /// manifest, so every stored manifest, and every manifest a host is given, has one.
    #[serde(default)]
    pub version: String,
    /// `metadata.annotations.description`, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `spec.components`, in document order.
    pub components: Vec<Component>,
    /// `spec.rollout`: how a new version replaces the running one across hosts;
    /// `None` when not written (then [`Rollout::default`]: one host at a time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,
}

/// `spec.rollout`: how a new version of an app moves across the hosts that run it.
/// Hosts switch in batches of at most [`Rollout::max_unavailable`] hosts; the next
/// batch starts when every host of the last one reports the new version, and a
/// host that cannot run the new version halts the rollout (the controller then
/// deploys the old version again).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Rollout {
    /// `maxUnavailable`: how many hosts switch at once.
    pub max_unavailable: MaxUnavailable,
}

/// How many hosts switch to a new version at once: a number of hosts, or a
/// percentage of the hosts that run the app (rounded down, at least one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaxUnavailable {
    /// `maxUnavailable: 2`: at most this many hosts (at least 1).
    Hosts(u32),
    /// `maxUnavailable: 25%`: at most this percentage (1 to 100) of the hosts.
    Percent(u32),
}

impl Default for MaxUnavailable {
    fn default() -> Self {
        MaxUnavailable::Hosts(1)
    }
}

impl MaxUnavailable {
    /// Hosts that may switch at once when `hosts` hosts run the app: at least 1.
    pub fn hosts_at_once(self, hosts: usize) -> usize {
        let n = match self {
            MaxUnavailable::Hosts(n) => usize::try_from(n).unwrap_or(usize::MAX),
            MaxUnavailable::Percent(p) => {
                hosts.saturating_mul(usize::try_from(p).unwrap_or(100)) / 100
            }
        };
        n.max(1)
    }

    /// As written in a manifest: `2` or `25%`.
    pub fn to_text(self) -> String {
        match self {
            MaxUnavailable::Hosts(n) => n.to_string(),
            MaxUnavailable::Percent(p) => format!("{p}%"),
        }
    }
}

impl Manifest {
    /// The rollout policy in force: `spec.rollout`, or the default.
    pub fn rollout_policy(&self) -> Rollout {
        self.rollout.unwrap_or_default()
    }
}

/// `config` with `layers` resolved (see [`Component::resolve_config`]); `config`
/// alone when there are no layers.
pub fn resolve_config<'a>(
    config: &Config,
    layers: &'a [ConfigLayer],
    named: impl Fn(&str) -> Option<&'a Config>,
) -> Config {
    if layers.is_empty() {
        return config.clone();
    }
    let mut out = Config::new();
    for layer in layers {
        let values = match layer {
            ConfigLayer::Values(v) => Some(v),
            ConfigLayer::Named(name) => named(name),
        };
        for (k, v) in values.into_iter().flatten() {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

/// Whether `name` may name a stored config: 1 to 128 letters, digits, `-`, `_` or
/// `.`, not starting with `.` (it is a NATS KV key).
pub fn valid_config_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && !name.starts_with('.')
        && !name.ends_with('.')
        && !name.contains("..")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Whether `values` may be stored as config named `name`: a valid name, and as
/// many entries, as long keys and values as a manifest's config may have.
pub fn check_named_config(
    name: &str,
    values: &Config,
    limits: &crate::manifest::Limits,
) -> Result<(), String> {
    if !valid_config_name(name) {
        return Err(format!(
            "'{name}' is not a valid config name: {CONFIG_NAME_RULE}"
        ));
    }
    if values.len() > limits.max_config_entries {
        return Err(format!(
            "config '{name}' has {} entries, over the limit of {}",
            values.len(),
            limits.max_config_entries
        ));
    }
    for (key, value) in values {
        if key.is_empty() || key.len() > limits.max_name_bytes {
            return Err(format!(
                "config '{name}': key '{key}' must be 1 to {} bytes long",
                limits.max_name_bytes
            ));
        }
        if value.len() > limits.max_value_bytes {
            return Err(format!(
                "config '{name}': the value of '{key}' is {} bytes long, over the limit of {} bytes",
                value.len(),
                limits.max_value_bytes
            ));
        }
    }
    Ok(())
}

/// The rule [`valid_config_name`] checks, for error messages.
pub const CONFIG_NAME_RULE: &str =
    "use 1 to 128 letters, digits, '-', '_' or '.' (not at either end, no '..')";

/// One entry of `spec.components`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Component {
    /// `name`: DNS-label-like, unique in the app.
    pub name: String,
    /// `type`: component, capability or service.
    pub kind: ComponentKind,
    /// `properties.image`.
    pub image: Image,
    /// `properties.config`, merged in order: the values written in the manifest.
    #[serde(default)]
    pub config: Config,
    /// `properties.config` block by block, when one of them names config stored in
    /// the lattice (`{name}` without `properties`, as wadm writes a reference to
    /// `wash config put`): hosts merge these in order, reading each named config's
    /// current values, so a change reaches the next invocation. Empty when every
    /// block is written out (then `config` is the whole of it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config_layers: Vec<ConfigLayer>,
    /// `properties.secrets`: secrets stored in the lattice that it is given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<SecretRef>,
    /// The scaler trait, if the component has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaler: Option<Scaler>,
    /// The component's `link` traits (links whose source is this component).
    #[serde(default)]
    pub links: Vec<Link>,
    /// How a service is restarted when it crashes (`properties.restart`); services
    /// only, with defaults when not written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<Restart>,
    /// Whether invocations reuse warm instances (`properties.warm`); components
    /// only. Without it every invocation gets a fresh instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm: Option<Warm>,
}

/// A component's warm pool (`properties.warm`): an invocation takes an idle
/// instance from the pool when there is one, and an instance that returned goes
/// back for the next, so guest state (globals, heap) carries over between
/// invocations of one instance. An instance that trapped, ran out of time or was
/// cancelled is dropped, one that served `max_invocations` is retired, and one
/// left unused for `idle_ms` is dropped with the memory it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warm {
    /// Idle instances kept for the next invocations, per placement.
    pub pool: u32,
    /// Invocations one instance serves before it is dropped.
    pub max_invocations: u32,
    /// How long an instance is kept unused, in milliseconds (`idle`).
    #[serde(default = "Warm::default_idle_ms")]
    pub idle_ms: u64,
}

impl Warm {
    /// The most idle instances one placement may keep.
    pub const MAX_POOL: u32 = 256;
    /// `max_invocations` when not written.
    pub const DEFAULT_MAX_INVOCATIONS: u32 = 10_000;
    /// `idle` when not written: one minute.
    pub const DEFAULT_IDLE_MS: u64 = 60_000;
    /// The longest `idle`: one day.
    pub const MAX_IDLE_MS: u64 = 86_400_000;

    fn default_idle_ms() -> u64 {
        Self::DEFAULT_IDLE_MS
    }
}

/// A service's restart policy: after a crash the service waits `backoff_ms`,
/// doubling with each crash in a row up to `max_backoff_ms`; after `max_restarts`
/// crashes in a row it stays down and the app is failed. A run that lasts longer
/// than `max_backoff_ms` ends the row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restart {
    /// Crashes in a row after which the service stays down.
    pub max_restarts: u32,
    /// The wait after the first crash, in milliseconds.
    pub backoff_ms: u64,
    /// The longest wait between restarts, in milliseconds.
    pub max_backoff_ms: u64,
}

impl Default for Restart {
    fn default() -> Self {
        Self {
            max_restarts: 10,
            backoff_ms: 250,
            max_backoff_ms: 30_000,
        }
    }
}

/// One entry of a component's `properties.secrets` (wadm's form): the component
/// asks for `name` (`wasmcloud:secrets/store.get`), the lattice gives it the secret
/// stored as `key` (`lattice secret put KEY`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretRef {
    /// What the component asks for.
    pub name: String,
    /// The stored secret's name.
    pub key: String,
    /// The `spec.policies` entry it names.
    pub policy: String,
    /// That policy's `backend` (kept to write the manifest back; every backend
    /// is the lattice's own store).
    pub backend: String,
}

/// One block of a component's `properties.config`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfigLayer {
    /// Values written in the manifest.
    Values(Config),
    /// Config stored in the lattice under this name (`lattice config put`).
    Named(String),
}

impl Component {
    /// The names of the stored configs this component reads, in order.
    pub fn config_names(&self) -> impl Iterator<Item = &str> {
        self.config_layers.iter().filter_map(|l| match l {
            ConfigLayer::Named(n) => Some(n.as_str()),
            ConfigLayer::Values(_) => None,
        })
    }

    /// The component's config with each named config as `named` gives it now (a
    /// name it does not know adds nothing): the blocks merged in order, a later
    /// value winning.
    pub fn resolve_config<'a>(&'a self, named: impl Fn(&str) -> Option<&'a Config>) -> Config {
        resolve_config(&self.config, &self.config_layers, named)
    }

    /// A capability run as a separate process (an executable from a file, the
    /// artifact store or a registry, not a builtin).
    pub fn is_provider(&self) -> bool {
        self.kind == ComponentKind::Capability && !matches!(self.image, Image::Builtin(_))
    }
}

/// `type:` of a manifest component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ComponentKind {
    /// A Wasm component (`type: component`).
    Component,
    /// A capability: a builtin plugin (`builtin://NAME`) or a provider, a separate
    /// process (`file://PATH` to an executable) (`type: capability`).
    Capability,
    /// A long-running Wasm component exporting `wasi:cli/run`, one per workload of
    /// its app, listening on the workload's private loopback (`type: service`).
    Service,
}

/// Where a component's code comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Image {
    /// `file:///abs/path.wasm`, or `file://relative/path.wasm` as written: the CLI
    /// resolves relative paths against the manifest's folder before deploying. For
    /// a capability, the path of a provider executable.
    File(String),
    /// `builtin://NAME`: a capability compiled into the host.
    Builtin(Builtin),
    /// An OCI artifact, as written minus any `oci://`: `registry/repository:tag`,
    /// `registry/repository@sha256:<hex>`, or both. The controller pins a tag to
    /// its digest when it stores a version, so every host runs the same bytes.
    Oci(String),
    /// `artifact://sha256:<hex>`: bytes in the lattice's own artifact store,
    /// fetched over NATS by digest (the CLI uploads `file://` images on deploy).
    Artifact(String),
    /// `bundled://NAME`: a provider executable shipped with lattice (found in the
    /// host's `--provider-dir`, or next to the `lattice` binary). wasmCloud's
    /// `ghcr.io/wasmcloud/keyvalue-redis` and `sqldb-postgres` images read as these.
    Bundled(Bundled),
}

impl Image {
    /// The image as written in a manifest (`file://…`, `builtin://…`, the OCI
    /// reference, `artifact://sha256:…`).
    pub fn to_uri(&self) -> String {
        match self {
            Image::File(path) => format!("file://{path}"),
            Image::Builtin(b) => format!("builtin://{}", b.name()),
            Image::Oci(reference) => reference.clone(),
            Image::Artifact(digest) => format!("artifact://{digest}"),
            Image::Bundled(b) => format!("bundled://{}", b.name()),
        }
    }

    /// Whether the image is code the host loads (a Wasm component or a provider
    /// executable), not a builtin.
    pub fn is_code(&self) -> bool {
        !matches!(self, Image::Builtin(_))
    }
}

/// The capabilities compiled into every host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Builtin {
    /// `wasi:http/incoming-handler` server; links from it carry `address`.
    HttpServer,
    /// `wasi:http/outgoing-handler` client; link config `allowed_hosts`.
    HttpClient,
    /// `wasi:keyvalue` on NATS JetStream KV.
    KeyvalueNats,
    /// `wasi:keyvalue` in host memory.
    KeyvalueMemory,
    /// `wasmcloud:messaging@0.2.0` on the lattice's NATS: links to it carry
    /// `consumer`, links from it carry `handler` and `subscriptions`.
    MessagingNats,
    /// `wasi:blobstore@0.2.0-draft` on the host's filesystem (data stays on the host).
    BlobstoreFs,
    /// `wasi:blobstore@0.2.0-draft` on the NATS JetStream object store (lattice-wide).
    BlobstoreNats,
}

impl Builtin {
    /// Every builtin, for error messages and the schema.
    pub const ALL: [Builtin; 7] = [
        Builtin::HttpServer,
        Builtin::HttpClient,
        Builtin::KeyvalueNats,
        Builtin::KeyvalueMemory,
        Builtin::MessagingNats,
        Builtin::BlobstoreFs,
        Builtin::BlobstoreNats,
    ];

    /// The `namespace:package` a link to this builtin must name, for the builtins
    /// that serve exactly one package.
    pub fn serves(self) -> Option<&'static str> {
        match self {
            Builtin::KeyvalueNats | Builtin::KeyvalueMemory => Some("wasi:keyvalue"),
            Builtin::BlobstoreFs | Builtin::BlobstoreNats => Some("wasi:blobstore"),
            Builtin::HttpServer | Builtin::HttpClient | Builtin::MessagingNats => None,
        }
    }

    /// The name after `builtin://`.
    pub fn name(self) -> &'static str {
        match self {
            Builtin::HttpServer => "http-server",
            Builtin::HttpClient => "http-client",
            Builtin::KeyvalueNats => "keyvalue-nats",
            Builtin::KeyvalueMemory => "keyvalue-memory",
            Builtin::MessagingNats => "messaging-nats",
            Builtin::BlobstoreFs => "blobstore-fs",
            Builtin::BlobstoreNats => "blobstore-nats",
        }
    }

    /// Parse the name after `builtin://`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.name() == name)
    }
}

/// The provider executables shipped with lattice (built from `providers/`), run as
/// processes like any provider but named rather than given as a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Bundled {
    /// `wasi:keyvalue` on Redis; link config `url` (`providers/keyvalue-redis`).
    KeyvalueRedis,
    /// `wasmcloud:postgres` on PostgreSQL (`providers/sqldb-postgres`).
    SqldbPostgres,
}

impl Bundled {
    /// Every bundled provider, for error messages and the schema.
    pub const ALL: [Bundled; 2] = [Bundled::KeyvalueRedis, Bundled::SqldbPostgres];

    /// The name after `bundled://`, which is also the executable's file name.
    pub fn name(self) -> &'static str {
        match self {
            Bundled::KeyvalueRedis => "keyvalue-redis",
            Bundled::SqldbPostgres => "sqldb-postgres",
        }
    }

    /// Parse the name after `bundled://`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.name() == name)
    }
}

/// A scaler trait.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Scaler {
    /// `spreadscaler`: `instances` split across `spread` entries by weight.
    Spreadscaler {
        /// Instances in all, split across the spread.
        instances: u32,
        /// Where they go; none: anywhere.
        #[serde(default)]
        spread: Vec<Spread>,
    },
    /// `daemonscaler`: `instances` on every eligible host.
    Daemonscaler {
        /// Instances on every eligible host.
        instances: u32,
        /// Which hosts are eligible; none: every host.
        #[serde(default)]
        spread: Vec<Spread>,
    },
}

impl Scaler {
    /// The `instances` property.
    pub fn instances(&self) -> u32 {
        match self {
            Scaler::Spreadscaler { instances, .. } | Scaler::Daemonscaler { instances, .. } => {
                *instances
            }
        }
    }

    /// The spread entries.
    pub fn spread(&self) -> &[Spread] {
        match self {
            Scaler::Spreadscaler { spread, .. } | Scaler::Daemonscaler { spread, .. } => spread,
        }
    }
}

/// One entry of a scaler's `spread`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spread {
    /// A name unique in the scaler.
    pub name: String,
    /// Labels a host must carry, all of them, to be eligible.
    #[serde(default)]
    pub requirements: BTreeMap<String, String>,
    /// Relative weight, default 100.
    pub weight: u32,
}

/// A `link` trait: the source's import `namespace:package/interfaces` (under link
/// `name`) goes to `target`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// The manifest component the link points at.
    pub target: String,
    /// `example` in `example:shop/orders`.
    pub namespace: String,
    /// `shop` in `example:shop/orders`.
    pub package: String,
    /// The interfaces the link carries, e.g. `[store, atomics]`.
    pub interfaces: Vec<String>,
    /// The link name; `default` unless given.
    pub name: String,
    /// Config handed to the target side (`target.config`, or legacy `target_config`).
    #[serde(default)]
    pub target_config: Config,
    /// Config handed to the source side (`source.config`, or legacy `source_config`).
    #[serde(default)]
    pub source_config: Config,
    /// Secrets handed to the target side (`target.secrets`): a provider gets them
    /// with the link, a Wasm component through `wasmcloud:secrets`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_secrets: Vec<SecretRef>,
    /// Secrets handed to the source side (`source.secrets`), as `target_secrets`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_secrets: Vec<SecretRef>,
}

/// The link name used when a manifest gives none.
pub const DEFAULT_LINK_NAME: &str = "default";

impl Manifest {
    /// The component named `name`.
    pub fn component(&self, name: &str) -> Option<&Component> {
        self.components.iter().find(|c| c.name == name)
    }

    /// Whether `name` is a provider: a capability run as a process.
    pub fn is_provider(&self, name: &str) -> bool {
        self.component(name).is_some_and(Component::is_provider)
    }

    /// The app's service, if it has one (at most one).
    pub fn service(&self) -> Option<&Component> {
        self.components
            .iter()
            .find(|c| c.kind == ComponentKind::Service)
    }

    /// Every secret component `name` is given: its own `properties.secrets`, then
    /// those of its side of each link it is a side of.
    pub fn secrets_of<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a SecretRef> {
        let own = self.component(name).into_iter().flat_map(|c| &c.secrets);
        let links = self.links().flat_map(move |(source, link)| {
            let target = if link.target == name {
                &link.target_secrets[..]
            } else {
                &[]
            };
            let source = if source.name == name {
                &link.source_secrets[..]
            } else {
                &[]
            };
            target.iter().chain(source)
        });
        own.chain(links)
    }

    /// Every link in the manifest with its source component.
    pub fn links(&self) -> impl Iterator<Item = (&Component, &Link)> {
        self.components
            .iter()
            .flat_map(|c| c.links.iter().map(move |l| (c, l)))
    }
}

impl Link {
    /// Whether this link carries `namespace:package/interface`.
    pub fn carries(&self, namespace: &str, package: &str, interface: &str) -> bool {
        self.namespace == namespace
            && self.package == package
            && self.interfaces.iter().any(|i| i == interface)
    }
}

/// A link's `timeout` source config: `250ms`, `5s`, `2m`, or plain milliseconds.
pub fn parse_timeout(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (digits, unit) = text
        .find(|c: char| !c.is_ascii_digit())
        .map_or((text, "ms"), |i| (&text[..i], &text[i..]));
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("timeout '{text}' is not a number with ms, s or m"))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        _ => {
            return Err(format!(
                "timeout '{text}' has unit '{unit}'; use ms, s or m"
            ))
        }
    };
    if d.is_zero() {
        return Err(format!("timeout '{text}' must be more than zero"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, &str)]) -> Config {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn config_blocks_merge_in_order_with_named_config_at_its_place() {
        let written = values(&[("a", "1"), ("b", "1")]);
        let layers = vec![
            ConfigLayer::Values(values(&[("a", "1"), ("b", "1")])),
            ConfigLayer::Named("db".into()),
            ConfigLayer::Values(values(&[("b", "3")])),
            ConfigLayer::Named("missing".into()),
        ];
        let db = values(&[("a", "2"), ("b", "2"), ("c", "2")]);
        let lookup = |name: &str| (name == "db").then_some(&db);
        assert_eq!(
            resolve_config(&written, &layers, lookup),
            values(&[("a", "2"), ("b", "3"), ("c", "2")])
        );
        // Without layers, the written values alone.
        assert_eq!(resolve_config(&written, &[], lookup), written);
    }

    #[test]
    fn config_names_are_kv_keys() {
        for ok in ["db", "site-settings", "a.b_c", "X9"] {
            assert!(valid_config_name(ok), "{ok}");
        }
        let long = "a".repeat(129);
        for bad in ["", ".a", "a.", "a..b", "a b", "a/b", "a*", long.as_str()] {
            assert!(!valid_config_name(bad), "{bad}");
        }
        let limits = crate::manifest::Limits::default();
        assert!(check_named_config("db", &values(&[("url", "x")]), &limits).is_ok());
        let err = check_named_config("db", &values(&[("", "x")]), &limits).unwrap_err();
        assert!(err.contains("key '' must be 1 to 253 bytes"), "{err}");
    }

    #[test]
    fn timeouts_parse_with_units() {
        assert_eq!(parse_timeout("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_timeout("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_timeout("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_timeout("1500"), Ok(Duration::from_millis(1500)));
        assert!(parse_timeout("0s").unwrap_err().contains("more than zero"));
        assert!(parse_timeout("5h").unwrap_err().contains("unit 'h'"));
        assert!(parse_timeout("soon").is_err());
    }
}
