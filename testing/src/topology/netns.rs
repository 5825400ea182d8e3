//! The network of a [`Topology`](super::Topology): one Linux network namespace
//! per core node and per edge site, made with `ip` as a person would.
//!
//! ```text
//!  core-1 ns   core-2 ns   core-3 ns        10.P.Q.11-13/24 (eth0 each)
//!      └───────────┼───────────┘
//!          bridge lt<tag>br (root ns)     10.P.Q.1/24
//!  root ns: the delay proxies (one per edge site and core node)
//!          veth lt<tag>ea  10.P.Q+1.1/24  ──  edge-a ns 10.P.Q+1.2/24
//!          veth lt<tag>eb  10.P.Q+2.1/24  ──  edge-b ns 10.P.Q+2.2/24
//! ```
//!
//! Nothing forwards between the links: an edge site reaches the core only
//! through a proxy listening on its link's root-side address, so cutting the
//! proxy cuts the site off. Names carry a tag made of this process's id and a
//! counter, so test binaries running at once do not collide; a namespace whose
//! process is gone (a crashed run) is removed by the next run. Tear-down deletes
//! everything made and is safe to repeat.

use anyhow::{bail, Context};
use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// Every namespace the harness makes starts with this.
pub const PREFIX: &str = "lattice-t";

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Why namespaces cannot be made here, if they cannot.
pub fn unavailable() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("network namespaces need root (run as root, as CI does)".into());
    }
    let probe = format!("{PREFIX}probe-{}", std::process::id());
    match ip(&["netns", "add", &probe]) {
        Ok(()) => {
            let _ = ip(&["netns", "del", &probe]);
            None
        }
        Err(e) => Some(format!("`ip netns add` is not permitted here: {e:#}")),
    }
}

/// Run `ip ARGS`, failing with its stderr.
fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running `ip` (is iproute2 installed?)")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn ip_output(args: &[&str]) -> String {
    Command::new("ip")
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// The namespaces, bridge and veth pairs of one topology; removed on drop.
#[derive(Debug)]
pub struct Network {
    tag: String,
    /// 10.P.Q.0/24 is the core's LAN, 10.P.(Q+1+s).0/24 edge site `s`'s link.
    p: u8,
    q: u8,
    cores: Vec<String>,
    edges: Vec<String>,
    bridge: String,
    torn_down: bool,
}

impl Network {
    /// Make `cores` core namespaces on one bridge and `edges` edge namespaces,
    /// each on its own veth pair to the root namespace.
    pub fn create(cores: usize, edges: &[&str]) -> anyhow::Result<Network> {
        remove_orphans();
        let pid = std::process::id();
        let p = 64 + (pid % 128) as u8;
        let used = ip_output(&["-4", "-o", "addr"]);
        let (tag, q) = loop {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            if n >= 16 {
                bail!("no free 10.{p}.x.0/24 subnets left for a topology");
            }
            let q = (n * 8) as u8;
            let clash =
                (0..=edges.len() as u8).any(|k| used.contains(&format!(" 10.{p}.{}.", q + k)));
            if !clash {
                break (format!("{pid:x}{n:x}"), q);
            }
        };
        let mut net = Network {
            bridge: format!("lt{tag}br"),
            cores: (1..=cores)
                .map(|i| format!("{PREFIX}{tag}-core-{i}"))
                .collect(),
            edges: edges.iter().map(|s| format!("{PREFIX}{tag}-{s}")).collect(),
            tag,
            p,
            q,
            torn_down: false,
        };
        net.build()
            .with_context(|| format!("making the network of topology {}", net.tag))?;
        Ok(net)
    }

    fn build(&mut self) -> anyhow::Result<()> {
        let br = self.bridge.clone();
        ip(&["link", "add", &br, "type", "bridge"])?;
        ip(&[
            "addr",
            "add",
            &format!("{}/24", self.core_gateway()),
            "dev",
            &br,
        ])?;
        ip(&["link", "set", &br, "up"])?;
        for i in 0..self.cores.len() {
            let ns = self.cores[i].clone();
            let veth = format!("lt{}c{}", self.tag, i + 1);
            ip(&["netns", "add", &ns])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            ip(&[
                "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ])?;
            ip(&["link", "set", &veth, "master", &br])?;
            ip(&["link", "set", &veth, "up"])?;
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{}/24", self.core_ip(i)),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
        }
        for s in 0..self.edges.len() {
            let ns = self.edges[s].clone();
            let veth = format!("lt{}e{}", self.tag, s + 1);
            ip(&["netns", "add", &ns])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            ip(&[
                "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ])?;
            ip(&[
                "addr",
                "add",
                &format!("{}/24", self.edge_gateway(s)),
                "dev",
                &veth,
            ])?;
            ip(&["link", "set", &veth, "up"])?;
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{}/24", self.edge_ip(s)),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
        }
        Ok(())
    }

    /// The namespace of core node `i` (from 0).
    pub fn core_ns(&self, i: usize) -> &str {
        &self.cores[i]
    }

    /// The namespace of edge site `s` (from 0).
    pub fn edge_ns(&self, s: usize) -> &str {
        &self.edges[s]
    }

    /// Core node `i`'s address, reachable from the root and core namespaces.
    pub fn core_ip(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, self.p, self.q, 11 + i as u8)
    }

    /// The root namespace's address on the core's bridge.
    pub fn core_gateway(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, self.p, self.q, 1)
    }

    /// Edge site `s`'s address, reachable from the root namespace only.
    pub fn edge_ip(&self, s: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, self.p, self.q + 1 + s as u8, 2)
    }

    /// The root namespace's end of edge site `s`'s link: where the site's proxies
    /// to the core listen.
    pub fn edge_gateway(&self, s: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, self.p, self.q + 1 + s as u8, 1)
    }

    /// `program` to run inside namespace `ns` (`ip netns exec NS PROGRAM`).
    pub fn command(&self, ns: &str, program: &std::path::Path) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns]).arg(program);
        cmd
    }

    /// Delete every namespace and link this network made; safe to repeat.
    pub fn teardown(&mut self) {
        if self.torn_down {
            return;
        }
        for ns in self.cores.iter().chain(&self.edges) {
            // Deleting a namespace deletes its end of the veth pair, and so the pair.
            let _ = ip(&["netns", "del", ns]);
        }
        let _ = ip(&["link", "del", &self.bridge]);
        self.torn_down = true;
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// Remove namespaces (and their bridges) of earlier runs whose process is gone.
fn remove_orphans() {
    for line in ip_output(&["netns", "list"]).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let Some(tag) = rest.split('-').next() else {
            continue;
        };
        // The tag is the pid in hex followed by one hex digit of counter.
        let Some(pid) = tag
            .get(..tag.len().saturating_sub(1))
            .and_then(|h| u32::from_str_radix(h, 16).ok())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = ip(&["netns", "del", name]);
            let _ = ip(&["link", "del", &format!("lt{tag}br")]);
        }
    }
}
