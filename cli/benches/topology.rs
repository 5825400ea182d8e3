//! An edge→core call through a leaf node, with 0, 10 and 50 ms injected each way
//! on the edge's link (`lattice_testing::topology`): an order at edge-a's HTTP
//! listener, where `auth` calls `business` in the core over NATS (the shop app,
//! `manifests/shop.yaml`). The injected delay is the physical limit here: a
//! call crosses the link twice (request and answer), so what the lattice adds
//! is the round trip minus twice the delay.
//!
//! Per delay: WARMUP orders, then ORDERS (default 300) one after another,
//! timed from the client; p50, p99 and max; the round trip of the link alone
//! (a ping through a proxy with the same delay to an echo server: 2 × delay
//! plus the proxy's timer rounding) and the p50 over it; and the CPU time per
//! order of the edge host, the core host and all five nats-servers (from
//! /proc, 10 ms ticks, summed over the round, less what they spend idle, as
//! measured over 5 s before the first round).
//!
//! `cargo bench -p lattice-cli --bench topology` (as root; it says why and does
//! nothing where network namespaces cannot be made). `TOPOLOGY_ORDERS=N` for
//! another count; `LATTICE_BIN=path` to measure another `lattice` binary (e.g.
//! a release build). Figures: docs/benchmarks.md.

#![allow(clippy::unwrap_used)] // a benchmark: an unwrap that fails is a failed run

use lattice_testing::components::sample_manifest;
use lattice_testing::delay_proxy::DelayProxy;
use lattice_testing::topology::{self, Topology};
use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WARMUP: usize = 20;
/// The window in which idle CPU is measured.
const IDLE_WINDOW: Duration = Duration::from_secs(5);
const DELAYS_MS: [u64; 3] = [0, 10, 50];
const ALICE: &str = "/order?customer=alice&items=apple:2,pear:1";
const PORT: u16 = 8082;
/// How long the app has to start answering.
const DEADLINE: Duration = Duration::from_secs(60);

fn ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command's closing parenthesis: utime is the 12th, stime the 13th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}

/// CPU ticks of the edge host, the core host and the nats-servers.
fn cpu(topo: &Topology) -> [u64; 3] {
    let mut out = [0; 3];
    for (name, pid) in topo.pids() {
        let slot = match name.as_str() {
            "host edge-a" => 0,
            "host core" => 1,
            n if n.starts_with("core-") || n.starts_with("nats ") => 2,
            _ => continue,
        };
        out[slot] += ticks(pid);
    }
    out
}

async fn order(client: &reqwest::Client, addr: SocketAddrV4) -> Result<(), String> {
    let resp = client
        .get(format!("http://{addr}{ALICE}"))
        .bearer_auth("let-me-in")
        .send()
        .await
        .map_err(|e| e.to_string())?;
    match resp.status().as_u16() {
        200 => Ok(()),
        other => Err(format!(
            "HTTP {other}: {}",
            resp.text().await.unwrap_or_default()
        )),
    }
}

/// The p50 round trip of a 100-byte ping through a [`DelayProxy`] delaying by
/// `delay` to an echo server, on loopback: what the link alone costs, timer
/// rounding included.
async fn link_rtt(delay: Duration) -> Duration {
    let echo = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let echo_addr = echo.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut s, _) = echo.accept().await.unwrap();
        let (mut r, mut w) = s.split();
        let _ = tokio::io::copy(&mut r, &mut w).await;
    });
    let proxy = DelayProxy::start("127.0.0.1:0".parse().unwrap(), echo_addr, delay)
        .await
        .unwrap();
    let mut s = tokio::net::TcpStream::connect(proxy.addr()).await.unwrap();
    s.set_nodelay(true).unwrap();
    let ping = [7u8; 100];
    let mut back = [0u8; 100];
    let mut times = Vec::new();
    for _ in 0..50 {
        let start = Instant::now();
        s.write_all(&ping).await.unwrap();
        s.read_exact(&mut back).await.unwrap();
        times.push(start.elapsed());
    }
    server.abort();
    times.sort();
    percentile(&times, 0.5)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if let Some(why) = topology::unavailable() {
        eprintln!("topology bench skipped: {why}");
        return;
    }
    let orders: usize = std::env::var("TOPOLOGY_ORDERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(300);
    let bin = std::env::var_os("LATTICE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_lattice")));
    let mut topo = Topology::start(&bin, "bench", Duration::ZERO)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("shop.yaml");
    let text = sample_manifest("shop.yaml", &[]).replace("127.0.0.1:8082", "0.0.0.0:8082");
    std::fs::write(&manifest, text).unwrap();
    let until = Instant::now() + DEADLINE;
    loop {
        // A deploy racing the controller's start is refused; try again.
        let deployed = topo
            .cli(&["app", "deploy", manifest.to_str().unwrap(), "--no-wait"])
            .output()
            .unwrap();
        if deployed.status.success() {
            break;
        }
        assert!(
            Instant::now() < until,
            "the deploy was never accepted: {deployed:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let edge = topo.edge_addr(0, PORT);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let until = Instant::now() + DEADLINE;
    while let Err(e) = order(&client, edge).await {
        assert!(
            Instant::now() < until,
            "the shop never answered at edge-a: {e}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // /proc counts in USER_HZ, 100 on Linux.
    let tick_ms = 10.0;
    // What the processes spend idle (heartbeats, pings), per second, to take
    // out of each round's CPU: a 5 s window with no orders.
    let idle_start = (cpu(&topo), Instant::now());
    tokio::time::sleep(IDLE_WINDOW).await;
    let idle_end = cpu(&topo);
    let idle_secs = idle_start.1.elapsed().as_secs_f64();
    let idle_rate: Vec<f64> = (0..3)
        .map(|i| (idle_end[i] - idle_start.0[i]) as f64 * tick_ms / idle_secs)
        .collect();

    println!("lattice binary: {}", bin.display());
    println!(
        "idle CPU, ms per second: edge host {:.1}, core host {:.1}, nats-servers {:.1}",
        idle_rate[0], idle_rate[1], idle_rate[2]
    );
    println!(
        "| injected one-way | orders | p50 ms | p99 ms | max ms | link alone: RTT p50 ms | p50 − link RTT ms | CPU/order ms: edge host | core host | 5 nats-servers |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for delay_ms in DELAYS_MS {
        let delay = Duration::from_millis(delay_ms);
        topo.set_delay(delay);
        for _ in 0..WARMUP {
            order(&client, edge).await.unwrap();
        }
        let rtt = link_rtt(delay).await;
        let before = cpu(&topo);
        let started = Instant::now();
        let mut times = Vec::with_capacity(orders);
        for _ in 0..orders {
            let start = Instant::now();
            order(&client, edge).await.unwrap();
            times.push(start.elapsed());
        }
        let after = cpu(&topo);
        let secs = started.elapsed().as_secs_f64();
        times.sort();
        let p50 = percentile(&times, 0.5);
        let per = |i: usize| {
            let busy = (after[i] - before[i]) as f64 * tick_ms - idle_rate[i] * secs;
            format!("{:.2}", busy.max(0.0) / orders as f64)
        };
        println!(
            "| {delay_ms} ms | {orders} | {} | {} | {} | {} | {} | {} | {} | {} |",
            ms(p50),
            ms(percentile(&times, 0.99)),
            ms(*times.last().unwrap()),
            ms(rtt),
            ms(p50.saturating_sub(rtt)),
            per(0),
            per(1),
            per(2),
        );
    }
    topo.teardown();
}
