//! A real host agent on its own least-privilege NATS user (`Role::Host`, as
//! `lattice nats-auth host` mints it) on an operator-mode nats-server: it joins,
//! its signed heartbeats reach a controller's user, and it answers the CLI's
//! ping. (`nats_roles.rs` attacks the sets; this checks the host's own code runs
//! within its set.)

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test
#![cfg(feature = "host")]

use futures::StreamExt;
use lattice_host::{Host, HostConfig};
use lattice_protocol::creds::{self, Role};
use lattice_testing::nats::NatsServer;
use std::time::Duration;

async fn connect(server: &NatsServer, creds: &str) -> async_nats::Client {
    let mut options = async_nats::ConnectOptions::with_credentials(creds).expect("creds");
    if let Some(prefix) = creds::creds_jwt(creds).and_then(creds::inbox_prefix_of) {
        options = options.custom_inbox_prefix(prefix);
    }
    options.connect(server.url()).await.expect("connects")
}

#[tokio::test]
async fn a_host_runs_on_its_own_least_privilege_user() {
    let server = NatsServer::builder().operator_auth().start().unwrap();
    let auth = server.auth().unwrap().lattice();
    let key = nkeys::KeyPair::new_server();
    let host_creds = auth.role_creds(Role::Host(&key.public_key())).unwrap();
    let host_client = connect(&server, &host_creds).await;
    let controller = connect(&server, &auth.role_creds(Role::Controller).unwrap()).await;
    let cli = connect(&server, &auth.role_creds(Role::Cli).unwrap()).await;

    let mut beats = controller
        .subscribe("lattice.default.evt.host_heartbeat")
        .await
        .unwrap();
    let config = HostConfig {
        lattice: "default".into(),
        key_seed: Some(key.seed().unwrap()),
        heartbeat_interval: Duration::from_millis(200),
        ..HostConfig::default()
    };
    let host = Host::new(config, Some(host_client.clone())).unwrap();
    assert_eq!(host.id(), key.public_key());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let agent = tokio::spawn(lattice_host::agent::run(host, host_client, async {
        let _ = stopped.await;
    }));

    let beat = tokio::time::timeout(Duration::from_secs(5), beats.next())
        .await
        .expect("a heartbeat within 5 s")
        .unwrap();
    assert!(!beat.payload.is_empty());

    let inbox = cli.new_inbox();
    assert!(inbox.starts_with("_INBOX_default_cli."), "{inbox}");
    let mut answers = cli.subscribe(inbox.clone()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    cli.publish_with_reply("lattice.default.ctl.hosts.ping", inbox, r#"{"v":1}"#.into())
        .await
        .unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(5), answers.next())
        .await
        .expect("the host answers the CLI's ping")
        .unwrap();
    let info: lattice_protocol::messages::HostInfo =
        lattice_protocol::decode(&answer.payload).unwrap();
    assert_eq!(info.host_id, key.public_key());

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), agent)
        .await
        .expect("the agent stops")
        .unwrap()
        .unwrap();
}
