//! Controller high availability with real processes: two `lattice controller`s on one
//! lattice with three `lattice host`s; the leader is SIGKILLed right after accepting
//! a deploy, and the other finishes it (default timings: 3 s lease).

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

mod multi_host_support;

use lattice_controller::lease::{LeaseRecord, LEASE_KEY};
use lattice_protocol::messages::AppState;
use lattice_protocol::subjects::Subjects;
use lattice_testing::process::Process;
use multi_host_support::*;
use std::time::{Duration, Instant};

/// Start `lattice controller` and wait until it logged its id.
async fn start_controller(lattice: &TestLattice, name: &str) -> (Process, String) {
    let mut cmd = lattice.command(&["controller"]);
    cmd.env("NO_COLOR", "1")
        .env("LATTICE_SIGNING_KEY", lattice.key.seed());
    let process = Process::spawn(name, cmd).unwrap();
    let id = eventually(&format!("{name} to start"), || async {
        let log = process.log();
        log.lines()
            .find(|l| l.contains("controller started"))
            .and_then(|l| {
                l.split_whitespace()
                    .find_map(|w| w.strip_prefix("controller="))
            })
            .map(str::to_string)
            .ok_or(log)
    })
    .await;
    (process, id)
}

async fn lease_holder(lattice: &TestLattice) -> Option<String> {
    let js = async_nats::jetstream::new(lattice.client.clone());
    let kv = js
        .get_key_value(Subjects::new(&lattice.name).state_bucket())
        .await
        .ok()?;
    let entry = kv.entry(LEASE_KEY).await.ok()??;
    serde_json::from_slice::<LeaseRecord>(&entry.value)
        .ok()
        .map(|l| l.holder)
}

async fn wait_leader(lattice: &TestLattice, id: &str) {
    eventually(&format!("{id} to lead"), || async {
        match lease_holder(lattice).await {
            Some(h) if h == id => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_follower_finishes_a_deploy_when_the_leader_is_killed() {
    let mut lattice = TestLattice::start("ha").await;
    for name in ["h1", "h2", "h3"] {
        lattice.start_host(name, &[]);
    }
    lattice.wait_hosts(&["h1", "h2", "h3"]).await;
    let (mut a, a_id) = start_controller(&lattice, "controller A").await;
    wait_leader(&lattice, &a_id).await;
    let (b, b_id) = start_controller(&lattice, "controller B").await;

    let spread = "- type: spreadscaler\n  properties:\n    instances: 3";
    let shop = lattice.manifest("shop", "v1", &[("api", spread)]);
    let shop = lattice_protocol::manifest::parse(&std::fs::read_to_string(shop).unwrap()).unwrap();
    let accepted = lattice.api.deploy(shop).await.unwrap();
    a.kill();
    let killed = Instant::now();
    // Killed mid-deploy: the leader had stored it and sent commands, nothing more.
    assert_ne!(accepted.state, AppState::Deployed, "{accepted:?}");

    // While nobody leads, the API still takes deploys (B answers itself).
    let late = lattice.manifest("late", "v1", &[("api", spread)]);
    lattice.deploy(&late);

    wait_leader(&lattice, &b_id).await;
    let took_over = killed.elapsed();
    for app in ["shop", "late"] {
        lattice
            .wait_placement(app, "api", &[("h1", 1), ("h2", 1), ("h3", 1)])
            .await;
        lattice
            .status_until(app, "deployed by the new leader", |s| {
                s.state == AppState::Deployed
            })
            .await;
    }
    let converged = killed.elapsed();
    eprintln!(
        "controller failover (lease 3 s): new leader after {took_over:?}, both apps \
         deployed after {converged:?}"
    );
    assert!(took_over < Duration::from_secs(6), "{took_over:?}");
    drop(b);
}
