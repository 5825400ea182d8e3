//! Capability providers this host runs: one process per provider of each app placed
//! here, started from the provider's executable (a `file://` path, or an artifact
//! checked against its digest and kept mode 0755 in the host's cache; that copy is
//! read and checked against the digest again before every start, restarts
//! included, and a copy that changed is not run), told who it is on stdin
//! (`lattice_protocol::provider::ProviderMessage`), health-checked over NATS,
//! restarted with backoff when it exits or stops answering, and stopped cleanly.
//!
//! Invariants: a provider gets an empty environment plus `PATH` and its log level,
//! the NATS URL the host was given for providers, and never the host's key or
//! credentials; it runs in its own process group and is killed if the host drops it
//! (and sees its stdin close if the host dies); a link change is a `links` message,
//! never a restart.

use crate::backoff::backoff;

pub mod bundled;
pub mod signer;
use lattice_artifacts::fetch::Executable;
use lattice_protocol::creds;
use lattice_protocol::manifest::{Config, Manifest, Restart};
use lattice_protocol::messages::{ServiceReport, ServiceState};
use lattice_protocol::provider::{
    health_subject, NatsCredentials, ProviderInit, ProviderLink, ProviderMessage,
};
use lattice_protocol::secrets::SecretValue;
pub use signer::ProviderSigner;
use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, watch};

/// How often the host asks a provider whether it is healthy.
const HEALTH_EVERY: Duration = Duration::from_secs(2);
/// Unanswered health checks in a row before the provider is restarted.
const HEALTH_MISSES: u32 = 3;
/// How long a provider has to exit after `shutdown` before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Restarts: quick at first, capped, never given up (a provider is infrastructure).
const POLICY: Restart = Restart {
    max_restarts: u32::MAX,
    backoff_ms: 200,
    max_backoff_ms: 10_000,
};

/// What identifies a provider process: a new version of the app that keeps these
/// keeps the process and only tells it the new links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderSpec {
    pub app: String,
    pub name: String,
    /// Its executable, with the digest a cached copy must still have.
    pub executable: Executable,
    pub config: Config,
    /// Its `properties.secrets`, given in its init (a change restarts it).
    pub secrets: BTreeMap<String, SecretValue>,
}

impl ProviderSpec {
    /// The spec of provider `name` of `manifest`, if it is one, run from
    /// `executable`: its image as the host fetched it (a `file://` path, or the
    /// checked copy of an artifact in the host's cache).
    pub fn of(manifest: &Manifest, name: &str, executable: Executable) -> Option<Self> {
        let c = manifest.component(name).filter(|c| c.is_provider())?;
        Some(Self {
            app: manifest.name.clone(),
            name: name.to_owned(),
            executable,
            config: c.config.clone(),
            secrets: BTreeMap::new(),
        })
    }
}

/// Every link of `manifest` to or from provider `name`, each with the config and
/// the secrets (from `opened`, stored name to value) of the provider's side.
pub fn links_of(
    manifest: &Manifest,
    name: &str,
    opened: &BTreeMap<String, SecretValue>,
) -> Vec<ProviderLink> {
    let mut out = Vec::new();
    for (source, link) in manifest.links() {
        let (component, to_provider, config, secrets) = if link.target == name {
            let (config, secrets) = (&link.target_config, &link.target_secrets);
            (source.name.clone(), true, config.clone(), secrets)
        } else if source.name == name {
            let (config, secrets) = (&link.source_config, &link.source_secrets);
            (link.target.clone(), false, config.clone(), secrets)
        } else {
            continue;
        };
        out.push(ProviderLink {
            component,
            to_provider,
            name: link.name.clone(),
            namespace: link.namespace.clone(),
            package: link.package.clone(),
            interfaces: link.interfaces.clone(),
            config,
            secrets: lattice_protocol::secrets::given(secrets, opened),
        });
    }
    out
}

/// Where a provider process is, for the host's heartbeat.
pub type ProviderReport = ServiceReport;

/// A provider process, supervised; dropping it stops the provider.
pub struct Provider {
    pub spec: ProviderSpec,
    links: watch::Sender<Vec<ProviderLink>>,
    locality: watch::Sender<Vec<(String, String)>>,
    stop: Option<watch::Sender<bool>>,
    report: Arc<Mutex<ProviderReport>>,
}

impl Drop for Provider {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
    }
}

/// What a provider needs from its host.
#[derive(Clone)]
pub struct ProviderContext {
    pub lattice: String,
    pub host_id: String,
    /// The NATS URL providers connect to.
    pub nats_url: String,
    /// The TLS files providers connect with (none: no TLS settings).
    pub nats_tls: lattice_protocol::nats_tls::NatsTls,
    pub nats: async_nats::Client,
    /// Mints each provider process its own NATS user (`None`: a NATS without auth).
    pub signer: Option<ProviderSigner>,
    /// The host's locality labels when the provider starts, most specific first
    /// (`ProviderInit::locality`; later changes: [`Provider::set_locality`]).
    pub locality: Vec<(String, String)>,
}

impl Provider {
    /// Start `spec` with `links`. Refused when the executable does not exist.
    pub fn start(
        ctx: ProviderContext,
        spec: ProviderSpec,
        links: Vec<ProviderLink>,
    ) -> Result<Self, String> {
        if !spec.executable.path().is_file() {
            return Err(format!(
                "provider '{}' of app '{}': {} is not a file (its image must name a provider executable: file:// on this host, artifact://, an OCI image or bundled://)",
                spec.name,
                spec.app,
                spec.executable.path().display()
            ));
        }
        let report = Arc::new(Mutex::new(ServiceReport {
            name: spec.name.clone(),
            state: ServiceState::Running,
            restarts: 0,
            crashes_in_a_row: 0,
            last_error: None,
        }));
        let (links_tx, links_rx) = watch::channel(links);
        let (locality_tx, locality_rx) = watch::channel(ctx.locality.clone());
        let (stop_tx, stop_rx) = watch::channel(false);
        let told = Told {
            links: links_rx,
            locality: locality_rx,
        };
        tokio::spawn(supervise(ctx, spec.clone(), told, stop_rx, report.clone()));
        Ok(Self {
            spec,
            links: links_tx,
            locality: locality_tx,
            stop: Some(stop_tx),
            report,
        })
    }

    /// Tell the provider the host's locality labels are now `locality` (nothing
    /// if unchanged): it serves calls on their subjects instead.
    pub fn set_locality(&self, locality: Vec<(String, String)>) {
        self.locality.send_if_modified(|current| {
            let changed = *current != locality;
            *current = locality;
            changed
        });
    }

    /// Tell the provider its links are now `links` (nothing if unchanged).
    pub fn set_links(&self, links: Vec<ProviderLink>) {
        self.links.send_if_modified(|current| {
            let changed = *current != links;
            *current = links;
            changed
        });
    }

    pub fn report(&self) -> ProviderReport {
        self.report
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// What the host tells a running provider after `init`, as it changes.
struct Told {
    links: watch::Receiver<Vec<ProviderLink>>,
    locality: watch::Receiver<Vec<(String, String)>>,
}

async fn supervise(
    ctx: ProviderContext,
    spec: ProviderSpec,
    mut told: Told,
    mut stop: watch::Receiver<bool>,
    report: Arc<Mutex<ProviderReport>>,
) {
    let set = |f: &dyn Fn(&mut ProviderReport)| {
        f(&mut report.lock().unwrap_or_else(|p| p.into_inner()));
    };
    let (app, name) = (spec.app.clone(), spec.name.clone());
    let mut crashes = 0u32;
    loop {
        let started = Instant::now();
        let error = match run_once(&ctx, &spec, &mut told, &mut stop).await {
            Ok(()) => return, // stopped on purpose
            Err(e) => e,
        };
        if started.elapsed() >= Duration::from_millis(POLICY.max_backoff_ms) {
            crashes = 0;
        }
        crashes += 1;
        let delay = backoff(&POLICY, crashes);
        set(&|r| {
            r.state = ServiceState::Restarting;
            r.restarts += 1;
            r.crashes_in_a_row = crashes;
            r.last_error = Some(error.clone());
        });
        tracing::warn!(%app, provider = %name, ?delay, "provider stopped; restarting: {error}");
        let deadline = tokio::time::Instant::now() + delay;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => break,
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        return;
                    }
                }
            }
        }
        set(&|r| r.state = ServiceState::Running);
    }
}

/// Run the provider once: `Ok` when stopped on purpose, else why it ended.
async fn run_once(
    ctx: &ProviderContext,
    spec: &ProviderSpec,
    told: &mut Told,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), String> {
    let Told { links, locality } = told;
    // A cached executable is read and checked against its digest before every
    // start: a copy changed since it was fetched is refused, not run.
    let executable = spec.executable.clone();
    let path = tokio::task::spawn_blocking(move || executable.checked_path())
        .await
        .map_err(|e| format!("cannot check the executable: {e}"))?
        .map_err(|e| {
            format!(
                "provider '{}' of app '{}': refusing to start it: {e}",
                spec.name, spec.app
            )
        })?;
    let mut command = Command::new(&path);
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(Stdio::piped())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .process_group(0);
    for var in ["RUST_LOG", "LATTICE_LOG"] {
        if let Some(v) = std::env::var_os(var) {
            command.env(var, v);
        }
    }
    // Where spans go (OTEL_*), so a provider's calls join the callers' traces;
    // not the host's service name, which would make the provider pass for it.
    for (var, value) in std::env::vars_os() {
        let name = var.to_string_lossy();
        if name.starts_with("OTEL_") && name != "OTEL_SERVICE_NAME" {
            command.env(&var, value);
        }
    }
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", path.display()))?;
    let mut stdin = child.stdin.take().ok_or("the provider has no stdin")?;
    // A fresh NATS user for every process: a restart never reuses credentials.
    let (nats_credentials, inbox_prefix) = match &ctx.signer {
        Some(signer) => {
            let creds = signer.mint(&ctx.lattice, &spec.app, &spec.name)?;
            let inbox = creds::provider_inbox_prefix(&ctx.lattice, &spec.app, &spec.name);
            (Some(NatsCredentials(creds)), Some(inbox))
        }
        None => (None, None),
    };
    let init = ProviderMessage::Init(ProviderInit {
        lattice: ctx.lattice.clone(),
        nats_url: ctx.nats_url.clone(),
        app: spec.app.clone(),
        name: spec.name.clone(),
        host_id: ctx.host_id.clone(),
        config: spec.config.clone(),
        links: links.borrow_and_update().clone(),
        nats_credentials,
        inbox_prefix,
        nats_tls: (!ctx.nats_tls.is_empty()).then(|| ctx.nats_tls.clone()),
        locality: locality.borrow_and_update().clone(),
        secrets: spec.secrets.clone(),
    });
    write_line(&mut stdin, &init).await?;
    tracing::info!(app = %spec.app, provider = %spec.name, pid = child.id(), "provider started");

    let health = health_subject(&ctx.lattice, &spec.app, &spec.name, &ctx.host_id);
    let mut tick =
        tokio::time::interval_at(tokio::time::Instant::now() + HEALTH_EVERY, HEALTH_EVERY);
    let (checks_tx, mut checks) = mpsc::channel::<bool>(4);
    let mut misses = 0;
    loop {
        tokio::select! {
            status = child.wait() => {
                return Err(match status {
                    Ok(s) => format!("exited with {s}"),
                    Err(e) => format!("cannot wait for it: {e}"),
                });
            }
            changed = links.changed() => {
                if changed.is_ok() {
                    let msg = ProviderMessage::Links { links: links.borrow_and_update().clone() };
                    write_line(&mut stdin, &msg).await?;
                }
            }
            changed = locality.changed() => {
                if changed.is_ok() {
                    let locality = locality.borrow_and_update().clone();
                    write_line(&mut stdin, &ProviderMessage::Locality { locality }).await?;
                }
            }
            _ = tick.tick() => {
                let (nats, subject, tx) = (ctx.nats.clone(), health.clone(), checks_tx.clone());
                tokio::spawn(async move {
                    let answered = tokio::time::timeout(
                        HEALTH_EVERY,
                        nats.request(subject, bytes::Bytes::new()),
                    )
                    .await;
                    let ok = matches!(answered, Ok(Ok(m)) if m.payload.as_ref() == b"ok");
                    let _ = tx.send(ok).await;
                });
            }
            Some(ok) = checks.recv() => {
                misses = if ok { 0 } else { misses + 1 };
                if misses >= HEALTH_MISSES {
                    let _ = child.start_kill();
                    let _ = child.wait().await;
                    return Err(format!("failed {HEALTH_MISSES} health checks in a row"));
                }
            }
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    break;
                }
            }
        }
    }
    stop_child(&mut child, &mut stdin).await;
    Ok(())
}

async fn write_line(
    stdin: &mut tokio::process::ChildStdin,
    msg: &ProviderMessage,
) -> Result<(), String> {
    let mut line = lattice_protocol::encode(msg);
    line.push(b'\n');
    stdin
        .write_all(&line)
        .await
        .map_err(|e| format!("cannot write to its stdin: {e}"))
}

/// `shutdown`, a grace period, then SIGKILL.
async fn stop_child(child: &mut Child, stdin: &mut tokio::process::ChildStdin) {
    let _ = write_line(stdin, &ProviderMessage::Shutdown).await;
    if tokio::time::timeout(STOP_GRACE, child.wait())
        .await
        .is_err()
    {
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
}
