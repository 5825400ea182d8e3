//! `lattice app ...`: deploy and inspect applications through the controller API.

use crate::output::{human_duration, now_ms, print_json, print_table, Output};
use anyhow::{bail, Context};
use clap::Subcommand;
use futures::StreamExt;
use lattice_controller::{short_host_id, ApiClient, ApiError};
use lattice_protocol::manifest::{self, Image, Manifest};
use lattice_protocol::messages::{AppState, AppStatus};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How often progress is polled while waiting.
const POLL: Duration = Duration::from_millis(250);
/// How long `deploy_file` waits for a controller that is still starting.
const CONTROLLER_START: Duration = Duration::from_secs(15);

#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Store a manifest as a new version and deploy it (`deploy FILE`), or deploy a
    /// stored version of an app (`deploy NAME --version V`: roll back or forward).
    // `--version` here names an app version, not the program's.
    #[command(disable_version_flag = true)]
    Deploy {
        /// A manifest file (wadm-style OAM YAML), or the name of a stored app.
        target: String,
        /// With an app name: the stored version to deploy (the newest if absent).
        #[arg(long)]
        version: Option<String>,
        /// Return once the controller stored the version; do not wait for hosts.
        #[arg(long)]
        no_wait: bool,
        /// How long to wait for the app to be deployed, e.g. 60s, 2m.
        #[arg(long, default_value = "60s", value_parser = parse_duration)]
        timeout: Duration,
        /// Keep `file://` images as they are instead of uploading them into the
        /// lattice's artifact store (hosts then read the files themselves, which
        /// only hosts started with --allow-file-load do). Without this flag each
        /// file is uploaded once and named `artifact://sha256:…` in the version.
        #[arg(long)]
        no_upload: bool,
    },
    /// Store a manifest as a new version without deploying it (its `file://`
    /// images uploaded as `deploy` does); deploy it later with
    /// `deploy NAME --version V`.
    Put {
        /// A manifest file (wadm-style OAM YAML).
        file: PathBuf,
        /// Keep `file://` images as they are (see `deploy --no-upload`).
        #[arg(long)]
        no_upload: bool,
    },
    /// Print a stored version of an app as an OAM manifest (YAML; JSON with
    /// `--output json`), as the controller keeps it: OCI tags pinned to digests,
    /// uploaded files named by their `artifact://` digest.
    #[command(disable_version_flag = true)]
    Get {
        name: String,
        /// The stored version (the newest if absent).
        #[arg(long)]
        version: Option<String>,
    },
    /// Every stored app with its deployed and latest version and its state.
    List,
    /// One app's state, per component and host.
    Status {
        name: String,
        /// Keep printing the status whenever it changes, until Ctrl-C.
        #[arg(long)]
        watch: bool,
    },
    /// The stored versions of an app, oldest first.
    History { name: String },
    /// Follow what the app's components log (`wasi:logging`, stdout, stderr) on
    /// every host, until Ctrl-C: `component@host level: message`.
    Logs { name: String },
    /// Stop running an app everywhere; its versions stay stored.
    Undeploy { name: String },
    /// Undeploy an app and forget all its versions.
    Delete { name: String },
    /// Check manifest files offline with the parser and limits `deploy` uses;
    /// prints every problem with its path in the document. Exit code 0 when all
    /// are valid, 1 when one is invalid, 2 when one cannot be read. Needs no NATS.
    Validate(crate::validate::ValidateArgs),
}

#[derive(Debug)]
enum DeployTarget {
    File(PathBuf),
    Stored(String),
}

/// `deploy X`: a manifest file when X is an existing file, else a stored app name.
fn deploy_target(target: &str, has_version: bool) -> anyhow::Result<DeployTarget> {
    let path = Path::new(target);
    if path.is_file() {
        if has_version {
            bail!("--version picks a stored version of an app: give the app's name, not the file {target}");
        }
        return Ok(DeployTarget::File(path.to_path_buf()));
    }
    let looks_like_name = !target.is_empty()
        && target
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if looks_like_name {
        Ok(DeployTarget::Stored(target.to_string()))
    } else {
        bail!("manifest file {target} not found")
    }
}

pub async fn run(
    cmd: AppCommand,
    client: async_nats::Client,
    lattice: &str,
    output: Output,
) -> anyhow::Result<()> {
    let api = ApiClient::new(client.clone(), lattice);
    match cmd {
        AppCommand::Deploy {
            target,
            version,
            no_wait,
            timeout,
            no_upload,
        } => {
            let status = match deploy_target(&target, version.is_some())? {
                DeployTarget::File(path) => {
                    let mut manifest = load_manifest(&path)?;
                    if !no_upload {
                        crate::artifact::upload_images(&mut manifest, &client, lattice).await?;
                    }
                    api.deploy(manifest).await?
                }
                DeployTarget::Stored(name) => api.deploy_version(&name, version.as_deref()).await?,
            };
            if no_wait {
                return print_status_line(&status, output);
            }
            let status = wait_deployed(&api, status, timeout, output).await?;
            if output == Output::Json {
                print_json(&status)?;
            }
            Ok(())
        }
        AppCommand::Put { file, no_upload } => {
            let mut manifest = load_manifest(&file)?;
            if !no_upload {
                crate::artifact::upload_images(&mut manifest, &client, lattice).await?;
            }
            let status = api.put(manifest).await?;
            if output == Output::Json {
                return print_json(&status);
            }
            let deployed = match &status.deployed_version {
                Some(v) => format!("version {v} stays deployed"),
                None => "nothing deployed".to_string(),
            };
            outln!(
                "stored app '{}' version {} ({deployed}); deploy it with `lattice app deploy {} --version {}`",
                status.name,
                status.latest_version,
                status.name,
                status.latest_version
            );
            Ok(())
        }
        AppCommand::Get { name, version } => {
            let stored = api.get(&name, version.as_deref()).await?;
            if output == Output::Json {
                return print_json(&stored);
            }
            let yaml = serde_yaml_ng::to_string(&manifest::to_oam(&stored.manifest))
                .context("writing the manifest as YAML")?;
            let deployed = if stored.info.deployed {
                ", deployed"
            } else {
                ""
            };
            let age = human_duration(now_ms().saturating_sub(stored.info.stored_at_ms));
            outln!(
                "# app '{name}' version {}, stored {age} ago{deployed}",
                stored.info.version
            );
            crate::output::write(&yaml);
            Ok(())
        }
        AppCommand::List => {
            let apps = api.list().await?;
            if output == Output::Json {
                return print_json(&apps);
            }
            if apps.is_empty() {
                outln!("no apps stored on lattice '{lattice}'; deploy one with `lattice app deploy FILE`");
                return Ok(());
            }
            let rows: Vec<Vec<String>> = apps
                .iter()
                .map(|s| {
                    vec![
                        s.name.clone(),
                        s.deployed_version.clone().unwrap_or_else(|| "-".into()),
                        s.latest_version.clone(),
                        s.state.to_string(),
                        s.message.clone(),
                    ]
                })
                .collect();
            print_table(&["NAME", "VERSION", "LATEST", "STATE", "MESSAGE"], &rows);
            Ok(())
        }
        AppCommand::Status { name, watch } => {
            let status = api.status(&name).await?;
            if !watch {
                return print_status(&status, output);
            }
            watch_status(&api, status, output).await
        }
        AppCommand::Logs { name } => {
            let mut logs = subscribe_logs(&client, lattice, &name).await?;
            eprintln!("following the logs of app '{name}' (Ctrl-C stops)");
            let stop = tokio::signal::ctrl_c();
            tokio::pin!(stop);
            loop {
                tokio::select! {
                    _ = &mut stop => return Ok(()),
                    line = logs.next() => match line {
                        Some(msg) => print_log_line(&msg.payload, output),
                        None => bail!("the connection to NATS closed"),
                    },
                }
            }
        }
        AppCommand::History { name } => {
            let versions = api.history(&name).await?;
            if output == Output::Json {
                return print_json(&versions);
            }
            let now = now_ms();
            let rows: Vec<Vec<String>> = versions
                .iter()
                .map(|v| {
                    vec![
                        v.version.clone(),
                        format!("{} ago", human_duration(now.saturating_sub(v.stored_at_ms))),
                        if v.deployed { "yes" } else { "" }.to_string(),
                    ]
                })
                .collect();
            print_table(&["VERSION", "STORED", "DEPLOYED"], &rows);
            Ok(())
        }
        AppCommand::Undeploy { name } => {
            let status = api.undeploy(&name).await?;
            print_status_line(&status, output)
        }
        AppCommand::Delete { name } => {
            let versions = api.delete(&name).await?;
            if output == Output::Json {
                return print_json(&versions);
            }
            outln!("deleted app '{name}' and its {} version(s)", versions.len());
            Ok(())
        }
        // Answered by `main` before connecting to NATS.
        AppCommand::Validate(args) => match crate::validate::run(&args, output) {
            code if code == std::process::ExitCode::SUCCESS => Ok(()),
            _ => bail!("a manifest is not valid"),
        },
    }
}

/// Deploy a manifest file and wait until it is deployed, for `lattice up`: waits for
/// a controller that is still starting.
pub async fn deploy_file(
    client: async_nats::Client,
    lattice: &str,
    path: &Path,
) -> anyhow::Result<()> {
    let manifest = load_manifest(path)?;
    let api = ApiClient::new(client, lattice);
    let deadline = tokio::time::Instant::now() + CONTROLLER_START;
    let status = loop {
        match api.deploy(manifest.clone()).await {
            Err(ApiError::NoController { .. }) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(POLL).await;
            }
            other => break other?,
        }
    };
    wait_deployed(&api, status, Duration::from_secs(60), Output::Text).await?;
    Ok(())
}

/// Read and validate a manifest file, and make its `file://` images absolute (relative
/// paths are relative to the manifest's folder) after checking they exist.
pub fn load_manifest(path: &Path) -> anyhow::Result<Manifest> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading manifest {}", path.display()))?;
    let mut manifest = manifest::parse(&text).map_err(|e| {
        anyhow::anyhow!(
            "{} has {} problem(s):\n{}",
            path.display(),
            e.problems.len(),
            e.problems
                .iter()
                .map(|p| format!("  {}: {}", p.path, p.message))
                .collect::<Vec<_>>()
                .join("\n")
        )
    })?;
    let folder = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    resolve_images(&mut manifest, folder)?;
    Ok(manifest)
}

/// Turn every `Image::File` into `file:///absolute/path`, checking the file exists.
fn resolve_images(manifest: &mut Manifest, folder: &Path) -> anyhow::Result<()> {
    let folder = std::path::absolute(folder)
        .with_context(|| format!("resolving the folder {}", folder.display()))?;
    for component in &mut manifest.components {
        let Image::File(image) = &mut component.image else {
            continue;
        };
        let raw = image.strip_prefix("file://").unwrap_or(image);
        let file = folder.join(raw);
        if !file.is_file() {
            bail!(
                "component image {} of '{}' not found (at {}): build it with scripts/build-components.sh",
                image,
                component.name,
                file.display()
            );
        }
        let file = file.canonicalize().unwrap_or(file);
        *image = format!("file://{}", file.display());
    }
    Ok(())
}

/// Poll status until deployed, failed or `timeout`, printing each new state.
pub(crate) async fn wait_deployed(
    api: &ApiClient,
    first: AppStatus,
    timeout: Duration,
    output: Output,
) -> anyhow::Result<AppStatus> {
    let version = first.deployed_version.clone().unwrap_or_default();
    let text = output == Output::Text;
    if text {
        outln!("deploying {} version {version}", first.name);
    }
    // On a terminal a spinner shows the state as it changes; elsewhere each
    // change is one plain line.
    let spinner = (text && std::io::IsTerminal::is_terminal(&std::io::stdout())).then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    });
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last: Option<(AppState, String)> = None;
    let mut status = first;
    loop {
        let now = (status.state, status.message.clone());
        if text && last.as_ref() != Some(&now) {
            let line = format!("  {}: {}", status.state, status.message);
            match &spinner {
                Some(bar) => bar.set_message(line),
                None => outln!("{line}"),
            }
        }
        last = Some(now);
        let done = matches!(status.state, AppState::Deployed | AppState::Failed)
            || tokio::time::Instant::now() >= deadline;
        if let (Some(bar), true) = (&spinner, done) {
            bar.finish();
        }
        match status.state {
            AppState::Deployed => return Ok(status),
            AppState::Failed => bail!(
                "app '{}' failed: {}\n(the controller keeps retrying; \
                 `lattice app status {}` shows the latest)",
                status.name,
                status.message,
                status.name
            ),
            _ => {}
        }
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "app '{}' is not deployed after {}s; it is {}: {}\n\
                 (`lattice app status {} --watch` follows it)",
                status.name,
                timeout.as_secs(),
                status.state,
                status.message,
                status.name
            );
        }
        tokio::time::sleep(POLL).await;
        status = api.status(&status.name).await?;
    }
}

async fn watch_status(api: &ApiClient, first: AppStatus, output: Output) -> anyhow::Result<()> {
    let mut last = first.clone();
    print_status(&first, output)?;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = &mut ctrl_c => return Ok(()),
            _ = tokio::time::sleep(POLL * 2) => {}
        }
        let status = api.status(&first.name).await?;
        if status != last {
            if output == Output::Text {
                outln!();
            }
            print_status(&status, output)?;
            last = status;
        }
    }
}

fn print_status_line(status: &AppStatus, output: Output) -> anyhow::Result<()> {
    if output == Output::Json {
        return print_json(status);
    }
    outln!("{}: {}: {}", status.name, status.state, status.message);
    Ok(())
}

fn print_status(status: &AppStatus, output: Output) -> anyhow::Result<()> {
    if output == Output::Json {
        return print_json(status);
    }
    outln!("app:      {}", status.name);
    outln!(
        "version:  {} (latest {})",
        status
            .deployed_version
            .as_deref()
            .unwrap_or("none deployed"),
        status.latest_version
    );
    outln!("state:    {}", status.state);
    outln!("message:  {}", status.message);
    if status.components.is_empty() {
        return Ok(());
    }
    outln!();
    let rows: Vec<Vec<String>> = status
        .components
        .iter()
        .map(|c| {
            let running = if c.running.is_empty() {
                "-".to_string()
            } else {
                c.running
                    .iter()
                    .map(|(h, n)| format!("{}={n}", short_host_id(h)))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            vec![
                c.name.clone(),
                c.state.to_string(),
                c.desired.to_string(),
                running,
                c.message.clone(),
            ]
        })
        .collect();
    print_table(
        &[
            "COMPONENT",
            "STATE",
            "DESIRED",
            "RUNNING (HOST=N)",
            "MESSAGE",
        ],
        &rows,
    );
    Ok(())
}

/// `90`, `90s`, `2m`, `500ms`, `1h`.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a duration: use e.g. 60s, 2m or 500ms"))?;
    match unit {
        "" | "s" => Ok(Duration::from_secs(n)),
        "ms" => Ok(Duration::from_millis(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!(
            "'{text}' has an unknown unit '{unit}': use ms, s, m or h"
        )),
    }
}

/// Subscribe to the log lines of `app`'s guests on every host.
pub async fn subscribe_logs(
    client: &async_nats::Client,
    lattice: &str,
    app: &str,
) -> anyhow::Result<async_nats::Subscriber> {
    let subject = lattice_protocol::subjects::Subjects::new(lattice).app_logs(app);
    let sub = client
        .subscribe(subject.clone())
        .await
        .map_err(|e| anyhow::anyhow!("cannot follow {subject}: {e}"))?;
    // The server has the subscription before lines are expected.
    client.flush().await?;
    Ok(sub)
}

/// One guest log line as `component@host level: message` (JSON: the line).
pub fn print_log_line(payload: &[u8], output: Output) {
    let Ok(line) = lattice_protocol::decode::<lattice_protocol::messages::LogLine>(payload) else {
        return;
    };
    if output == Output::Json {
        let _ = print_json(&line);
        return;
    }
    let host: String = line.host.chars().take(8).collect();
    outln!("{}@{host} {}: {}", line.component, line.level, line.message);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deploy_target_is_a_file_or_a_stored_name() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("app.yaml");
        std::fs::write(&file, "x").unwrap();
        let file = file.to_str().unwrap();
        assert!(matches!(
            deploy_target(file, false),
            Ok(DeployTarget::File(_))
        ));
        assert!(deploy_target(file, true)
            .unwrap_err()
            .to_string()
            .contains("--version"));
        assert!(
            matches!(deploy_target("counter", true), Ok(DeployTarget::Stored(n)) if n == "counter")
        );
        let missing = deploy_target("missing.yaml", false)
            .unwrap_err()
            .to_string();
        assert_eq!(missing, "manifest file missing.yaml not found");
    }
    use lattice_protocol::manifest::{Builtin, Component, ComponentKind};

    fn manifest_with(image: Image) -> Manifest {
        Manifest {
            name: "a".into(),
            version: "1".into(),
            description: None,
            components: vec![Component {
                name: "c".into(),
                kind: ComponentKind::Component,
                image,
                config: Default::default(),
                config_layers: Vec::new(),
                secrets: Vec::new(),
                scaler: None,
                links: vec![],
                restart: None,
                warm: None,
            }],
            rollout: None,
        }
    }

    #[test]
    fn relative_images_resolve_against_the_manifest_folder() {
        let dir = std::env::temp_dir().join(format!("lattice-cli-test-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("build")).unwrap();
        std::fs::write(dir.join("build/c.wasm"), b"\0asm").unwrap();
        let abs = dir.join("build/c.wasm").canonicalize().unwrap();
        for image in ["./build/c.wasm", "build/c.wasm", "file://./build/c.wasm"] {
            let mut m = manifest_with(Image::File(image.into()));
            resolve_images(&mut m, &dir).unwrap();
            assert_eq!(
                m.components[0].image,
                Image::File(format!("file://{}", abs.display())),
                "{image}"
            );
        }
        // Absolute paths stay as they are.
        let mut m = manifest_with(Image::File(format!("file://{}", abs.display())));
        resolve_images(&mut m, Path::new("/elsewhere")).unwrap();
        assert_eq!(
            m.components[0].image,
            Image::File(format!("file://{}", abs.display()))
        );
        let mut m = manifest_with(Image::File("./missing.wasm".into()));
        let err = resolve_images(&mut m, &dir).unwrap_err().to_string();
        assert!(err.contains("not found"), "{err}");
        assert!(err.contains("scripts/build-components.sh"), "{err}");
        let mut m = manifest_with(Image::Builtin(Builtin::HttpServer));
        resolve_images(&mut m, &dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("60").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5d").is_err());
    }
}
