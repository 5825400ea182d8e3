//! Time from `lattice app deploy` of a `file://` manifest to the first HTTP answer
//! when the component travels through the lattice's artifact store, for a 200 KB
//! and a 20 MB component (`hello` padded with a custom section, still a valid
//! component), on one `lattice host` process at a time (no `--allow-file-load`):
//!
//! - **cold, upload**: the file is not in the store yet (removed before each
//!   run) and the host never saw it: the CLI hashes and uploads, the host
//!   fetches, checks, caches, compiles;
//! - **cold host**: already in the store (the deploy uploads nothing), a fresh
//!   host: fetch, check, cache, compile;
//! - **warm, restarted host**: a new host process on the same state dir: the
//!   bytes come from its disk cache (checked again), compiled again;
//! - **warm, same host**: a second app with the same digest on a host that runs
//!   it already: nothing fetched, nothing compiled.
//!
//! Each cell: median wall time over REPS runs (default 3), and the CPU time of
//! the `lattice app deploy` process and of the host process over that window
//! (from /proc, 10 ms ticks). To add a source (e.g. a registry), add a row to
//! `SCENARIOS` and a branch in `run_scenario`.
//!
//! `cargo bench -p lattice-cli --bench artifact_store`. Figures: docs/benchmarks.md.

#![allow(clippy::unwrap_used)] // a benchmark: an unwrap that fails is a failed run

#[path = "../tests/multi_host_support/mod.rs"]
mod multi_host_support;

use lattice_artifacts::Digest;
use lattice_testing::components::component;
use lattice_testing::nats::free_port;
use lattice_testing::process::Process;
use multi_host_support::*;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const SCENARIOS: [&str; 4] = [
    "cold, upload",
    "cold host",
    "warm, restarted host",
    "warm, same host",
];

/// `hello` with a custom section making it `size` bytes.
fn padded_hello(size: usize, dir: &Path) -> PathBuf {
    let mut bytes = std::fs::read(component("hello")).unwrap();
    let name = b"lattice-bench-padding";
    let pad = size.saturating_sub(bytes.len() + name.len() + 8);
    let mut section = vec![name.len() as u8];
    section.extend_from_slice(name);
    section.resize(section.len() + pad, 0);
    bytes.push(0); // custom section id
    let mut n = section.len();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            bytes.push(byte);
            break;
        }
        bytes.push(byte | 0x80);
    }
    bytes.extend_from_slice(&section);
    let path = dir.join(format!("hello-{size}.wasm"));
    std::fs::write(&path, bytes).unwrap();
    path
}

/// User + system CPU of process `pid` (or of this process's waited-for children
/// with `children`), in clock ticks.
fn cpu_ticks(pid: &str, children: bool) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<u64> = rest
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    // utime, stime, cutime, cstime are fields 14-17 (1-based); `rest` starts at 3.
    let at = |n: usize| fields.get(n - 3).copied().unwrap_or(0);
    if children {
        at(16) + at(17)
    } else {
        at(14) + at(15)
    }
}

fn ticks_ms(ticks: u64) -> f64 {
    // Linux reports 100 ticks per second (USER_HZ) on every architecture we run on.
    ticks as f64 * 10.0
}

fn host(lattice: &TestLattice, name: &str, state: &Path) -> Process {
    let cmd = lattice.command(&[
        "host",
        "--heartbeat-interval",
        &BEAT_SECS.to_string(),
        "--no-pooling",
        "--drain-timeout",
        "1",
        "--label",
        &format!("name={name}"),
        "--trust",
        &lattice.key.public_key(),
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    Process::spawn(&format!("host {name}"), cmd).unwrap()
}

fn manifest(lattice: &TestLattice, app: &str, file: &Path, port: u16) -> PathBuf {
    let yaml = format!(
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: {app}\n  \
         annotations:\n    version: v1\nspec:\n  components:\n    - name: hello\n      \
         type: component\n      properties:\n        image: file://{}\n      traits:\n        \
         - type: spreadscaler\n          properties:\n            instances: 1\n    \
         - name: httpserver\n      type: capability\n      properties:\n        image: \
         builtin://http-server\n      traits:\n        - type: link\n          properties:\n            \
         target:\n              name: hello\n            namespace: wasi\n            package: http\n            \
         interfaces: [incoming-handler]\n            source:\n              config:\n                \
         - name: listen\n                  properties:\n                    address: 127.0.0.1:{port}\n",
        file.display()
    );
    let path = lattice.dir.path().join(format!("{app}.yaml"));
    std::fs::write(&path, yaml).unwrap();
    path
}

/// One measurement: wall time, CPU of the deploy command, CPU of the host.
#[derive(Clone, Copy)]
struct Sample {
    wall: Duration,
    cli_ms: f64,
    host_ms: f64,
}

/// Deploy `app` (uploading `file`) and time until it answers 200.
async fn deploy_to_answer(lattice: &TestLattice, host: &Process, app: &str, file: &Path) -> Sample {
    let port = free_port().unwrap();
    let path = manifest(lattice, app, file, port);
    let client = reqwest::Client::new();
    let host_pid = host.pid().to_string();
    let (cli0, host0) = (cpu_ticks("self", true), cpu_ticks(&host_pid, false));
    let start = Instant::now();
    let out = lattice
        .command(&["app", "deploy", path.to_str().unwrap(), "--no-wait"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cli_ms = ticks_ms(cpu_ticks("self", true) - cli0);
    loop {
        let answer = client
            .get(format!("http://127.0.0.1:{port}/"))
            .timeout(Duration::from_secs(2))
            .send()
            .await;
        if matches!(&answer, Ok(r) if r.status() == 200) {
            return Sample {
                wall: start.elapsed(),
                cli_ms,
                host_ms: ticks_ms(cpu_ticks(&host_pid, false).saturating_sub(host0)),
            };
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "{app} never answered:\n{}",
            host.log()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn cli_ok(lattice: &TestLattice, args: &[&str]) -> bool {
    lattice.command(args).output().unwrap().status.success()
}

async fn delete(lattice: &TestLattice, app: &str) {
    assert!(cli_ok(lattice, &["app", "delete", app]));
    eventually("the app to stop", || async {
        let placed = lattice.placement(app, "hello").await;
        if placed.is_empty() {
            Ok(())
        } else {
            Err(format!("{placed:?}"))
        }
    })
    .await;
}

async fn gone(lattice: &TestLattice, mut host: Process) {
    host.kill();
    eventually("the host to be gone", || async {
        // Neither answering pings nor still counted live by the controller.
        let hosts = lattice.hosts().await;
        let known = lattice.api.hosts().await.map_err(|e| e.to_string())?;
        if hosts.is_empty() && known.is_empty() {
            Ok(())
        } else {
            Err(format!("{:?}, controller: {}", hosts.keys(), known.len()))
        }
    })
    .await;
}

async fn start_host(lattice: &TestLattice, name: &str, state: &Path) -> Process {
    let h = host(lattice, name, state);
    lattice.wait_hosts(&[name]).await;
    h
}

/// One run of every scenario for `file`; samples in `SCENARIOS` order.
async fn run_scenarios(lattice: &TestLattice, file: &Path, tag: &str) -> Vec<Sample> {
    let digest = Digest::of(&std::fs::read(file).unwrap()).to_string();
    // Not in the store yet (no stored version names it: each run deletes its apps).
    let _ = cli_ok(lattice, &["artifact", "rm", &digest]);
    let mut out = Vec::new();

    let state = tempfile::tempdir().unwrap();
    let h = start_host(lattice, &format!("{tag}a"), state.path()).await;
    let app = format!("up{tag}");
    out.push(deploy_to_answer(lattice, &h, &app, file).await);
    delete(lattice, &app).await;
    gone(lattice, h).await;

    let state = tempfile::tempdir().unwrap();
    let h = start_host(lattice, &format!("{tag}b"), state.path()).await;
    let cold = format!("cold{tag}");
    let cold_sample = deploy_to_answer(lattice, &h, &cold, file).await;
    let same = format!("same{tag}");
    let same_sample = deploy_to_answer(lattice, &h, &same, file).await;
    delete(lattice, &cold).await;
    delete(lattice, &same).await;
    gone(lattice, h).await;

    let h = start_host(lattice, &format!("{tag}c"), state.path()).await;
    let restarted = format!("restart{tag}");
    let restarted_sample = deploy_to_answer(lattice, &h, &restarted, file).await;
    delete(lattice, &restarted).await;
    gone(lattice, h).await;

    out.extend([cold_sample, restarted_sample, same_sample]);
    out
}

fn median_by<T: Copy + PartialOrd>(v: &[Sample], key: impl Fn(&Sample) -> T) -> T {
    let mut keys: Vec<T> = v.iter().map(key).collect();
    keys.sort_by(|a, b| a.partial_cmp(b).unwrap());
    keys[keys.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let reps: usize = std::env::var("REPS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3)
        .max(1);
    let mut lattice = TestLattice::start("benchstore").await;
    lattice.start_controller().await;
    println!("| component | case | wall (median of {reps}) | CPU: `app deploy` | CPU: host |");
    println!("|---|---|---|---|---|");
    for (label, size) in [("200 KB", 200 * 1024), ("20 MB", 20 * 1024 * 1024)] {
        let file = padded_hello(size, lattice.dir.path());
        let mut runs: Vec<Vec<Sample>> = vec![Vec::new(); SCENARIOS.len()];
        for rep in 0..reps {
            let samples = run_scenarios(&lattice, &file, &format!("s{size}r{rep}")).await;
            for (i, s) in samples.into_iter().enumerate() {
                runs[i].push(s);
            }
        }
        for (case, samples) in SCENARIOS.iter().zip(&runs) {
            println!(
                "| {label} | {case} | {:.0} ms | {:.0} ms | {:.0} ms |",
                median_by(samples, |s| s.wall).as_secs_f64() * 1000.0,
                median_by(samples, |s| s.cli_ms),
                median_by(samples, |s| s.host_ms),
            );
        }
    }
}
