//! The host's NATS side against a real nats-server: signed commands (and forged
//! ones refused), labels, bad input, signed reports, and draining on shutdown.

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

mod support;

use futures::StreamExt;
use lattice_host::agent;
use lattice_host::{Host, HostConfig};
use lattice_protocol::messages::{CommandReply, Event, HostCommand, HostInfo};
use lattice_protocol::subjects::Subjects;
use lattice_protocol::trust::{read_event_unverified, ReportPolicy};
use lattice_protocol::{decode, encode};
use lattice_testing::host::{get, host, quick_limits};
use lattice_testing::manifest::spec;
use lattice_testing::nats::{free_port, NatsServer};
use lattice_testing::trust::{now_ms, LatticeKey};
use std::collections::BTreeMap;
use std::time::Duration;
use support::{http_app, serve};

/// An in-process host on `client` that trusts `key`.
fn trusting(key: &LatticeKey, client: &async_nats::Client) -> Host {
    let config = HostConfig {
        limits: quick_limits(),
        trust: vec![key.public_key()],
        allow_file_load: true,
        ..HostConfig::default()
    };
    Host::new(config, Some(client.clone())).unwrap()
}

/// Start `host`'s agent; send on the returned channel to stop it.
async fn start_agent(
    host: &Host,
    nats: &NatsServer,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(agent::run(
        host.clone(),
        nats.connect().await.unwrap(),
        async {
            let _ = stopped.await;
        },
    ));
    let client = nats.connect().await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), async {
        while tokio::time::timeout(
            Duration::from_millis(200),
            client.request(Subjects::new("default").hosts_ping(), "{\"v\":1}".into()),
        )
        .await
        .map_or(true, |r| r.is_err())
        {}
    })
    .await
    .expect("the agent answers pings");
    (stop, task)
}

async fn command(client: &async_nats::Client, host_id: &str, payload: Vec<u8>) -> CommandReply {
    let subject = Subjects::new("default").host_command(host_id);
    let reply = tokio::time::timeout(
        Duration::from_secs(10),
        client.request(subject, payload.into()),
    )
    .await
    .expect("host answers in time")
    .expect("request delivered");
    decode(&reply.payload).unwrap()
}

async fn next_scaled(sub: &mut async_nats::Subscriber) -> (String, u32) {
    let msg = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .unwrap()
        .unwrap();
    match read_event_unverified(&msg.payload).unwrap() {
        Event::ComponentScaled {
            component,
            instances,
            ..
        } => (component, instances),
        other => panic!("unexpected event {other:?}"),
    }
}

async fn ping(client: &async_nats::Client) -> HostInfo {
    let reply = client
        .request(Subjects::new("default").hosts_ping(), "{\"v\":1}".into())
        .await
        .unwrap();
    decode(&reply.payload).unwrap()
}

#[tokio::test]
async fn signed_commands_labels_and_bad_input() {
    let nats = NatsServer::start().unwrap();
    let client = nats.connect().await.unwrap();
    let key = LatticeKey::new("default");
    let host = trusting(&key, &client);
    let id = host.id().to_string();
    let (stop, task) = start_agent(&host, &nats).await;
    let info = ping(&client).await;
    assert_eq!(info.host_id, id);
    assert!(info.labels.contains_key("hostcore.arch"));

    // Apply through NATS, then remove.
    let mut scaled = client
        .subscribe(Subjects::new("default").event("component_scaled"))
        .await
        .unwrap();
    client.flush().await.unwrap();
    let port = free_port().unwrap();
    let apply = HostCommand::Apply {
        workload: spec(http_app("web", "hello", port, "keyvalue-memory", 2)),
    };
    assert_eq!(
        command(&client, &id, key.sign(&id, 1, &apply)).await,
        CommandReply::ok()
    );
    assert_eq!(get(port, "/").await.0, 200);
    assert_eq!(ping(&client).await.workloads[0].app, "web");
    assert_eq!(next_scaled(&mut scaled).await, ("web".to_string(), 2));

    // Labels change at run time; hostcore labels are the host's own.
    let set = HostCommand::SetLabels {
        set: BTreeMap::from([("tier".to_string(), "edge".to_string())]),
        unset: vec![],
    };
    assert_eq!(
        command(&client, &id, key.sign(&id, 1, &set)).await,
        CommandReply::ok()
    );
    assert_eq!(
        ping(&client).await.labels.get("tier").map(String::as_str),
        Some("edge")
    );
    let bad = HostCommand::SetLabels {
        set: BTreeMap::from([("hostcore.os".to_string(), "plan9".to_string())]),
        unset: vec![],
    };
    let reply = command(&client, &id, key.sign(&id, 1, &bad)).await;
    assert!(reply.error.unwrap().contains("hostcore.os"));

    // Signed garbage and other protocol versions are answered, not ignored.
    let reply = command(&client, &id, key.sign_at(&id, 1, now_ms(), b"not json")).await;
    assert!(reply.error.unwrap().contains("cannot read the command"));
    let v9 = br#"{"v":9,"command":"remove","app":"web"}"#;
    let reply = command(&client, &id, key.sign_at(&id, 1, now_ms(), v9)).await;
    assert!(reply.error.unwrap().contains("protocol version 9"));

    let remove = HostCommand::Remove { app: "web".into() };
    assert_eq!(
        command(&client, &id, key.sign(&id, 1, &remove)).await,
        CommandReply::ok()
    );
    assert!(reqwest::get(format!("http://127.0.0.1:{port}/"))
        .await
        .is_err());

    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

/// Attack: anyone on the lattice's NATS sends a host an `apply`. Unsigned, signed
/// by a key the host does not trust, for another host, too old, replayed, or from
/// a lease term lower than one it obeyed: each is refused, starts nothing, and is
/// counted.
#[tokio::test]
async fn forged_applies_start_nothing() {
    let nats = NatsServer::start().unwrap();
    let client = nats.connect().await.unwrap();
    let key = LatticeKey::new("default");
    let host = trusting(&key, &client);
    let id = host.id().to_string();
    let (stop, task) = start_agent(&host, &nats).await;
    let port = free_port().unwrap();
    let apply = HostCommand::Apply {
        workload: spec(http_app("evil", "hello", port, "keyvalue-memory", 1)),
    };
    let body = encode(&apply);
    let refused = |reply: CommandReply, why: &str| {
        let error = reply.error.expect("refused");
        assert!(error.contains(why), "expected '{why}' in: {error}");
    };

    refused(command(&client, &id, body.clone()).await, "not signed");
    let stranger = LatticeKey::new("default");
    refused(
        command(&client, &id, stranger.sign(&id, 1, &apply)).await,
        "does not trust",
    );
    let other_host = lattice_protocol::trust::new_host_key().public_key();
    refused(
        command(&client, &id, key.sign(&other_host, 1, &apply)).await,
        "for host",
    );
    let old = key.sign_at(&id, 1, now_ms() - 10 * 60_000, &body);
    refused(command(&client, &id, old).await, "old");
    refused(
        command(&client, &id, key.in_lattice("other").sign(&id, 1, &apply)).await,
        "lattice 'other'",
    );
    assert!(host.apps().is_empty(), "nothing ran");
    assert!(reqwest::get(format!("http://127.0.0.1:{port}/"))
        .await
        .is_err());

    // A term-5 command is obeyed; the same bytes again are a replay, and a term-4
    // command (a deposed leader's) is stale.
    let remove = HostCommand::Remove { app: "none".into() };
    let obeyed = key.sign(&id, 5, &remove);
    assert_eq!(
        command(&client, &id, obeyed.clone()).await,
        CommandReply::ok()
    );
    refused(command(&client, &id, obeyed).await, "replay");
    refused(
        command(&client, &id, key.sign(&id, 4, &apply)).await,
        "term",
    );
    assert!(host.apps().is_empty(), "nothing ran");

    let info = ping(&client).await;
    assert_eq!(info.refused_commands, 7);
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

/// Everything the host reports is signed by its own key.
#[tokio::test]
async fn reports_are_signed_by_the_host() {
    let nats = NatsServer::start().unwrap();
    let client = nats.connect().await.unwrap();
    let mut beats = client
        .subscribe(Subjects::new("default").event("host_heartbeat"))
        .await
        .unwrap();
    client.flush().await.unwrap();
    let key = LatticeKey::new("default");
    let host = trusting(&key, &client);
    let (stop, task) = start_agent(&host, &nats).await;
    let msg = tokio::time::timeout(Duration::from_secs(5), beats.next())
        .await
        .unwrap()
        .unwrap();
    let policy = ReportPolicy::new("default", lattice_protocol::trust::Admission::any_host());
    let report = policy
        .check(&msg.payload, now_ms())
        .expect("a valid signed report");
    assert_eq!(report.host, host.id());
    assert!(matches!(
        decode::<Event>(&report.body).unwrap(),
        Event::HostHeartbeat(_)
    ));
    assert!(decode::<Event>(&msg.payload).is_err(), "not plain JSON");
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn draining_lets_in_flight_requests_finish_then_says_goodbye() {
    let nats = NatsServer::start().unwrap();
    let client = nats.connect().await.unwrap();
    let mut events = client
        .subscribe(Subjects::new("default").event("host_stopped"))
        .await
        .unwrap();
    client.flush().await.unwrap();
    let host = host(quick_limits(), Some(client.clone()));
    let port = serve(&host, "slow", "misbehave", 2).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(agent::run(
        host.clone(),
        nats.connect().await.unwrap(),
        async {
            let _ = stopped.await;
        },
    ));
    let in_flight = tokio::spawn(get(port, "/sleep?ms=800"));
    // Wait until the request runs, then stop the host.
    tokio::time::timeout(Duration::from_secs(5), async {
        while host.in_flight() == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    stop.send(()).unwrap();
    assert_eq!(in_flight.await.unwrap(), (200, "slept 800 ms\n".into()));
    task.await.unwrap().unwrap();
    assert!(host.apps().is_empty());
    let msg = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .unwrap()
        .unwrap();
    let event: Event = read_event_unverified(&msg.payload).unwrap();
    assert_eq!(
        event,
        Event::HostStopped {
            host_id: host.id().to_string()
        }
    );
}

#[tokio::test]
async fn lattices_sharing_one_nats_do_not_see_each_other() {
    let nats = NatsServer::start().unwrap();
    let client = nats.connect().await.unwrap();
    let mut stops = Vec::new();
    let mut ids = BTreeMap::new();
    for lattice in ["blue", "green"] {
        let config = lattice_host::HostConfig {
            lattice: lattice.to_string(),
            limits: quick_limits(),
            ..Default::default()
        };
        let host = lattice_host::Host::new(config, Some(client.clone())).unwrap();
        ids.insert(lattice, host.id().to_string());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(agent::run(host, nats.connect().await.unwrap(), async {
            let _ = stopped.await;
        }));
        stops.push(stop);
    }
    for lattice in ["blue", "green"] {
        // Gather every answer to this lattice's ping for a while: exactly its host.
        let inbox = client.new_inbox();
        let mut replies = client.subscribe(inbox.clone()).await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let mut seen = Vec::new();
        while seen.is_empty() && tokio::time::Instant::now() < deadline {
            client
                .publish_with_reply(
                    Subjects::new(lattice).hosts_ping(),
                    inbox.clone(),
                    "{\"v\":1}".into(),
                )
                .await
                .unwrap();
            while let Ok(Some(msg)) =
                tokio::time::timeout(Duration::from_millis(300), replies.next()).await
            {
                seen.push(decode::<HostInfo>(&msg.payload).unwrap());
            }
        }
        assert_eq!(seen.len(), 1, "{lattice}: {seen:?}");
        assert_eq!(seen[0].host_id, ids[lattice]);
        assert_eq!(seen[0].lattice, lattice);
    }
    for stop in stops {
        let _ = stop.send(());
    }
}

/// Attack: a deposed leader's late command reaches a host that restarted since it
/// obeyed the new leader. The host kept its fence in its state dir: the stale term
/// is refused after the restart, and so is a replay of the command it obeyed
/// before (whose nonce the restart forgot). With `state_dir: None` both would be
/// obeyed (fresh, unseen nonces, and a new verifier's highest term is 0).
#[tokio::test]
async fn a_restarted_host_keeps_its_lease_term_fence() {
    let nats = NatsServer::start().unwrap();
    let client = nats.connect().await.unwrap();
    let key = LatticeKey::new("default");
    let state = tempfile::tempdir().unwrap();
    let seed = lattice_protocol::trust::new_host_key().seed().unwrap();
    let start = || {
        let config = HostConfig {
            limits: quick_limits(),
            trust: vec![key.public_key()],
            key_seed: Some(seed.clone()),
            state_dir: Some(state.path().to_path_buf()),
            ..HostConfig::default()
        };
        Host::new(config, Some(client.clone())).unwrap()
    };
    let refused = |reply: CommandReply, why: &str| {
        let error = reply.error.expect("refused");
        assert!(error.contains(why), "expected '{why}' in: {error}");
    };
    let remove = HostCommand::Remove { app: "none".into() };

    let host = start();
    let id = host.id().to_string();
    let (stop, task) = start_agent(&host, &nats).await;
    // The new leader (term 8) commands it.
    let obeyed = key.sign(&id, 8, &remove);
    assert_eq!(
        command(&client, &id, obeyed.clone()).await,
        CommandReply::ok()
    );
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    drop(host);

    // Restarted: same identity, same state dir.
    let host = start();
    assert_eq!(host.id(), id);
    let (stop, task) = start_agent(&host, &nats).await;
    // The deposed leader (term 7), with a fresh time and a new nonce.
    refused(
        command(&client, &id, key.sign(&id, 7, &remove)).await,
        "term 7",
    );
    // The command obeyed before the restart, sent again.
    refused(command(&client, &id, obeyed).await, "old");
    // The leader's next command is obeyed.
    assert_eq!(
        command(&client, &id, key.sign(&id, 8, &remove)).await,
        CommandReply::ok()
    );
    assert_eq!(ping(&client).await.refused_commands, 2);
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    let saved =
        std::fs::read_to_string(state.path().join(format!("command-fence-{id}.json"))).unwrap();
    assert!(saved.contains("\"highest_term\":8"), "{saved}");
}

/// A host that cannot write its fence obeys nothing: after a crash it would have
/// forgotten the term it acted on.
#[tokio::test]
async fn a_host_that_cannot_keep_its_fence_obeys_no_command() {
    let nats = NatsServer::start().unwrap();
    let client = nats.connect().await.unwrap();
    let key = LatticeKey::new("default");
    let parent = tempfile::tempdir().unwrap();
    let state = parent.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let config = HostConfig {
        limits: quick_limits(),
        trust: vec![key.public_key()],
        state_dir: Some(state.clone()),
        ..HostConfig::default()
    };
    let host = Host::new(config, Some(client.clone())).unwrap();
    let id = host.id().to_string();
    let (stop, task) = start_agent(&host, &nats).await;
    // The state dir becomes a plain file: no fence can be written there.
    std::fs::remove_dir_all(&state).unwrap();
    std::fs::write(&state, b"not a folder").unwrap();
    let remove = HostCommand::Remove { app: "none".into() };
    let reply = command(&client, &id, key.sign(&id, 1, &remove)).await;
    let error = reply.error.expect("refused");
    assert!(error.contains("cannot keep its command fence"), "{error}");
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

/// After NATS restarts, the host answers pings again (async-nats subscribed again)
/// and re-announces itself at once, long before its next heartbeat is due.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_nats_restart_the_host_beats_at_once_and_answers_again() {
    let mut nats = NatsServer::start().unwrap();
    let key = LatticeKey::new("default");
    let client = nats.connect().await.unwrap();
    let config = HostConfig {
        limits: quick_limits(),
        trust: vec![key.public_key()],
        heartbeat_interval: Duration::from_secs(600),
        ..HostConfig::default()
    };
    let host = Host::new(config, Some(client.clone())).unwrap();
    let (stop, task) = start_agent(&host, &nats).await;

    // Down for a second: the host's reconnect attempts are then about a second
    // apart, so the observer below, connected as soon as the server is back, is
    // subscribed before the host returns.
    nats.stop();
    tokio::time::sleep(Duration::from_secs(1)).await;
    nats.restart().unwrap();
    // A fresh observer (subscribed after the restart): the next beat it sees is the
    // host's re-announcement, not the one from its start.
    let observer = nats.connect().await.unwrap();
    let mut beats = observer
        .subscribe(Subjects::new("default").event("host_heartbeat"))
        .await
        .unwrap();
    observer.flush().await.unwrap();
    let beat = tokio::time::timeout(Duration::from_secs(10), beats.next())
        .await
        .expect("a heartbeat soon after the restart (the next one is due in 10 minutes)")
        .unwrap();
    match read_event_unverified(&beat.payload).unwrap() {
        Event::HostHeartbeat(info) => assert_eq!(info.host_id, host.id()),
        other => panic!("expected a heartbeat, got {other:?}"),
    }
    let pong = tokio::time::timeout(
        Duration::from_secs(5),
        observer.request(Subjects::new("default").hosts_ping(), "{\"v\":1}".into()),
    )
    .await
    .unwrap()
    .unwrap();
    let info: HostInfo = decode(&pong.payload).unwrap();
    assert_eq!(info.host_id, host.id());
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}
