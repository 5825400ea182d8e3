//! The topology harness for a person (`deploy/topology.sh up`): the core
//! cluster, two edge sites and their links as the tests build them
//! (`lattice_testing::topology`), kept up until Ctrl-C or `quit`, driven from
//! stdin:
//!
//! ```text
//! delay MS        every edge link delays MS each way
//! cut a|b         cut edge-a's (edge-b's) link to the core
//! restore a|b     restore it
//! kill N          SIGKILL core node N (1-3)
//! start N         start it again on its store
//! quit            tear everything down
//! ```
//!
//! Needs root, and `LATTICE_BIN` (the `lattice` binary to run); optional
//! `TOPOLOGY_DELAY_MS` (default 10) and `TOPOLOGY_LATTICE` (default `demo`).

use anyhow::{bail, Context};
use lattice_testing::topology::{self, Topology, EDGE_SITES};
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::AsyncBufReadExt;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    if let Some(why) = topology::unavailable() {
        bail!("cannot build the topology here: {why}");
    }
    let bin = PathBuf::from(
        std::env::var_os("LATTICE_BIN").context("set LATTICE_BIN to the lattice binary")?,
    );
    let delay_ms: u64 = match std::env::var("TOPOLOGY_DELAY_MS") {
        Ok(ms) => ms.parse().context("TOPOLOGY_DELAY_MS is not a number")?,
        Err(_) => 10,
    };
    let lattice = std::env::var("TOPOLOGY_LATTICE").unwrap_or_else(|_| "demo".into());
    let mut topo = Topology::start(&bin, &lattice, Duration::from_millis(delay_ms)).await?;
    println!("lattice '{lattice}' is up, {delay_ms} ms each way on the edge links");
    println!(
        "operator CLI:\n  {} --nats-url {} --nats-creds {} --lattice {lattice} app deploy manifests/shop.yaml",
        bin.display(),
        topo.core_urls(),
        topo.cli_creds().display()
    );
    for (s, site) in EDGE_SITES.iter().enumerate() {
        println!(
            "{site}: ip netns exec {} curl -H 'authorization: Bearer let-me-in' \
             'http://127.0.0.1:8082/order?customer=alice&items=apple:2'",
            topo.edge_namespace(s)
        );
    }
    println!("commands: delay MS | cut a|b | restore a|b | kill N | start N | quit");
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    loop {
        let line = tokio::select! {
            line = lines.next_line() => line?,
            _ = tokio::signal::ctrl_c() => None,
        };
        let Some(line) = line else { break };
        let words: Vec<&str> = line.split_whitespace().collect();
        let site = |w: &str| match w {
            "a" => Some(0),
            "b" => Some(1),
            _ => None,
        };
        let node = |w: &str| w.parse::<usize>().ok().filter(|n| (1..=3).contains(n));
        match words.as_slice() {
            ["delay", ms] => match ms.parse() {
                Ok(ms) => topo.set_delay(Duration::from_millis(ms)),
                Err(_) => println!("delay takes milliseconds"),
            },
            ["cut", w] if site(w).is_some() => topo.cut(site(w).unwrap_or(0)),
            ["restore", w] if site(w).is_some() => topo.restore(site(w).unwrap_or(0)),
            ["kill", n] if node(n).is_some() => topo.kill_core(node(n).unwrap_or(1) - 1),
            ["start", n] if node(n).is_some() => {
                if let Err(e) = topo.restart_core(node(n).unwrap_or(1) - 1).await {
                    println!("{e:#}");
                }
            }
            ["quit"] => break,
            [] => {}
            _ => println!("commands: delay MS | cut a|b | restore a|b | kill N | start N | quit"),
        }
    }
    topo.teardown();
    println!("torn down");
    Ok(())
}
