//! Host settings, with defaults a user can change from the command line.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Everything a host needs to know before it starts.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// The lattice to join.
    pub lattice: String,
    /// User labels (`--label k=v`); `hostcore.*` labels are added automatically.
    pub labels: BTreeMap<String, String>,
    /// Limits applied to every invocation.
    pub limits: Limits,
    /// How often the host publishes its heartbeat.
    pub heartbeat_interval: Duration,
    /// Where the host keeps fetched artifacts (`<dir>/artifacts/sha256/<hex>`), so
    /// a restart fetches nothing it has; `None`: a temporary folder for the
    /// process's life.
    pub cache_dir: Option<PathBuf>,
    /// Fetching images: deadline, concurrency, the largest artifact
    /// (`allow_file_load` below decides `file://`).
    pub artifacts: lattice_artifacts::FetchConfig,
    /// OCI registries: plain HTTP only for the ones listed, logins, the largest
    /// layer, the deadline of one operation.
    pub registry: lattice_artifacts::oci::RegistrySettings,
    /// Where the host keeps what must outlive a restart: its command fence (the
    /// highest lease term and latest command it obeyed, `command-fence-<id>.json`,
    /// see [`crate::fence`]). `None`: kept in memory only, so after a restart the
    /// host relies on the commands' age bound alone. Useful only with a kept
    /// identity (`key_seed`).
    pub state_dir: Option<PathBuf>,
    /// Use the pooling allocator when the machine can reserve it.
    pub pooling: bool,
    /// The nkey seed of the host's identity; a fresh key when `None`.
    pub key_seed: Option<String>,
    /// How long a draining host lets in-flight invocations finish.
    pub drain_timeout: Duration,
    /// Linked calls: locality preference, default timeout, size limit.
    pub links: crate::links::settings::LinkSettings,
    /// The NATS URL handed to capability providers this host starts (`None`: the
    /// host cannot run providers).
    pub provider_nats_url: Option<String>,
    /// TLS files handed to those providers with the URL (the CA to trust, the
    /// client certificate and key): the host's own `--nats-tls-*` files. Paths on
    /// this machine; absolute, since a provider may run in another directory.
    pub provider_nats_tls: lattice_protocol::nats_tls::NatsTls,
    /// Mints each provider its own NATS user; `None` when the lattice's NATS has
    /// no auth (providers then connect without credentials).
    pub provider_signer: Option<crate::provider::signer::ProviderSigner>,
    /// Where `builtin://blobstore-fs` keeps its files (`None`: not on this host).
    pub blobstore_dir: Option<PathBuf>,
    /// JetStream replicas of the buckets this host creates for apps
    /// (`builtin://blobstore-nats` containers): 1 on a single server, 3 on a
    /// three-node cluster, as the lattice's `--replicas`.
    pub bucket_replicas: usize,
    /// Bounds of the built-in HTTP server's listeners (a link may override them).
    pub http_server: HttpServerLimits,
    /// Public lattice signing keys (`C…`) whose signed commands this host obeys.
    /// With none, the host obeys no command at all.
    pub trust: Vec<String>,
    /// How old a command may be, and how many recent ones are remembered.
    pub commands: lattice_protocol::trust::VerifierConfig,
    /// Whether `file://` images (components and provider executables) may run:
    /// on for a dev lattice on one machine, off for a host of a cluster.
    pub allow_file_load: bool,
    /// Whether provider executables may come from images (`artifact://`, OCI):
    /// native code chosen by whoever may deploy. Off unless the operator opts in
    /// (`lattice up` does); bundled providers are always allowed.
    pub allow_provider_images: bool,
    /// When set, provider executables run only from inside this folder.
    pub provider_dir: Option<PathBuf>,
    /// The accounts (`A…`) whose signatures admit a Wasm component: when any is
    /// given, a component runs only if its embedded claims (wasmCloud's, as
    /// `lattice sign` and `wash claims sign` write them) are signed by one of
    /// them, bind its code and are within their dates. Empty: no signature needed.
    pub trusted_issuers: lattice_artifacts::claims::TrustedIssuers,
    /// The seed (`SV…`) of a join token: its proof goes with every report, for a
    /// controller that admits hosts by token.
    pub join_token: Option<String>,
    /// The connection `builtin://messaging-nats` uses for guests' messages, e.g. a
    /// user of another NATS account, so guests' traffic never shares the lattice's
    /// (`None`: the host's own connection).
    pub messaging_nats: Option<async_nats::Client>,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            lattice: "default".to_string(),
            labels: BTreeMap::new(),
            limits: Limits::default(),
            heartbeat_interval: Duration::from_secs(1),
            cache_dir: None,
            artifacts: lattice_artifacts::FetchConfig::default(),
            registry: lattice_artifacts::oci::RegistrySettings::default(),
            state_dir: None,
            pooling: true,
            key_seed: None,
            drain_timeout: Duration::from_secs(30),
            links: crate::links::settings::LinkSettings::default(),
            provider_nats_url: None,
            provider_nats_tls: lattice_protocol::nats_tls::NatsTls::default(),
            provider_signer: None,
            blobstore_dir: None,
            bucket_replicas: 1,
            http_server: HttpServerLimits::default(),
            trust: Vec::new(),
            commands: lattice_protocol::trust::VerifierConfig::default(),
            allow_file_load: false,
            allow_provider_images: false,
            provider_dir: None,
            trusted_issuers: lattice_artifacts::claims::TrustedIssuers::default(),
            join_token: None,
            messaging_nats: None,
        }
    }
}

/// Per-invocation limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory one instance may grow to, in bytes.
    pub max_memory_bytes: usize,
    /// Wall-clock time one invocation may take, host calls included.
    pub execution_timeout: Duration,
    /// How many requests may wait for a free instance slot of one component before
    /// new ones are refused (HTTP 503).
    pub max_queued: usize,
    /// How long a request may wait for a free slot before it is refused.
    pub queue_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_memory_bytes: 128 << 20,
            execution_timeout: Duration::from_secs(30),
            max_queued: 1000,
            queue_timeout: Duration::from_secs(10),
        }
    }
}

/// The labels every host carries besides the user's.
pub fn automatic_labels() -> BTreeMap<String, String> {
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".to_string());
    BTreeMap::from([
        ("hostcore.os".to_string(), std::env::consts::OS.to_string()),
        (
            "hostcore.arch".to_string(),
            std::env::consts::ARCH.to_string(),
        ),
        ("hostcore.hostname".to_string(), hostname),
    ])
}

/// Bounds of each `builtin://http-server` listener. These are the defaults; an
/// http-server link may override each in its source config, beside `address`
/// (`header_read_timeout: 5s`, `max_connections: 256`, `max_body_bytes: 1048576`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpServerLimits {
    /// How long a client may take to send a request's headers (the request line
    /// included) before its connection is closed (hyper's `header_read_timeout`).
    pub header_read_timeout: Duration,
    /// Open connections per listener. Over the cap, a new connection is accepted
    /// and closed at once, so the client fails fast instead of queuing unseen.
    pub max_connections: usize,
    /// The largest request body, in bytes. A request declaring more in its
    /// `Content-Length` is answered 413 without invoking the component; a streamed
    /// (chunked) body is cut when it passes the limit: the guest's read fails and,
    /// unless the guest had already answered, the answer is 413.
    pub max_body_bytes: u64,
}

impl Default for HttpServerLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            max_connections: 1024,
            max_body_bytes: 16 << 20,
        }
    }
}
