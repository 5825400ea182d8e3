//! Attacks on the controller from the lattice's NATS, against a real nats-server:
//! anyone who can publish there can forge a heartbeat or call the API directly.
//! Each test fails without the defence it attacks (docs/security.md, "Controller:
//! host admission" and "Controller: server-side validation").

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

mod support;

use futures::StreamExt;
use lattice_protocol::encode;
use lattice_protocol::messages::{ApiReply, AppState, AppStatus, DeployRequest, Event, HostInfo};
use lattice_protocol::subjects::Subjects;
use lattice_protocol::trust::{new_host_key, sign_report};
use lattice_testing::nats::NatsServer;
use std::time::{Duration, Instant};
use support::*;

/// A heartbeat of `id`, as a real host's: not draining, no workloads.
fn info(id: &str) -> HostInfo {
    serde_json::from_value(serde_json::json!({
        "host_id": id, "lattice": LATTICE, "labels": {"zone": "forged"},
        "version": "x", "started_at_ms": 0,
    }))
    .expect("a minimal host report")
}

#[tokio::test]
async fn a_forged_heartbeat_receives_no_work_and_is_not_listed() {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let _controller = RunningController::start(&url).await;
    let api = api(&url).await;
    let attacker = nats.connect().await.unwrap();
    let subjects = Subjects::new(LATTICE);
    // Every command to any host, whoever it is for.
    let mut commands = attacker
        .subscribe(format!(
            "{}.>",
            subjects.host_command("").trim_end_matches('.')
        ))
        .await
        .unwrap();
    attacker.flush().await.unwrap();
    api.deploy(manifest("shop", "1", &[("api", 2)]))
        .await
        .unwrap();

    // A host id anyone can read from a heartbeat, and the attacker's own key.
    let victim = new_host_key().public_key();
    let own = new_host_key();
    let beat = |id: &str| encode(&Event::HostHeartbeat(info(id)));
    let forgeries = [
        // Unsigned, as every heartbeat was before hosts signed them.
        beat(&victim),
        // Signed by a key that is not the named host's.
        sign_report(&own, LATTICE, now_ms(), &beat(&victim), None).unwrap(),
        // The envelope claims the victim; the signature is the attacker's.
        String::from_utf8(sign_report(&own, LATTICE, now_ms(), &beat(&victim), None).unwrap())
            .unwrap()
            .replace(&own.public_key(), &victim)
            .into_bytes(),
    ];
    let heartbeat = subjects.event("host_heartbeat");
    let until = Instant::now() + BEAT * 8;
    while Instant::now() < until {
        for forged in &forgeries {
            attacker
                .publish(heartbeat.clone(), forged.clone().into())
                .await
                .unwrap();
        }
        tokio::time::sleep(BEAT / 2).await;
    }

    assert!(
        api.hosts().await.unwrap().is_empty(),
        "a forged host is listed"
    );
    let status = api.status("shop").await.unwrap();
    assert_eq!(status.state, AppState::Waiting, "{}", status.message);
    assert!(status.components[0].running.is_empty());
    let sent = tokio::time::timeout(Duration::from_millis(100), commands.next()).await;
    assert!(sent.is_err(), "a command was sent: {sent:?}");

    // A real host (signing its own heartbeats) is listed and gets the work.
    let host = FakeHost::start(&url, &[]).await;
    host_runs(&host, "shop", Some("1")).await;
    let listed: Vec<String> = api
        .hosts()
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.host_id)
        .collect();
    assert_eq!(listed, std::slice::from_ref(&host.id));
}

/// A host's heartbeats are signed, but anyone on the lattice's NATS can record
/// one and publish it again within the age bound: a dead host would stay listed
/// and keep its work (no failover) for as long as the replays go on.
#[tokio::test]
async fn a_replayed_heartbeat_does_not_keep_a_dead_host_alive() {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let _controller = RunningController::start(&url).await;
    let api = api(&url).await;
    let attacker = nats.connect().await.unwrap();
    let heartbeat = Subjects::new(LATTICE).event("host_heartbeat");
    let mut recorded = attacker.subscribe(heartbeat.clone()).await.unwrap();
    attacker.flush().await.unwrap();
    let host = FakeHost::start(&url, &[]).await;
    eventually("the host to be listed", || async {
        match api.hosts().await.unwrap().len() {
            1 => Ok(()),
            n => Err(format!("{n} hosts")),
        }
    })
    .await;
    // The newest heartbeat the attacker saw, then the host dies.
    let mut last = None;
    while let Ok(Some(m)) = tokio::time::timeout(BEAT / 4, recorded.next()).await {
        last = Some(m.payload);
    }
    let last = last.expect("a recorded heartbeat");
    host.kill();

    // Replayed for ten times the time it takes to declare a host lost.
    let until = Instant::now() + BEAT * 3 * 10;
    while Instant::now() < until {
        attacker
            .publish(heartbeat.clone(), last.clone())
            .await
            .unwrap();
        tokio::time::sleep(BEAT / 2).await;
    }
    assert!(
        api.hosts().await.unwrap().is_empty(),
        "the dead host is still listed"
    );
}

#[tokio::test]
async fn instances_4294967295_sent_straight_to_the_api_are_refused_at_once() {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let _host = FakeHost::start(&url, &[]).await;
    let _controller = RunningController::start(&url).await;
    let api = api(&url).await;
    api.deploy(manifest("calm", "1", &[("api", 1)]))
        .await
        .unwrap();
    let attacker = nats.connect().await.unwrap();

    // Not through ApiClient: the JSON a hand-made request carries.
    let request = DeployRequest {
        manifest: Some(manifest("huge", "1", &[("api", u32::MAX)])),
        name: None,
        version: None,
    };
    let started = Instant::now();
    let answer = tokio::time::timeout(
        Duration::from_secs(1),
        attacker.request(
            Subjects::new(LATTICE).api("deploy"),
            encode(&request).into(),
        ),
    )
    .await
    .expect("answered within a second")
    .unwrap();
    assert!(started.elapsed() < Duration::from_secs(1));
    let reply: ApiReply<AppStatus> = lattice_protocol::decode(&answer.payload).unwrap();
    let error = reply.error.expect("refused");
    assert!(
        error.contains(
            "spec.components[0].traits[0].properties.instances: expected a whole number \
             from 0 to 10000, found the number 4294967295"
        ),
        "{error}"
    );

    // Nothing was stored, and the controller keeps answering at once.
    for _ in 0..10 {
        let started = Instant::now();
        let apps = api.list().await.unwrap();
        assert_eq!(
            apps.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(),
            ["calm"]
        );
        assert!(started.elapsed() < Duration::from_secs(1));
        tokio::time::sleep(BEAT).await;
    }
    assert!(api.status("huge").await.is_err());
}

#[tokio::test]
async fn a_validly_signed_host_that_is_not_admitted_gets_no_work() {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let admitted = FakeHost::start(&url, &[]).await;
    let stranger = FakeHost::start(&url, &[]).await;
    let config = lattice_controller::ControllerConfig {
        admission: lattice_protocol::trust::Admission::listed([&admitted.id]).unwrap(),
        ..fast_config()
    };
    let _controller = RunningController::start_with(&url, LATTICE, config).await;
    let api = api(&url).await;
    api.deploy(manifest("shop", "1", &[("api", 4)]))
        .await
        .unwrap();
    host_runs(&admitted, "shop", Some("1")).await;
    tokio::time::sleep(BEAT * 4).await;
    assert!(stranger.commands().is_empty(), "{:?}", stranger.commands());
    let listed: Vec<String> = api
        .hosts()
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.host_id)
        .collect();
    assert_eq!(listed, std::slice::from_ref(&admitted.id));
}

#[tokio::test]
async fn a_controller_without_a_lattice_signing_key_does_not_start() {
    let nats = NatsServer::start().unwrap();
    let client = nats.connect().await.unwrap();
    let unsigned = lattice_controller::ControllerConfig {
        signing_key: None,
        ..fast_config()
    };
    let run = lattice_controller::Controller::new(client.clone(), LATTICE, unsigned)
        .run(std::future::pending());
    let err = tokio::time::timeout(DEADLINE, run)
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        err.to_string().contains("lattice keys new lattice --out"),
        "{err}"
    );
    // A host key is not a lattice key.
    let wrong = lattice_controller::ControllerConfig {
        signing_key: Some(new_host_key().seed().unwrap()),
        ..fast_config()
    };
    let run =
        lattice_controller::Controller::new(client, LATTICE, wrong).run(std::future::pending());
    let err = tokio::time::timeout(DEADLINE, run)
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(
        err,
        lattice_controller::ControllerError::BadSigningKey { .. }
    ));
}
