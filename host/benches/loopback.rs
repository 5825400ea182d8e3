//! A component talking TCP to its workload's service over the virtual loopback,
//! against the same echo over the kernel's loopback, in one run (issue 5's
//! benchmark):
//!
//! - `virtual loopback`: the `net-bench` component's `echo-rounds` (invoked once per
//!   sample through `Host::call`) against the `tcp-echo-service` service of its own
//!   workload: both are Wasm, the connection is in-process pipes.
//! - `kernel loopback`: a native Rust client (std blocking sockets, as the Wasm
//!   client uses) and a native tokio echo server on `127.0.0.1`: the kernel's TCP
//!   path with no Wasm at all.
//!
//! Each case: 1 KiB written and read back per round; either a new connection per
//! round (`connect + echo`) or one connection for all rounds (`kept connection`).
//! Reported per round: mean over the sample, median of the samples.
//!
//! Run: `cargo bench -p lattice-host --bench loopback` (`LOOPBACK_ROUNDS`, default
//! 2000 rounds per sample; 15 samples).

#![allow(clippy::unwrap_used)] // a benchmark: an unwrap that fails is a failed run

use lattice_host::{Host, HostConfig};
use lattice_protocol::messages::WorkloadSpec;
use lattice_testing::manifest::{App, Component};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use wasmtime::component::Val;

const SIZE: usize = 1024;
const SAMPLES: usize = 15;

fn manifest() -> lattice_protocol::manifest::Manifest {
    App::new("bench")
        .with(Component::wasm("client", "net-bench"))
        .with(Component::service("echo", "tcp-echo-service").config("net", &[("port", "7070")]))
        .manifest()
}

/// One sample of the virtual path: nanoseconds per round.
async fn virtual_sample(host: &Host, rounds: u32, reconnect: bool) -> f64 {
    let out = host
        .call(
            "bench",
            "client",
            "lattice:netbench/client",
            "echo-rounds",
            &[
                Val::String("127.0.0.1:7070".into()),
                Val::U32(SIZE as u32),
                Val::U32(rounds),
                Val::Bool(reconnect),
            ],
        )
        .await
        .expect("echo-rounds runs");
    match &out[..] {
        [Val::Result(Ok(Some(nanos)))] => match **nanos {
            Val::U64(n) => n as f64 / f64::from(rounds),
            ref other => panic!("unexpected {other:?}"),
        },
        other => panic!("echo-rounds failed: {other:?}"),
    }
}

/// A native echo server on the kernel's loopback: tokio on a thread of its own,
/// a task per connection (no thread creation per connection to skew `connect`).
fn kernel_echo_server() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(async move {
                    let _ = stream.set_nodelay(true);
                    let mut buf = [0u8; 16 * 1024];
                    loop {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                if stream.write_all(&buf[..n]).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
    });
    port
}

/// One sample of the kernel path: nanoseconds per round.
fn kernel_sample(port: u16, rounds: u32, reconnect: bool) -> f64 {
    let data = vec![7u8; SIZE];
    let mut back = vec![0u8; SIZE];
    let connect = || {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_nodelay(true).unwrap();
        s
    };
    let start = Instant::now();
    let mut stream = connect();
    for round in 0..rounds {
        if reconnect && round > 0 {
            stream = connect();
        }
        stream.write_all(&data).unwrap();
        stream.read_exact(&mut back).unwrap();
    }
    start.elapsed().as_nanos() as f64 / f64::from(rounds)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rounds: u32 = std::env::var("LOOPBACK_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let config = HostConfig {
        allow_file_load: true,
        ..HostConfig::default()
    };
    let host = Host::new(config, None).unwrap();
    host.apply(WorkloadSpec {
        manifest: manifest(),
        placements: [("client".to_string(), 4)].into(),
        secrets: None,
    })
    .await
    .unwrap();
    // Wait for the service to listen.
    let deadline = Instant::now() + Duration::from_secs(10);
    while host
        .loopback("bench")
        .and_then(|w| w.upgrade())
        .map(|n| n.listening())
        != Some(vec![7070])
    {
        assert!(Instant::now() < deadline, "the echo service did not start");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let port = kernel_echo_server();

    println!("| case | path | µs per round (median of {SAMPLES} samples of {rounds}) |");
    println!("|---|---|---|");
    for (case, reconnect) in [
        ("connect + 1 KiB echo", true),
        ("1 KiB echo, kept connection", false),
    ] {
        // Warm up both.
        virtual_sample(&host, 100, reconnect).await;
        kernel_sample(port, 100, reconnect);
        let mut virt = Vec::new();
        let mut kern = Vec::new();
        for _ in 0..SAMPLES {
            virt.push(virtual_sample(&host, rounds, reconnect).await);
            kern.push(tokio::task::block_in_place(|| {
                kernel_sample(port, rounds, reconnect)
            }));
        }
        let (v, k) = (median(virt) / 1e3, median(kern) / 1e3);
        println!("| {case} | virtual loopback (Wasm component to Wasm service) | {v:.2} |");
        println!("| {case} | kernel loopback (native client and server) | {k:.2} |");
        println!("| {case} | ratio virtual / kernel | {:.2} |", v / k);
    }
}
