//! An end-to-end topology on one machine, made of Linux network namespaces: a
//! three-node NATS core cluster with JetStream, two edge sites each with a
//! leaf-node NATS and its own hosts, a delaying TCP proxy on each site's link to
//! the core ([`DelayProxy`]: latency, cut and restore), and the controller in
//! the core (layout: [`netns`]).
//!
//! Everything is started as a person would start it (deploy/README.md): the
//! nats-servers on `deploy/nats/core.conf` and `leaf.conf` as they are (copied
//! beside the `nats-auth.conf` they include), with their settings in the
//! environment; NATS in operator mode set up by `lattice nats-auth init`, the
//! leaf nodes' user by `lattice nats-auth leaf`, each host's by `lattice
//! nats-auth host` for a key from `lattice keys new host`; the real `lattice
//! controller` and `lattice host` binaries started from `deploy/systemd`'s units
//! as systemd would start them ([`unit`]: their `ExecStart`, environment and
//! credentials, with the harness's files and faster heartbeats). Hosts
//! carry `name=<name>` and `site=<site>` labels (the first three also
//! `tier=core|edge`, as `manifests/shop.yaml` places by) and prefer their own
//! site for linked calls (`--locality-labels site`).
//!
//! Needs root; [`unavailable`] says why it cannot run where it cannot. Dropping a
//! [`Topology`] kills every process and deletes the network; when the test is
//! panicking, it first prints the end of every process's log.

pub mod netns;
pub mod unit;

pub use netns::unavailable;

use crate::delay_proxy::DelayProxy;
use crate::process::Process;
use anyhow::{bail, Context};
use netns::Network;
use std::collections::BTreeMap;
use std::net::{SocketAddr, SocketAddrV4, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The edge sites, by name.
pub const EDGE_SITES: [&str; 2] = ["edge-a", "edge-b"];
/// The `site` label of core hosts.
pub const CORE_SITE: &str = "core";
/// How many core NATS nodes.
pub const CORE_NODES: usize = 3;
/// The client port of every nats-server (each in its own namespace).
const CLIENT_PORT: u16 = 4222;
/// The leaf-node port of the core's nats-servers.
const LEAF_PORT: u16 = 7422;
/// Heartbeat interval of hosts and controller, in seconds.
pub const BEAT_SECS: &str = "0.2";
/// How long a nats-server has to be ready, and the cluster to elect a leader.
const READY_DEADLINE: Duration = Duration::from_secs(30);
/// Lines of each log shown when a test fails.
const LOG_TAIL: usize = 40;

/// Where a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Site {
    /// The core (core node 0's namespace, connected to every core node).
    Core,
    /// Edge site `s` (from 0; [`EDGE_SITES`]), connected to its leaf node.
    Edge(usize),
}

impl Site {
    /// The `site` label value.
    pub fn name(self) -> &'static str {
        match self {
            Site::Core => CORE_SITE,
            Site::Edge(s) => EDGE_SITES[s],
        }
    }
}

/// A running topology; everything stops and the network is deleted on drop.
#[derive(Debug)]
pub struct Topology {
    // Processes first: fields drop in order, and processes go before the network.
    hosts: BTreeMap<String, Process>,
    controller: Option<Process>,
    leaves: Vec<Process>,
    cores: Vec<Option<Process>>,
    /// `proxies[s][i]`: edge site `s`'s link to core node `i`.
    proxies: Vec<Vec<DelayProxy>>,
    net: Network,
    lattice: String,
    lattice_bin: PathBuf,
    nats_bin: PathBuf,
    trust: String,
    dir: tempfile::TempDir,
}

impl Topology {
    /// Make the network, start the core cluster, the edge sites' leaf nodes
    /// behind proxies delaying each way by `delay`, the controller, and one host
    /// per site (named after its site: `core`, `edge-a`, `edge-b`).
    pub async fn start(lattice_bin: &Path, lattice: &str, delay: Duration) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("lattice-topology-")
            .tempdir()
            .context("creating the topology's folder")?;
        let net = Network::create(CORE_NODES, &EDGE_SITES)?;
        let mut topo = Topology {
            hosts: BTreeMap::new(),
            controller: None,
            leaves: Vec::new(),
            cores: Vec::new(),
            proxies: Vec::new(),
            net,
            lattice: lattice.to_string(),
            lattice_bin: lattice_bin.to_path_buf(),
            nats_bin: crate::nats::find_binary()?,
            trust: String::new(),
            dir,
        };
        topo.write_auth()?;
        for i in 0..CORE_NODES {
            topo.cores.push(None);
            topo.spawn_core(i)?;
        }
        for i in 0..CORE_NODES {
            topo.wait_core(i).await?;
        }
        for s in 0..EDGE_SITES.len() {
            let mut links = Vec::new();
            for i in 0..CORE_NODES {
                let listen = SocketAddr::from((topo.net.edge_gateway(s), LEAF_PORT + i as u16));
                let core = SocketAddr::from((topo.net.core_ip(i), LEAF_PORT));
                links.push(DelayProxy::start(listen, core, delay).await?);
            }
            topo.proxies.push(links);
            topo.spawn_leaf(s)?;
        }
        let client = topo.connect().await?;
        topo.wait_jetstream(&client).await?;
        for s in 0..EDGE_SITES.len() {
            topo.wait_leaf(s).await?;
        }
        topo.start_controller()?;
        topo.start_host(CORE_SITE, Site::Core, &[("tier", "core")])?;
        for (s, name) in EDGE_SITES.iter().enumerate() {
            topo.start_host(name, Site::Edge(s), &[("tier", "edge")])?;
        }
        Ok(topo)
    }

    /// `lattice ARGS` run by the test process itself, with the output.
    fn run_lattice(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new(&self.lattice_bin)
            .args(args)
            .output()
            .with_context(|| format!("running lattice {}", args.join(" ")))?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            bail!(
                "lattice {} failed: {text}{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(text)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn path_str(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    /// `nats-auth init`, the leaf node's user, the lattice signing key, and the
    /// deploy configs copied beside `nats-auth.conf`.
    fn write_auth(&mut self) -> anyhow::Result<()> {
        let auth = self.path_str("auth");
        self.run_lattice(&[
            "--lattice",
            &self.lattice,
            "nats-auth",
            "init",
            "--out",
            &auth,
        ])?;
        self.run_lattice(&[
            "nats-auth",
            "leaf",
            "--dir",
            &auth,
            "--out",
            &self.path_str("auth/leaf.creds"),
        ])?;
        self.trust = self
            .run_lattice(&[
                "keys",
                "new",
                "lattice",
                "--out",
                &self.path_str("lattice.nk"),
            ])?
            .trim()
            .to_string();
        let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/nats");
        for conf in ["core.conf", "leaf.conf"] {
            let from = deploy.join(conf);
            std::fs::copy(&from, self.path("auth").join(conf))
                .with_context(|| format!("copying {}", from.display()))?;
        }
        Ok(())
    }

    /// The lattice account's public key.
    fn account(&self) -> anyhow::Result<String> {
        Ok(self.account_key()?.public_key())
    }

    fn account_key(&self) -> anyhow::Result<nkeys::KeyPair> {
        let seed = std::fs::read_to_string(self.path("auth/account.nk"))
            .context("reading the account seed nats-auth init wrote")?;
        nkeys::KeyPair::from_seed(seed.trim()).context("the account seed")
    }

    fn spawn_core(&mut self, i: usize) -> anyhow::Result<()> {
        let routes: Vec<String> = (0..CORE_NODES)
            .map(|j| format!("\"nats-route://{}:6222\"", self.net.core_ip(j)))
            .collect();
        let mut cmd = self.net.command(self.net.core_ns(i), &self.nats_bin);
        cmd.arg("-c")
            .arg(self.path("auth/core.conf"))
            .env("NATS_SERVER_NAME", self.core_name(i))
            .env(
                "NATS_STORE_DIR",
                self.path(&format!("store-core-{}", i + 1)),
            )
            .env("NATS_ROUTES", format!("[{}]", routes.join(", ")));
        self.cores[i] = Some(Process::spawn(&self.core_name(i), cmd)?);
        Ok(())
    }

    async fn wait_core(&mut self, i: usize) -> anyhow::Result<()> {
        let addr = SocketAddr::from((self.net.core_ip(i), CLIENT_PORT));
        let name = self.core_name(i);
        let process = self.cores[i].as_mut().context("core node not running")?;
        wait_log(process, "Server is ready", || {
            TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok()
        })
        .await
        .with_context(|| format!("starting {name}"))
    }

    fn spawn_leaf(&mut self, s: usize) -> anyhow::Result<()> {
        let urls: Vec<String> = self.proxies[s]
            .iter()
            .map(|p| format!("\"nats-leaf://{}\"", p.addr()))
            .collect();
        let mut cmd = self.net.command(self.net.edge_ns(s), &self.nats_bin);
        cmd.arg("-c")
            .arg(self.path("auth/leaf.conf"))
            .env("NATS_SERVER_NAME", EDGE_SITES[s])
            .env("NATS_LEAF_URLS", format!("[{}]", urls.join(", ")))
            .env("LATTICE_ACCOUNT", self.account()?)
            .env("NATS_LEAF_CREDS", self.path("auth/leaf.creds"));
        let process = Process::spawn(&format!("nats {}", EDGE_SITES[s]), cmd)?;
        match self.leaves.get_mut(s) {
            Some(old) => *old = process,
            None => self.leaves.push(process),
        }
        Ok(())
    }

    /// Wait until edge site `s`'s leaf node has connected to the core.
    async fn wait_leaf(&mut self, s: usize) -> anyhow::Result<()> {
        wait_log(&mut self.leaves[s], "Leafnode connection created", || true)
            .await
            .with_context(|| format!("connecting {}'s leaf node", EDGE_SITES[s]))
    }

    async fn wait_jetstream(&self, client: &async_nats::Client) -> anyhow::Result<()> {
        let js = async_nats::jetstream::new(client.clone());
        let deadline = Instant::now() + READY_DEADLINE;
        loop {
            let last = match js.query_account().await {
                Ok(_) => return Ok(()),
                Err(e) => e.to_string(),
            };
            if Instant::now() >= deadline {
                bail!("the core cluster elected no JetStream leader in time: {last}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The `server_name` of core node `i` (`core-1`, ...).
    pub fn core_name(&self, i: usize) -> String {
        format!("core-{}", i + 1)
    }

    /// The core node whose `server_name` is `name`.
    pub fn core_index(&self, name: &str) -> Option<usize> {
        (0..CORE_NODES).find(|&i| self.core_name(i) == name)
    }

    /// Every core node's client URL, comma-separated (from the root namespace and
    /// the core's).
    pub fn core_urls(&self) -> String {
        (0..CORE_NODES)
            .map(|i| format!("nats://{}:{CLIENT_PORT}", self.net.core_ip(i)))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The operator's credentials (`cli.creds` from `nats-auth init`).
    pub fn cli_creds(&self) -> PathBuf {
        self.path("auth/cli.creds")
    }

    /// The network namespace of edge site `s` (for `ip netns exec`).
    pub fn edge_namespace(&self, s: usize) -> &str {
        self.net.edge_ns(s)
    }

    /// The lattice's name.
    pub fn lattice(&self) -> &str {
        &self.lattice
    }

    /// Connect the test to the core as a user of the lattice's account allowed
    /// everything (to watch heartbeats and buckets).
    pub async fn connect(&self) -> anyhow::Result<async_nats::Client> {
        use lattice_protocol::creds;
        let account = self.account_key()?;
        let user = nkeys::KeyPair::new_user();
        let everything = creds::Permissions {
            publish: vec![">".into()],
            subscribe: vec![">".into()],
            ..Default::default()
        };
        let jwt = creds::user_jwt(
            "topology test",
            &user.public_key(),
            &account.public_key(),
            &everything,
            &account,
        )?;
        let mut settings = lattice_bus::ConnectSettings::new(self.core_urls(), "topology-test");
        settings.creds = Some(creds::creds_file(&jwt, &user.seed()?));
        lattice_bus::connect(&settings)
            .await
            .with_context(|| format!("connecting to the core at {}", self.core_urls()))
    }

    /// The operator's CLI: `lattice --nats-url <core> --nats-creds cli.creds
    /// --lattice L ARGS`, run from the root namespace.
    pub fn cli(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.lattice_bin);
        cmd.args(["--nats-url", &self.core_urls()])
            .arg("--nats-creds")
            .arg(self.path("auth/cli.creds"))
            .args(["--lattice", &self.lattice])
            .args(args)
            .env("NO_COLOR", "1");
        cmd
    }

    /// The command of `deploy/systemd/UNIT` with `env` as its environment file
    /// (`/etc/lattice/<what>.env`) and `files` for the other paths it names,
    /// run in namespace `ns`, with the harness's faster heartbeats (`extra`)
    /// after the unit's own arguments.
    fn unit_command(
        &self,
        unit: &str,
        who: &str,
        env: &[(&str, String)],
        files: &[(&'static str, PathBuf)],
        ns: &str,
        extra: &[&str],
    ) -> anyhow::Result<Command> {
        let what = unit
            .trim_start_matches("lattice-")
            .trim_end_matches(".service");
        let env_file = self.path(&format!("{who}.env"));
        let text: String = env.iter().map(|(k, v)| format!("{k}=\"{v}\"\n")).collect();
        std::fs::write(&env_file, text)?;
        let mut paths: BTreeMap<&str, PathBuf> = files.iter().cloned().collect();
        paths.insert("/usr/local/bin/lattice", self.lattice_bin.clone());
        let env_path = format!("/etc/lattice/{what}.env");
        paths.insert(&env_path, env_file);
        let exec = unit::Unit::deployed(unit)?
            .command(&paths, &self.path(&format!("credentials-{who}")))?;
        let mut cmd = exec.apply(self.net.command(ns, &exec.program));
        cmd.args(extra);
        Ok(cmd)
    }

    /// `deploy/systemd/lattice-controller.service` as systemd would start it.
    fn start_controller(&mut self) -> anyhow::Result<()> {
        let env = [
            ("LATTICE_NATS_URL", self.core_urls()),
            ("LATTICE", self.lattice.clone()),
            ("LATTICE_LOG", "info".to_string()),
        ];
        let files = [
            (
                "/etc/lattice/controller.creds",
                self.path("auth/controller.creds"),
            ),
            ("/etc/lattice/lattice.nk", self.path("lattice.nk")),
        ];
        let cmd = self.unit_command(
            "lattice-controller.service",
            "controller",
            &env,
            &files,
            self.net.core_ns(0),
            &["--host-heartbeat-interval", BEAT_SECS],
        )?;
        self.controller = Some(Process::spawn("controller", cmd)?);
        Ok(())
    }

    /// Start `lattice host` named `name` at `site` (labels `name=<name>`,
    /// `site=<site>` and `labels`), with its own key and the credentials
    /// `nats-auth host` mints for it, as `deploy/systemd/lattice-host.service`
    /// starts it with deploy/README.md's `host.env`.
    pub fn start_host(
        &mut self,
        name: &str,
        site: Site,
        labels: &[(&str, &str)],
    ) -> anyhow::Result<()> {
        let key = self.path_str(&format!("{name}.nk"));
        let creds = self.path_str(&format!("{name}.creds"));
        let id = self.run_lattice(&["keys", "new", "host", "--out", &key])?;
        self.run_lattice(&[
            "nats-auth",
            "host",
            "--dir",
            &self.path_str("auth"),
            "--key",
            id.trim(),
            "--out",
            &creds,
        ])?;
        let (ns, url) = match site {
            Site::Core => (self.net.core_ns(0), self.core_urls()),
            Site::Edge(s) => (
                self.net.edge_ns(s),
                format!("nats://127.0.0.1:{CLIENT_PORT}"),
            ),
        };
        let mut flags = format!("--label name={name} --label site={}", site.name());
        for (k, v) in labels {
            flags.push_str(&format!(" --label {k}={v}"));
        }
        flags.push_str(" --locality-labels site");
        let env = [
            ("LATTICE_NATS_URL", url),
            ("LATTICE_LABELS", flags),
            ("LATTICE_TRUST", self.trust.clone()),
            ("LATTICE", self.lattice.clone()),
            ("LATTICE_LOG", "info".to_string()),
        ];
        let files = [
            ("/etc/lattice/host.creds", PathBuf::from(&creds)),
            ("/etc/lattice/host.nk", PathBuf::from(&key)),
            ("/etc/lattice/provider.nk", self.path("auth/provider.nk")),
            ("/var/lib/lattice", self.path(&format!("state-{name}"))),
        ];
        let extra = [
            "--heartbeat-interval",
            BEAT_SECS,
            "--no-pooling",
            "--drain-timeout",
            "2",
        ];
        let cmd = self.unit_command(
            "lattice-host.service",
            &format!("host-{name}"),
            &env,
            &files,
            ns,
            &extra,
        )?;
        self.hosts.insert(
            name.to_string(),
            Process::spawn(&format!("host {name}"), cmd)?,
        );
        Ok(())
    }

    /// The address of port `port` on edge site `s` (a host's HTTP listener there).
    pub fn edge_addr(&self, s: usize, port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(self.net.edge_ip(s), port)
    }

    /// The address of port `port` in the core namespace the core host runs in.
    pub fn core_addr(&self, port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(self.net.core_ip(0), port)
    }

    /// Delay every byte on every edge link by `delay` each way.
    pub fn set_delay(&self, delay: Duration) {
        for proxy in self.proxies.iter().flatten() {
            proxy.set_delay(delay);
        }
    }

    /// Cut edge site `s` off the core: its leaf connection closes and cannot
    /// reconnect until [`Topology::restore`].
    pub fn cut(&self, s: usize) {
        for proxy in &self.proxies[s] {
            proxy.cut();
        }
    }

    /// Restore edge site `s`'s link to the core.
    pub fn restore(&self, s: usize) {
        for proxy in &self.proxies[s] {
            proxy.restore();
        }
    }

    /// The core node edge site `s`'s leaf node is connected to now, if any.
    pub fn leaf_hub(&self, s: usize) -> Option<usize> {
        self.proxies[s].iter().position(|p| p.connections() > 0)
    }

    /// SIGKILL core node `i` (its store stays).
    pub fn kill_core(&mut self, i: usize) {
        if let Some(mut p) = self.cores[i].take() {
            p.kill();
        }
    }

    /// Start core node `i` again on its store, and wait until it is ready.
    pub async fn restart_core(&mut self, i: usize) -> anyhow::Result<()> {
        self.kill_core(i);
        self.spawn_core(i)?;
        self.wait_core(i).await
    }

    /// SIGKILL every nats-server, core and leaf, keep them down for `down`,
    /// then start them again on their stores and wait until the cluster has a
    /// JetStream leader and both leaf nodes are connected. The lattice's own
    /// processes are left alone: they must find their way back.
    pub async fn restart_all_nats(&mut self, down: Duration) -> anyhow::Result<()> {
        for i in 0..CORE_NODES {
            self.kill_core(i);
        }
        for leaf in &mut self.leaves {
            leaf.kill();
        }
        tokio::time::sleep(down).await;
        for i in 0..CORE_NODES {
            self.spawn_core(i)?;
        }
        for i in 0..CORE_NODES {
            self.wait_core(i).await?;
        }
        for s in 0..EDGE_SITES.len() {
            self.spawn_leaf(s)?;
        }
        let client = self.connect().await?;
        self.wait_jetstream(&client).await?;
        for s in 0..EDGE_SITES.len() {
            self.wait_leaf(s).await?;
        }
        Ok(())
    }

    /// Every process that has exited, with how.
    pub fn exited(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        let all = self
            .hosts
            .values_mut()
            .chain(self.controller.as_mut())
            .chain(self.leaves.iter_mut())
            .chain(self.cores.iter_mut().flatten());
        for p in all {
            if let Some(status) = p.exited() {
                out.push(format!("{} exited with {status}", p.name()));
            }
        }
        out
    }

    /// Every running process's name and pid (for CPU accounting).
    pub fn pids(&self) -> Vec<(String, u32)> {
        self.cores
            .iter()
            .flatten()
            .chain(&self.leaves)
            .chain(&self.controller)
            .chain(self.hosts.values())
            .map(|p| (p.name().to_string(), p.pid()))
            .collect()
    }

    /// The last lines of every process's log.
    pub fn logs(&self) -> String {
        let all = self
            .cores
            .iter()
            .flatten()
            .chain(&self.leaves)
            .chain(&self.controller)
            .chain(self.hosts.values());
        let mut out = String::new();
        for p in all {
            let log = p.log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(LOG_TAIL)..];
            out.push_str(&format!("--- {} ---\n{}\n", p.name(), tail.join("\n")));
        }
        out
    }

    /// Stop every process and delete the network; safe to repeat (drop does it).
    pub fn teardown(&mut self) {
        self.hosts.clear();
        self.controller = None;
        self.leaves.clear();
        for core in &mut self.cores {
            *core = None;
        }
        self.proxies.clear();
        self.net.teardown();
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("topology {} logs:\n{}", self.lattice, self.logs());
        }
        self.teardown();
    }
}

/// Wait until `process`'s log contains `line` and `ready()` holds; fail with the
/// log if it exits or the deadline passes.
async fn wait_log(
    process: &mut Process,
    line: &str,
    ready: impl Fn() -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + READY_DEADLINE;
    loop {
        if let Some(status) = process.exited() {
            bail!(
                "{} exited with {status}:\n{}",
                process.name(),
                process.log()
            );
        }
        if process.log().contains(line) && ready() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "{} did not log {line:?} within {}s:\n{}",
                process.name(),
                READY_DEADLINE.as_secs(),
                process.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
