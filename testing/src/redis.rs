//! A real `redis-server` for integration tests of providers.
//!
//! [`RedisServer::start`] runs `redis-server` on a free port of 127.0.0.1 with no
//! persistence (`--save "" --appendonly no`) in a private folder; dropping the value
//! kills the server and removes the folder.
//!
//! The binary is found through `REDIS_SERVER_BIN`, then `PATH`, then
//! `/usr/bin/redis-server` (where Debian's package puts it).

use crate::nats::free_port;
use anyhow::{bail, Context};
use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a started server has to accept TCP connections.
const READY_DEADLINE: Duration = Duration::from_secs(10);
/// How many free ports to try when another process takes ours first.
const PORT_ATTEMPTS: usize = 5;

/// A running `redis-server`, killed on drop.
#[derive(Debug)]
pub struct RedisServer {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    /// Start a server on a random free port and wait until it accepts connections.
    pub fn start() -> anyhow::Result<RedisServer> {
        Self::start_with(None)
    }

    /// [`Self::start`], refusing clients that do not `AUTH` with `password`.
    pub fn start_with_password(password: &str) -> anyhow::Result<RedisServer> {
        Self::start_with(Some(password))
    }

    fn start_with(password: Option<&str>) -> anyhow::Result<RedisServer> {
        let bin = find_binary()?;
        let dir = tempfile::Builder::new()
            .prefix("lattice-redis-")
            .tempdir()
            .context("creating a folder for the test redis-server")?;
        let log = dir.path().join("redis.log");
        let mut last_error = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port()?;
            match spawn(&bin, dir.path(), &log, port, password)? {
                Some(child) => {
                    return Ok(RedisServer {
                        child,
                        port,
                        log,
                        _dir: dir,
                    })
                }
                None => last_error = format!("port {port} was taken"),
            }
        }
        bail!("could not start redis-server on a free port after {PORT_ATTEMPTS} attempts ({last_error})")
    }

    /// The client URL, `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's log file (useful in assertion messages).
    pub fn log_path(&self) -> &Path {
        &self.log
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The running server, or `None` when the port was taken.
fn spawn(
    bin: &Path,
    dir: &Path,
    log: &Path,
    port: u16,
    password: Option<&str>,
) -> anyhow::Result<Option<Child>> {
    let out = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening {}", log.display()))?;
    let log_len = out.metadata().map(|m| m.len()).unwrap_or(0);
    let mut child = Command::new(bin)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .args(password.map(|p| ["--requirepass", p]).into_iter().flatten())
        .arg("--dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(out.try_clone().context("cloning the log handle")?)
        .stderr(out)
        .spawn()
        .with_context(|| format!("running {}", bin.display()))?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + READY_DEADLINE;
    loop {
        if let Some(status) = child.try_wait().context("waiting for redis-server")? {
            let output = read_from(log, log_len);
            if output.contains("Address already in use") {
                return Ok(None);
            }
            bail!("redis-server exited with {status} before accepting connections:\n{output}");
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return Ok(Some(child));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "redis-server did not accept connections on {addr} within {}s:\n{}",
                READY_DEADLINE.as_secs(),
                read_from(log, log_len)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn read_from(path: &Path, offset: u64) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    text.get(offset as usize..).unwrap_or(&text).to_string()
}

/// The redis-server binary tests use: `REDIS_SERVER_BIN`, else `PATH`, else
/// Debian's.
pub fn find_binary() -> anyhow::Result<PathBuf> {
    if let Some(bin) = std::env::var_os("REDIS_SERVER_BIN") {
        let bin = PathBuf::from(bin);
        if bin.is_file() {
            return Ok(bin);
        }
        bail!(
            "REDIS_SERVER_BIN is {} but no such file exists",
            bin.display()
        );
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join("redis-server");
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    let debian = PathBuf::from("/usr/bin/redis-server");
    if debian.is_file() {
        return Ok(debian);
    }
    bail!(
        "redis-server not found (looked at $REDIS_SERVER_BIN, $PATH and /usr/bin/redis-server): \
         install it with scripts/install-deps.sh or `apt-get install redis-server`"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn starts_answers_and_stops() {
        let server = RedisServer::start().unwrap();
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, server.port()));
        let mut conn = TcpStream::connect(addr).unwrap();
        conn.write_all(b"PING\r\n").unwrap();
        let mut pong = [0u8; 7];
        conn.read_exact(&mut pong).unwrap();
        assert_eq!(&pong, b"+PONG\r\n");
        let other = RedisServer::start().unwrap();
        assert_ne!(server.url(), other.url());
        drop(server);
        assert!(TcpStream::connect(addr).is_err());
    }
}
