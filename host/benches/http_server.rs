//! The built-in HTTP server's bounds, on and off, in one run (issue 11's benchmark):
//! the `hello` component behind two listeners of one in-process host,
//!
//! - `defaults`: `HttpServerLimits::default()` (10 s header-read timeout, 1024
//!   connections, 16 MiB bodies);
//! - `loose`: the same mechanism with values that never bind (60 min, a million
//!   connections, 2^60-byte bodies): "limits effectively off".
//!
//! A client in the same process keeps `HTTP_CONNS` (default 8) HTTP/1.1 connections
//! busy with GETs for `HTTP_SECS` (default 3) per run, alternating the two listeners
//! for `HTTP_ROUNDS` (default 3) rounds. Reported per run: requests per second
//! (wall-clock) and the CPU time of the whole process (server and client, user +
//! system, from `/proc/self/stat`) per request: on a shared machine the CPU figure
//! is the one to compare.
//!
//! Run: `cargo bench -p lattice-host --bench http_server`.

#![allow(clippy::unwrap_used)] // a benchmark: an unwrap that fails is a failed run

use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use lattice_host::{Host, HostConfig};
use lattice_testing::manifest::{spec, App, Component, Link};
use lattice_testing::nats::free_port;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `hello` on `port`, its listener's source config `limits` beside the address.
fn app(name: &str, port: u16, limits: &[(&str, &str)]) -> lattice_protocol::manifest::Manifest {
    let address = format!("127.0.0.1:{port}");
    let mut config = vec![("address", address.as_str())];
    config.extend_from_slice(limits);
    App::new(name)
        .with(Component::wasm("web", "hello").instances(64))
        .with(
            Component::capability("httpserver", "builtin://http-server").link(
                Link::to("web", "wasi:http", &["incoming-handler"])
                    .source_config("listen", &config),
            ),
        )
        .manifest()
}

/// The process's CPU time (user + system), in 10 ms ticks.
fn process_cpu() -> Duration {
    lattice_testing::process::cpu_time(None)
}

/// `conns` keep-alive connections sending GETs to `port` for `secs`: (req/s, CPU µs/req).
async fn run(port: u16, conns: u64, secs: u64) -> (f64, f64) {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let (start, cpu) = (Instant::now(), process_cpu());
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap();
            stream.set_nodelay(true).unwrap();
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .unwrap();
            tokio::spawn(conn);
            while Instant::now() < deadline {
                let req = http::Request::get("/")
                    .header("host", "bench")
                    .body(Empty::<bytes::Bytes>::new())
                    .unwrap();
                let resp = sender.send_request(req).await.unwrap();
                assert_eq!(resp.status(), 200);
                resp.into_body().collect().await.unwrap();
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let (wall, cpu) = (start.elapsed(), process_cpu() - cpu);
    let n = done.load(Ordering::Relaxed) as f64;
    (n / wall.as_secs_f64(), cpu.as_secs_f64() * 1e6 / n)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let (conns, secs, rounds) = (
        env("HTTP_CONNS", 8),
        env("HTTP_SECS", 3),
        env("HTTP_ROUNDS", 3),
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let host = Host::new(
            HostConfig {
                allow_file_load: true,
                ..HostConfig::default()
            },
            None,
        )
        .unwrap();
        let (limited, loose) = (free_port().unwrap(), free_port().unwrap());
        host.apply(spec(app("defaults", limited, &[])))
            .await
            .unwrap();
        let off = [
            ("header_read_timeout", "60m"),
            ("max_connections", "1000000"),
            ("max_body_bytes", "1152921504606846976"),
        ];
        host.apply(spec(app("loose", loose, &off))).await.unwrap();
        // Warm both (compile, first instances).
        run(limited, conns, 1).await;
        run(loose, conns, 1).await;

        println!("| round | listener | req/s | CPU µs/req |\n|---|---|---:|---:|");
        let mut results: [(Vec<f64>, Vec<f64>); 2] = Default::default();
        for round in 1..=rounds {
            for (i, (name, port)) in [("defaults", limited), ("loose", loose)]
                .into_iter()
                .enumerate()
            {
                let (rps, cpu) = run(port, conns, secs).await;
                println!("| {round} | {name} | {rps:.0} | {cpu:.1} |");
                results[i].0.push(rps);
                results[i].1.push(cpu);
            }
        }
        println!("\nmedians over {rounds} rounds, {conns} connections, {secs} s each:");
        for (name, (rps, cpu)) in ["defaults", "loose"].iter().zip(results) {
            println!(
                "| {name} | {:.0} req/s | {:.1} CPU µs/req |",
                median(rps),
                median(cpu)
            );
        }
    });
}
