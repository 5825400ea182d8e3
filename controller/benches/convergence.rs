//! Controller convergence with simulated hosts (tasks that speak the host protocol,
//! each over its own NATS connection) against a real nats-server, default controller
//! settings (host heartbeat 1 s, lost after 3 missed beats, lease 3 s):
//!
//! - deploy -> `deployed`: N apps (one component, 2 instances spread over the hosts)
//!   deployed at once through the API (64 requests in flight), until the controller
//!   published `app_deployed` for every one and the hosts run every instance;
//! - host loss: a host goes silent; time until its work runs elsewhere;
//! - failover: the leading controller dies; time until the other holds the lease,
//!   and until an app deployed right after the death is deployed;
//! - rolling upgrade: 20 instances on 5 hosts move from version 1 to 2 with
//!   `maxUnavailable` 1 and 2; time from the deploy until every instance runs 2.
//!
//! `cargo bench -p lattice-controller --bench convergence` prints a markdown table.
//! `-- quick` runs the small cases only; `-- reconcile` only times the pure reconcile
//! (for a profiler); `-- rollout` only the rolling upgrades.

#![allow(clippy::unwrap_used)] // a benchmark: an unwrap that fails is a failed run

#[path = "../tests/support/mod.rs"]
mod support;

use futures::StreamExt;
use lattice_controller::lease::{LeaseRecord, LEASE_KEY};
use lattice_controller::{ApiClient, ControllerConfig};
use lattice_protocol::decode;
use lattice_protocol::messages::Event;
use lattice_protocol::subjects::Subjects;
use lattice_testing::nats::NatsServer;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{manifest, FakeHost, RunningController};
use tokio::sync::Semaphore;

const LATTICE: &str = "bench";
/// The hosts' default heartbeat.
const BEAT: Duration = Duration::from_secs(1);
/// Give up on a measurement after this long.
const LIMIT: Duration = Duration::from_secs(60);
/// Deploy requests in flight at once.
const IN_FLIGHT: usize = 64;
const INSTANCES: u32 = 2;

struct Bed {
    _nats: NatsServer,
    url: String,
    hosts: Vec<FakeHost>,
    controllers: Vec<RunningController>,
    api: ApiClient,
}

async fn bed(hosts: usize, controllers: usize) -> Bed {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let mut started = Vec::new();
    for _ in 0..hosts {
        started.push(FakeHost::start_with(&url, LATTICE, &[("sim", "yes")], BEAT).await);
    }
    let mut running = Vec::new();
    for _ in 0..controllers {
        let config = ControllerConfig {
            signing_key: Some(support::lattice_seed().to_string()),
            ..ControllerConfig::default()
        };
        running.push(RunningController::start_with(&url, LATTICE, config).await);
        // The first one leads: let it take the lease before the next starts.
        wait_for(|| async { lease_holder(&url).await.is_some() }).await;
    }
    let api = ApiClient::new(async_nats::connect(&url).await.unwrap(), LATTICE)
        .with_timeout(Duration::from_secs(30));
    Bed {
        _nats: nats,
        url,
        hosts: started,
        controllers: running,
        api,
    }
}

async fn lease_holder(url: &str) -> Option<String> {
    let js = async_nats::jetstream::new(async_nats::connect(url).await.ok()?);
    let kv = js
        .get_key_value(Subjects::new(LATTICE).state_bucket())
        .await
        .ok()?;
    let entry = kv.entry(LEASE_KEY).await.ok()??;
    serde_json::from_slice::<LeaseRecord>(&entry.value)
        .ok()
        .map(|l| l.holder)
}

/// Poll `done` every 10 ms; panics after [`LIMIT`].
async fn wait_for<F, Fut>(mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = Instant::now() + LIMIT;
    while !done().await {
        assert!(Instant::now() < until, "gave up after {LIMIT:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Instances of `app` the live hosts run.
fn running(hosts: &[FakeHost], app: &str) -> u32 {
    hosts
        .iter()
        .filter_map(|h| h.workload(app))
        .flat_map(|w| w.components.into_iter().map(|c| c.instances))
        .sum()
}

/// Deploy `apps` apps at once; the time until all are deployed, and until all
/// deploy requests were answered.
async fn deploy_all(bed: &Bed, apps: usize) -> (Duration, Duration) {
    let events = async_nats::connect(&bed.url).await.unwrap();
    let mut deployed = events
        .subscribe(Subjects::new(LATTICE).event("app_deployed"))
        .await
        .unwrap();
    events.flush().await.unwrap();
    let t0 = Instant::now();
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut requests = Vec::new();
    for i in 0..apps {
        let api = bed.api.clone();
        let slot = slots.clone().acquire_owned().await.unwrap();
        requests.push(tokio::spawn(async move {
            let m = manifest(&format!("app{i:04}"), "1", &[("api", INSTANCES)]);
            api.deploy(m).await.expect("deploy accepted");
            drop(slot);
        }));
    }
    let answering = tokio::spawn(async move {
        for r in requests {
            r.await.unwrap();
        }
        t0.elapsed()
    });
    let mut seen = BTreeSet::new();
    while seen.len() < apps {
        let msg = tokio::time::timeout(LIMIT, deployed.next())
            .await
            .expect("every app deployed in time")
            .unwrap();
        if let Ok(Event::AppDeployed { app, .. }) = decode::<Event>(&msg.payload) {
            seen.insert(app);
        }
    }
    let converged = t0.elapsed();
    let answered = answering.await.unwrap();
    let total: u32 = (0..apps)
        .map(|i| running(&bed.hosts, &format!("app{i:04}")))
        .sum();
    assert_eq!(total as usize, apps * INSTANCES as usize);
    (converged, answered)
}

/// Instances of `app` at `version` the live hosts run.
fn running_version(hosts: &[FakeHost], app: &str, version: &str) -> u32 {
    hosts
        .iter()
        .filter_map(|h| h.workload(app))
        .filter(|w| w.version == version)
        .flat_map(|w| w.components.into_iter().map(|c| c.instances))
        .sum()
}

/// `instances` spread over `hosts` hosts at version 1, then version 2 deployed with
/// `maxUnavailable: at_once`: the time until every instance runs version 2.
async fn rollout(hosts: usize, instances: u32, at_once: u32) -> Duration {
    use lattice_protocol::manifest::{MaxUnavailable, Rollout};
    let bed = bed(hosts, 1).await;
    bed.api
        .deploy(manifest("roll", "1", &[("api", instances)]))
        .await
        .unwrap();
    wait_for(|| async { running_version(&bed.hosts, "roll", "1") == instances }).await;
    let mut v2 = manifest("roll", "2", &[("api", instances)]);
    v2.rollout = Some(Rollout {
        max_unavailable: MaxUnavailable::Hosts(at_once),
    });
    let t0 = Instant::now();
    bed.api.deploy(v2).await.unwrap();
    wait_for(|| async { running_version(&bed.hosts, "roll", "2") == instances }).await;
    t0.elapsed()
}

/// A converged lattice; one host goes silent; the time until its work runs elsewhere.
async fn host_loss(hosts: usize, apps: usize) -> (Duration, usize) {
    let bed = bed(hosts, 1).await;
    deploy_all(&bed, apps).await;
    let victim = &bed.hosts[0];
    let affected: Vec<String> = (0..apps)
        .map(|i| format!("app{i:04}"))
        .filter(|a| victim.workload(a).is_some())
        .collect();
    victim.kill();
    let t0 = Instant::now();
    let live = &bed.hosts[1..];
    wait_for(|| async { affected.iter().all(|a| running(live, a) == INSTANCES) }).await;
    (t0.elapsed(), affected.len())
}

/// Two controllers; the leader dies; the time until the other leads, and until an app
/// deployed right after the death is deployed.
async fn failover(hosts: usize) -> (Duration, Duration) {
    let mut bed = bed(hosts, 2).await;
    deploy_all(&bed, 10).await;
    let leader = lease_holder(&bed.url).await.unwrap();
    let (mut dead, alive): (Vec<_>, Vec<_>) =
        bed.controllers.iter_mut().partition(|c| c.id == leader);
    let t0 = Instant::now();
    dead[0].kill().await;
    bed.api
        .deploy(manifest("late", "1", &[("api", INSTANCES)]))
        .await
        .unwrap();
    let other = alive[0].id.clone();
    let (mut took_over, mut deployed) = (None, None);
    let until = Instant::now() + LIMIT;
    while took_over.is_none() || deployed.is_none() {
        assert!(Instant::now() < until, "gave up after {LIMIT:?}");
        if took_over.is_none() && lease_holder(&bed.url).await.as_deref() == Some(&other) {
            took_over = Some(t0.elapsed());
        }
        if deployed.is_none() && running(&bed.hosts, "late") == INSTANCES {
            deployed = Some(t0.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (took_over.unwrap(), deployed.unwrap())
}

/// One pure `reconcile` of `apps` converged apps on `hosts` hosts: the work every
/// tick (and every change) costs once the lattice is at rest.
fn reconcile_at_rest(hosts: usize, apps: usize) -> Duration {
    use lattice_controller::attempts::Attempts;
    use lattice_controller::{reconcile, Context, DesiredApp, ObservedHost};
    use lattice_protocol::messages::{ComponentReport, WorkloadReport};
    let desired: Vec<DesiredApp> = (0..apps)
        .map(|i| DesiredApp {
            name: format!("app{i:04}"),
            latest_version: "1".into(),
            deployed: Some(manifest(&format!("app{i:04}"), "1", &[("api", INSTANCES)])),
        })
        .collect();
    let mut observed: Vec<ObservedHost> = (0..hosts)
        .map(|i| ObservedHost {
            id: format!("NSIM{i:04}"),
            labels: Default::default(),
            draining: false,
            workloads: vec![],
            secrets_key: None,
        })
        .collect();
    // Place once, then report exactly that placement.
    let attempts = Attempts::default();
    let ctx = Context {
        attempts: &attempts,
        now: Instant::now(),
        resend_after: Duration::from_secs(10),
    };
    for cmd in reconcile(&desired, &observed, &ctx).commands {
        if let lattice_protocol::messages::HostCommand::Apply { workload } = cmd.command {
            let host = observed.iter_mut().find(|h| h.id == cmd.host_id).unwrap();
            host.workloads.push(WorkloadReport {
                service: None,
                providers: vec![],
                app: workload.manifest.name.clone(),
                version: workload.manifest.version.clone(),
                components: workload
                    .placements
                    .iter()
                    .map(|(name, n)| ComponentReport {
                        name: name.clone(),
                        instances: *n,
                        in_flight: 0,
                        invocations: 0,
                        traps: 0,
                    })
                    .collect(),
            });
        }
    }
    let rounds = 20;
    let t0 = Instant::now();
    for _ in 0..rounds {
        let plan = reconcile(&desired, &observed, &ctx);
        assert!(plan.commands.is_empty());
    }
    t0.elapsed() / rounds
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    // `-- reconcile`: only the pure reconcile, e.g. under a profiler.
    if std::env::args().any(|a| a == "reconcile") {
        for _ in 0..10 {
            let d = reconcile_at_rest(100, 1000);
            println!(
                "one reconcile, 1000 apps on 100 hosts: {:.2} ms",
                d.as_secs_f64() * 1e3
            );
        }
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let rollouts = || async {
        for at_once in [1, 2] {
            println!(
                "| rolling upgrade, 20 instances, maxUnavailable {at_once} -> all on v2 | 5 | 1 | {} |",
                ms(rollout(5, 20, at_once).await)
            );
        }
    };
    if std::env::args().any(|a| a == "rollout") {
        rt.block_on(async {
            println!("| scenario | hosts | apps | result |");
            println!("|---|---:|---:|---|");
            rollouts().await;
        });
        return;
    }
    rt.block_on(async {
        println!("| scenario | hosts | apps | result |");
        println!("|---|---:|---:|---|");
        rollouts().await;
        let cases: &[(usize, usize)] = if quick {
            &[(10, 1), (10, 100)]
        } else {
            &[(10, 1), (10, 100), (10, 1000), (100, 1), (100, 100), (100, 1000)]
        };
        for &(hosts, apps) in cases {
            let bed = bed(hosts, 1).await;
            let (converged, answered) = deploy_all(&bed, apps).await;
            println!(
                "| deploy -> deployed | {hosts} | {apps} | {} (all deploy requests answered after {}) |",
                ms(converged),
                ms(answered)
            );
        }
        for (hosts, apps) in [(10, 100), (100, 1000)] {
            if quick && hosts > 10 {
                continue;
            }
            let (d, moved) = host_loss(hosts, apps).await;
            println!(
                "| host silent -> its work runs elsewhere | {hosts} | {apps} | {} ({moved} apps moved) |",
                ms(d)
            );
        }
        for (hosts, apps) in [(10, 100), (100, 1000)] {
            println!(
                "| one pure reconcile at rest (CPU per tick) | {hosts} | {apps} | {:.2} ms |",
                reconcile_at_rest(hosts, apps).as_secs_f64() * 1000.0
            );
        }
        let (took_over, deployed) = failover(10).await;
        println!(
            "| leader killed -> other controller leads | 10 | 10 | {} (an app deployed after the kill runs after {}) |",
            ms(took_over),
            ms(deployed)
        );
    });
}
