//! A real OCI registry for integration tests: the CNCF distribution registry
//! (Debian's `docker-registry` package), plain HTTP on a free port of 127.0.0.1,
//! storage in a private folder, optionally behind htpasswd basic auth.
//!
//! [`OciRegistry::start`] writes a `config.yml`, starts the registry and waits
//! until its log says it listens; dropping the value kills it and removes the
//! folder. [`OciRegistry::blob_path`] is where a blob's bytes are stored, for tests
//! that tamper with them.
//!
//! Binaries: `DOCKER_REGISTRY_BIN`, else `/usr/bin/docker-registry`; `htpasswd`
//! (apache2-utils) for auth.

use crate::nats::free_port;
use anyhow::{bail, Context};
use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a started registry has to listen.
const READY_DEADLINE: Duration = Duration::from_secs(15);
/// How many free ports to try when another process takes ours first.
const PORT_ATTEMPTS: usize = 5;

/// A running registry, killed on drop.
#[derive(Debug)]
pub struct OciRegistry {
    child: Child,
    port: u16,
    log: PathBuf,
    storage: PathBuf,
    _dir: tempfile::TempDir,
}

impl OciRegistry {
    /// Start a registry that anyone may pull from and push to.
    pub fn start() -> anyhow::Result<OciRegistry> {
        Self::start_with(None)
    }

    /// Start a registry that needs `user`/`password` (htpasswd, bcrypt) for
    /// everything.
    pub fn start_with_login(user: &str, password: &str) -> anyhow::Result<OciRegistry> {
        Self::start_with(Some((user, password)))
    }

    fn start_with(login: Option<(&str, &str)>) -> anyhow::Result<OciRegistry> {
        let bin = std::env::var_os("DOCKER_REGISTRY_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/bin/docker-registry"));
        if !bin.exists() {
            bail!(
                "{} not found: install Debian's docker-registry package (scripts/install-deps.sh) or set DOCKER_REGISTRY_BIN",
                bin.display()
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("lattice-registry-")
            .tempdir()
            .context("creating a folder for the test registry")?;
        let storage = dir.path().join("storage");
        fs::create_dir_all(&storage)?;
        let auth = match login {
            Some((user, password)) => {
                let out = Command::new("htpasswd")
                    .args(["-Bbn", user, password])
                    .output()
                    .context("running htpasswd (apache2-utils)")?;
                if !out.status.success() {
                    bail!("htpasswd failed: {}", String::from_utf8_lossy(&out.stderr));
                }
                let path = dir.path().join("htpasswd");
                fs::write(&path, &out.stdout)?;
                format!(
                    "auth:\n  htpasswd:\n    realm: lattice-test\n    path: {}\n",
                    path.display()
                )
            }
            None => String::new(),
        };
        let log = dir.path().join("registry.log");
        let mut last_error = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port()?;
            let config = dir.path().join("config.yml");
            fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: lattice-test-secret\n{auth}",
                    storage.display()
                ),
            )?;
            match spawn(&bin, &config, &log, port)? {
                Some(child) => {
                    return Ok(OciRegistry {
                        child,
                        port,
                        log,
                        storage,
                        _dir: dir,
                    })
                }
                None => last_error = format!("port {port} was taken"),
            }
        }
        bail!("could not start docker-registry on a free port after {PORT_ATTEMPTS} attempts ({last_error})")
    }

    /// `127.0.0.1:PORT`, the registry part of references (plain HTTP: allow it
    /// with `--allow-insecure-registry`).
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The registry's log (for assertion messages).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Where the registry keeps the bytes of the blob `digest` (`sha256:<hex>`).
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.storage
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for OciRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The running registry, or `None` when the port was taken.
fn spawn(bin: &Path, config: &Path, log: &Path, port: u16) -> anyhow::Result<Option<Child>> {
    let out = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening {}", log.display()))?;
    let log_len = out.metadata().map(|m| m.len()).unwrap_or(0);
    let mut child = Command::new(bin)
        .arg("serve")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(out.try_clone().context("cloning the log handle")?)
        .stderr(out)
        .spawn()
        .with_context(|| format!("running {}", bin.display()))?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + READY_DEADLINE;
    loop {
        let output = read_from(log, log_len);
        if let Some(status) = child.try_wait().context("waiting for docker-registry")? {
            if output.contains("address already in use") {
                return Ok(None);
            }
            bail!("docker-registry exited with {status} before listening:\n{output}");
        }
        // Its own log says it listens (another process may hold the port).
        if output.contains("listening on")
            && TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok()
        {
            return Ok(Some(child));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "docker-registry did not listen on {addr} within {}s:\n{output}",
                READY_DEADLINE.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn read_from(log: &Path, offset: u64) -> String {
    let text = fs::read(log).unwrap_or_default();
    String::from_utf8_lossy(text.get(offset as usize..).unwrap_or_default()).into_owned()
}
