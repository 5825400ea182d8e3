//! A real JetStream cluster of `nats-server`s for durability tests.
//!
//! [`NatsCluster::start`] runs `n` servers on free ports of 127.0.0.1, each with its
//! own client port, cluster port and store folder, every one routed to every other.
//! [`NatsCluster::kill`] SIGKILLs one node (its store stays), [`NatsCluster::restart`]
//! brings it back on the same ports with the same store; dropping the value kills
//! them all and removes the folders. [`NatsCluster::wait_jetstream`] waits until the
//! cluster has elected its JetStream meta leader, before which replicated streams
//! cannot be created.

use crate::nats::{find_binary, free_port, PORT_ATTEMPTS};
use anyhow::{bail, Context};
use std::fs;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a started node has to say it is ready.
const READY_DEADLINE: Duration = Duration::from_secs(15);
/// How long the cluster has to elect its JetStream meta leader.
const JETSTREAM_DEADLINE: Duration = Duration::from_secs(30);

/// One node of a [`NatsCluster`].
#[derive(Debug)]
struct Node {
    name: String,
    port: u16,
    cluster_port: u16,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

/// A running JetStream cluster, killed on drop.
#[derive(Debug)]
pub struct NatsCluster {
    bin: PathBuf,
    nodes: Vec<Node>,
    _dir: tempfile::TempDir,
}

impl NatsCluster {
    /// Start `n` (at least 1) routed servers with JetStream and wait until each
    /// accepts connections. A port picked free can be taken before its node binds
    /// it (the first nodes' routes dial out from ports of the same range): then
    /// the whole cluster starts again on new ports.
    pub fn start(n: usize) -> anyhow::Result<Self> {
        let mut last = None;
        for _ in 0..PORT_ATTEMPTS {
            match Self::start_on_free_ports(n) {
                Ok(cluster) => return Ok(cluster),
                Err(e) if format!("{e:#}").contains("address already in use") => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        let e = last.unwrap_or_else(|| anyhow::anyhow!("no attempt made"));
        Err(e.context(format!(
            "could not start a NATS cluster on free ports after {PORT_ATTEMPTS} attempts"
        )))
    }

    fn start_on_free_ports(n: usize) -> anyhow::Result<Self> {
        let bin = find_binary()?;
        let dir = tempfile::Builder::new()
            .prefix("lattice-nats-cluster-")
            .tempdir()
            .context("creating a folder for the test NATS cluster")?;
        let mut ports = Vec::new();
        for _ in 0..n.max(1) {
            ports.push((free_port()?, free_port()?));
        }
        let mut nodes = Vec::new();
        for (i, (port, cluster_port)) in ports.iter().enumerate() {
            let name = format!("n{}", i + 1);
            let routes: Vec<String> = ports
                .iter()
                .filter(|(_, c)| c != cluster_port)
                .map(|(_, c)| format!("\"nats-route://127.0.0.1:{c}\""))
                .collect();
            let store = dir.path().join(&name).join("jetstream");
            let conf = format!(
                "listen: \"127.0.0.1:{port}\"\nserver_name: \"{name}\"\n\
                 jetstream {{\n  store_dir: \"{store}\"\n}}\n\
                 cluster {{\n  name: \"lattice-test\"\n  listen: \"127.0.0.1:{cluster_port}\"\n  \
                 routes: [{routes}]\n}}\n",
                store = store.display(),
                routes = routes.join(", "),
            );
            let config = dir.path().join(format!("{name}.conf"));
            fs::write(&config, conf).with_context(|| format!("writing {}", config.display()))?;
            nodes.push(Node {
                log: dir.path().join(format!("{name}.log")),
                name,
                port: *port,
                cluster_port: *cluster_port,
                config,
                child: None,
            });
        }
        let mut cluster = Self {
            bin,
            nodes,
            _dir: dir,
        };
        for i in 0..cluster.nodes.len() {
            cluster.spawn(i)?;
        }
        Ok(cluster)
    }

    /// How many nodes the cluster has.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the cluster has no node (never: it starts with at least one).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The client URL of node `i`.
    pub fn url_of(&self, i: usize) -> String {
        format!("nats://127.0.0.1:{}", self.nodes[i].port)
    }

    /// Every node's client URL, comma-separated: clients given this reconnect to
    /// another node when theirs dies.
    pub fn urls(&self) -> String {
        (0..self.nodes.len())
            .map(|i| self.url_of(i))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The `server_name` of node `i` (`n1`, `n2`, ...), as JetStream names leaders.
    pub fn name_of(&self, i: usize) -> &str {
        &self.nodes[i].name
    }

    /// The node whose `server_name` is `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    /// The log of node `i` (for assertion messages).
    pub fn log_of(&self, i: usize) -> String {
        read_from(&self.nodes[i].log, 0)
    }

    /// Connect a client to every node (it picks one, and moves on when that dies).
    pub async fn connect(&self) -> anyhow::Result<async_nats::Client> {
        lattice_bus::connect(&lattice_bus::ConnectSettings::new(
            self.urls(),
            "lattice-test",
        ))
        .await
        .with_context(|| format!("connecting to the test NATS cluster at {}", self.urls()))
    }

    /// Wait until JetStream answers through `client`: the cluster has a meta leader.
    pub async fn wait_jetstream(&self, client: &async_nats::Client) -> anyhow::Result<()> {
        let js = async_nats::jetstream::new(client.clone());
        let deadline = tokio::time::Instant::now() + JETSTREAM_DEADLINE;
        loop {
            let last = match js.query_account().await {
                Ok(_) => return Ok(()),
                Err(e) => e.to_string(),
            };
            if tokio::time::Instant::now() >= deadline {
                bail!(
                    "the NATS cluster had no JetStream meta leader within {}s: {last}",
                    JETSTREAM_DEADLINE.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// SIGKILL node `i`; its store stays for [`NatsCluster::restart`].
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kill node `i` (if running) and start it again on the same ports with the
    /// same store.
    pub fn restart(&mut self, i: usize) -> anyhow::Result<()> {
        self.kill(i);
        let deadline = Instant::now() + READY_DEADLINE;
        loop {
            match self.spawn(i) {
                Ok(()) => return Ok(()),
                // The old process's sockets may linger for a moment.
                Err(e) if Instant::now() < deadline && e.to_string().contains("in use") => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn spawn(&mut self, i: usize) -> anyhow::Result<()> {
        let node = &mut self.nodes[i];
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .with_context(|| format!("opening {}", node.log.display()))?;
        let log_len = log.metadata().map(|m| m.len()).unwrap_or(0);
        let mut child = Command::new(&self.bin)
            .arg("-c")
            .arg(&node.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("cloning the log handle")?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("running {}", self.bin.display()))?;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, node.port));
        let deadline = Instant::now() + READY_DEADLINE;
        loop {
            let output = read_from(&node.log, log_len);
            if let Some(status) = child.try_wait().context("waiting for nats-server")? {
                bail!(
                    "nats-server {} (ports {} and {}) exited with {status} before it was \
                     ready (address in use?):\n{output}",
                    node.name,
                    node.port,
                    node.cluster_port
                );
            }
            if output.contains("Server is ready")
                && TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok()
            {
                node.child = Some(child);
                return Ok(());
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "nats-server {} was not ready on {addr} within {}s:\n{output}",
                    node.name,
                    READY_DEADLINE.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}

fn read_from(path: &Path, offset: u64) -> String {
    let mut text = String::new();
    if let Ok(mut f) = fs::File::open(path) {
        let _ = f.read_to_string(&mut text);
    }
    text.get(offset as usize..).unwrap_or(&text).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_nats::jetstream::{self, stream};

    /// A stream with 3 replicas keeps its messages when the node leading it dies,
    /// and the dead node comes back on its ports with its store.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_replicated_stream_survives_losing_its_leader() {
        let mut cluster = NatsCluster::start(3).unwrap();
        let client = cluster.connect().await.unwrap();
        cluster.wait_jetstream(&client).await.unwrap();
        let js = jetstream::new(client.clone());
        let mut s = js
            .create_stream(stream::Config {
                name: "r3".into(),
                subjects: vec!["r3.>".into()],
                num_replicas: 3,
                ..Default::default()
            })
            .await
            .unwrap();
        js.publish("r3.a", "v".into()).await.unwrap().await.unwrap();
        let leader = s
            .info()
            .await
            .unwrap()
            .cluster
            .clone()
            .unwrap()
            .leader
            .unwrap();
        let dead = cluster.index_of(&leader).unwrap();
        cluster.kill(dead);

        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let survived = loop {
            match s.info().await {
                Ok(info)
                    if info
                        .cluster
                        .as_ref()
                        .and_then(|c| c.leader.as_ref())
                        .is_some_and(|l| *l != leader) =>
                {
                    break info;
                }
                other => {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "no new leader: {other:?}"
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        };
        assert_eq!(survived.state.messages, 1);
        cluster.restart(dead).unwrap();
        assert!(TcpStream::connect(("127.0.0.1", cluster.nodes[dead].port)).is_ok());
    }
}
