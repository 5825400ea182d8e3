//! App lifecycle against a real nats-server with simulated hosts: deploy, undeploy,
//! delete, rollback, several apps, refused versions and API errors.

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

mod support;

use futures::StreamExt;
use lattice_controller::ApiError;
use lattice_protocol::messages::{ApiReply, AppState, Event};
use lattice_protocol::subjects::Subjects;
use lattice_protocol::{decode, encode};
use lattice_testing::nats::NatsServer;
use support::*;

#[tokio::test]
async fn deploy_reaches_the_host_and_becomes_deployed() {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let host = FakeHost::start(&url, &[]).await;
    let _controller = RunningController::start(&url).await;
    let api = api(&url).await;
    let events = nats.connect().await.unwrap();
    let mut deployed_events = events
        .subscribe(Subjects::new(LATTICE).event("app_deployed"))
        .await
        .unwrap();
    events.flush().await.unwrap();

    let status = api
        .deploy(manifest("shop", "1.0", &[("api", 2)]))
        .await
        .unwrap();
    assert_eq!(status.deployed_version.as_deref(), Some("1.0"));
    assert_ne!(status.state, AppState::Failed, "{}", status.message);

    let status = status_until(&api, "shop", "deployed", |s| s.state == AppState::Deployed).await;
    assert!(
        status.message.contains("runs as desired"),
        "{}",
        status.message
    );
    assert_eq!(status.components[0].running.get(&host.id), Some(&2));
    let w = host.workload("shop").unwrap();
    assert_eq!(w.version, "1.0");
    assert_eq!(w.components[0].instances, 2);

    let msg = tokio::time::timeout(DEADLINE, deployed_events.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        decode::<Event>(&msg.payload).unwrap(),
        Event::AppDeployed {
            app: "shop".into(),
            version: "1.0".into()
        }
    );

    // The loop is idempotent: once deployed, the host gets no more commands.
    let sent = host.commands().len();
    tokio::time::sleep(BEAT * 4).await;
    assert_eq!(host.commands().len(), sent, "{:?}", host.commands());
}

#[tokio::test]
async fn undeploy_removes_and_delete_forgets() {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let host = FakeHost::start(&url, &[]).await;
    let _controller = RunningController::start(&url).await;
    let api = api(&url).await;

    api.deploy(manifest("shop", "1", &[("api", 1)]))
        .await
        .unwrap();
    host_runs(&host, "shop", Some("1")).await;

    let status = api.undeploy("shop").await.unwrap();
    assert_eq!(status.state, AppState::Undeployed);
    host_runs(&host, "shop", None).await;
    let status = status_until(&api, "shop", "fully undeployed", |s| {
        s.message.contains("stored but not deployed")
    })
    .await;
    assert_eq!(status.deployed_version, None);
    assert_eq!(status.latest_version, "1");

    // Deploy the stored version again by name, then delete the app.
    api.deploy_version("shop", None).await.unwrap();
    host_runs(&host, "shop", Some("1")).await;
    let deleted = api.delete("shop").await.unwrap();
    assert_eq!(deleted.len(), 1);
    host_runs(&host, "shop", None).await;
    let err = api.status("shop").await.unwrap_err();
    assert!(err.to_string().contains("app 'shop' not found"), "{err}");
    assert!(api.list().await.unwrap().is_empty());
    assert!(api.delete("shop").await.is_err());
}

#[tokio::test]
async fn rollback_to_an_older_version() {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let host = FakeHost::start(&url, &[]).await;
    let _controller = RunningController::start(&url).await;
    let api = api(&url).await;

    api.deploy(manifest("shop", "1", &[("api", 1)]))
        .await
        .unwrap();
    host_runs(&host, "shop", Some("1")).await;
    api.deploy(manifest("shop", "2", &[("api", 3)]))
        .await
        .unwrap();
    host_runs(&host, "shop", Some("2")).await;
    assert_eq!(host.workload("shop").unwrap().components[0].instances, 3);

    let status = api.deploy_version("shop", Some("1")).await.unwrap();
    assert_eq!(status.deployed_version.as_deref(), Some("1"));
    assert_eq!(status.latest_version, "2");
    host_runs(&host, "shop", Some("1")).await;
    status_until(&api, "shop", "v1 deployed", |s| {
        s.state == AppState::Deployed
    })
    .await;

    let history = api.history("shop").await.unwrap();
    let summary: Vec<(&str, bool)> = history
        .iter()
        .map(|v| (v.version.as_str(), v.deployed))
        .collect();
    assert_eq!(summary, [("1", true), ("2", false)]);
    let err = api.deploy_version("shop", Some("9")).await.unwrap_err();
    assert!(err.to_string().contains("no version 9"), "{err}");
}

/// `put` stores a version and leaves the deployed one running; `get` answers any
/// stored version's manifest, and names what is missing.
#[tokio::test]
async fn put_stores_without_deploying_and_get_reads_a_version_back() {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let host = FakeHost::start(&url, &[]).await;
    let _controller = RunningController::start(&url).await;
    let api = api(&url).await;

    let v1 = manifest("shop", "1", &[("api", 1)]);
    let v2 = manifest("shop", "2", &[("api", 3)]);
    api.deploy(v1.clone()).await.unwrap();
    host_runs(&host, "shop", Some("1")).await;
    let status = api.put(v2.clone()).await.unwrap();
    assert_eq!(status.deployed_version.as_deref(), Some("1"));
    assert_eq!(status.latest_version, "2");
    let history = api.history("shop").await.unwrap();
    let summary: Vec<(&str, bool)> = history
        .iter()
        .map(|v| (v.version.as_str(), v.deployed))
        .collect();
    assert_eq!(summary, [("1", true), ("2", false)]);

    let newest = api.get("shop", None).await.unwrap();
    assert_eq!(
        (newest.info.version.as_str(), newest.info.deployed),
        ("2", false)
    );
    assert_eq!(newest.manifest, v2);
    let first = api.get("shop", Some("1")).await.unwrap();
    assert!(first.info.deployed);
    assert_eq!(first.manifest, v1);

    // Still version 1 on the host after the put; deploying 2 by name works.
    assert_eq!(host.workload("shop").unwrap().version, "1");
    api.deploy_version("shop", Some("2")).await.unwrap();
    host_runs(&host, "shop", Some("2")).await;

    let err = api.get("shop", Some("9")).await.unwrap_err();
    assert!(err.to_string().contains("no version 9"), "{err}");
    let err = api.get("nope", None).await.unwrap_err();
    assert!(err.to_string().contains("app 'nope' not found"), "{err}");
    // A put is checked like a deploy.
    let err = api
        .put(manifest("shop", "3", &[("api", u32::MAX)]))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("the manifest is not valid"),
        "{err}"
    );
}

/// A new version rolls out host by host; a host that cannot apply it halts the
/// rollout with the hosts after it still on the old version, and the rollout
/// goes on once that host can.
#[tokio::test]
async fn a_rollout_goes_host_by_host_and_halts_on_a_failing_host() {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let mut hosts = Vec::new();
    for _ in 0..3 {
        hosts.push(FakeHost::start(&url, &[]).await);
    }
    hosts.sort_by(|a, b| a.id.cmp(&b.id));
    let _controller = RunningController::start(&url).await;
    let api = api(&url).await;

    api.deploy(manifest("shop", "1", &[("api", 3)]))
        .await
        .unwrap();
    for h in &hosts {
        host_runs(h, "shop", Some("1")).await;
    }
    // The second host (in id order, the rollout's order) cannot run version 2.
    hosts[1].fail_with(Some("api: trap at start"));
    api.deploy(manifest("shop", "2", &[("api", 3)]))
        .await
        .unwrap();
    let status = status_until(&api, "shop", "the rollout to halt", |s| {
        s.message.contains("halted")
    })
    .await;
    assert_eq!(status.state, AppState::Failed, "{}", status.message);
    assert!(
        status.message.contains("api: trap at start"),
        "{}",
        status.message
    );
    assert_eq!(hosts[0].workload("shop").unwrap().version, "2");
    // Halted: the third host was never told, some time later.
    tokio::time::sleep(BEAT * 5).await;
    assert_eq!(hosts[1].workload("shop").unwrap().version, "1");
    assert_eq!(hosts[2].workload("shop").unwrap().version, "1");
    assert!(
        hosts[2].commands().iter().all(|c| match c {
            lattice_protocol::messages::HostCommand::Apply { workload } => {
                workload.manifest.version == "1"
            }
            _ => true,
        }),
        "the third host was told to switch"
    );

    // The host recovers: the rollout finishes.
    hosts[1].fail_with(None);
    for h in &hosts {
        host_runs(h, "shop", Some("2")).await;
    }
    status_until(&api, "shop", "v2 deployed", |s| {
        s.state == AppState::Deployed
    })
    .await;
}

#[tokio::test]
async fn two_apps_on_two_hosts() {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let a = FakeHost::start(&url, &[]).await;
    let b = FakeHost::start(&url, &[]).await;
    let _controller = RunningController::start(&url).await;
    let api = api(&url).await;

    api.deploy(manifest("one", "1", &[("x", 1)])).await.unwrap();
    api.deploy(manifest("two", "1", &[("y", 4)])).await.unwrap();
    for app in ["one", "two"] {
        status_until(&api, app, "deployed", |s| s.state == AppState::Deployed).await;
    }
    let list = api.list().await.unwrap();
    let names: Vec<&str> = list.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["one", "two"]);
    // "two" spreads evenly over both hosts.
    let two = &list[1];
    assert_eq!(two.components[0].running.get(&a.id), Some(&2));
    assert_eq!(two.components[0].running.get(&b.id), Some(&2));
    assert!(a.workload("two").is_some() && b.workload("two").is_some());
}

#[tokio::test]
async fn same_version_with_different_content_is_refused() {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let _host = FakeHost::start(&url, &[]).await;
    let _controller = RunningController::start(&url).await;
    let api = api(&url).await;

    api.deploy(manifest("shop", "1", &[("api", 1)]))
        .await
        .unwrap();
    // Identical content: idempotent.
    api.deploy(manifest("shop", "1", &[("api", 1)]))
        .await
        .unwrap();
    let err = api
        .deploy(manifest("shop", "1", &[("api", 5)]))
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::Controller(_)));
    assert!(
        err.to_string()
            .contains("already has a version 1 with different content"),
        "{err}"
    );
    assert_eq!(api.history("shop").await.unwrap().len(), 1);
}

#[tokio::test]
async fn bad_requests_get_errors_not_silence() {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let _controller = RunningController::start(&url).await;
    let client = nats.connect().await.unwrap();
    let subjects = Subjects::new(LATTICE);

    let ask = |op: &'static str, body: Vec<u8>| {
        let client = client.clone();
        let subject = subjects.api(op);
        async move {
            let msg = tokio::time::timeout(DEADLINE, client.request(subject, body.into()))
                .await
                .unwrap()
                .unwrap();
            decode::<ApiReply<serde_json::Value>>(&msg.payload)
                .unwrap()
                .into_result()
                .unwrap_err()
        }
    };
    let err = ask("explode", encode(&serde_json::json!({}))).await;
    assert!(err.contains("unknown API operation 'explode'"), "{err}");
    let err = ask("status", br#"{"v":2,"name":"x"}"#.to_vec()).await;
    assert!(err.contains("protocol version 2"), "{err}");
    let err = ask("deploy", b"not json".to_vec()).await;
    assert!(err.contains("cannot read the deploy request"), "{err}");
    let err = ask("deploy", encode(&serde_json::json!({}))).await;
    assert!(err.contains("needs a manifest"), "{err}");
    let err = ask("status", encode(&serde_json::json!({"name": "a.b"}))).await;
    assert!(
        err.contains("not found") || err.contains("not valid"),
        "{err}"
    );
    let err = ask("undeploy", encode(&serde_json::json!({"name": "a*b"}))).await;
    assert!(err.contains("not valid"), "{err}");
}

#[tokio::test]
async fn no_controller_is_a_clear_error() {
    let nats = NatsServer::start().unwrap();
    let api = lattice_controller::ApiClient::new(nats.connect().await.unwrap(), "nobody")
        .with_timeout(std::time::Duration::from_millis(500));
    let err = api.list().await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("no controller answered on lattice 'nobody' within 0.5s"),
        "{err}"
    );
}

/// A manifest without a version annotation is accepted, as wadm accepts it: the
/// controller gives it a ULID when it stores it, which `history`, the status and the
/// host's workload all show; the same manifest again keeps that version, a changed
/// one gets a later one.
#[tokio::test]
async fn a_manifest_without_a_version_is_given_one() {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let host = FakeHost::start(&url, &[]).await;
    let _controller = RunningController::start(&url).await;
    let api = api(&url).await;

    let status = api
        .deploy(manifest("shop", "", &[("api", 1)]))
        .await
        .unwrap();
    let first = status.deployed_version.clone().unwrap();
    assert_eq!(first.len(), 26, "a ULID: {first}");
    assert!(first.chars().all(|c| c.is_ascii_alphanumeric()), "{first}");
    assert_eq!(status.latest_version, first);
    host_runs(&host, "shop", Some(&first)).await;
    assert_eq!(host.workload("shop").unwrap().version, first);

    // Deployed again as it is: the same version.
    let again = api
        .deploy(manifest("shop", "", &[("api", 1)]))
        .await
        .unwrap();
    assert_eq!(again.deployed_version.as_deref(), Some(first.as_str()));
    // Changed: a new version, after the first.
    let changed = api
        .deploy(manifest("shop", "", &[("api", 2)]))
        .await
        .unwrap();
    let second = changed.deployed_version.unwrap();
    assert!(second > first, "{second} sorts after {first}");
    host_runs(&host, "shop", Some(&second)).await;

    let history = api.history("shop").await.unwrap();
    let summary: Vec<(&str, bool)> = history
        .iter()
        .map(|v| (v.version.as_str(), v.deployed))
        .collect();
    assert_eq!(summary, [(first.as_str(), false), (second.as_str(), true)]);
}
