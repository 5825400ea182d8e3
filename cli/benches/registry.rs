//! Time from `lattice app deploy` to the first HTTP answer when the component comes
//! from an OCI registry (Debian's `docker-registry` on a free port), for a 200 KB
//! and a 20 MB component (`hello` padded with a custom section):
//!
//! - **cold**: a `lattice host` that has never seen the component (fresh state
//!   dir): the controller pins the tag, the host pulls, checks, caches, compiles;
//! - **warm, restarted host**: the same host restarted on its state dir: the
//!   bytes come from its disk cache (no registry request), compiled again;
//! - **warm, same host**: a second app with the same image on a host that runs
//!   it already (disk cache and compiled component in memory).
//!
//! `cargo bench -p lattice-cli --bench registry` (REPS=N, default 3; the median is
//! printed). Figures: docs/benchmarks.md.

#![allow(clippy::unwrap_used)] // a benchmark: an unwrap that fails is a failed run

#[path = "../tests/multi_host_support/mod.rs"]
mod multi_host_support;

use lattice_artifacts::oci::RegistrySettings;
use lattice_controller::ControllerConfig;
use lattice_testing::components::component;
use lattice_testing::nats::free_port;
use lattice_testing::process::Process;
use lattice_testing::registry::OciRegistry;
use multi_host_support::*;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `hello` with a custom section making it `size` bytes.
fn padded_hello(size: usize, dir: &Path) -> PathBuf {
    let mut bytes = std::fs::read(component("hello")).unwrap();
    let name = b"lattice-bench-padding";
    let pad = size.saturating_sub(bytes.len() + name.len() + 8);
    let mut section = vec![name.len() as u8];
    section.extend_from_slice(name);
    section.resize(section.len() + pad, 0);
    bytes.push(0); // custom section
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

fn host(lattice: &TestLattice, name: &str, registry: &str, state: &Path) -> Process {
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
        "--allow-insecure-registry",
        registry,
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    Process::spawn(&format!("host {name}"), cmd).unwrap()
}

fn manifest(lattice: &TestLattice, app: &str, image: &str, port: u16) -> PathBuf {
    let yaml = format!(
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: {app}\n  \
         annotations:\n    version: v1\nspec:\n  components:\n    - name: hello\n      \
         type: component\n      properties:\n        image: {image}\n      traits:\n        \
         - type: spreadscaler\n          properties:\n            instances: 1\n    \
         - name: httpserver\n      type: capability\n      properties:\n        image: \
         builtin://http-server\n      traits:\n        - type: link\n          properties:\n            \
         target:\n              name: hello\n            namespace: wasi\n            package: http\n            \
         interfaces: [incoming-handler]\n            source:\n              config:\n                \
         - name: listen\n                  properties:\n                    address: 127.0.0.1:{port}\n"
    );
    let path = lattice.dir.path().join(format!("{app}.yaml"));
    std::fs::write(&path, yaml).unwrap();
    path
}

/// Deploy `app` and time until it answers 200.
async fn deploy_to_answer(lattice: &TestLattice, app: &str, image: &str) -> Duration {
    let port = free_port().unwrap();
    let path = manifest(lattice, app, image, port);
    let client = reqwest::Client::new();
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
    loop {
        let answer = client
            .get(format!("http://127.0.0.1:{port}/"))
            .timeout(Duration::from_secs(2))
            .send()
            .await;
        if matches!(&answer, Ok(r) if r.status() == 200) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "{app} never answered"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn undeploy(lattice: &TestLattice, app: &str) {
    let out = lattice.command(&["app", "delete", app]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let reps: usize = std::env::var("REPS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3)
        .max(1);
    let registry = OciRegistry::start().unwrap();
    let reg = registry.host();
    let mut lattice = TestLattice::start("bench").await;
    lattice
        .start_controller_with(ControllerConfig {
            registry: RegistrySettings {
                insecure: vec![reg.clone()],
                ..RegistrySettings::default()
            },
            ..fast_controller()
        })
        .await;
    println!("| component | cold (never seen) | warm: restarted host, disk cache | warm: same host, compiled |");
    println!("|---|---|---|---|");
    for (label, size) in [("200 KB", 200 * 1024), ("20 MB", 20 * 1024 * 1024)] {
        let file = padded_hello(size, lattice.dir.path());
        let image = format!("{reg}/bench/hello-{size}:v1");
        let out = lattice
            .command(&[
                "push",
                "--allow-insecure-registry",
                &reg,
                file.to_str().unwrap(),
                &image,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (mut cold, mut restarted, mut same) = (Vec::new(), Vec::new(), Vec::new());
        for rep in 0..reps {
            let state = tempfile::tempdir().unwrap();
            let name = format!("h{size}x{rep}");
            let h = host(&lattice, &name, &reg, state.path());
            lattice.wait_hosts(&[&name]).await;
            let app = format!("cold{rep}");
            cold.push(deploy_to_answer(&lattice, &app, &image).await);
            let app2 = format!("same{rep}");
            same.push(deploy_to_answer(&lattice, &app2, &image).await);
            undeploy(&lattice, &app).await;
            undeploy(&lattice, &app2).await;
            drop(h);
            // The same host identity is not kept (no --key): a new host on the
            // same state dir, whose disk cache has the bytes.
            let name2 = format!("{name}r");
            let h2 = host(&lattice, &name2, &reg, state.path());
            lattice.wait_hosts(&[&name2]).await;
            let app3 = format!("restart{rep}");
            restarted.push(deploy_to_answer(&lattice, &app3, &image).await);
            undeploy(&lattice, &app3).await;
            drop(h2);
            eventually("the host to be gone", || async {
                let hosts = lattice.hosts().await;
                if hosts.is_empty() {
                    Ok(())
                } else {
                    Err(format!("{:?}", hosts.keys()))
                }
            })
            .await;
        }
        let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1000.0);
        println!(
            "| {label} | {} | {} | {} |",
            ms(median(cold)),
            ms(median(restarted)),
            ms(median(same))
        );
    }
}
