//! The host's NATS side against a real nats-server: commands, labels, bad input,
//! and draining on shutdown.

mod support;

use futures::StreamExt;
use lattice_host::agent;
use lattice_protocol::messages::{CommandReply, Event, HostCommand, HostInfo};
use lattice_protocol::subjects::Subjects;
use lattice_protocol::{decode, encode};
use lattice_testing::host::{get, host, quick_limits};
use lattice_testing::manifest::spec;
use lattice_testing::nats::{free_port, NatsServer};
use std::collections::BTreeMap;
use std::time::Duration;
use support::{http_app, serve};

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
    match decode::<Event>(&msg.payload).unwrap() {
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
async fn commands_labels_and_bad_input() {
    let nats = NatsServer::start().unwrap();
    let client = nats.connect().await.unwrap();
    let host = host(quick_limits(), Some(client.clone()));
    let id = host.id().to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(agent::run(
        host.clone(),
        nats.connect().await.unwrap(),
        async {
            let _ = stopped.await;
        },
    ));
    // The host answers pings once subscribed.
    let info = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Ok(Ok(r)) = tokio::time::timeout(
                Duration::from_millis(200),
                client.request(Subjects::new("default").hosts_ping(), "{\"v\":1}".into()),
            )
            .await
            {
                break decode::<HostInfo>(&r.payload).unwrap();
            }
        }
    })
    .await
    .unwrap();
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
        command(&client, &id, encode(&apply)).await,
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
        command(&client, &id, encode(&set)).await,
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
    let reply = command(&client, &id, encode(&bad)).await;
    assert!(reply.error.unwrap().contains("hostcore.os"));

    // Garbage and other protocol versions are answered, not ignored.
    let reply = command(&client, &id, b"not json".to_vec()).await;
    assert!(reply.error.unwrap().contains("cannot read the command"));
    let reply = command(
        &client,
        &id,
        br#"{"v":9,"command":"remove","app":"web"}"#.to_vec(),
    )
    .await;
    assert!(reply.error.unwrap().contains("protocol version 9"));

    let remove = HostCommand::Remove { app: "web".into() };
    assert_eq!(
        command(&client, &id, encode(&remove)).await,
        CommandReply::ok()
    );
    assert!(reqwest::get(format!("http://127.0.0.1:{port}/"))
        .await
        .is_err());

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
    let event: Event = decode(&msg.payload).unwrap();
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
