//! Each role's NATS user (`lattice_protocol::creds::roles`, minted as `lattice
//! nats-auth init` mints them) against a real nats-server in operator mode: it can
//! do its job and nothing more. A host cannot command another host nor write the
//! controller's state bucket; the CLI cannot pose as a host; built-in messaging
//! cannot reach the lattice's or JetStream's subjects; a user signed with the
//! scoped provider key gets provider permissions whatever it asks for.

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

use async_nats::jetstream;
use futures::StreamExt;
use lattice_protocol::creds::{self, LatticeAuth, Role};
use lattice_testing::nats::NatsServer;
use std::time::Duration;

const HOST_A: &str = "NHOSTAAAA";
const HOST_B: &str = "NHOSTBBBB";
const STATE: &str = "lattice_default_state";
/// Long enough for the server to have handled a SUB or PUB sent before it.
const SETTLE: Duration = Duration::from_millis(250);

async fn connect(server: &NatsServer, creds: &str) -> Result<async_nats::Client, String> {
    let mut options = async_nats::ConnectOptions::with_credentials(creds)
        .map_err(|e| e.to_string())?
        .connection_timeout(Duration::from_secs(3))
        .max_reconnects(Some(1));
    if let Some(prefix) = creds::creds_jwt(creds).and_then(creds::inbox_prefix_of) {
        options = options.custom_inbox_prefix(prefix);
    }
    options
        .connect(server.url())
        .await
        .map_err(|e| e.to_string())
}

async fn role(server: &NatsServer, role: Role<'_>) -> async_nats::Client {
    let creds = lattice(server)
        .role_creds(role)
        .expect("minting a role's user");
    connect(server, &creds)
        .await
        .expect("a role's user connects")
}

fn lattice(server: &NatsServer) -> &LatticeAuth {
    server.auth().expect("an operator-mode server").lattice()
}

/// A JetStream context that gives up quickly (a denied API request is dropped by
/// the server and only times out).
fn js(client: &async_nats::Client) -> jetstream::Context {
    jetstream::ContextBuilder::new()
        .timeout(Duration::from_secs(2))
        .build(client.clone())
}

async fn nothing_arrives(sub: &mut async_nats::Subscriber, what: &str) {
    let got = tokio::time::timeout(Duration::from_millis(400), sub.next()).await;
    if let Ok(Some(msg)) = got {
        panic!("{what}: a message arrived on {}", msg.subject);
    }
}

async fn arrives(sub: &mut async_nats::Subscriber, what: &str) -> async_nats::Message {
    tokio::time::timeout(Duration::from_secs(3), sub.next())
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing arrived"))
        .unwrap_or_else(|| panic!("{what}: the subscription ended"))
}

/// Answer every request on `sub` with `answer`.
fn answer(client: &async_nats::Client, mut sub: async_nats::Subscriber, answer: &'static str) {
    let client = client.clone();
    tokio::spawn(async move {
        while let Some(msg) = sub.next().await {
            if let Some(reply) = msg.reply {
                let _ = client.publish(reply, answer.into()).await;
            }
        }
    });
}

/// The controller's state bucket, made by the controller's own user.
async fn state_bucket(controller: &async_nats::Client) -> jetstream::kv::Store {
    let kv = js(controller)
        .create_key_value(jetstream::kv::Config {
            bucket: STATE.into(),
            ..Default::default()
        })
        .await
        .expect("the controller creates its state bucket");
    kv.put("app.shop", "v1".into())
        .await
        .expect("the controller writes its state");
    kv
}

#[tokio::test]
async fn a_host_does_its_job_but_cannot_command_another_host_or_write_the_state_bucket() {
    let server = NatsServer::builder().operator_auth().start().unwrap();
    let everything = server.connect().await.unwrap();
    let controller = role(&server, Role::Controller).await;
    let host = role(&server, Role::Host(HOST_A)).await;
    let cli = role(&server, Role::Cli).await;
    let state = state_bucket(&controller).await;

    // Its own commands: the controller asks, the host answers.
    let commands = host
        .subscribe(format!("lattice.default.ctl.host.{HOST_A}"))
        .await
        .unwrap();
    answer(&host, commands, "ok");
    let pings = host
        .subscribe("lattice.default.ctl.hosts.ping")
        .await
        .unwrap();
    answer(&host, pings, "info");
    tokio::time::sleep(SETTLE).await;
    let reply = controller
        .request(format!("lattice.default.ctl.host.{HOST_A}"), "apply".into())
        .await
        .expect("the host answers its controller");
    assert_eq!(&reply.payload[..], b"ok");
    let reply = cli
        .request("lattice.default.ctl.hosts.ping", "".into())
        .await
        .expect("the host answers the CLI's ping");
    assert_eq!(&reply.payload[..], b"info");

    // Its heartbeats reach the controller.
    let mut beats = controller
        .subscribe("lattice.default.evt.host_heartbeat")
        .await
        .unwrap();
    tokio::time::sleep(SETTLE).await;
    host.publish("lattice.default.evt.host_heartbeat", "beat".into())
        .await
        .unwrap();
    arrives(&mut beats, "a heartbeat").await;

    // Apps' key-value buckets and object stores.
    let app_js = js(&host);
    let kv = app_js
        .create_key_value(jetstream::kv::Config {
            bucket: "lattice_default_kv_shop_default".into(),
            ..Default::default()
        })
        .await
        .expect("a host creates an app's bucket");
    kv.put("count", "1".into()).await.unwrap();
    assert_eq!(kv.get("count").await.unwrap().as_deref(), Some(&b"1"[..]));
    let mut watch = kv.watch("count").await.unwrap();
    kv.put("count", "2".into()).await.unwrap();
    tokio::time::timeout(Duration::from_secs(3), watch.next())
        .await
        .expect("a watch on an app's bucket")
        .unwrap()
        .unwrap();
    let store = app_js
        .create_object_store(jetstream::object_store::Config {
            bucket: "lattice_default_blob_shop_photos".into(),
            ..Default::default()
        })
        .await
        .expect("a host creates an app's object store");
    store.put("a.jpg", &mut &b"jpeg"[..]).await.unwrap();
    let mut object = store.get("a.jpg").await.unwrap();
    let mut bytes = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut object, &mut bytes)
        .await
        .unwrap();
    assert_eq!(bytes, b"jpeg");
    app_js
        .delete_object_store("lattice_default_blob_shop_photos")
        .await
        .expect("a host deletes an app's container");

    // It cannot receive another host's commands...
    let mut stolen = host
        .subscribe(format!("lattice.default.ctl.host.{HOST_B}"))
        .await
        .unwrap();
    // ...nor send one: the real host B sees nothing.
    let mut host_b = everything
        .subscribe(format!("lattice.default.ctl.host.{HOST_B}"))
        .await
        .unwrap();
    tokio::time::sleep(SETTLE).await;
    host.publish(
        format!("lattice.default.ctl.host.{HOST_B}"),
        "forged".into(),
    )
    .await
    .unwrap();
    host.flush().await.unwrap();
    nothing_arrives(&mut host_b, "a host commanding another host").await;
    controller
        .publish(format!("lattice.default.ctl.host.{HOST_B}"), "real".into())
        .await
        .unwrap();
    arrives(&mut host_b, "the controller's command to host B").await;
    nothing_arrives(&mut stolen, "a host reading another host's commands").await;

    // Its components' calls go out in its own name and reach a component on
    // host B; a call in host B's name (either call subject) reaches nobody, nor
    // does one on the subjects that named no caller.
    let host_b = role(&server, Role::Host(HOST_B)).await;
    let served = host_b
        .queue_subscribe("lattice.default.rpch.*.shop.web.>", "rpc".into())
        .await
        .unwrap();
    answer(&host_b, served, "page");
    let mut calls = everything.subscribe("lattice.default.>").await.unwrap();
    tokio::time::sleep(SETTLE).await;
    let reply = host
        .request(
            format!("lattice.default.rpch.{HOST_A}.shop.web.a.b.c.f"),
            "call".into(),
        )
        .await
        .expect("host B serves host A's call");
    assert_eq!(&reply.payload[..], b"page");
    arrives(&mut calls, "host A's own call").await;
    for forged in [
        format!("lattice.default.rpch.{HOST_B}.shop.web.a.b.c.f"),
        format!("lattice.default.rpchl.{HOST_B}.zone.a.shop.web.a.b.c.f"),
        "lattice.default.rpc.shop.web.a.b.c.f".to_owned(),
        "lattice.default.rpcl.zone.a.shop.web.a.b.c.f".to_owned(),
    ] {
        host.publish(forged, "forged".into()).await.unwrap();
    }
    host.flush().await.unwrap();
    nothing_arrives(&mut calls, "a host calling in another host's name").await;

    // It cannot write, purge or delete the controller's state bucket.
    host.publish(format!("$KV.{STATE}.app.shop"), "forged".into())
        .await
        .unwrap();
    host.publish(format!("$KV.{STATE}.app.evil"), "forged".into())
        .await
        .unwrap();
    host.flush().await.unwrap();
    let host_js = js(&host);
    assert!(
        host_js.get_key_value(STATE).await.is_err(),
        "host opened the state bucket"
    );
    assert!(host_js.delete_stream(format!("KV_{STATE}")).await.is_err());
    let purge = host
        .request(format!("$JS.API.STREAM.PURGE.KV_{STATE}"), "".into())
        .await;
    assert!(purge.is_err(), "a host purged the state bucket");
    tokio::time::sleep(SETTLE).await;
    assert_eq!(
        state.get("app.shop").await.unwrap().as_deref(),
        Some(&b"v1"[..])
    );
    assert_eq!(state.get("app.evil").await.unwrap(), None);

    // Nor read the CLI's or the controller's replies.
    let mut cli_inbox = host.subscribe("_INBOX_default_cli.>").await.unwrap();
    let mut controller_inbox = host.subscribe("_INBOX_default_controller.>").await.unwrap();
    let mut any_inbox = host.subscribe("_INBOX.>").await.unwrap();
    tokio::time::sleep(SETTLE).await;
    cli.request("lattice.default.ctl.hosts.ping", "".into())
        .await
        .unwrap();
    controller
        .request(format!("lattice.default.ctl.host.{HOST_A}"), "apply".into())
        .await
        .unwrap();
    nothing_arrives(&mut cli_inbox, "a host reading the CLI's inbox").await;
    nothing_arrives(
        &mut controller_inbox,
        "a host reading the controller's inbox",
    )
    .await;
    nothing_arrives(&mut any_inbox, "a host reading _INBOX.>").await;
}

#[tokio::test]
async fn the_cli_drives_the_api_but_cannot_pose_as_a_host() {
    let server = NatsServer::builder().operator_auth().start().unwrap();
    let everything = server.connect().await.unwrap();
    let controller = role(&server, Role::Controller).await;
    let host = role(&server, Role::Host(HOST_A)).await;
    let cli = role(&server, Role::Cli).await;

    // The API, through the controller's queue group.
    let api = controller
        .queue_subscribe("lattice.default.api.>", "controller".into())
        .await
        .unwrap();
    answer(&controller, api, "apps");
    tokio::time::sleep(SETTLE).await;
    let reply = cli
        .request("lattice.default.api.list", "{}".into())
        .await
        .expect("the CLI lists apps");
    assert_eq!(&reply.payload[..], b"apps");

    // A forged heartbeat reaches no controller.
    let mut beats = controller.subscribe("lattice.default.evt.>").await.unwrap();
    // A command straight to a host reaches no host.
    let mut commands = host
        .subscribe(format!("lattice.default.ctl.host.{HOST_A}"))
        .await
        .unwrap();
    // And the CLI reads no events nor host traffic.
    let mut events = cli.subscribe("lattice.default.evt.>").await.unwrap();
    let mut calls = cli.subscribe("lattice.default.rpch.>").await.unwrap();
    tokio::time::sleep(SETTLE).await;
    cli.publish("lattice.default.evt.host_heartbeat", "forged".into())
        .await
        .unwrap();
    cli.publish(
        format!("lattice.default.ctl.host.{HOST_A}"),
        "forged".into(),
    )
    .await
    .unwrap();
    cli.publish(format!("$KV.{STATE}.app.shop"), "forged".into())
        .await
        .unwrap();
    cli.flush().await.unwrap();
    nothing_arrives(&mut beats, "the CLI posing as a host").await;
    nothing_arrives(&mut commands, "the CLI commanding a host").await;
    host.publish("lattice.default.evt.host_heartbeat", "beat".into())
        .await
        .unwrap();
    everything
        .publish(
            format!("lattice.default.rpch.{HOST_A}.shop.web.a.b.c.f"),
            "call".into(),
        )
        .await
        .unwrap();
    arrives(&mut beats, "the real host's heartbeat").await;
    nothing_arrives(&mut events, "the CLI reading events").await;
    nothing_arrives(&mut calls, "the CLI reading calls").await;
}

/// `lattice call` travels on `rpcc` subjects, which only the CLI may publish: a
/// host (or a guest through built-in messaging, or a provider) cannot call a
/// component as the CLI, which needs no link.
#[tokio::test]
async fn only_the_cli_calls_on_the_clis_subjects() {
    let server = NatsServer::builder().operator_auth().start().unwrap();
    let host = role(&server, Role::Host(HOST_A)).await;
    let other_host = role(&server, Role::Host(HOST_B)).await;
    let messaging = role(&server, Role::Messaging).await;
    let cli = role(&server, Role::Cli).await;
    let subject = "lattice.default.rpcc.shop.business.example.shop.orders.catalogue";
    let serving = host
        .queue_subscribe("lattice.default.rpcc.shop.business.>", "rpc".into())
        .await
        .unwrap();
    let mut seen = other_host
        .subscribe("lattice.default.rpcc.shop.business.>")
        .await
        .unwrap();
    answer(&host, serving, "served");
    tokio::time::sleep(SETTLE).await;
    let reply = cli
        .request(subject, "call".into())
        .await
        .expect("the CLI's call is served");
    assert_eq!(&reply.payload[..], b"served");
    arrives(&mut seen, "the CLI's call").await;
    for (who, client) in [
        ("another host", &other_host),
        ("built-in messaging", &messaging),
    ] {
        client.publish(subject, "forged".into()).await.unwrap();
        client.flush().await.unwrap();
        nothing_arrives(&mut seen, &format!("{who} calling as the CLI")).await;
    }
}

/// The CLI uploads into the lattice's artifact store and a host reads it back;
/// the CLI reaches no other bucket (an app's blobstore, the state bucket).
#[tokio::test]
async fn the_cli_uploads_artifacts_and_reaches_no_other_bucket() {
    use jetstream::object_store;
    let server = NatsServer::builder().operator_auth().start().unwrap();
    let cli = role(&server, Role::Cli).await;
    let host = role(&server, Role::Host(HOST_A)).await;
    let config = |bucket: &str| object_store::Config {
        bucket: bucket.to_string(),
        ..Default::default()
    };
    let store = js(&cli)
        .create_object_store(config("lattice_default_artifacts"))
        .await
        .expect("the CLI creates the artifact store");
    store
        .put("abc", &mut b"component bytes".as_slice())
        .await
        .expect("the CLI uploads");
    let read = js(&host)
        .get_object_store("lattice_default_artifacts")
        .await
        .unwrap();
    let mut bytes = Vec::new();
    use tokio::io::AsyncReadExt;
    read.get("abc")
        .await
        .unwrap()
        .read_to_end(&mut bytes)
        .await
        .unwrap();
    assert_eq!(bytes, b"component bytes");

    assert!(
        js(&cli)
            .create_object_store(config("lattice_default_blob_shop_c"))
            .await
            .is_err(),
        "the CLI made an app's blobstore bucket"
    );
    let controller = role(&server, Role::Controller).await;
    state_bucket(&controller).await;
    assert!(
        js(&cli).get_key_value(STATE).await.is_err(),
        "the CLI opened the state bucket"
    );
}

#[tokio::test]
async fn built_in_messaging_reaches_guests_subjects_only() {
    let server = NatsServer::builder().operator_auth().start().unwrap();
    let everything = server.connect().await.unwrap();
    let controller = role(&server, Role::Controller).await;
    let state = state_bucket(&controller).await;
    let messaging = role(&server, Role::Messaging).await;
    let other_host_messaging = role(&server, Role::Messaging).await;

    // Guests' own subjects, requests included.
    let orders = other_host_messaging.subscribe("orders.>").await.unwrap();
    answer(&other_host_messaging, orders, "accepted");
    tokio::time::sleep(SETTLE).await;
    let reply = messaging
        .request("orders.new", "order".into())
        .await
        .expect("a guest's request over built-in messaging");
    assert_eq!(&reply.payload[..], b"accepted");

    // Nothing of the lattice, JetStream, or anyone's inbox.
    let mut watchers = Vec::new();
    for subject in [
        "lattice.>",
        "$JS.>",
        "$KV.>",
        "$SYS.>",
        "_INBOX.>",
        "_INBOX_default.>",
        "_INBOX_default_cli.>",
        ">",
    ] {
        watchers.push((subject, messaging.subscribe(subject).await.unwrap()));
    }
    let mut host_side = everything.subscribe("lattice.default.>").await.unwrap();
    tokio::time::sleep(SETTLE).await;
    for subject in [
        "lattice.default.ctl.host.NHOSTAAAA",
        "lattice.default.evt.host_heartbeat",
        "lattice.default.api.deploy",
    ] {
        messaging.publish(subject, "forged".into()).await.unwrap();
    }
    messaging
        .publish(format!("$KV.{STATE}.app.shop"), "forged".into())
        .await
        .unwrap();
    messaging.flush().await.unwrap();
    nothing_arrives(&mut host_side, "messaging publishing on lattice.>").await;
    assert!(js(&messaging)
        .delete_stream(format!("KV_{STATE}"))
        .await
        .is_err());
    assert_eq!(
        state.get("app.shop").await.unwrap().as_deref(),
        Some(&b"v1"[..])
    );

    for subject in [
        "lattice.default.evt.host_heartbeat",
        "$KV.lattice_default_kv_shop_default.k",
        "$SYS.REQ.SERVER.PING",
        "_INBOX.abc.1",
        "_INBOX_default.host.NHOSTAAAA.x",
        "_INBOX_default_cli.x.y",
    ] {
        everything.publish(subject, "secret".into()).await.unwrap();
    }
    everything.flush().await.unwrap();
    for (subject, mut sub) in watchers {
        // `>` still gets guests' subjects; only the reserved ones are cut.
        if subject == ">" {
            continue;
        }
        nothing_arrives(&mut sub, &format!("messaging subscribed to {subject}")).await;
    }
}

fn scoped_user(
    server: &NatsServer,
    jwt: impl FnOnce(&str, &str, &nkeys::KeyPair) -> String,
) -> String {
    let auth = lattice(server);
    let user = nkeys::KeyPair::new_user();
    let jwt = jwt(&user.public_key(), &auth.account(), auth.provider_key());
    creds::creds_file(&jwt, &user.seed().expect("a user seed"))
}

/// Once the server has processed everything `client` sent before (its
/// subscriptions included): a message to a fresh inbox of its own comes back only
/// after them.
async fn settled(client: &async_nats::Client) {
    let inbox = client.new_inbox();
    let mut probe = client.subscribe(inbox.clone()).await.unwrap();
    client.publish(inbox, "probe".into()).await.unwrap();
    arrives(&mut probe, "a probe to the client's own inbox").await;
}

/// Provider `kv` of app `shop`, connected as a host's scoped key mints it.
async fn provider_kv(server: &NatsServer) -> async_nats::Client {
    let provider_creds = scoped_user(server, |user, account, key| {
        creds::provider_user_jwt("default", "shop", "kv", user, account, key, true).unwrap()
    });
    async_nats::ConnectOptions::with_credentials(&provider_creds)
        .unwrap()
        .custom_inbox_prefix(creds::provider_inbox_prefix("default", "shop", "kv"))
        .connect(server.url())
        .await
        .expect("a scoped provider user connects")
}

/// A provider fetches the large arguments a host offers it (chunk requests on
/// `<host inbox>.body.<token>`) but cannot publish into the host's reply inboxes,
/// where it could forge the answer to another call; it serves calls sent by
/// locality, and only its own.
#[tokio::test]
async fn a_provider_fetches_hosts_bodies_but_cannot_forge_their_replies() {
    let server = NatsServer::builder().operator_auth().start().unwrap();
    let host = role(&server, Role::Host(HOST_A)).await;
    let provider = provider_kv(&server).await;
    let inbox = lattice_protocol::wire::host_inbox_prefix("default", HOST_A);
    let body = lattice_protocol::wire::body_subject(&inbox, "0123abcd");
    let mut offer = host.subscribe(body.clone()).await.unwrap();
    let near = provider
        .subscribe("lattice.default.rpchl.*.zone.eu-1.shop.kv.>")
        .await
        .unwrap();
    answer(&provider, near, "near");
    // A call by locality reaches the provider (and, answered, shows the server
    // has everything the provider sent before).
    let near_call = || async {
        let subject =
            format!("lattice.default.rpchl.{HOST_A}.zone.eu-1.shop.kv.wrpc.keyvalue.store.get");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            match host.request(subject.clone(), "".into()).await {
                Ok(reply) => return reply,
                Err(e) => assert!(
                    std::time::Instant::now() < deadline,
                    "a call by locality never reached the provider: {e}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    assert_eq!(&near_call().await.payload[..], b"near");
    // Everything under the host's inbox from now on: first its own probe.
    let mut replies = host.subscribe(format!("{inbox}.>")).await.unwrap();
    settled(&host).await;
    let probe = arrives(&mut replies, "the host's probe").await;
    assert_eq!(&probe.payload[..], b"probe");

    provider
        .publish(body.clone(), "chunk 0?".into())
        .await
        .unwrap();
    for forged in [
        format!("{inbox}.Nx2dFDyKsiTBuxIXbHT4Eh.7"),
        format!("{inbox}.body"),
        format!("{inbox}.bodyx.1"),
    ] {
        provider.publish(forged, "forged".into()).await.unwrap();
    }
    provider.flush().await.unwrap();
    let msg = arrives(&mut offer, "a provider's chunk request").await;
    assert_eq!(&msg.payload[..], b"chunk 0?");
    // The wildcard sees the chunk request too, and nothing else.
    let msg = arrives(&mut replies, "the chunk request").await;
    assert_eq!(msg.subject.as_str(), body);
    nothing_arrives(&mut replies, "a provider publishing into a host's inbox").await;

    // Another provider's locality subjects are not its to read.
    let mut other = provider
        .subscribe("lattice.default.rpchl.*.zone.eu-1.shop.web.>")
        .await
        .unwrap();
    // Answered after the subscription was sent: the server has processed it.
    near_call().await;
    host.publish(
        format!("lattice.default.rpchl.{HOST_A}.zone.eu-1.shop.web.a.b.c.f"),
        "call".into(),
    )
    .await
    .unwrap();
    nothing_arrives(&mut other, "a provider reading another's calls").await;
}

#[tokio::test]
async fn the_scoped_key_mints_provider_users_only() {
    let server = NatsServer::builder().operator_auth().start().unwrap();
    let everything = server.connect().await.unwrap();
    let host = role(&server, Role::Host(HOST_A)).await;

    // A provider user as the host mints it: it serves its own subjects.
    let provider = provider_kv(&server).await;
    let calls = provider
        .subscribe("lattice.default.rpch.*.shop.kv.wrpc.keyvalue.store.get")
        .await
        .unwrap();
    answer(&provider, calls, "value");
    tokio::time::sleep(SETTLE).await;
    let reply = host
        .request(
            format!("lattice.default.rpch.{HOST_A}.shop.kv.wrpc.keyvalue.store.get"),
            "".into(),
        )
        .await
        .expect("the host calls its provider");
    assert_eq!(&reply.payload[..], b"value");

    // A minter asking for more than the template: the server refuses the user.
    let greedy = scoped_user(&server, |user, account, key| {
        let everything = creds::Permissions {
            publish: vec![">".into()],
            subscribe: vec![">".into()],
            ..Default::default()
        };
        creds::user_jwt("greedy", user, account, &everything, key).unwrap()
    });
    assert!(
        connect(&server, &greedy).await.is_err(),
        "a scoped key minted a user with permissions of its own"
    );

    // Wildcard tags widen it to every app's calls at most: never host commands,
    // events, the API or JetStream.
    let wildcard = scoped_user(&server, |user, account, key| {
        let tags = ["app:*".to_string(), "provider:*".to_string()];
        creds::scoped_user_jwt("wild", user, account, &tags, key).unwrap()
    });
    let wild = connect(&server, &wildcard)
        .await
        .expect("a wildcard-tagged user");
    let mut watchers = Vec::new();
    for subject in [
        "lattice.default.ctl.>",
        "lattice.default.evt.>",
        "lattice.default.api.>",
        "$KV.>",
    ] {
        watchers.push((subject, everything.subscribe(subject).await.unwrap()));
    }
    let mut own_commands = wild.subscribe("lattice.default.ctl.>").await.unwrap();
    tokio::time::sleep(SETTLE).await;
    for subject in [
        "lattice.default.ctl.host.NHOSTAAAA",
        "lattice.default.evt.host_heartbeat",
        "lattice.default.api.deploy",
        "$KV.lattice_default_state.app.shop",
    ] {
        wild.publish(subject, "forged".into()).await.unwrap();
    }
    wild.flush().await.unwrap();
    everything
        .publish("lattice.default.ctl.host.NHOSTAAAA", "cmd".into())
        .await
        .unwrap();
    for (subject, mut sub) in watchers {
        if subject == "lattice.default.ctl.>" {
            // The real command only.
            let msg = arrives(&mut sub, "the real command").await;
            assert_eq!(&msg.payload[..], b"cmd");
        }
        nothing_arrives(&mut sub, &format!("a scoped user publishing on {subject}")).await;
    }
    nothing_arrives(&mut own_commands, "a scoped user reading host commands").await;
}

/// Named config: the controller writes it, a host reads (and watches) it but
/// cannot write, purge or delete it, so no host can change another's config.
#[tokio::test]
async fn a_host_reads_named_config_but_cannot_write_it() {
    const CONFIG: &str = "lattice_default_config";
    let server = NatsServer::builder().operator_auth().start().unwrap();
    let controller = role(&server, Role::Controller).await;
    let host = role(&server, Role::Host(HOST_A)).await;
    let kv = js(&controller)
        .create_key_value(jetstream::kv::Config {
            bucket: CONFIG.into(),
            ..Default::default()
        })
        .await
        .expect("the controller creates the config bucket");
    kv.put("db", r#"{"url":"postgres://a"}"#.into())
        .await
        .expect("the controller writes config");

    let host_kv = js(&host)
        .get_key_value(CONFIG)
        .await
        .expect("a host opens the config bucket");
    assert_eq!(
        host_kv
            .get("db")
            .await
            .expect("a host reads config")
            .as_deref(),
        Some(&br#"{"url":"postgres://a"}"#[..])
    );
    let mut watch = host_kv.watch("db").await.expect("a host watches config");

    // Writes, purges and deletes from the host go nowhere.
    assert!(host_kv.put("db", "forged".into()).await.is_err());
    host.publish(format!("$KV.{CONFIG}.db"), "forged".into())
        .await
        .unwrap();
    host.publish(format!("$KV.{CONFIG}.evil"), "forged".into())
        .await
        .unwrap();
    host.flush().await.unwrap();
    assert!(js(&host)
        .delete_stream(format!("KV_{CONFIG}"))
        .await
        .is_err());
    let purge = host
        .request(format!("$JS.API.STREAM.PURGE.KV_{CONFIG}"), "".into())
        .await;
    assert!(purge.is_err(), "a host purged the config bucket");
    tokio::time::sleep(SETTLE).await;
    assert_eq!(
        kv.get("db").await.unwrap().as_deref(),
        Some(&br#"{"url":"postgres://a"}"#[..])
    );
    assert_eq!(kv.get("evil").await.unwrap(), None);

    // The controller's change reaches the host's watch.
    kv.put("db", r#"{"url":"postgres://b"}"#.into())
        .await
        .unwrap();
    let seen = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .expect("the change reaches the watch in time")
        .unwrap()
        .unwrap();
    assert_eq!(&seen.value[..], br#"{"url":"postgres://b"}"#);
}
