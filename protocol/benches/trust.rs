//! Signing and verifying what crosses the control plane (issue 11's benchmark):
//! a host command (`CommandEnvelope::sign`, `CommandVerifier::verify_bytes`) and a
//! heartbeat (`sign_report`, `ReportPolicy::check`), each with a small and a large
//! body.
//!
//! Criterion measures wall-clock time. On a shared machine that includes time the
//! thread spent waiting for a core, so after criterion this bench runs each case
//! again for `TRUST_CPU_SECS` (default 2) seconds of wall-clock and prints the
//! thread's CPU time per operation beside the wall-clock time, read from
//! `/proc/thread-self/stat` (10 ms ticks; Linux only).
//!
//! Run: `cargo bench -p lattice-protocol --bench trust` (see `docs/benchmarks.md`).

#![allow(clippy::unwrap_used)] // a benchmark: an unwrap that fails is a failed run

use criterion::{BatchSize, Criterion};
use lattice_protocol::trust::{
    new_host_key, new_lattice_key, sign_report, Admission, CommandEnvelope, CommandVerifier, Nonce,
    ReportPolicy, VerifierConfig,
};
use std::hint::black_box;
use std::time::{Duration, Instant};

const LATTICE: &str = "default";
const NOW_MS: u64 = 1_800_000_000_000;

/// A `remove` command (small) and an `apply` carrying a manifest (about 4 KiB).
fn command_bodies() -> [(&'static str, Vec<u8>); 2] {
    let small = br#"{"v":1,"command":"remove","app":"counter"}"#.to_vec();
    let mut large = br#"{"v":1,"command":"apply","spec":{"manifest":""#.to_vec();
    large.extend(std::iter::repeat_n(b'm', 4000));
    large.extend_from_slice(br#""}}"#);
    [("remove 43 B", small), ("apply 4 KiB", large)]
}

/// A heartbeat with one workload (about 200 B) and with twenty (about 2 KiB).
fn report_bodies() -> [(&'static str, Vec<u8>); 2] {
    let workload =
        r#"{"app":"counter","version":"v1","components":[{"name":"web","instances":4,"ready":4}]}"#;
    let body = |n: usize| {
        let workloads = vec![workload; n].join(",");
        format!(
            r#"{{"v":1,"host_id":"N...","labels":{{"hostcore.os":"linux"}},"uptime_ms":1000,"workloads":[{workloads}]}}"#
        )
        .into_bytes()
    };
    [("1 workload", body(1)), ("20 workloads", body(20))]
}

/// A command issued at `NOW_MS + at` (a controller's commands are issued in
/// order; the verifier's replay cache relies on it once full).
fn envelope(host: &str, body: &[u8], at: u64) -> CommandEnvelope {
    CommandEnvelope {
        lattice: LATTICE.into(),
        host: host.into(),
        term: 7,
        issued_ms: NOW_MS + at,
        nonce: Nonce::random(),
        body: body.to_vec(),
    }
}

fn bench(c: &mut Criterion) {
    let lattice_key = new_lattice_key();
    let host_key = new_host_key();
    let host = host_key.public_key();
    let verifier = || {
        CommandVerifier::new(
            LATTICE,
            &host,
            [lattice_key.public_key()],
            VerifierConfig::default(),
        )
        .unwrap()
    };
    let policy = ReportPolicy::new(LATTICE, Admission::any_host());

    for (name, body) in command_bodies() {
        let env = envelope(&host, &body, 0);
        c.bench_function(&format!("command sign ({name})"), |b| {
            b.iter(|| env.sign(black_box(&lattice_key)).unwrap())
        });
        // Each verified command must be new (replays are refused): a command
        // issued a millisecond later is signed outside the measurement. After
        // 4096 the replay cache is full and each verify also evicts one.
        c.bench_function(&format!("command verify ({name})"), |b| {
            let mut v = verifier();
            let mut at = 0;
            b.iter_batched(
                || {
                    at += 1;
                    (at, envelope(&host, &body, at).sign(&lattice_key).unwrap())
                },
                |(at, bytes)| v.verify_bytes(&bytes, NOW_MS + at + 10).unwrap(),
                BatchSize::SmallInput,
            )
        });
    }
    for (name, body) in report_bodies() {
        c.bench_function(&format!("heartbeat sign ({name})"), |b| {
            b.iter(|| sign_report(&host_key, LATTICE, NOW_MS, black_box(&body), None).unwrap())
        });
        let signed = sign_report(&host_key, LATTICE, NOW_MS, &body, None).unwrap();
        c.bench_function(&format!("heartbeat check ({name})"), |b| {
            b.iter(|| policy.check(black_box(&signed), NOW_MS + 10).unwrap())
        });
    }
}

/// This thread's CPU time (user + system), in 10 ms ticks.
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// Run `op` for `secs` of wall-clock: (wall, cpu) per operation.
fn per_op(secs: f64, mut op: impl FnMut()) -> (Duration, Duration) {
    let (wall, cpu, mut n) = (Instant::now(), thread_cpu(), 0u32);
    while wall.elapsed().as_secs_f64() < secs {
        for _ in 0..100 {
            op();
        }
        n += 100;
    }
    (wall.elapsed() / n, (thread_cpu() - cpu) / n)
}

fn cpu_table() {
    let secs: f64 = std::env::var("TRUST_CPU_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let lattice_key = new_lattice_key();
    let host_key = new_host_key();
    let host = host_key.public_key();
    let policy = ReportPolicy::new(LATTICE, Admission::any_host());
    println!("\n| operation | wall µs/op | CPU µs/op |\n|---|---:|---:|");
    let row = |name: String, (wall, cpu): (Duration, Duration)| {
        println!(
            "| {name} | {:.1} | {:.1} |",
            wall.as_secs_f64() * 1e6,
            cpu.as_secs_f64() * 1e6
        );
    };
    for (name, body) in command_bodies() {
        let env = envelope(&host, &body, 0);
        row(
            format!("command sign ({name})"),
            per_op(secs, || {
                black_box(env.sign(&lattice_key).unwrap());
            }),
        );
        // Verifying needs new commands: sign a batch first, verify it, and take
        // the signing time (measured above) out by timing the verifying alone.
        let signed: Vec<(u64, Vec<u8>)> = (1..=20_000)
            .map(|at| (at, envelope(&host, &body, at).sign(&lattice_key).unwrap()))
            .collect();
        let mut v = CommandVerifier::new(
            LATTICE,
            &host,
            [lattice_key.public_key()],
            VerifierConfig::default(),
        )
        .unwrap();
        let (wall, cpu) = (Instant::now(), thread_cpu());
        for (at, bytes) in &signed {
            black_box(v.verify_bytes(bytes, NOW_MS + at + 10).unwrap());
        }
        let n = signed.len() as u32;
        row(
            format!("command verify ({name})"),
            (wall.elapsed() / n, (thread_cpu() - cpu) / n),
        );
    }
    for (name, body) in report_bodies() {
        row(
            format!("heartbeat sign ({name})"),
            per_op(secs, || {
                black_box(sign_report(&host_key, LATTICE, NOW_MS, &body, None).unwrap());
            }),
        );
        let signed = sign_report(&host_key, LATTICE, NOW_MS, &body, None).unwrap();
        row(
            format!("heartbeat check ({name})"),
            per_op(secs, || {
                black_box(policy.check(&signed, NOW_MS + 10).unwrap());
            }),
        );
    }
}

fn main() {
    let mut c = Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    bench(&mut c);
    c.final_summary();
    cpu_table();
}
