//! A real PostgreSQL server for integration tests of providers.
//!
//! [`PostgresServer::start`] runs `initdb` (trust authentication, superuser
//! `postgres`) in a private folder, then `postgres` on a free port of 127.0.0.1 with
//! its unix socket in that folder and durability off (`fsync=off`: tests never need
//! a crash-safe database). Dropping the value stops the server (fast shutdown, then
//! SIGKILL) and removes the folder.
//!
//! The binaries are found through `PG_BIN_DIR`, then the newest
//! `/usr/lib/postgresql/<version>/bin` (where Debian's `postgresql` package puts
//! them), then `pg_config --bindir`. PostgreSQL refuses to run as root, so when the
//! tests run as root, `initdb` and `postgres` run as the `postgres` user (Debian's
//! package creates it) and the folder is handed to that user.

use crate::nats::free_port;
use anyhow::{bail, Context};
use nix::sys::signal::{kill, Signal};
use nix::unistd::{Pid, User};
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a started server has to say it accepts connections.
const READY_DEADLINE: Duration = Duration::from_secs(30);
/// How long a fast shutdown may take before the server is killed.
const STOP_DEADLINE: Duration = Duration::from_secs(5);
/// How many free ports to try when another process takes ours first.
const PORT_ATTEMPTS: usize = 5;
/// What the server logs once it takes connections.
const READY_LINE: &str = "database system is ready to accept connections";

/// A running PostgreSQL server, stopped on drop.
#[derive(Debug)]
pub struct PostgresServer {
    child: Child,
    port: u16,
    log: PathBuf,
    dir: tempfile::TempDir,
}

impl PostgresServer {
    /// Create a database cluster and start a server for it on a free port; wait
    /// until it accepts connections.
    pub fn start() -> anyhow::Result<PostgresServer> {
        let bin = find_bin_dir()?;
        let owner = owner()?;
        let dir = tempfile::Builder::new()
            .prefix("lattice-pg-")
            .tempdir()
            .context("creating a folder for the test PostgreSQL")?;
        if let Some(user) = &owner {
            nix::unistd::chown(dir.path(), Some(user.uid), Some(user.gid))
                .with_context(|| format!("handing {} to user 'postgres'", dir.path().display()))?;
        }
        let log = dir.path().join("postgres.log");
        initdb(&bin, dir.path(), &log, owner.as_ref())?;
        let mut last_error = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port()?;
            match spawn(&bin, dir.path(), &log, port, owner.as_ref())? {
                Some(child) => {
                    return Ok(PostgresServer {
                        child,
                        port,
                        log,
                        dir,
                    })
                }
                None => last_error = format!("port {port} was taken"),
            }
        }
        bail!(
            "could not start postgres on a free port after {PORT_ATTEMPTS} attempts ({last_error})"
        )
    }

    /// The client URL of database `postgres` as superuser `postgres` (no password:
    /// trust authentication), `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The folder of the server's unix socket (`.s.PGSQL.<port>`).
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's log file (useful in assertion messages).
    pub fn log_path(&self) -> &Path {
        &self.log
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        // SIGINT is PostgreSQL's fast shutdown: it disconnects clients instead of
        // waiting for them, as SIGTERM's smart shutdown would.
        let pid = Pid::from_raw(self.child.id() as i32);
        if kill(pid, Signal::SIGINT).is_ok() {
            let deadline = Instant::now() + STOP_DEADLINE;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `postgres` user to run as when we are root; `None` otherwise.
fn owner() -> anyhow::Result<Option<User>> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(None);
    }
    match User::from_name("postgres").context("looking up user 'postgres'")? {
        Some(user) => Ok(Some(user)),
        None => bail!(
            "PostgreSQL refuses to run as root and there is no user 'postgres' to run it as: \
             install Debian's `postgresql` package (scripts/install-deps.sh) or run the tests \
             as another user"
        ),
    }
}

/// `command` from `bin`, run as `owner` when given, in `dir`.
fn command(bin: &Path, name: &str, dir: &Path, owner: Option<&User>) -> Command {
    let mut command = Command::new(bin.join(name));
    command.current_dir(dir).stdin(Stdio::null());
    if let Some(user) = owner {
        command
            .uid(user.uid.as_raw())
            .gid(user.gid.as_raw())
            .env("HOME", dir)
            .env("USER", "postgres");
    }
    command
}

fn initdb(bin: &Path, dir: &Path, log: &Path, owner: Option<&User>) -> anyhow::Result<()> {
    let output = command(bin, "initdb", dir, owner)
        .arg("--pgdata")
        .arg(dir.join("data"))
        .args(["--auth=trust", "--username=postgres", "--encoding=UTF8"])
        .args(["--locale=C", "--no-sync", "--no-instructions"])
        .output()
        .with_context(|| format!("running {}", bin.join("initdb").display()))?;
    let _ = fs::write(log, [&output.stdout[..], &output.stderr[..]].concat());
    if !output.status.success() {
        bail!(
            "initdb failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// The running server, or `None` when the port was taken.
fn spawn(
    bin: &Path,
    dir: &Path,
    log: &Path,
    port: u16,
    owner: Option<&User>,
) -> anyhow::Result<Option<Child>> {
    let out = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening {}", log.display()))?;
    let log_len = out.metadata().map(|m| m.len()).unwrap_or(0);
    let mut child = command(bin, "postgres", dir, owner)
        .arg("-D")
        .arg(dir.join("data"))
        .args(["-p", &port.to_string(), "-k"])
        .arg(dir)
        .args(["-c", "listen_addresses=127.0.0.1"])
        .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
        .args(["-c", "full_page_writes=off", "-c", "shared_buffers=16MB"])
        .args(["-c", "max_connections=50"])
        .stdout(out.try_clone().context("cloning the log handle")?)
        .stderr(out)
        .spawn()
        .with_context(|| format!("running {}", bin.join("postgres").display()))?;
    let deadline = Instant::now() + READY_DEADLINE;
    loop {
        let output = read_from(log, log_len);
        if let Some(status) = child.try_wait().context("waiting for postgres")? {
            if output.contains("Address already in use") {
                return Ok(None);
            }
            bail!("postgres exited with {status} before accepting connections:\n{output}");
        }
        if output.contains(READY_LINE) {
            return Ok(Some(child));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "postgres did not accept connections on port {port} within {}s:\n{output}",
                READY_DEADLINE.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn read_from(path: &Path, offset: u64) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    text.get(offset as usize..).unwrap_or(&text).to_string()
}

/// The folder of PostgreSQL's server binaries (`initdb`, `postgres`): `PG_BIN_DIR`,
/// else the newest `/usr/lib/postgresql/*/bin`, else `pg_config --bindir`.
pub fn find_bin_dir() -> anyhow::Result<PathBuf> {
    let has_server = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    if let Some(dir) = std::env::var_os("PG_BIN_DIR") {
        let dir = PathBuf::from(dir);
        if has_server(&dir) {
            return Ok(dir);
        }
        bail!(
            "PG_BIN_DIR is {} but it has no initdb and postgres",
            dir.display()
        );
    }
    if let Some(dir) = newest_debian_bin_dir(Path::new("/usr/lib/postgresql")) {
        return Ok(dir);
    }
    if let Ok(output) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if output.status.success() && has_server(&dir) {
            return Ok(dir);
        }
    }
    bail!(
        "PostgreSQL's server binaries not found (looked at $PG_BIN_DIR, /usr/lib/postgresql/*/bin \
         and `pg_config --bindir`): install them with scripts/install-deps.sh or \
         `apt-get install postgresql`"
    )
}

/// `<root>/<version>/bin` with the highest numeric version that has a server.
fn newest_debian_bin_dir(root: &Path) -> Option<PathBuf> {
    fs::read_dir(root)
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("postgres").is_file())
                .then_some((version, bin))
        })
        .max_by_key(|(version, _)| *version)
        .map(|(_, bin)| bin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, SocketAddr, TcpStream};

    #[test]
    fn starts_answers_and_stops() {
        let server = PostgresServer::start().unwrap();
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, server.port()));
        TcpStream::connect(addr).unwrap();
        let socket = server
            .socket_dir()
            .join(format!(".s.PGSQL.{}", server.port()));
        assert!(socket.exists(), "{}", socket.display());
        assert!(server.url().starts_with("postgres://postgres@127.0.0.1:"));
        let dir = server.socket_dir().to_path_buf();
        drop(server);
        assert!(TcpStream::connect(addr).is_err());
        assert!(!dir.exists());
    }

    #[test]
    fn the_newest_version_wins() {
        let root = tempfile::tempdir().unwrap();
        for version in ["9", "13", "15", "notaversion"] {
            let bin = root.path().join(version).join("bin");
            fs::create_dir_all(&bin).unwrap();
            fs::write(bin.join("initdb"), "").unwrap();
            fs::write(bin.join("postgres"), "").unwrap();
        }
        fs::create_dir_all(root.path().join("16/bin")).unwrap();
        assert_eq!(
            newest_debian_bin_dir(root.path()),
            Some(root.path().join("15/bin"))
        );
        assert_eq!(newest_debian_bin_dir(&root.path().join("none")), None);
    }
}
