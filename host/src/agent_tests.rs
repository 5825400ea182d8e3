//! The agent on the in-memory bus: what it answers and announces, with no server.

use super::serve;
use crate::{Host, HostConfig};
use futures::StreamExt;
use lattice_bus::fake::FakeBus;
use lattice_bus::{Bus, SharedBus, Subscription};
use lattice_protocol::manifest::parse;
use lattice_protocol::messages::{CommandReply, Event, HostCommand, HostInfo, WorkloadSpec};
use lattice_protocol::subjects::Subjects;
use lattice_protocol::{decode, encode};
use lattice_testing::trust::{now_ms, LatticeKey};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);

struct Running {
    host: Host,
    key: LatticeKey,
    bus: SharedBus,
    subjects: Subjects,
    events: Subscription,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn start() -> Running {
    let key = LatticeKey::new("unit");
    let config = HostConfig {
        trust: vec![key.public_key()],
        lattice: "unit".into(),
        pooling: false,
        heartbeat_interval: Duration::from_secs(3600),
        drain_timeout: Duration::from_millis(100),
        ..HostConfig::default()
    };
    let host = Host::new(config, None).unwrap();
    let bus: SharedBus = Arc::new(FakeBus::new());
    let subjects = Subjects::new("unit");
    let mut events = bus.subscribe(subjects.events_all()).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve(host.clone(), bus.clone(), async {
        let _ = stopped.await;
    }));
    let first = next_event(&mut events).await;
    assert!(
        matches!(&first, Event::HostStarted { host_id, .. } if host_id == host.id()),
        "{first:?}"
    );
    Running {
        host,
        key,
        bus,
        subjects,
        events,
        stop,
        task,
    }
}

async fn next_event(events: &mut Subscription) -> Event {
    let msg = tokio::time::timeout(WAIT, events.next())
        .await
        .expect("an event in time")
        .expect("the subscription is open");
    lattice_protocol::trust::read_event_unverified(&msg.payload).unwrap()
}

/// `body` signed by the lattice key the host trusts, sent as a command.
async fn command(r: &Running, body: Vec<u8>) -> CommandReply {
    let subject = r.subjects.host_command(r.host.id());
    let signed = r.key.sign_at(r.host.id(), 1, now_ms(), &body);
    let reply = r
        .bus
        .request(subject, None, signed.into(), WAIT)
        .await
        .unwrap();
    decode(&reply.payload).unwrap()
}

#[tokio::test]
async fn answers_pings_with_what_it_is() {
    let r = start().await;
    let reply = r
        .bus
        .request(r.subjects.hosts_ping(), None, "".into(), WAIT)
        .await
        .unwrap();
    let info: HostInfo = decode(&reply.payload).unwrap();
    assert_eq!(info.host_id, r.host.id());
    assert_eq!(info.lattice, "unit");
}

#[tokio::test]
async fn an_unsigned_command_is_refused_and_counted() {
    let r = start().await;
    let subject = r.subjects.host_command(r.host.id());
    let payload = encode(&HostCommand::Remove { app: "x".into() });
    let reply = r
        .bus
        .request(subject, None, payload.into(), WAIT)
        .await
        .unwrap();
    let reply: CommandReply = decode(&reply.payload).unwrap();
    assert!(reply.error.unwrap().contains("not signed"));
    assert_eq!(r.host.refused_commands(), 1);
}

#[tokio::test]
async fn an_unreadable_command_is_answered_with_why() {
    let r = start().await;
    let reply = command(&r, b"{not json".to_vec()).await;
    assert!(!reply.ok);
    let error = reply.error.unwrap();
    assert!(error.contains("cannot read the command"), "{error}");
}

#[tokio::test]
async fn a_refused_apply_is_answered_and_announced() {
    let mut r = start().await;
    let manifest = parse(
        r#"
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: { name: shop, annotations: { version: v1 } }
spec:
  components:
    - name: web
      type: component
      properties: { image: "file:///nonexistent/web.wasm" }
      traits:
        - type: spreadscaler
          properties: { instances: 1 }
"#,
    )
    .unwrap();
    let workload = WorkloadSpec {
        manifest,
        placements: BTreeMap::from([("web".to_string(), 1)]),
        secrets: None,
    };
    let reply = command(&r, encode(&HostCommand::Apply { workload })).await;
    assert!(!reply.ok);
    assert!(reply.error.unwrap().contains("web"));
    loop {
        match next_event(&mut r.events).await {
            Event::HostHeartbeat(_) => continue,
            Event::WorkloadFailed { app, .. } => break assert_eq!(app, "shop"),
            other => panic!("expected workload_failed, got {other:?}"),
        }
    }
    assert!(r.host.apps().is_empty());
}

#[tokio::test]
async fn labels_change_at_run_time_but_not_the_hosts_own() {
    let r = start().await;
    let set = BTreeMap::from([("zone".to_string(), "a".to_string())]);
    let reply = command(&r, encode(&HostCommand::SetLabels { set, unset: vec![] })).await;
    assert!(reply.ok, "{reply:?}");
    assert_eq!(r.host.labels().get("zone").map(String::as_str), Some("a"));
    let set = BTreeMap::from([("hostcore.os".to_string(), "plan9".to_string())]);
    let reply = command(&r, encode(&HostCommand::SetLabels { set, unset: vec![] })).await;
    assert!(!reply.ok);
}

#[tokio::test]
async fn leaves_with_a_last_heartbeat_and_a_goodbye() {
    let mut r = start().await;
    r.stop.send(()).unwrap();
    let mut seen = Vec::new();
    loop {
        let event = next_event(&mut r.events).await;
        let done = matches!(event, Event::HostStopped { .. });
        seen.push(event);
        if done {
            break;
        }
    }
    let draining = seen
        .iter()
        .any(|e| matches!(e, Event::HostHeartbeat(info) if info.draining));
    assert!(draining, "a draining heartbeat before leaving: {seen:?}");
    r.task.await.unwrap().unwrap();
}
