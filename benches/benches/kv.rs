//! Keyvalue `get` and `increment` per second, in one run (issue 6's benchmark):
//!
//! - through the host's built-in `keyvalue-nats` plugin (JetStream KV),
//! - through the `keyvalue-redis` provider (called over NATS),
//! - through the `sqldb-postgres` provider's keyvalue (over NATS, on a PostgreSQL
//!   table), when it is built,
//! - through the built-in `keyvalue-memory` plugin (no IO: the host's own cost),
//! - and `redis-benchmark` against the same Redis, for the same operations, as the
//!   reference.
//!
//! Then a `get` of a 64 KiB value (`KV_BIG`, bytes) through the Redis provider,
//! beside its parts measured in the same run: a raw NATS request/reply carrying
//! as many bytes, and `redis-benchmark` GETs of a value that size; the line after
//! the table compares the provider's time per get with the sum of the two.
//!
//! The component side is `kv-bench`: one invocation does N operations in a loop
//! (`Host::call`), so instantiation is not measured. 1 and 16 loops at once.
//!
//! Run: `cargo build --release -p keyvalue-redis -p sqldb-postgres && cargo bench -p
//! lattice-benches --bench kv` (needs nats-server, redis-server and PostgreSQL, see
//! `scripts/install-deps.sh`; `KV_OPS` sets operations per loop, default 4000).
//! The providers are found beside the bench in the target folder
//! ([`lattice_benches::executable`]); `sqldb-postgres` is skipped when not built.

#![allow(clippy::unwrap_used)] // a benchmark: an unwrap that fails is a failed run

use lattice_protocol::messages::WorkloadSpec;
use lattice_testing::host::{provider_host, Host};
use lattice_testing::manifest::{App, Component, Link};
use lattice_testing::nats::NatsServer;
use lattice_testing::redis::RedisServer;
use std::time::{Duration, Instant};
use wasmtime::component::Val;

fn app(name: &str, image: &str, url: Option<&str>) -> WorkloadSpec {
    let mut link = Link::to("kv", "wasi:keyvalue", &["atomics", "store"]);
    if let Some(url) = url {
        link = link.target_config("redis", &[("url", url)]);
    }
    let manifest = App::new(name)
        .with(Component::wasm("bench", "kv-bench").link(link))
        .with(Component::capability("kv", image))
        .manifest();
    let mut placements = std::collections::BTreeMap::from([("bench".to_string(), 32)]);
    if url.is_some() {
        placements.insert("kv".to_string(), 1);
    }
    WorkloadSpec {
        manifest,
        placements,
        secrets: None,
    }
}

/// The keys of the small-value rows: four, shared by the loops.
fn small_key(loop_index: usize) -> String {
    format!("key{}", loop_index % 4)
}

/// Operations per second of `op` on `key(loop index)` with `loops` invocations at
/// once, each doing `ops`.
async fn measure(
    host: &Host,
    app: &str,
    op: &str,
    key: fn(usize) -> String,
    loops: usize,
    ops: u32,
) -> f64 {
    let start = Instant::now();
    let tasks: Vec<_> = (0..loops)
        .map(|i| {
            let host = host.clone();
            let (app, op) = (app.to_string(), op.to_string());
            tokio::spawn(async move {
                let out = host
                    .call(
                        &app,
                        "bench",
                        "lattice:kvbench/run",
                        "ops",
                        &[Val::String(op.clone()), Val::String(key(i)), Val::U32(ops)],
                    )
                    .await
                    .expect("kv-bench runs");
                assert!(
                    matches!(&out[..], [Val::Result(Ok(_))]),
                    "{app} {op}: {out:?}"
                );
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    f64::from(ops) * loops as f64 / start.elapsed().as_secs_f64()
}

/// `redis-benchmark` running `tests` (`get`, `incr`, `set,get`) with `clients`,
/// and `-d size` when given: requests per second of its test `line` (`GET`,
/// `INCR`).
fn redis_benchmark(
    redis: &RedisServer,
    tests: &str,
    size: Option<usize>,
    clients: usize,
    requests: u32,
    line: &str,
) -> f64 {
    let mut command = std::process::Command::new("redis-benchmark");
    command
        .args(["-h", "127.0.0.1", "-p", &redis.port().to_string()])
        .args(["-t", tests, "-n", &requests.to_string()])
        .args(["-c", &clients.to_string(), "-q"]);
    if let Some(size) = size {
        command.args(["-d", &size.to_string()]);
    }
    let out = command
        .output()
        .expect("redis-benchmark runs (scripts/install-deps.sh installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    // "GET: 61349.69 requests per second, p50=0.415 msec", one line per test.
    let prefix = format!("{line}:");
    text.split(['\r', '\n'])
        .filter_map(|l| l.trim().strip_prefix(prefix.as_str()))
        .find_map(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("cannot read redis-benchmark's {line} line: {text}"))
}

/// Set `key` to `value` in Redis with one raw RESP command (no client crate).
fn redis_set(redis: &RedisServer, key: &str, value: &[u8]) {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", redis.port())).unwrap();
    let mut cmd = format!(
        "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n",
        key.len(),
        value.len()
    )
    .into_bytes();
    cmd.extend_from_slice(value);
    cmd.extend_from_slice(b"\r\n");
    conn.write_all(&cmd).unwrap();
    let mut reply = [0u8; 5];
    conn.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"+OK\r\n");
}

/// Raw NATS request/reply of `size` bytes with `in_flight` loops at once, each
/// doing `ops`: requests per second.
async fn raw_nats(nats: &NatsServer, size: usize, in_flight: usize, ops: u32) -> f64 {
    use futures::StreamExt;
    let responder = nats.connect().await.unwrap();
    let mut sub = responder.subscribe("bench.echo").await.unwrap();
    let r = responder.clone();
    let serving = tokio::spawn(async move {
        while let Some(msg) = sub.next().await {
            if let Some(reply) = msg.reply {
                let _ = r.publish(reply, msg.payload).await;
            }
        }
    });
    responder.flush().await.unwrap();
    let requester = nats.connect().await.unwrap();
    let payload = bytes::Bytes::from(vec![7u8; size]);
    let start = Instant::now();
    let tasks: Vec<_> = (0..in_flight)
        .map(|_| {
            let (requester, payload) = (requester.clone(), payload.clone());
            tokio::spawn(async move {
                for _ in 0..ops {
                    let reply = requester.request("bench.echo", payload.clone()).await;
                    assert_eq!(reply.unwrap().payload.len(), size);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let rate = f64::from(ops) * in_flight as f64 / start.elapsed().as_secs_f64();
    serving.abort();
    rate
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let ops: u32 = std::env::var("KV_OPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4000);
    let nats = NatsServer::start().expect("nats-server starts");
    let redis = RedisServer::start().expect("redis-server starts");
    let host = provider_host(&nats).await;
    let redis_provider = lattice_benches::required_executable("keyvalue-redis");
    let provider = format!("file://{}", redis_provider.display());
    host.apply(app("on-nats", "builtin://keyvalue-nats", None))
        .await
        .unwrap();
    host.apply(app("on-memory", "builtin://keyvalue-memory", None))
        .await
        .unwrap();
    host.apply(app("on-redis", &provider, Some(&redis.url())))
        .await
        .unwrap();
    let mut paths = vec![
        ("keyvalue-nats plugin (JetStream KV)", "on-nats"),
        ("keyvalue-redis provider (over NATS)", "on-redis"),
    ];
    let postgres = match lattice_benches::executable("sqldb-postgres") {
        Some(path) => {
            let server =
                lattice_testing::postgres::PostgresServer::start().expect("PostgreSQL starts");
            let image = format!("file://{}", path.display());
            host.apply(app("on-postgres", &image, Some(&server.url())))
                .await
                .unwrap();
            paths.push(("sqldb-postgres provider (over NATS)", "on-postgres"));
            Some(server)
        }
        None => {
            eprintln!("sqldb-postgres is not built beside this bench: skipping it");
            None
        }
    };
    paths.push(("keyvalue-memory plugin (no IO)", "on-memory"));
    // Wait for the providers, then warm every path up (creates the keys too).
    for (_, app) in &paths {
        wait_ready(&host, app).await;
        measure(&host, app, "increment", small_key, 4, 50).await;
    }

    println!("| operation | loops at once | path | ops/s |\n|---|---|---|---|");
    for (op, redis_op) in [("get", "get"), ("increment", "incr")] {
        for loops in [1usize, 16] {
            let per_loop = ops / loops as u32;
            for &(label, app) in &paths {
                let rate = measure(&host, app, op, small_key, loops, per_loop.max(1)).await;
                println!("| {op} | {loops} | {label} | {rate:.0} |");
            }
            let rate = tokio::task::block_in_place(|| {
                let line = redis_op.to_uppercase();
                redis_benchmark(&redis, redis_op, None, loops, ops.max(10_000), &line)
            });
            println!("| {op} | {loops} | redis-benchmark -t {redis_op} -c {loops} (reference) | {rate:.0} |");
        }
    }
    drop(postgres);

    // A 64 KiB value through the Redis provider, beside its parts.
    let size: usize = std::env::var("KV_BIG")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(64 * 1024);
    redis_set(&redis, "big", &vec![42u8; size]);
    let big_ops = (ops / 4).max(100);
    println!("\n| operation | loops at once | path | ops/s | µs per op per loop |\n|---|---|---|---|---|");
    for loops in [1usize, 16] {
        let per_loop = big_ops / loops as u32;
        let big = |_| "big".to_owned();
        // Warm up, then measure.
        measure(&host, "on-redis", "get", big, loops, 10).await;
        let provider = measure(&host, "on-redis", "get", big, loops, per_loop.max(1)).await;
        let nats_rate = raw_nats(&nats, size, loops, per_loop.max(1)).await;
        let redis_rate = tokio::task::block_in_place(|| {
            // Its SET test writes the value the GETs read.
            let requests = big_ops.max(2_000);
            redis_benchmark(&redis, "set,get", Some(size), loops, requests, "GET")
        });
        let per_op = |rate: f64| loops as f64 * 1e6 / rate;
        for (label, rate) in [
            ("keyvalue-redis provider (over NATS)", provider),
            ("raw NATS request/reply of as many bytes", nats_rate),
            ("redis-benchmark GET (reference)", redis_rate),
        ] {
            println!(
                "| get {size} B | {loops} | {label} | {rate:.0} | {:.1} |",
                per_op(rate)
            );
        }
        let parts = per_op(nats_rate) + per_op(redis_rate);
        println!(
            "| get {size} B | {loops} | provider ÷ (NATS + Redis) | | {:.2}× |",
            per_op(provider) / parts
        );
    }
    drop(host);
}

/// Until `app`'s keyvalue answers (a provider takes a moment to start).
async fn wait_ready(host: &Host, app: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let out = host
            .call(
                app,
                "bench",
                "lattice:kvbench/run",
                "ops",
                &[
                    Val::String("increment".into()),
                    Val::String("key0".into()),
                    Val::U32(1),
                ],
            )
            .await
            .unwrap();
        if matches!(&out[..], [Val::Result(Ok(_))]) {
            return;
        }
        assert!(Instant::now() < deadline, "{app} never answered: {out:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
