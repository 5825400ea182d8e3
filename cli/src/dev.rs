//! `lattice dev`: the inner loop. Build the project, deploy it to the local lattice
//! (starting `lattice up` when none answers), follow its guests' logs, and on every
//! change to the sources build and deploy it again as a new version (`dev-1`,
//! `dev-2`, …). Hosts swap a version in place (listeners stay bound, calls in
//! flight finish on the old instances), so a client calling all along sees no
//! failed request. Ctrl-C undeploys the app (and stops the lattice it started).
//!
//! Sources are watched by polling (names, sizes and modification times under the
//! project folder, except `target/`, `build/`, `Cargo.lock` (which the build
//! itself writes) and hidden entries): no inotify limits, and it works on every
//! file system. Each build's snapshot is taken before it starts, so an edit made
//! while a build or deploy is under way is never missed.

use crate::app::{load_manifest, parse_duration, print_log_line, subscribe_logs, wait_deployed};
use crate::build::{self, BuildArgs};
use crate::output::Output;
use anyhow::{bail, Context};
use clap::Args;
use futures::StreamExt;
use lattice_controller::ApiClient;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

/// The most files a project may have under watch; more is refused, naming the
/// limit, rather than walked every poll.
const MAX_FILES: usize = 20_000;

/// How long a lattice `dev` starts has to answer.
const UP_DEADLINE: Duration = Duration::from_secs(90);

#[derive(Debug, Args)]
pub struct DevArgs {
    /// The project folder (its Cargo.toml and manifest).
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// The project's manifest, relative to --dir.
    #[arg(long, default_value = "wadm.yaml")]
    pub manifest: PathBuf,
    /// Without --nats-url: the port of the local lattice's nats-server, started
    /// with `lattice up` when nothing answers there.
    #[arg(long, default_value_t = 4222)]
    pub nats_port: u16,
    /// Without --nats-url: the state dir of the local lattice (its CLI
    /// credentials are read from there) [default: as `lattice up`].
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// How often the sources are checked for changes, e.g. 500ms, 2s.
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    pub poll: Duration,
    /// How long each deploy may take to be running.
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// The `lattice up` this command started, stopped when dropped.
struct StartedLattice(Child);

impl Drop for StartedLattice {
    fn drop(&mut self) {
        use nix::sys::signal::{kill, Signal};
        use nix::unistd::Pid;
        let Ok(pid) = i32::try_from(self.0.id()) else {
            return;
        };
        eprintln!("dev: stopping the lattice it started");
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub async fn run(
    args: DevArgs,
    explicit: Option<crate::Nats>,
    lattice: &str,
    output: Output,
) -> anyhow::Result<()> {
    let build_args = BuildArgs {
        dir: args.dir.clone(),
        manifest: args.manifest.clone(),
    };
    let manifest_path = args.dir.join(&args.manifest);
    // What the sources looked like when the first build began: an edit made while
    // that build or its deploy is under way is picked up at the first poll.
    let mut seen = fingerprint(&args.dir)?;
    say("building");
    blocking_build(&build_args).await?;
    // Read once built: the manifest's `file://` images must exist.
    let app = load_manifest(&manifest_path)?.name;

    let (client, _started) = match explicit {
        Some(nats) => (crate::connect(&nats).await?, None),
        None => local_lattice(&args, lattice).await?,
    };
    let api = ApiClient::new(client.clone(), lattice);
    let mut logs = subscribe_logs(&client, lattice, &app).await?;
    let mut number = next_dev_number(&api, &app).await;
    deploy(
        &api,
        &client,
        lattice,
        &manifest_path,
        number,
        args.timeout,
        output,
    )
    .await?;
    say(&format!(
        "app '{app}' runs version dev-{number}; watching {} for changes (Ctrl-C undeploys)",
        args.dir.display()
    ));

    let stop = tokio::signal::ctrl_c();
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(args.poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            line = logs.next() => match line {
                Some(msg) => print_log_line(&msg.payload, output),
                None => bail!("the connection to NATS closed"),
            },
            _ = tick.tick() => {
                let now = fingerprint(&args.dir)?;
                if now == seen {
                    continue;
                }
                // Let an editor finish writing: wait until two polls agree.
                tokio::time::sleep(args.poll).await;
                seen = fingerprint(&args.dir)?;
                say("sources changed: building");
                if let Err(e) = blocking_build(&build_args).await {
                    say(&format!("the build failed, dev-{number} keeps running: {e:#}"));
                    continue;
                }
                let next = number + 1;
                match deploy(&api, &client, lattice, &manifest_path, next, args.timeout, output).await {
                    Ok(()) => {
                        number = next;
                        say(&format!("app '{app}' runs version dev-{number}"));
                    }
                    Err(e) => say(&format!("deploying dev-{next} failed: {e:#}")),
                }
            }
        }
    }
    say(&format!("undeploying app '{app}'"));
    let undeployed = api
        .undeploy(&app)
        .await
        .with_context(|| format!("undeploying app '{app}'"));
    // Close the connection before a lattice this command started stops.
    drop((logs, api, client));
    undeployed.map(drop)
}

fn say(text: &str) {
    eprintln!("dev: {text}");
}

async fn blocking_build(args: &BuildArgs) -> anyhow::Result<()> {
    let args = BuildArgs {
        dir: args.dir.clone(),
        manifest: args.manifest.clone(),
    };
    tokio::task::spawn_blocking(move || build::run(&args).map(drop))
        .await
        .context("the build task stopped")?
}

/// Store the manifest as version `dev-<number>` (its files uploaded) and wait
/// until it runs.
async fn deploy(
    api: &ApiClient,
    client: &async_nats::Client,
    lattice: &str,
    path: &Path,
    number: u64,
    timeout: Duration,
    output: Output,
) -> anyhow::Result<()> {
    let mut manifest = load_manifest(path)?;
    manifest.version = format!("dev-{number}");
    crate::artifact::upload_images(&mut manifest, client, lattice).await?;
    let status = api.deploy(manifest).await?;
    wait_deployed(api, status, timeout, output).await?;
    Ok(())
}

/// One more than the highest `dev-N` the app has stored (1 for a new app), so a
/// new session never reuses a version with other contents.
async fn next_dev_number(api: &ApiClient, app: &str) -> u64 {
    let versions = api.history(app).await.unwrap_or_default();
    versions
        .iter()
        .filter_map(|v| v.version.strip_prefix("dev-")?.parse::<u64>().ok())
        .max()
        .unwrap_or(0)
        + 1
}

/// Connect to the local lattice, starting `lattice up` when nothing answers.
async fn local_lattice(
    args: &DevArgs,
    lattice: &str,
) -> anyhow::Result<(async_nats::Client, Option<StartedLattice>)> {
    let state_dir = match &args.state_dir {
        Some(dir) => dir.clone(),
        None => crate::run::default_state_dir()?,
    };
    let url = format!("nats://127.0.0.1:{}", args.nats_port);
    let creds_file = state_dir.join(crate::nats_auth::DEV_CLI_CREDS);
    let nats = |creds: Option<String>| crate::Nats {
        url: url.clone(),
        creds,
        tls: Default::default(),
    };
    let creds = || std::fs::read_to_string(&creds_file).ok();
    if let Some(creds) = creds() {
        if let Ok(client) = crate::connect(&nats(Some(creds))).await {
            say(&format!("using the lattice at {url}"));
            return Ok((client, None));
        }
    }
    say(&format!(
        "no lattice answers at {url}: starting `lattice up` (state in {})",
        state_dir.display()
    ));
    let exe = std::env::current_exe().context("cannot find this program to run `lattice up`")?;
    let child = Command::new(exe)
        .args(["--lattice", lattice, "up", "--nats-port"])
        .arg(args.nats_port.to_string())
        .arg("--state-dir")
        .arg(&state_dir)
        .env("LATTICE_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        // Its own process group: a Ctrl-C at the terminal reaches `dev` only,
        // which undeploys first and then stops this lattice.
        .process_group(0)
        .spawn()
        .context("cannot start `lattice up`")?;
    let mut started = StartedLattice(child);
    let deadline = tokio::time::Instant::now() + UP_DEADLINE;
    loop {
        if let Ok(Some(status)) = started.0.try_wait() {
            bail!("`lattice up` stopped ({status}) before the lattice answered");
        }
        if let Some(creds) = creds() {
            if let Ok(client) = crate::connect(&nats(Some(creds))).await {
                let api = ApiClient::new(client.clone(), lattice);
                if api.list().await.is_ok() && has_host(&client, lattice).await {
                    return Ok((client, Some(started)));
                }
            }
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("the lattice `lattice up` started did not answer within {UP_DEADLINE:?}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Whether some host answers the lattice's ping.
async fn has_host(client: &async_nats::Client, lattice: &str) -> bool {
    let subject = lattice_protocol::subjects::Subjects::new(lattice).hosts_ping();
    let ping = client.request(subject, br#"{"v":1}"#.as_slice().into());
    matches!(
        tokio::time::timeout(Duration::from_secs(2), ping).await,
        Ok(Ok(_))
    )
}

/// What the sources look like now: a hash of every watched file's path, size and
/// modification time.
fn fingerprint(dir: &Path) -> anyhow::Result<u64> {
    let mut files = Vec::new();
    walk(dir, &mut files)?;
    files.sort();
    let mut hasher = DefaultHasher::new();
    files.hash(&mut hasher);
    Ok(hasher.finish())
}

fn walk(dir: &Path, out: &mut Vec<(PathBuf, u64, SystemTime)>) -> anyhow::Result<()> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || ["target", "build", "Cargo.lock"].contains(&name.as_ref()) {
            continue;
        }
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        let path = entry.path();
        if meta.is_dir() {
            walk(&path, out)?;
        } else {
            let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            out.push((path, meta.len(), modified));
            if out.len() > MAX_FILES {
                bail!(
                    "{} holds more than {MAX_FILES} files to watch; run `lattice dev` in the component's own folder",
                    dir.display()
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edit_changes_the_fingerprint_and_build_output_does_not() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("src")).unwrap();
        std::fs::write(dir.path().join("src/lib.rs"), "a").unwrap();
        let before = fingerprint(dir.path()).unwrap();
        std::fs::write(dir.path().join("Cargo.lock"), "# written by cargo").unwrap();
        for ignored in ["target", "build", ".git"] {
            std::fs::create_dir_all(dir.path().join(ignored)).unwrap();
            std::fs::write(dir.path().join(ignored).join("x"), "x").unwrap();
        }
        assert_eq!(fingerprint(dir.path()).unwrap(), before);
        std::fs::write(dir.path().join("src/lib.rs"), "ab").unwrap();
        assert_ne!(fingerprint(dir.path()).unwrap(), before);
    }
}
