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
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("label '{s}' is not key=value")),
    }
}

fn seconds(what: &str, s: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(s)
        .with_context(|| format!("--{what} must be a positive number of seconds"))
}

impl HostOptions {
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
                        .map_err(anyhow::Error::msg)?,
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
            },
            provider_nats_url: Some(
                self.provider_nats_url
                    .clone()
                    .unwrap_or_else(|| nats.url.clone()),
            ),
            provider_signer,
            blobstore_dir,
        })
    }
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct HostArgs {
    #[command(subcommand)]
    action: Option<HostAction>,
    #[command(flatten)]
    host: HostOptions,
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
}

impl ControllerArgs {
    fn config(&self) -> anyhow::Result<lattice_controller::ControllerConfig> {
        let lease_ttl = seconds("lease-ttl", self.lease_ttl)?;
        Ok(lattice_controller::ControllerConfig {
            host_heartbeat_interval: seconds(
                "host-heartbeat-interval",
                self.host_heartbeat_interval,
            )?,
            missed_beats: self.missed_beats.max(1),
            tick: seconds("tick", self.tick)?,
            lease_ttl,
            lease_renew: lease_ttl / 3,
            ..Default::default()
        })
    }
}

#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    host: HostOptions,
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
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
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
    let config = args.host.config(lattice, nats, None, None)?;
    let host = Host::new(config, Some(client.clone()))?;
    eprintln!(
        "host {} joined lattice '{lattice}' at {}",
        host.id(),
        nats.url
    );
    lattice_host::agent::run(host, client, shutdown_signal()).await
}

pub async fn controller(
    args: ControllerArgs,
    nats: &crate::Nats,
    lattice: &str,
) -> anyhow::Result<()> {
    let config = args.config()?;
    let client = crate::connect(nats).await?;
    eprintln!("controller running for lattice '{lattice}' at {}", nats.url);
    run_controller(client, lattice, config, shutdown_signal()).await
}

async fn run_controller(
    client: async_nats::Client,
    lattice: &str,
    config: lattice_controller::ControllerConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let controller = lattice_controller::Controller::new(client, lattice, config);
    controller.run(shutdown).await?;
    Ok(())
}

/// `~/.local/state/lattice` (or the platform's state directory).
fn default_state_dir() -> anyhow::Result<PathBuf> {
    Ok(dirs::state_dir()
        .or_else(|| dirs::home_dir().map(|h| h.join(".local/state")))
        .context("cannot find a state directory: pass --state-dir")?
        .join("lattice"))
}

/// `join`: an existing NATS to use instead of starting one.
pub async fn up(args: UpArgs, join: Option<crate::Nats>, lattice: &str) -> anyhow::Result<()> {
    let state_dir = match args.state_dir {
        Some(dir) => dir,
        None => default_state_dir()?,
    };
    let (server, nats) = match join {
        Some(nats) => (None, nats),
        None => {
            let binary = nats_server::find_binary(args.nats_server_bin.as_deref())?;
            let jetstream = state_dir.join("jetstream");
            eprintln!(
                "starting nats-server on 127.0.0.1:{} (JetStream in {})",
                args.nats_port,
                jetstream.display()
            );
            let server = NatsServer::start(&binary, args.nats_port, &jetstream).await?;
            let nats = crate::Nats {
                url: server.url.clone(),
                creds: None,
            };
            (Some(server), nats)
        }
    };
    let result = run_up(&args.host, &args.apps, &nats, lattice, &state_dir).await;
    if let Some(server) = server {
        server.stop().await;
        eprintln!("nats-server stopped");
    }
    result
}

async fn run_up(
    options: &HostOptions,
    apps: &[PathBuf],
    nats: &crate::Nats,
    lattice: &str,
    state_dir: &std::path::Path,
) -> anyhow::Result<()> {
    let url = nats.url.as_str();
    let client = crate::connect(nats).await?;
    let seed = host_key_seed(state_dir)?;
    let host = Host::new(
        options.config(lattice, nats, Some(state_dir), Some(seed))?,
        Some(client.clone()),
    )?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    // The controller must expect the heartbeats its own host sends.
    let config = lattice_controller::ControllerConfig {
        host_heartbeat_interval: host.config().heartbeat_interval,
        ..Default::default()
    };
    let mut controller = tokio::spawn({
        let (client, lattice) = (client.clone(), lattice.to_string());
        let stop = stopped(stop_rx.clone());
        async move { run_controller(client, &lattice, config, stop).await }
    });
    let agent = tokio::spawn(lattice_host::agent::run(
        host.clone(),
        client.clone(),
        stopped(stop_rx.clone()),
    ));
    eprintln!(
        "lattice '{lattice}' is up: nats {url}, host {}; Ctrl-C to stop",
        host.id()
    );
    let work = async {
        for path in apps {
            crate::app::deploy_file(client.clone(), lattice, path).await?;
        }
        shutdown_signal().await;
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

/// The dev host's identity, kept in the state dir so it stays the same across
/// restarts of `lattice up`.
fn host_key_seed(state_dir: &std::path::Path) -> anyhow::Result<String> {
    let path = state_dir.join("host.nk");
    if let Ok(seed) = std::fs::read_to_string(&path) {
        return Ok(seed.trim().to_string());
    }
    let seed = nkeys::KeyPair::new_server()
        .seed()
        .map_err(|e| anyhow::anyhow!("cannot make a host key: {e}"))?;
    std::fs::create_dir_all(state_dir)
        .with_context(|| format!("creating {}", state_dir.display()))?;
    std::fs::write(&path, &seed).with_context(|| format!("writing {}", path.display()))?;
    Ok(seed)
}

/// `lattice host label`: find the host by id prefix and send it `set_labels`.
async fn set_labels(
    client: async_nats::Client,
    lattice: &str,
    prefix: &str,
    set: BTreeMap<String, String>,
    unset: Vec<String>,
) -> anyhow::Result<()> {
    use lattice_protocol::messages::{CommandReply, HostCommand};
    let hosts =
        lattice_controller::ping_hosts(&client, lattice, Duration::from_millis(500)).await?;
    let matching: Vec<_> = hosts
        .iter()
        .filter(|h| h.host_id.starts_with(prefix))
        .collect();
    let host = match matching.as_slice() {
        [one] => *one,
        [] => anyhow::bail!("no host on lattice '{lattice}' has an id starting with '{prefix}' (see `lattice get hosts`)"),
        many => anyhow::bail!("'{prefix}' matches {} hosts; give more of the id", many.len()),
    };
    let subject = lattice_protocol::subjects::Subjects::new(lattice).host_command(&host.host_id);
    let command = HostCommand::SetLabels { set, unset };
    let reply = tokio::time::timeout(
        Duration::from_secs(5),
        client.request(subject, lattice_protocol::encode(&command).into()),
    )
    .await
    .context("the host did not answer within 5 s")??;
    let reply: CommandReply = lattice_protocol::decode(&reply.payload)?;
    match reply.error {
        None => {
            outln!(
                "labels of host {} changed",
                lattice_controller::short_host_id(&host.host_id)
            );
            Ok(())
        }
        Some(e) => anyhow::bail!("host refused: {e}"),
    }
}
