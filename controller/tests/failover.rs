//! Several controllers on one lattice, against a real nats-server with simulated
//! hosts: exactly one acts, and when it dies mid-deploy another finishes the job.

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

mod support;

use lattice_controller::lease::{LeaseRecord, LEASE_KEY};
use lattice_protocol::messages::{AppState, HostCommand};
use lattice_protocol::subjects::Subjects;
use std::time::{Duration, Instant};
use support::*;

/// The lease as stored in KV.
async fn lease(url: &str) -> Option<LeaseRecord> {
    let js = async_nats::jetstream::new(async_nats::connect(url).await.ok()?);
    let kv = js
        .get_key_value(Subjects::new(LATTICE).state_bucket())
        .await
        .ok()?;
    let entry = kv.entry(LEASE_KEY).await.ok()??;
    serde_json::from_slice(&entry.value).ok()
}

async fn leader_is(url: &str, id: &str) {
    eventually(&format!("controller {id} to hold the lease"), || async {
        match lease(url).await {
            Some(l) if l.holder == id => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
}

fn applies(host: &FakeHost) -> usize {
    host.commands()
        .iter()
        .filter(|c| matches!(c, HostCommand::Apply { .. }))
        .count()
}

#[tokio::test]
async fn only_the_leader_sends_commands() {
    let nats = lattice_testing::nats::NatsServer::start().unwrap();
    let url = nats.url();
    let host = FakeHost::start(&url, &[]).await;
    let one = RunningController::start(&url).await;
    leader_is(&url, &one.id).await;
    let _two = RunningController::start(&url).await;
    let _three = RunningController::start(&url).await;
    let api = api(&url).await;
    api.deploy(manifest("shop", "1", &[("api", 2)]))
        .await
        .unwrap();
    status_until(&api, "shop", "deployed", |s| s.state == AppState::Deployed).await;
    tokio::time::sleep(BEAT * 4).await;
    // Three controllers reconcile; one command went out.
    assert_eq!(applies(&host), 1, "{:?}", host.commands());
    // Every controller answers status (followers through the leader).
    for _ in 0..6 {
        assert_eq!(api.status("shop").await.unwrap().state, AppState::Deployed);
    }
}

#[tokio::test]
async fn the_follower_finishes_a_deploy_when_the_leader_dies_mid_way() {
    let nats = lattice_testing::nats::NatsServer::start().unwrap();
    let url = nats.url();
    let hosts = [
        FakeHost::start(&url, &[]).await,
        FakeHost::start(&url, &[]).await,
        FakeHost::start(&url, &[]).await,
    ];
    let mut a = RunningController::start(&url).await;
    leader_is(&url, &a.id).await;
    let b = RunningController::start(&url).await;
    let api = api(&url).await;

    // Host 3 refuses for now, so the deploy is half done when the leader dies.
    hosts[2].fail_with(Some("busy compiling"));
    api.deploy(manifest("shop", "1", &[("api", 3)]))
        .await
        .unwrap();
    host_runs(&hosts[0], "shop", Some("1")).await;
    host_runs(&hosts[1], "shop", Some("1")).await;
    eventually("host 3 to refuse once", || async {
        (applies(&hosts[2]) > 0)
            .then_some(())
            .ok_or_else(|| "no apply yet".to_string())
    })
    .await;
    let before = [applies(&hosts[0]), applies(&hosts[1])];

    let killed = Instant::now();
    a.kill().await;
    hosts[2].fail_with(None);
    leader_is(&url, &b.id).await;
    let took_over = killed.elapsed();
    host_runs(&hosts[2], "shop", Some("1")).await;
    let status = status_until(&api, "shop", "deployed by the new leader", |s| {
        s.state == AppState::Deployed
    })
    .await;
    let converged = killed.elapsed();
    assert_eq!(status.components[0].running.len(), 3, "{status:?}");
    // The new leader found hosts 1 and 2 done and did not command them again.
    tokio::time::sleep(BEAT * 3).await;
    assert_eq!([applies(&hosts[0]), applies(&hosts[1])], before);
    eprintln!(
        "failover: lease taken over after {took_over:?}, deploy complete after {converged:?}"
    );
    // Lease TTL 600 ms + a follower's look every 100 ms, plus slack for a busy machine.
    assert!(took_over < Duration::from_secs(3), "{took_over:?}");
}

#[tokio::test]
async fn the_api_keeps_answering_while_the_leader_is_dead() {
    let nats = lattice_testing::nats::NatsServer::start().unwrap();
    let url = nats.url();
    let host = FakeHost::start(&url, &[]).await;
    let mut a = RunningController::start(&url).await;
    leader_is(&url, &a.id).await;
    let b = RunningController::start(&url).await;
    let api = api(&url).await;
    a.kill().await;
    // Before anyone leads again, the follower stores the deploy itself.
    let status = api
        .deploy(manifest("late", "1", &[("api", 1)]))
        .await
        .unwrap();
    assert_eq!(status.deployed_version.as_deref(), Some("1"));
    leader_is(&url, &b.id).await;
    host_runs(&host, "late", Some("1")).await;
    status_until(&api, "late", "deployed", |s| s.state == AppState::Deployed).await;
}

#[tokio::test]
async fn a_politely_stopped_leader_hands_over_at_once() {
    let nats = lattice_testing::nats::NatsServer::start().unwrap();
    let url = nats.url();
    let host = FakeHost::start(&url, &[]).await;
    let a = RunningController::start(&url).await;
    leader_is(&url, &a.id).await;
    let b = RunningController::start(&url).await;
    // Give B time to see A's lease, so only the release lets it in early.
    tokio::time::sleep(fast_config().lease_renew * 2).await;
    let stopping = Instant::now();
    a.stop().await;
    leader_is(&url, &b.id).await;
    let handed_over = stopping.elapsed();
    assert!(
        handed_over < fast_config().lease_ttl,
        "took {handed_over:?}, no faster than a crash"
    );
    let api = api(&url).await;
    api.deploy(manifest("shop", "1", &[("api", 1)]))
        .await
        .unwrap();
    host_runs(&host, "shop", Some("1")).await;
}
