//! The long-running commands: `up`, `host` and `controller`.

use crate::nats_server::{self, NatsServer};
use anyhow::Context;
use clap::Args;
use lattice_host::links::LinkSettings;
use lattice_host::{Host, HostConfig, Limits};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Settings of a host (shared by `lattice host` and `lattice up`).
#[derive(Debug, Args)]
pub struct HostOptions {
    /// A label for placement, `key=value`; repeat for more.
    #[arg(long = "label", short = 'l', value_parser = parse_label)]
    labels: Vec<(String, String)>,
    /// Seconds between heartbeats.
    #[arg(long, default_value_t = 1.0)]
    heartbeat_interval: f64,
    /// Linear memory one component instance may use, in MiB.
    #[arg(long, default_value_t = 128)]
    max_memory_mb: usize,
    /// Seconds one invocation may run before it is stopped.
    #[arg(long, default_value_t = 30.0)]
    execution_timeout: f64,
    /// Requests that may wait for a free instance of one component before new
    /// ones are refused with 503.
    #[arg(long, default_value_t = 1000)]
    max_queued: usize,
    /// Seconds a request may wait for a free instance.
    #[arg(long, default_value_t = 10.0)]
    queue_timeout: f64,
    /// Do not use the pooling allocator.
    #[arg(long)]
    no_pooling: bool,
    /// Seconds a stopping host lets in-flight invocations finish.
    #[arg(long, default_value_t = 30.0)]
    drain_timeout: f64,
    /// Label keys whose values a linked call prefers to share with the host that
    /// answers it, most specific first; comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "zone,region")]
    locality_labels: Vec<String>,
    /// Seconds a linked call may take when its link sets no `timeout`.
    #[arg(long, default_value_t = 10.0)]
    call_timeout: f64,
    /// Seconds a linked call keeps trying while no instance anywhere subscribes
    /// to it (a NATS connection, route or leaf link reconnecting) before it
    /// fails with "no instance runs anywhere"; never past the call's timeout.
    #[arg(long, default_value_t = 2.0)]
    call_responder_wait: f64,
    /// The largest arguments or results of one linked call, in MiB.
    #[arg(long, default_value_t = 64)]
    max_call_mb: usize,
    /// The NATS URL given to capability providers this host starts (with their own
    /// credentials, never the host's); default: the host's own `--nats-url`.
    #[arg(long)]
    provider_nats_url: Option<String>,
    /// Where `builtin://blobstore-fs` keeps the apps' containers (a folder per
    /// app); default: `blobstore/` in the state directory (`lattice up
    /// --state-dir`, else ~/.local/state/lattice).
    #[arg(long)]
    blobstore_dir: Option<PathBuf>,
    /// JetStream replicas of the app buckets this host creates
    /// (`builtin://blobstore-nats` containers, `builtin://keyvalue-nats`
    /// buckets): 3 on a three-node cluster, as the
    /// controller's --replicas (`lattice up` uses its own --replicas).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=5))]
    app_bucket_replicas: u8,
    /// An account nkey seed file (`SA...`, the account's key or one of its
    /// signing keys) to mint every provider process its own NATS user with,
    /// allowed only the provider's own subjects; for a NATS with decentralized
    /// auth. Without it, providers connect without credentials.
    #[arg(long, env = "LATTICE_PROVIDER_SIGNING_KEY")]
    provider_signing_key: Option<PathBuf>,
    /// The account's public key (`A...`) when `--provider-signing-key` is one of
    /// its signing keys; default: the account of `--nats-creds`, else the key's
    /// own.
    #[arg(long)]
    provider_account: Option<String>,
    /// `--provider-signing-key` is a scoped signing key of the account (as
    /// `lattice nats-auth init` writes `provider.nk`): the server gives the users
    /// it signs a provider's permissions and nothing more.
    #[arg(long)]
    provider_signing_key_scoped: bool,
    /// The host's identity: an nkey seed file (`SN...`), created on first use, so
    /// the host keeps its id (and its id-bound NATS credentials) across restarts.
    /// Default: a new identity each start.
    #[arg(long, env = "LATTICE_HOST_KEY_FILE")]
    key: Option<PathBuf>,
    /// A lattice signing key (public, `C...`) whose signed commands this host
    /// obeys; repeat for more. A host trusting none obeys no command. (`lattice
    /// up` trusts its own.)
    #[arg(
        long = "trust",
        env = "LATTICE_TRUST",
        value_delimiter = ',',
        value_parser = parse_trust
    )]
    trust: Vec<String>,
    /// Run `file://` images (components and provider executables from this
    /// machine's disk). Off by default: a cluster's hosts run what the lattice
    /// ships them. (`lattice up` turns it on.)
    #[arg(long)]
    allow_file_load: bool,
    /// Run provider executables shipped as images (`artifact://` from the
    /// lattice's store, OCI): native code, chosen by whoever may deploy, run
    /// after its digest checks out. Off by default; bundled providers from
    /// --provider-dir need no opt-in. (`lattice up` turns it on.)
    #[arg(long)]
    allow_provider_images: bool,
    /// Run only Wasm components signed by this issuer: an account's public key
    /// (`A...`, from `lattice keys new account`) whose claims are embedded in the
    /// component by `lattice sign` (or wasmCloud's `wash claims sign`), bind its
    /// code and are within their dates; repeat (or comma-separate) for more.
    /// Other components are refused, naming why. Without any, components need
    /// no signature. Provider executables carry no claims:
    /// --allow-provider-images and --provider-dir govern them.
    #[arg(
        long = "trust-issuer",
        env = "LATTICE_TRUST_ISSUER",
        value_delimiter = ',',
        value_name = "ACCOUNT",
        value_parser = parse_issuer
    )]
    trust_issuers: Vec<String>,
    /// Run provider executables only from inside this folder. Bundled providers
    /// (`bundled://keyvalue-redis`, `sqldb-postgres`, and wasmCloud's
    /// ghcr.io/wasmcloud images that read as them) are looked up here by name;
    /// without this flag, next to the lattice binary.
    #[arg(long)]
    provider_dir: Option<PathBuf>,
    /// OCI registries: plain-HTTP opt-in, logins, deadlines, size bound.
    #[command(flatten)]
    registry: crate::push::RegistryArgs,
    /// A join token's seed file (`SV...`, from `lattice keys new join`): its proof
    /// goes with every report, for controllers that admit hosts by token.
    #[arg(long, env = "LATTICE_JOIN_TOKEN_FILE")]
    join_token: Option<PathBuf>,
    /// A NATS URL for built-in messaging (`builtin://messaging-nats`): guests'
    /// messages go over a connection of their own, e.g. into another account;
    /// default: the host's own connection (guests are kept off the lattice's and
    /// NATS's subjects either way).
    #[arg(long)]
    messaging_nats_url: Option<String>,
    /// Seconds a client of the built-in HTTP server may take to send a request's
    /// headers before its connection is closed (a link's `header_read_timeout`
    /// overrides it).
    #[arg(long, default_value_t = 10.0)]
    http_header_timeout: f64,
    /// Open connections per HTTP listener; more are closed at once (a link's
    /// `max_connections` overrides it).
    #[arg(long, default_value_t = 1024)]
    http_max_connections: usize,
    /// The largest HTTP request body in MiB; larger ones are answered 413 (a
    /// link's `max_body_bytes` overrides it).
    #[arg(long, default_value_t = 16)]
    http_max_body_mb: u64,
    /// The `.creds` file for `--messaging-nats-url`.
    #[arg(long, requires = "messaging_nats_url")]
    messaging_nats_creds: Option<PathBuf>,
    /// The CA file (PEM) built-in messaging's connection trusts; default:
    /// --nats-tls-ca. Given (or with a `tls://` URL), TLS is required.
    #[arg(
        long,
        env = "LATTICE_MESSAGING_NATS_TLS_CA",
        requires = "messaging_nats_url"
    )]
    messaging_nats_tls_ca: Option<PathBuf>,
    /// The client certificate (PEM) of built-in messaging's connection; default:
    /// --nats-tls-cert.
    #[arg(
        long,
        env = "LATTICE_MESSAGING_NATS_TLS_CERT",
        requires = "messaging_nats_url"
    )]
    messaging_nats_tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --messaging-nats-tls-cert; default:
    /// --nats-tls-key.
    #[arg(
        long,
        env = "LATTICE_MESSAGING_NATS_TLS_KEY",
        requires = "messaging_nats_url"
    )]
    messaging_nats_tls_key: Option<PathBuf>,
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("label '{s}' is not key=value")),
    }
}

/// An account public key, refused as the flag is read (before NATS is dialled).
/// A lattice signing key to trust, checked before the host connects; the
/// whitespace around it dropped (a key read from a file or a Kubernetes secret
/// ends with a newline).
fn parse_trust(s: &str) -> Result<String, String> {
    let key = s.trim();
    lattice_protocol::trust::check_lattice_key(key).map_err(|e| e.to_string())?;
    Ok(key.to_owned())
}

fn parse_issuer(s: &str) -> Result<String, String> {
    let key = s.trim();
    lattice_artifacts::claims::TrustedIssuers::new([key]).map_err(|e| e.to_string())?;
    Ok(key.to_owned())
}

fn seconds(what: &str, s: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(s)
        .with_context(|| format!("--{what} must be a positive number of seconds"))
}

impl HostOptions {
    /// The connection built-in messaging uses, when it has one of its own: its own
    /// TLS files, each defaulting to the lattice connection's (`lattice`).
    async fn messaging_nats(
        &self,
        lattice: &crate::Nats,
    ) -> anyhow::Result<Option<async_nats::Client>> {
        let Some(url) = &self.messaging_nats_url else {
            return Ok(None);
        };
        let creds = match &self.messaging_nats_creds {
            Some(path) => Some(std::fs::read_to_string(path).with_context(|| {
                format!("cannot read --messaging-nats-creds {}", path.display())
            })?),
            None => None,
        };
        let or = |own: &Option<PathBuf>, lattice: &Option<PathBuf>| own.clone().or(lattice.clone());
        let nats = crate::Nats {
            url: url.clone(),
            creds,
            tls: lattice_protocol::nats_tls::NatsTls {
                ca_file: or(&self.messaging_nats_tls_ca, &lattice.tls.ca_file),
                cert_file: or(&self.messaging_nats_tls_cert, &lattice.tls.cert_file),
                key_file: or(&self.messaging_nats_tls_key, &lattice.tls.key_file),
            },
        };
        Ok(Some(
            crate::connect(&nats)
                .await
                .context("built-in messaging's NATS")?,
        ))
    }

    fn config(
        &self,
        lattice: &str,
        nats: &crate::Nats,
        state_dir: Option<&std::path::Path>,
        key_seed: Option<String>,
    ) -> anyhow::Result<HostConfig> {
        let cache_dir = state_dir.map(|d| d.join("cache"));
        let blobstore_dir = match (&self.blobstore_dir, state_dir) {
            (Some(dir), _) => Some(dir.clone()),
            (None, Some(state)) => Some(state.join("blobstore")),
            (None, None) => default_state_dir().ok().map(|d| d.join("blobstore")),
        };
        let provider_signer = match &self.provider_signing_key {
            Some(path) => {
                let seed = std::fs::read_to_string(path).with_context(|| {
                    format!("cannot read --provider-signing-key {}", path.display())
                })?;
                let account = self.provider_account.clone().or_else(|| {
                    let creds = nats.creds.as_deref()?;
                    lattice_protocol::creds::account_of(lattice_protocol::creds::creds_jwt(creds)?)
                });
                Some(
                    lattice_host::provider::ProviderSigner::new(&seed, account)
                        .map_err(anyhow::Error::msg)?
                        .scoped(self.provider_signing_key_scoped),
                )
            }
            None => None,
        };
        Ok(HostConfig {
            lattice: lattice.to_string(),
            labels: self.labels.iter().cloned().collect::<BTreeMap<_, _>>(),
            limits: Limits {
                max_memory_bytes: self.max_memory_mb << 20,
                execution_timeout: seconds("execution-timeout", self.execution_timeout)?,
                max_queued: self.max_queued,
                queue_timeout: seconds("queue-timeout", self.queue_timeout)?,
            },
            heartbeat_interval: seconds("heartbeat-interval", self.heartbeat_interval)?,
            cache_dir,
            pooling: !self.no_pooling,
            key_seed,
            drain_timeout: seconds("drain-timeout", self.drain_timeout)?,
            links: LinkSettings {
                locality_keys: self.locality_labels.clone(),
                call_timeout: seconds("call-timeout", self.call_timeout)?,
                max_call_bytes: self.max_call_mb << 20,
                responder_wait: seconds("call-responder-wait", self.call_responder_wait)?,
            },
            provider_nats_url: Some(
                self.provider_nats_url
                    .clone()
                    .unwrap_or_else(|| nats.url.clone()),
            ),
            // The host's own TLS files, absolute: a provider runs in another process.
            provider_nats_tls: nats
                .tls
                .absolute(&std::env::current_dir().context("cannot read the current directory")?),
            provider_signer,
            blobstore_dir,
            bucket_replicas: usize::from(self.app_bucket_replicas),
            http_server: lattice_host::config::HttpServerLimits {
                header_read_timeout: seconds("http-header-timeout", self.http_header_timeout)?,
                max_connections: self.http_max_connections.max(1),
                max_body_bytes: self.http_max_body_mb.saturating_mul(1 << 20),
            },
            trust: self.trust.clone(),
            allow_file_load: self.allow_file_load,
            allow_provider_images: self.allow_provider_images,
            provider_dir: self.provider_dir.clone(),
            trusted_issuers: lattice_artifacts::claims::TrustedIssuers::new(&self.trust_issuers)
                .context("--trust-issuer")?,
            registry: self.registry.settings()?,
            join_token: match &self.join_token {
                Some(path) => Some(crate::keys::read_seed(path)?),
                None => None,
            },
            ..HostConfig::default()
        })
    }
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct HostArgs {
    #[command(subcommand)]
    action: Option<HostAction>,
    /// Serve /livez, /readyz and /metrics (Prometheus) over plain HTTP here,
    /// e.g. 127.0.0.1:9090 (port 0: any free one, printed at start). Off unless
    /// set.
    #[arg(long, env = "LATTICE_ADMIN_ADDRESS", value_name = "ADDR")]
    admin_address: Option<std::net::SocketAddr>,
    #[command(flatten)]
    host: HostOptions,
    /// Where the host keeps what must outlive a restart: its command fence (the
    /// highest lease term it obeyed, so a deposed controller's late commands stay
    /// refused). Default: the user's state dir (~/.local/state/lattice) when
    /// --key keeps the host's identity; none otherwise (a new identity has
    /// nothing to keep).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Where the host keeps artifacts it fetched (`DIR/artifacts/sha256/<hex>`,
    /// each checked against its digest), so a restart fetches nothing it has.
    /// Default: `cache` in --state-dir when there is one, else a temporary folder.
    #[arg(long)]
    cache_dir: Option<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
enum HostAction {
    /// Change a running host's labels: `lattice host label HOST k=v ... [--unset k]`.
    /// HOST is a host id or a unique prefix of one (see `lattice get hosts`).
    Label {
        host: String,
        /// Labels to set, `key=value`.
        #[arg(value_parser = parse_label)]
        labels: Vec<(String, String)>,
        /// Label keys to remove.
        #[arg(long)]
        unset: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub struct ControllerArgs {
    /// Serve /livez, /readyz and /metrics (Prometheus) over plain HTTP here,
    /// e.g. 127.0.0.1:9090 (port 0: any free one, printed at start). Off unless
    /// set.
    #[arg(long, env = "LATTICE_ADMIN_ADDRESS", value_name = "ADDR")]
    admin_address: Option<std::net::SocketAddr>,
    /// Seconds between the hosts' heartbeats (as given to `lattice host
    /// --heartbeat-interval`).
    #[arg(long, default_value_t = 1.0)]
    host_heartbeat_interval: f64,
    /// A host is lost after this many heartbeat intervals without a beat.
    #[arg(long, default_value_t = 3)]
    missed_beats: u32,
    /// Seconds between reconcile passes when nothing changed.
    #[arg(long, default_value_t = 0.5)]
    tick: f64,
    /// Seconds a leader's lease lasts unrenewed: the failover time when several
    /// controllers run.
    #[arg(long, default_value_t = 3.0)]
    lease_ttl: f64,
    /// The lattice signing key's seed file (`SC...`, from `lattice keys new
    /// lattice`): the controller signs every host command with it. Or the seed
    /// itself in LATTICE_SIGNING_KEY.
    #[arg(long, env = "LATTICE_SIGNING_KEY_FILE")]
    signing_key: Option<PathBuf>,
    /// The secrets key's seed file (`SX...`, from `lattice keys new secrets`):
    /// stored secrets are sealed to it, and sealed again for each host that runs
    /// what uses them. Every controller of the lattice needs the same one; without
    /// it, secrets are refused.
    #[arg(long, env = "LATTICE_SECRETS_KEY_FILE")]
    secrets_key: Option<PathBuf>,
    /// Admit only this host key (`N...`) to the lattice; repeat for more. Without
    /// --admit, --admit-file and --join-key, any host with a valid signature is
    /// admitted.
    #[arg(long = "admit")]
    admit: Vec<String>,
    /// A file of host keys to admit, one per line (`#` comments allowed).
    #[arg(long)]
    admit_file: Option<PathBuf>,
    /// Admit hosts that hold the join token with this public key (`V...`).
    #[arg(long)]
    join_key: Option<String>,
    /// OCI registries the controller resolves image tags against (it pins every
    /// deployed tag to its digest): plain-HTTP opt-in, logins, deadlines.
    #[command(flatten)]
    registry: crate::push::RegistryArgs,
    #[command(flatten)]
    storage: StorageArgs,
}

/// Replicas and size limits of the lattice's JetStream buckets.
#[derive(Debug, Clone, Args)]
pub struct StorageArgs {
    /// JetStream replicas of the lattice's state bucket and artifact store: 1 on a
    /// single nats-server, 3 on a three-node cluster (which then survives losing a
    /// node). Buckets are created with it; the controller refuses to start on a
    /// bucket with fewer.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=5))]
    replicas: u8,
    /// Size limit of the state bucket in MiB, set when it is created.
    #[arg(long, default_value_t = 64)]
    state_max_mib: u64,
    /// Size limit of the artifact store in MiB, set when it is created.
    #[arg(long, default_value_t = 1024)]
    artifacts_max_mib: u64,
}

impl StorageArgs {
    fn config(&self) -> lattice_controller::StorageConfig {
        lattice_controller::StorageConfig {
            replicas: usize::from(self.replicas),
            state_max_bytes: self.state_max_mib.saturating_mul(1 << 20),
            artifacts_max_bytes: self.artifacts_max_mib.saturating_mul(1 << 20),
        }
    }
}

impl ControllerArgs {
    fn config(&self) -> anyhow::Result<lattice_controller::ControllerConfig> {
        let lease_ttl = seconds("lease-ttl", self.lease_ttl)?;
        let signing_key = match (&self.signing_key, std::env::var("LATTICE_SIGNING_KEY")) {
            (Some(path), _) => Some(crate::keys::read_seed(path)?),
            (None, Ok(seed)) if !seed.trim().is_empty() => Some(seed.trim().to_owned()),
            _ => None,
        };
        let mut admitted = self.admit.clone();
        if let Some(path) = &self.admit_file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read --admit-file {}", path.display()))?;
            admitted.extend(
                text.lines()
                    .map(|l| l.split('#').next().unwrap_or("").trim())
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned),
            );
        }
        let mut admission = if admitted.is_empty() && self.join_key.is_none() {
            lattice_protocol::trust::Admission::any_host()
        } else {
            lattice_protocol::trust::Admission::listed(&admitted)
                .map_err(|e| anyhow::anyhow!("--admit: {e}"))?
        };
        if let Some(key) = &self.join_key {
            admission = admission
                .with_join_key(key)
                .map_err(|e| anyhow::anyhow!("--join-key: {e}"))?;
        }
        Ok(lattice_controller::ControllerConfig {
            host_heartbeat_interval: seconds(
                "host-heartbeat-interval",
                self.host_heartbeat_interval,
            )?,
            missed_beats: self.missed_beats.max(1),
            tick: seconds("tick", self.tick)?,
            lease_ttl,
            lease_renew: lease_ttl / 3,
            signing_key,
            secrets_key: match &self.secrets_key {
                Some(path) => Some(crate::keys::read_seed(path)?),
                None => None,
            },
            admission,
            registry: self.registry.settings()?,
            storage: self.storage.config(),
            ..Default::default()
        })
    }
}

#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    host: HostOptions,
    /// Serve /livez, /readyz and /metrics (Prometheus) of the dev lattice's
    /// host and controller, and the live dashboard at /dashboard/, over plain
    /// HTTP here (port 0: any free one).
    #[arg(
        long,
        env = "LATTICE_ADMIN_ADDRESS",
        value_name = "ADDR",
        default_value = "127.0.0.1:0"
    )]
    admin_address: std::net::SocketAddr,
    /// Port of the nats-server `up` starts.
    #[arg(long, default_value_t = 4222)]
    nats_port: u16,
    /// Where JetStream keeps the lattice's state [default: the user's state dir,
    /// e.g. ~/.local/state/lattice].
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// The nats-server binary [default: nats-server on PATH].
    #[arg(long, env = "NATS_SERVER_BIN")]
    nats_server_bin: Option<PathBuf>,
    /// Deploy this manifest once the lattice is up; repeat for more.
    #[arg(long = "app")]
    apps: Vec<PathBuf>,
    /// Run the nats-server with TLS, requiring client certificates: a CA, a
    /// server and a client certificate are made once in the state dir (`tls/`);
    /// the host, controller and providers use the client certificate, and so must
    /// the CLI (`--nats-tls-ca DIR/tls/ca.pem --nats-tls-cert DIR/tls/client.pem
    /// --nats-tls-key DIR/tls/client-key.pem`).
    #[arg(long)]
    tls: bool,
    #[command(flatten)]
    storage: StorageArgs,
}

/// Resolves on Ctrl-C or SIGTERM.
///
/// The handlers are installed when this is called, not when it is first polled,
/// so a signal that arrives while start-up is still under way is not lost (nor
/// does it kill the process with the default action).
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    async move {
        let recv = |s: std::io::Result<tokio::signal::unix::Signal>| async move {
            match s {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            () = recv(interrupt) => {}
            () = recv(terminate) => {}
        }
    }
}

pub async fn host(args: HostArgs, nats: &crate::Nats, lattice: &str) -> anyhow::Result<()> {
    let client = crate::connect(nats).await?;
    if let Some(HostAction::Label {
        host,
        labels,
        unset,
    }) = args.action
    {
        return set_labels(client, lattice, &host, labels.into_iter().collect(), unset).await;
    }
    let key_seed = match &args.host.key {
        Some(path) => Some(crate::keys::load_or_create(
            path,
            nkeys::KeyPair::new_server,
        )?),
        None => None,
    };
    let mut config = args.host.config(lattice, nats, None, key_seed)?;
    config.state_dir = match (args.state_dir, &args.host.key) {
        (Some(dir), _) => Some(dir),
        (None, Some(_)) => Some(default_state_dir()?),
        (None, None) => None,
    };
    config.cache_dir = args
        .cache_dir
        .or_else(|| config.state_dir.as_ref().map(|d| d.join("cache")));
    config.messaging_nats = args.host.messaging_nats(nats).await?;
    let host = Host::new(config, Some(client.clone()))?;
    let probes = crate::admin::Probes {
        nats: lattice_bus::watch_connection(client.clone()),
        host: Some(host.clone()),
        controller: None,
        dashboard: None,
    };
    let _telemetry = telemetry("lattice-host", lattice, &probes)?;
    eprintln!(
        "host {} joined lattice '{lattice}' at {}",
        host.id(),
        nats.url
    );
    if let Some(addr) = args.admin_address {
        let bound = crate::admin::serve(addr, probes).await?;
        eprintln!("admin: http://{bound}/readyz, /livez, /metrics");
    }
    lattice_host::agent::run(host, client, shutdown_signal()).await
}

pub async fn controller(
    args: ControllerArgs,
    nats: &crate::Nats,
    lattice: &str,
) -> anyhow::Result<()> {
    let config = args.config()?;
    let client = crate::connect(nats).await?;
    let controller = lattice_controller::Controller::new(client.clone(), lattice, config);
    let probes = crate::admin::Probes {
        nats: lattice_bus::watch_connection(client),
        host: None,
        controller: Some((&controller).into()),
        dashboard: None,
    };
    let _telemetry = telemetry("lattice-controller", lattice, &probes)?;
    eprintln!("controller running for lattice '{lattice}' at {}", nats.url);
    if let Some(addr) = args.admin_address {
        let bound = crate::admin::serve(addr, probes).await?;
        eprintln!("admin: http://{bound}/readyz, /livez, /metrics");
    }
    controller.run(shutdown_signal()).await?;
    Ok(())
}

/// What exports this process's telemetry; held until the process ends, then
/// flushed.
struct Exporters {
    _traces: lattice_telemetry::Telemetry,
    _metrics: Option<lattice_telemetry::MetricsExport>,
}

/// Export this process's spans and what `probes` measures when
/// `OTEL_EXPORTER_OTLP_ENDPOINT` (or the per-signal one) is set, as `service`
/// unless `OTEL_SERVICE_NAME` says otherwise; a host's carry its id.
fn telemetry(
    service: &str,
    lattice: &str,
    probes: &crate::admin::Probes,
) -> anyhow::Result<Exporters> {
    use lattice_telemetry::KeyValue;
    let mut attributes = vec![KeyValue::new("lattice.name", lattice.to_owned())];
    if let Some(host) = &probes.host {
        attributes.push(KeyValue::new("lattice.host.id", host.id().to_owned()));
        if let Some(name) = host.config().labels.get("name") {
            attributes.push(KeyValue::new("host.name", name.clone()));
        }
    }
    let traces = lattice_telemetry::Telemetry::init(service, attributes.clone())
        .map_err(|e| anyhow::anyhow!("OpenTelemetry: {e}"))?;
    if traces.is_exporting() {
        eprintln!("telemetry: exporting traces over OTLP/HTTP (OTEL_EXPORTER_OTLP_* says where)");
    }
    let probes = probes.clone();
    let metrics =
        lattice_telemetry::MetricsExport::start(service, attributes, move || probes.metrics())
            .map_err(|e| anyhow::anyhow!("OpenTelemetry: {e}"))?;
    if metrics.is_some() {
        eprintln!(
            "telemetry: pushing metrics over OTLP/HTTP (OTEL_METRIC_EXPORT_INTERVAL ms apart)"
        );
    }
    Ok(Exporters {
        _traces: traces,
        _metrics: metrics,
    })
}

/// `~/.local/state/lattice` (or the platform's state directory).
pub(crate) fn default_state_dir() -> anyhow::Result<PathBuf> {
    Ok(dirs::state_dir()
        .or_else(|| dirs::home_dir().map(|h| h.join(".local/state")))
        .context("cannot find a state directory: pass --state-dir")?
        .join("lattice"))
}

/// `join`: an existing NATS to use instead of starting one.
pub async fn up(mut args: UpArgs, join: Option<crate::Nats>, lattice: &str) -> anyhow::Result<()> {
    let shutdown = shutdown_signal();
    let state_dir = match args.state_dir.clone() {
        Some(dir) => dir,
        None => default_state_dir()?,
    };
    let (server, nats) = match join {
        Some(_) if args.tls => anyhow::bail!(
            "--tls makes `lattice up` start its nats-server with TLS; to join a server with --nats-url, pass its --nats-tls-ca (and --nats-tls-cert/--nats-tls-key) instead"
        ),
        Some(nats) => (None, nats),
        None => {
            let binary = nats_server::find_binary(args.nats_server_bin.as_deref())?;
            let jetstream = state_dir.join("jetstream");
            // Operator mode with keys of its own in the state dir: nobody without
            // them (another user of this machine) can reach the dev lattice.
            let auth = crate::nats_auth::dev_auth(&state_dir, lattice)?;
            eprintln!(
                "starting nats-server on 127.0.0.1:{} (JetStream in {}; credentials only: the CLI's are {})",
                args.nats_port,
                jetstream.display(),
                state_dir.join(crate::nats_auth::DEV_CLI_CREDS).display()
            );
            let tls = args
                .tls
                .then(|| crate::dev_tls::dev_tls(&state_dir))
                .transpose()?;
            let config = match &tls {
                Some(tls) => tls.server_config_file(&auth.server_config)?,
                None => auth.server_config.clone(),
            };
            let server = NatsServer::start(&binary, args.nats_port, &jetstream, Some(&config))
                .await?;
            if let Some(tls) = tls.as_ref().map(|t| t.client()) {
                let path = |p: Option<PathBuf>| p.unwrap_or_default().display().to_string();
                eprintln!(
                    "nats-server requires TLS and a client certificate: the CLI needs --nats-tls-ca {} --nats-tls-cert {} --nats-tls-key {}",
                    path(tls.ca_file),
                    path(tls.cert_file),
                    path(tls.key_file)
                );
            }
            // Its host mints each provider a user of its own with the account's
            // scoped provider key: the server gives them a provider's permissions
            // and nothing more.
            if args.host.provider_signing_key.is_none() {
                args.host.provider_signing_key = Some(auth.provider_signing_key);
                args.host.provider_signing_key_scoped = true;
            }
            let nats = crate::Nats {
                url: server.url.clone(),
                creds: Some(auth.creds),
                tls: tls.map(|t| t.client()).unwrap_or_default(),
            };
            (Some(server), nats)
        }
    };
    let storage = args.storage.config();
    let result = run_up(&args, &nats, lattice, &state_dir, storage, shutdown).await;
    if let Some(server) = server {
        server.stop().await;
        eprintln!("nats-server stopped");
    }
    result
}

async fn run_up(
    args: &UpArgs,
    nats: &crate::Nats,
    lattice: &str,
    state_dir: &std::path::Path,
    storage: lattice_controller::StorageConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let (options, apps) = (&args.host, &args.apps);
    let url = nats.url.as_str();
    let client = crate::connect(nats).await?;
    let seed = crate::keys::load_or_create(&state_dir.join("host.nk"), nkeys::KeyPair::new_server)?;
    // The dev lattice's own signing key: its controller signs, its host trusts it.
    let lattice_seed = crate::keys::load_or_create(
        &state_dir.join("lattice.nk"),
        lattice_protocol::trust::new_lattice_key,
    )?;
    let lattice_key = nkeys::KeyPair::from_seed(&lattice_seed).with_context(|| {
        format!(
            "{} is not a lattice key",
            state_dir.join("lattice.nk").display()
        )
    })?;
    let mut host_config = options.config(lattice, nats, Some(state_dir), Some(seed))?;
    host_config.trust.push(lattice_key.public_key());
    host_config.allow_file_load = true;
    host_config.allow_provider_images = true;
    host_config.bucket_replicas = storage.replicas;
    host_config.state_dir = Some(state_dir.to_path_buf());
    host_config.messaging_nats = options.messaging_nats(nats).await?;
    let host = Host::new(host_config, Some(client.clone()))?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    // The controller must expect the heartbeats its own host sends, and signs
    // with the key the host trusts.
    let config = lattice_controller::ControllerConfig {
        host_heartbeat_interval: host.config().heartbeat_interval,
        signing_key: Some(lattice_seed),
        secrets_key: Some(crate::keys::load_or_create_secrets_key(
            &state_dir.join("secrets.xk"),
        )?),
        // The controller pins tags against the registries the host pulls from.
        registry: options.registry.settings()?,
        storage,
        ..Default::default()
    };
    let controller = lattice_controller::Controller::new(client.clone(), lattice, config);
    let probes = crate::admin::Probes {
        nats: lattice_bus::watch_connection(client.clone()),
        host: Some(host.clone()),
        controller: Some((&controller).into()),
        dashboard: Some(crate::dashboard::Dashboard::start(
            client.clone(),
            lattice,
            std::time::Duration::from_secs(1),
        )),
    };
    let _telemetry = telemetry("lattice", lattice, &probes)?;
    let admin = crate::admin::serve(args.admin_address, probes).await?;
    let mut controller = tokio::spawn({
        let stop = stopped(stop_rx.clone());
        async move { Ok::<_, anyhow::Error>(controller.run(stop).await?) }
    });
    let agent = tokio::spawn(lattice_host::agent::run(
        host.clone(),
        client.clone(),
        stopped(stop_rx.clone()),
    ));
    eprintln!(
        "lattice '{lattice}' is up: nats {url}, host {}, admin http://{admin}/readyz, dashboard http://{admin}/dashboard/; Ctrl-C to stop",
        host.id()
    );
    let work = async {
        tokio::pin!(shutdown);
        let deploy = async {
            for path in apps {
                crate::app::deploy_file(client.clone(), lattice, path).await?;
            }
            anyhow::Ok(())
        };
        tokio::select! {
            deployed = deploy => deployed?,
            () = &mut shutdown => return anyhow::Ok(()),
        }
        shutdown.await;
        anyhow::Ok(())
    };
    let mut controller_ended = false;
    let result = tokio::select! {
        r = work => r,
        joined = &mut controller => {
            controller_ended = true;
            match joined {
                Ok(Ok(())) => Err(anyhow::anyhow!("the controller stopped unexpectedly")),
                Ok(Err(e)) => Err(e.context("the controller failed")),
                Err(e) => Err(anyhow::anyhow!("the controller task panicked: {e}")),
            }
        }
    };
    eprintln!("stopping: draining the host, then the controller");
    let _ = stop_tx.send(true);
    let deadline = Duration::from_secs(10);
    let _ = tokio::time::timeout(deadline, agent).await;
    if !controller_ended {
        let _ = tokio::time::timeout(deadline, controller).await;
    }
    result
}

/// `lattice host label`: the controller finds the host by id prefix and sends it a
/// signed `set_labels` (hosts obey only the lattice's controllers).
async fn set_labels(
    client: async_nats::Client,
    lattice: &str,
    prefix: &str,
    set: BTreeMap<String, String>,
    unset: Vec<String>,
) -> anyhow::Result<()> {
    let api = lattice_controller::ApiClient::new(client, lattice);
    let host = api
        .set_host_labels(prefix, set, unset)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    outln!(
        "labels of host {} changed",
        lattice_controller::short_host_id(&host)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trusted_key_read_from_a_file_loses_its_newline_and_a_host_key_is_refused() {
        let key = lattice_protocol::trust::new_lattice_key().public_key();
        assert_eq!(parse_trust(&format!("{key}\n")), Ok(key));
        let host = lattice_protocol::trust::new_host_key().public_key();
        let err = parse_trust(&host).unwrap_err();
        assert!(err.contains("is not a lattice signing key"), "{err}");
    }
}
