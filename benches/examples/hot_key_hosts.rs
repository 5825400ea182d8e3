//! The server side of `scripts/bench-hot-key.sh` (issue 15): a nats-server and
//! `HOSTS` in-process hosts on it, each serving the same two apps on ports of its
//! own: `hello`, and `counter` (`GET /<key>` increments `<key>` in
//! `builtin://keyvalue-nats`). The apps are one app each across the hosts, so the
//! counter's bucket is shared: a hot key is hot on every host at once.
//!
//! Prints `ready hello=P1,P2,... counter=Q1,Q2,...` once every host answers, then
//! serves until SIGINT/SIGTERM. Hosts run with the default limits, as `lattice up`'s.
//!
//! Run: `cargo run --release -p lattice-benches --example hot_key_hosts -- 3`

#![allow(clippy::unwrap_used)] // a benchmark: an unwrap that fails is a failed run

use lattice_testing::host::{get, host, Limits};
use lattice_testing::manifest::{spec, App, Component, Link};
use lattice_testing::nats::{free_port, NatsServer};

fn counter(port: u16) -> App {
    App::new("counter")
        .with(
            Component::wasm("counter", "counter")
                .instances(100)
                .link(Link::to("kv", "wasi:keyvalue", &["atomics", "store"])),
        )
        .with(Component::capability("kv", "builtin://keyvalue-nats"))
        .http_server("counter", port)
}

fn hello(port: u16) -> App {
    App::new("hello")
        .with(Component::wasm("hello", "hello").instances(100))
        .http_server("hello", port)
}

fn ports(ports: &[u16]) -> String {
    ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

#[tokio::main]
async fn main() {
    let hosts: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse().expect("HOSTS is a number"))
        .unwrap_or(1);
    let nats = NatsServer::start().unwrap();
    let (mut running, mut hello_ports, mut counter_ports) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..hosts {
        let host = host(Limits::default(), Some(nats.connect().await.unwrap()));
        let (h, c) = (free_port().unwrap(), free_port().unwrap());
        host.apply(spec(hello(h).manifest())).await.unwrap();
        host.apply(spec(counter(c).manifest())).await.unwrap();
        assert_eq!(get(h, "/").await.0, 200);
        assert_eq!(get(c, "/warmup").await.0, 200);
        running.push(host);
        hello_ports.push(h);
        counter_ports.push(c);
    }
    println!(
        "ready hello={} counter={}",
        ports(&hello_ports),
        ports(&counter_ports)
    );
    let mut term =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    drop(running);
    drop(nats);
}
