//! Linked calls against raw NATS request/reply, in one run (issue 4's benchmark):
//!
//! - `raw NATS`: an async-nats requester and a responder that echoes the payload,
//!   no lattice; the reference.
//! - `cross-host`: `relay.echo-bytes` invoked on host A (`Host::call_wire`, the
//!   bytes in the wire model), whose link sends the call over NATS to `echo` on
//!   host B (both hosts in this process, each with its own NATS connection, like
//!   two processes on one machine; `CALLS_SPREAD=1` runs `echo` on host C too,
//!   and B and C share the calls). `echo-bytes` is `func(list<u8>) -> list<u8>`,
//!   a signature the links call through wasmtime's typed API.
//! - `in-process`: the same with both on host C (a copy of the app, `-local`);
//!   and `echo` called directly, so the link's own cost is the difference.
//! - `(warm)`: the same two paths for app `warm-echoes`, whose components keep
//!   warm instances (`properties.warm`, pool 64): an invocation reuses an idle
//!   instance instead of instantiating one.
//!
//! - `messaging handler`: the raw requester's request handled by `msg-echo` on
//!   host B through `builtin://messaging-nats` (`handle-message`, answered with
//!   `echo: <body>` through its consumer link); skipped where the answer
//!   would pass the server's max payload (1 MiB at the default).
//!
//! Payloads 16 B, 1 KiB, 64 KiB and 1 MiB of `list<u8>`; 1 and 64 calls in
//! flight. Reports p50/p99 latency, calls per second, and CPU per call (this
//! process, where every host and the raw requester and responder run, plus
//! nats-server; from `/proc`, in 10 ms ticks).
//!
//! Run: `cargo bench -p lattice-host --bench calls` (needs nats-server; see
//! `docs/benchmarks.md`). `CALLS_SECS` sets seconds per case (default 2);
//! `CALLS_SLICES=n` runs each case's rows in turn n times for `CALLS_SECS`/n each
//! (the machine's slow spells then fall on every row alike);
//! `CALLS_SIZES=16,1024` and `CALLS_IN_FLIGHT=1` pick cases, `CALLS_PATHS=cross`
//! the rows whose label contains one of the words (for profiling); `RAW_SHAPE=calls`
//! gives the raw requests a linked call's subject, queue group and call header
//! line (`subject`: without the line; `headers`: the call header as a header),
//! to see what that shape costs NATS;
//! `CALLS_MAX_PAYLOAD` sets the server's max payload (default 1 MiB, where a
//! 1 MiB call, its header included, moves in chunks).
//!
//! Then memory: `CALLS_MEMORY` (default 100) cross-host calls of 1 MiB at once,
//! and this process's resident memory before and at its peak (`VmHWM`, reset
//! first through `/proc/self/clear_refs`); `CALLS_MEMORY=0` skips it. Both hosts
//! and the driver are this process, so the peak is theirs together.

#![allow(clippy::unwrap_used)] // a benchmark: an unwrap that fails is a failed run

use futures::StreamExt;
use lattice_host::{Host, HostConfig};
use lattice_protocol::messages::WorkloadSpec;
use lattice_protocol::wire::WitValue;
use lattice_testing::manifest::{App, Component, Link};
use lattice_testing::nats::NatsServer;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The allocator of the `lattice` binary, so the hosts here run as they do there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const VALUES: &str = "lattice:echo/values";
/// With `RAW_SHAPE=calls`, raw requests look like a linked call on the wire:
/// this subject (a host's call subject), answered by a queue group on a
/// wildcard, and this call header (the trace context its last token) as the
/// payload's first line.
const CALL_SUBJECT: &str = "lattice.bench.rpch.NBJ7XQJ5G3Y2CO3ZKQ3XQXHCQ5RJ3O2BLVJW3HGSSHXDGZCGZLOLAWIY.echoes.echo.lattice.echo.values.echo-bytes";
const CALL_HEADER: &str =
    "NBJ7XQJ5G3Y2CO3ZKQ3XQXHCQ5RJ3O2BLVJW3HGSSHXDGZCGZLOLAWIY echoes relay default 1926bfa0a15a6c3c 300000 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
const SIZES: [usize; 4] = [16, 1024, 64 * 1024, 1 << 20];
const IN_FLIGHT: [usize; 2] = [1, 64];
/// Peak resident MiB per MiB of a call in flight (`docs/benchmarks.md` §20): the
/// argument and result in each of two instances, and a copy of each on either
/// side of NATS.
const MEMORY_BOUND: f64 = 8.0;

/// App `name`: `echoes` (a fresh instance per invocation) or `warm-echoes`
/// (both components keep up to 64 warm instances), with `-local` for the copy
/// that runs whole on host C.
fn manifest(name: &str, warm: bool) -> lattice_protocol::manifest::Manifest {
    let mut relay = Component::wasm("relay", "echo-relay").link(
        // Long enough for the memory run's 100 calls of 1 MiB at once.
        Link::to("echo", "lattice:echo", &["values"])
            .source_config("bench", &[("timeout", "300s")]),
    );
    let mut echo = Component::wasm("echo", "echo");
    if warm {
        (relay, echo) = (relay.warm(64, 10_000), echo.warm(64, 10_000));
    }
    App::new(name).with(relay).with(echo).manifest()
}

/// `msg-echo` handling `msgbench.>` through `builtin://messaging-nats`: it answers
/// each request with `echo: <body>`.
fn messaging_spec() -> WorkloadSpec {
    let manifest = App::new("msgbench")
        .with(Component::wasm("echo", "msg-echo").link(Link::to(
            "messaging",
            "wasmcloud:messaging",
            &["consumer"],
        )))
        .with(
            Component::capability("messaging", "builtin://messaging-nats").link(
                Link::to("echo", "wasmcloud:messaging", &["handler"])
                    .source_config("subscribe", &[("subscriptions", "msgbench.>")]),
            ),
        )
        .manifest();
    WorkloadSpec {
        manifest,
        placements: [("echo".to_owned(), 256)].into(),
        secrets: None,
    }
}

fn spec(name: &str, warm: bool, components: &[&str]) -> WorkloadSpec {
    WorkloadSpec {
        manifest: manifest(name, warm),
        placements: components.iter().map(|c| (c.to_string(), 256)).collect(),
        secrets: None,
    }
}

async fn host(nats: &NatsServer) -> Host {
    let config = HostConfig {
        allow_file_load: true,
        ..HostConfig::default()
    };
    Host::new(config, Some(nats.connect().await.unwrap())).unwrap()
}

/// One call of a row, made again and again by `measure`.
type CallFn = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// Latencies of every call made by `in_flight` concurrent loops over `secs`.
struct Run {
    latencies: Vec<Duration>,
    elapsed: Duration,
    /// CPU used by this process and nats-server while it ran.
    cpu: Duration,
}

impl Run {
    /// Count `other`'s calls, time and CPU as this run's too.
    fn add(&mut self, other: Run) {
        self.latencies.extend(other.latencies);
        self.elapsed += other.elapsed;
        self.cpu += other.cpu;
    }

    fn percentile(&mut self, p: f64) -> Duration {
        self.latencies.sort_unstable();
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[i]
    }

    fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    /// CPU µs per call.
    fn cpu_per_call(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.latencies.len().max(1) as f64
    }
}

/// This process's and nats-server's CPU time so far.
fn cpu(nats: Option<u32>) -> Duration {
    use lattice_testing::process::cpu_time;
    cpu_time(None) + nats.map(|pid| cpu_time(Some(pid))).unwrap_or_default()
}

async fn measure<F, Fut>(in_flight: usize, secs: f64, nats: Option<u32>, call: F) -> Run
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let call = Arc::new(call);
    // Warm up.
    for _ in 0..50 {
        call().await;
    }
    let (start, cpu_before) = (Instant::now(), cpu(nats));
    let until = start + Duration::from_secs_f64(secs);
    let tasks: Vec<_> = (0..in_flight)
        .map(|_| {
            let call = call.clone();
            tokio::spawn(async move {
                let mut lat = Vec::new();
                while Instant::now() < until {
                    let t = Instant::now();
                    call().await;
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    Run {
        latencies,
        elapsed: start.elapsed(),
        cpu: cpu(nats).saturating_sub(cpu_before),
    }
}

fn bytes(n: usize) -> WitValue {
    WitValue::Bytes((0..n).map(|i| i as u8).collect())
}

/// A `VmRSS`/`VmHWM` line of `/proc/self/status`, in MiB.
fn status_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: f64 = status
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"));
    kib / 1024.0
}

/// `concurrent` cross-host calls of `size` bytes at once from host `a`: resident
/// memory before, and its peak while they ran.
async fn memory(a: &Host, concurrent: usize, size: usize) {
    let arg = bytes(size);
    let before = status_mib("VmRSS:");
    // Writing 5 resets the peak (VmHWM) to the current resident size.
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    let start = Instant::now();
    let calls: Vec<_> = (0..concurrent)
        .map(|_| {
            let (a, arg) = (a.clone(), arg.clone());
            tokio::spawn(async move {
                a.call_wire("echoes", "relay", VALUES, "echo-bytes", vec![arg])
                    .await
                    .unwrap()
            })
        })
        .collect();
    drop(arg);
    for call in calls {
        let out = call.await.unwrap();
        assert!(matches!(&out[..], [WitValue::Bytes(b)] if b.len() == size));
    }
    let peak = status_mib("VmHWM:");
    let per_call = (peak - before) / concurrent as f64;
    let bound = MEMORY_BOUND * size as f64 / (1 << 20) as f64;
    println!(
        "\nmemory: {concurrent} cross-host calls of {size} B at once, in {:.1} s: resident {before:.0} MiB before, peak {peak:.0} MiB ({per_call:.1} MiB per call; bound {bound:.1}: {})",
        start.elapsed().as_secs_f64(),
        if per_call <= bound { "within" } else { "OVER" },
    );
}

fn us(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e6)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let secs: f64 = std::env::var("CALLS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let slices: usize = std::env::var("CALLS_SLICES")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(1);
    let mut server = NatsServer::builder();
    if let Some(max) = std::env::var("CALLS_MAX_PAYLOAD")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        server = server.max_payload(max);
    }
    let nats = server
        .start()
        .expect("nats-server starts (scripts/install-deps.sh)");

    // Raw NATS: a responder echoing the payload.
    let responder = nats.connect().await.unwrap();
    // Diagnostics, raw requests shaped like a linked call: `subject` (its
    // subject and queue group), `calls` (and its call header as the payload's
    // first line, as a call that fits one message sends it), `headers` (the
    // subject and the call header as a `lattice-call` header, as a call in
    // chunks and older peers send it).
    let shape = std::env::var("RAW_SHAPE").unwrap_or_default();
    let (call_subject, call_line, call_headers) = match shape.as_str() {
        "subject" => (true, false, false),
        "calls" => (true, true, false),
        "headers" => (true, false, true),
        _ => (false, false, false),
    };
    let mut sub = if call_subject {
        let subject = "lattice.bench.rpch.*.echoes.echo.>";
        responder
            .queue_subscribe(subject, "rpc".into())
            .await
            .unwrap()
    } else {
        responder.subscribe("bench.echo").await.unwrap()
    };
    let r = responder.clone();
    tokio::spawn(async move {
        while let Some(msg) = sub.next().await {
            if let Some(reply) = msg.reply {
                // Without the call header line, as a callee answers.
                let body = match msg.payload.iter().position(|b| *b == b'\n') {
                    Some(nl) if call_line => msg.payload.slice(nl + 1..),
                    _ => msg.payload,
                };
                let _ = r.publish(reply, body).await;
            }
        }
    });
    responder.flush().await.unwrap();
    let requester = nats.connect().await.unwrap();

    // Cross-host: relay on A, echo on B, as raw NATS has one requester and one
    // responder (`CALLS_SPREAD=1`: echo on C too, the calls shared by B and C's
    // queue group). In-process: the app's `-local` copy, whole on C.
    let spread = std::env::var("CALLS_SPREAD").is_ok_and(|v| v == "1");
    let (a, b, c) = (host(&nats).await, host(&nats).await, host(&nats).await);
    for (name, warm) in [("echoes", false), ("warm-echoes", true)] {
        b.apply(spec(name, warm, &["echo"])).await.unwrap();
        a.apply(spec(name, warm, &["relay"])).await.unwrap();
        if spread {
            c.apply(spec(name, warm, &["echo"])).await.unwrap();
        }
        let local = format!("{name}-local");
        c.apply(spec(&local, warm, &["relay", "echo"]))
            .await
            .unwrap();
    }
    // A messaging handler on B, asked by the raw requester.
    b.apply(messaging_spec()).await.unwrap();

    let pid = nats.pid();
    println!(
        "| payload | in flight | path | p50 µs | p99 µs | calls/s | CPU µs/call |\n|---|---|---|---|---|---|---|"
    );
    let pick = |var: &str, all: &[usize]| -> Vec<usize> {
        std::env::var(var)
            .ok()
            .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
            .unwrap_or_else(|| all.to_vec())
    };
    let paths: Vec<String> = std::env::var("CALLS_PATHS")
        .map(|v| v.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    let wanted = |label: &str| paths.is_empty() || paths.iter().any(|p| label.contains(p.as_str()));
    for size in pick("CALLS_SIZES", &SIZES) {
        for in_flight in pick("CALLS_IN_FLIGHT", &IN_FLIGHT) {
            let payload = bytes::Bytes::from(vec![7u8; size]);
            let arg = bytes(size);
            let mut rows: Vec<(&str, CallFn)> = Vec::new();

            let (client, p) = (requester.clone(), payload.clone());
            if wanted("raw NATS request/reply") {
                let call: CallFn = Arc::new(move || {
                    let (client, p) = (client.clone(), p.clone());
                    Box::pin(async move {
                        // A linked call's shape: its subject, a queue group
                        // on a wildcard, its call header.
                        let subject = if call_subject {
                            CALL_SUBJECT
                        } else {
                            "bench.echo"
                        };
                        let p = if call_line {
                            let mut line = format!("{CALL_HEADER}\n").into_bytes();
                            line.extend_from_slice(&p);
                            bytes::Bytes::from(line)
                        } else {
                            p
                        };
                        let reply = if call_headers {
                            let mut h = async_nats::HeaderMap::new();
                            h.insert("lattice-call", CALL_HEADER);
                            client.request_with_headers(subject, h, p).await.unwrap()
                        } else {
                            client.request(subject, p).await.unwrap()
                        };
                        assert_eq!(reply.payload.len(), size);
                    })
                });
                rows.push(("raw NATS request/reply", call));
            }
            // The answer is the body and 6 bytes: it must fit one message.
            let fits = size + 1024 <= requester.server_info().max_payload;
            if wanted("messaging handler (request/reply)") && fits {
                let (client, p) = (requester.clone(), payload.clone());
                let call: CallFn = Arc::new(move || {
                    let (client, p) = (client.clone(), p.clone());
                    Box::pin(async move {
                        let reply = client.request("msgbench.echo", p).await.unwrap();
                        assert_eq!(reply.payload.len(), size + "echo: ".len());
                    })
                });
                rows.push(("messaging handler (request/reply)", call));
            }

            for (label, host, app, component) in [
                ("cross-host linked call", a.clone(), "echoes", "relay"),
                (
                    "cross-host linked call (warm)",
                    a.clone(),
                    "warm-echoes",
                    "relay",
                ),
                ("in-process linked call", c.clone(), "echoes-local", "relay"),
                (
                    "in-process linked call (warm)",
                    c.clone(),
                    "warm-echoes-local",
                    "relay",
                ),
                ("callee alone (no link)", c.clone(), "echoes-local", "echo"),
            ] {
                if !wanted(label) {
                    continue;
                }
                let arg = arg.clone();
                let call: CallFn = Arc::new(move || {
                    let (host, arg) = (host.clone(), arg.clone());
                    Box::pin(async move {
                        let out = host
                            .call_wire(app, component, VALUES, "echo-bytes", vec![arg])
                            .await
                            .unwrap();
                        assert_eq!(out.len(), 1);
                    })
                });
                rows.push((label, call));
            }
            // The rows take turns, `slices` times each, so a machine that slows
            // down for a while slows every row alike.
            let mut runs: Vec<(&str, Run)> = Vec::new();
            for slice in 0..slices {
                for (i, (label, call)) in rows.iter().enumerate() {
                    let call = call.clone();
                    let run = measure(in_flight, secs / slices as f64, pid, move || call()).await;
                    if slice == 0 {
                        runs.push((label, run));
                    } else {
                        runs[i].1.add(run);
                    }
                }
            }
            for (label, mut run) in runs {
                println!(
                    "| {size} B | {in_flight} | {label} | {} | {} | {:.0} | {:.1} |",
                    us(run.percentile(0.5)),
                    us(run.percentile(0.99)),
                    run.rate(),
                    run.cpu_per_call()
                );
            }
        }
    }
    let concurrent: usize = std::env::var("CALLS_MEMORY")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    if concurrent > 0 {
        memory(&a, concurrent, 1 << 20).await;
    }
    let (sent, served) = (a.calls(), b.calls());
    eprintln!(
        "host A calls: {sent:?}; host B: {served:?}; host C: {:?}",
        c.calls()
    );
}
