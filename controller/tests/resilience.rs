//! The controller under trouble, against a real nats-server with simulated hosts:
//! its own restart, a lost host, a host that refuses work.

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

mod support;

use futures::StreamExt;
use lattice_protocol::decode;
use lattice_protocol::messages::{AppState, Event, HostCommand};
use lattice_protocol::subjects::Subjects;
use lattice_testing::nats::NatsServer;
use support::*;

#[tokio::test]
async fn a_restarted_controller_brings_state_back_from_kv() {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let host = FakeHost::start(&url, &[]).await;
    let controller = RunningController::start(&url).await;
    let api = api(&url).await;
    api.deploy(manifest("shop", "1", &[("api", 1)]))
        .await
        .unwrap();
    api.deploy(manifest("shop", "2", &[("api", 1)]))
        .await
        .unwrap();
    api.deploy(manifest("idle", "1", &[("x", 1)]))
        .await
        .unwrap();
    api.undeploy("idle").await.unwrap();
    status_until(&api, "shop", "deployed", |s| s.state == AppState::Deployed).await;
    controller.stop().await;
    let sent = host.commands().len();

    let _controller = RunningController::start(&url).await;
    let status = status_until(&api, "shop", "deployed after restart", |s| {
        s.state == AppState::Deployed
    })
    .await;
    assert_eq!(status.deployed_version.as_deref(), Some("2"));
    assert_eq!(api.history("shop").await.unwrap().len(), 2);
    let idle = api.status("idle").await.unwrap();
    assert_eq!(idle.state, AppState::Undeployed);
    // The new controller found the work in place and sent nothing.
    tokio::time::sleep(BEAT * 3).await;
    assert_eq!(host.commands().len(), sent, "{:?}", host.commands());
    assert_eq!(host.workload("shop").unwrap().version, "2");
}

#[tokio::test]
async fn state_survives_a_nats_restart() {
    let mut nats = NatsServer::start().unwrap();
    let url = nats.url();
    {
        let controller = RunningController::start(&url).await;
        api(&url)
            .await
            .deploy(manifest("shop", "7", &[("api", 1)]))
            .await
            .unwrap();
        controller.stop().await;
    }
    nats.restart().unwrap();
    let _controller = RunningController::start(&url).await;
    let status = api(&url).await.status("shop").await.unwrap();
    assert_eq!(status.deployed_version.as_deref(), Some("7"));
    assert_eq!(status.state, AppState::Waiting, "{}", status.message);
    assert!(
        status.message.contains("lattice host"),
        "{}",
        status.message
    );
}

#[tokio::test]
async fn work_of_a_lost_host_moves_to_another() {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let a = FakeHost::start(&url, &[]).await;
    let b = FakeHost::start(&url, &[]).await;
    let _controller = RunningController::start(&url).await;
    let api = api(&url).await;
    let events = nats.connect().await.unwrap();
    let mut lost = events
        .subscribe(Subjects::new(LATTICE).event("host_lost"))
        .await
        .unwrap();
    events.flush().await.unwrap();

    api.deploy(manifest("shop", "1", &[("api", 1)]))
        .await
        .unwrap();
    status_until(&api, "shop", "deployed", |s| s.state == AppState::Deployed).await;
    let (victim, survivor) = if a.workload("shop").is_some() {
        (&a, &b)
    } else {
        (&b, &a)
    };
    assert!(survivor.workload("shop").is_none());

    let killed_at = tokio::time::Instant::now();
    victim.kill();
    host_runs(survivor, "shop", Some("1")).await;
    let status = status_until(&api, "shop", "deployed on the survivor", |s| {
        s.state == AppState::Deployed
    })
    .await;
    assert_eq!(status.components[0].running.get(&survivor.id), Some(&1));
    assert!(!status.components[0].running.contains_key(&victim.id));
    // 3 missed beats of 200 ms plus a tick: about a second; 5 s leaves room for a busy CI.
    assert!(killed_at.elapsed() < std::time::Duration::from_secs(5));

    let msg = tokio::time::timeout(DEADLINE, lost.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        decode::<Event>(&msg.payload).unwrap(),
        Event::HostLost {
            host_id: victim.id.clone()
        }
    );
}

#[tokio::test]
async fn a_refused_command_fails_the_app_with_the_hosts_words_and_is_retried() {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let host = FakeHost::start(&url, &[]).await;
    let error = "address 127.0.0.1:8080 is already used by app 'a'";
    host.fail_with(Some(error));
    let _controller = RunningController::start(&url).await;
    let api = api(&url).await;
    let events = nats.connect().await.unwrap();
    let mut failed = events
        .subscribe(Subjects::new(LATTICE).event("app_failed"))
        .await
        .unwrap();
    events.flush().await.unwrap();

    api.deploy(manifest("b", "1", &[("web", 1)])).await.unwrap();
    let status = status_until(&api, "b", "failed", |s| s.state == AppState::Failed).await;
    assert!(status.message.contains(error), "{}", status.message);
    assert!(
        status.message.contains(&host.id[..12]),
        "{}",
        status.message
    );
    assert!(status.message.contains("retrying"), "{}", status.message);
    assert_eq!(status.components[0].state, AppState::Failed);
    let msg = tokio::time::timeout(DEADLINE, failed.next())
        .await
        .unwrap()
        .unwrap();
    match decode::<Event>(&msg.payload).unwrap() {
        Event::AppFailed { app, reason } => {
            assert_eq!(app, "b");
            assert!(reason.contains(error), "{reason}");
        }
        other => panic!("unexpected event {other:?}"),
    }

    // Retried with backoff: a few attempts, not a hot loop.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let attempts = host
        .commands()
        .iter()
        .filter(|c| matches!(c, HostCommand::Apply { .. }))
        .count();
    assert!((2..=6).contains(&attempts), "{attempts} attempts in ~2s");

    // Once the host accepts, the app converges.
    host.fail_with(None);
    status_until(&api, "b", "deployed after the host relents", |s| {
        s.state == AppState::Deployed
    })
    .await;
}

#[tokio::test]
async fn two_controllers_share_state_through_kv() {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let host = FakeHost::start(&url, &[]).await;
    let _one = RunningController::start(&url).await;
    let _two = RunningController::start(&url).await;
    let api = api(&url).await;
    for version in ["1", "2"] {
        api.deploy(manifest("shop", version, &[("api", 1)]))
            .await
            .unwrap();
        // The queue group spreads requests over both: each must know the new version.
        eventually("both controllers to see the deploy", || async {
            for _ in 0..8 {
                let s = api.status("shop").await.map_err(|e| e.to_string())?;
                if s.deployed_version.as_deref() != Some(version) {
                    return Err(format!("{:?}", s.deployed_version));
                }
            }
            Ok(())
        })
        .await;
        host_runs(&host, "shop", Some(version)).await;
    }
    api.delete("shop").await.unwrap();
    eventually("both controllers to forget the app", || async {
        for _ in 0..8 {
            if api.status("shop").await.is_ok() {
                return Err("still known".to_string());
            }
        }
        Ok(())
    })
    .await;
}
