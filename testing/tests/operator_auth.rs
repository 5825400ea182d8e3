//! The credentials `lattice_protocol::creds` mints, against a real nats-server in
//! operator mode: the host's user works (JetStream too), and a provider's user
//! can serve its own subjects and call its app's components, and nothing else.
#![allow(clippy::unwrap_used)] // tests: an unwrap that fails is a failed test

use futures::StreamExt;
use lattice_protocol::creds;
use lattice_testing::nats::NatsServer;
use std::time::Duration;

async fn provider_client(server: &NatsServer, app: &str, name: &str) -> async_nats::Client {
    let auth = server.auth().unwrap();
    let user = nkeys::KeyPair::new_user();
    let account = creds::account_of(creds::creds_jwt(auth.host_creds()).unwrap()).unwrap();
    let jwt = creds::user_jwt(
        name,
        &user.public_key(),
        &account,
        &creds::provider_permissions("default", app, name),
        auth.signing_key(),
    )
    .unwrap();
    async_nats::ConnectOptions::with_credentials(&creds::creds_file(&jwt, &user.seed().unwrap()))
        .unwrap()
        .custom_inbox_prefix(creds::provider_inbox_prefix("default", app, name))
        .connect(server.url())
        .await
        .unwrap()
}

/// A request, retried while the responder's subscription may not have reached the
/// server yet (`flush` does not wait for the server).
async fn request(client: &async_nats::Client, subject: &str) -> async_nats::Message {
    for _ in 0..50 {
        match client.request(subject.to_string(), "".into()).await {
            Err(e) if e.kind() == async_nats::client::RequestErrorKind::NoResponders => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => return other.unwrap(),
        }
    }
    panic!("nobody answered on {subject}");
}

#[tokio::test]
async fn minted_provider_credentials_reach_only_their_own_subjects() {
    let server = NatsServer::builder().operator_auth().start().unwrap();
    let host = server.connect().await.unwrap();
    // JetStream works for the host's user (the account enables it).
    let js = async_nats::jetstream::new(host.clone());
    js.create_key_value(async_nats::jetstream::kv::Config {
        bucket: "probe".into(),
        ..Default::default()
    })
    .await
    .unwrap();

    // Without credentials, nothing.
    let anonymous = tokio::time::timeout(Duration::from_secs(5), async_nats::connect(server.url()))
        .await
        .unwrap();
    assert!(anonymous.is_err(), "connected without credentials");

    let provider = provider_client(&server, "shop", "kv").await;
    // It serves its own subject and answers.
    let mut calls = provider
        .subscribe("lattice.default.rpch.*.shop.kv.wrpc.keyvalue.store.get")
        .await
        .unwrap();
    provider.flush().await.unwrap();
    tokio::spawn({
        let provider = provider.clone();
        async move {
            while let Some(msg) = calls.next().await {
                let _ = provider.publish(msg.reply.unwrap(), "value".into()).await;
            }
        }
    });
    let reply = request(
        &host,
        "lattice.default.rpch.NHOST.shop.kv.wrpc.keyvalue.store.get",
    )
    .await;
    assert_eq!(&reply.payload[..], b"value");

    // It calls components of its own app, on subjects naming it, and gets their
    // replies.
    let mut component = host
        .subscribe("lattice.default.rpcp.shop.*.web.lattice.http.gateway.handle")
        .await
        .unwrap();
    host.flush().await.unwrap();
    tokio::spawn({
        let host = host.clone();
        async move {
            while let Some(msg) = component.next().await {
                let _ = host.publish(msg.reply.unwrap(), "page".into()).await;
            }
        }
    });
    let reply = request(
        &provider,
        "lattice.default.rpcp.shop.kv.web.lattice.http.gateway.handle",
    )
    .await;
    assert_eq!(&reply.payload[..], b"page");

    // It cannot see host traffic, another app's calls or another provider's.
    let mut watchers = Vec::new();
    for subject in [
        "lattice.default.>",
        "lattice.default.host.>",
        "lattice.default.rpch.*.billing.kv.>",
        "lattice.default.rpch.*.shop.other.>",
        "_INBOX.>",
    ] {
        watchers.push((subject, provider.subscribe(subject).await.unwrap()));
    }
    // A round trip after the subscriptions: the server has handled them.
    request(
        &provider,
        "lattice.default.rpcp.shop.kv.web.lattice.http.gateway.handle",
    )
    .await;
    for subject in [
        "lattice.default.host.abc.cmd",
        "lattice.default.rpch.NHOST.billing.kv.x",
        "lattice.default.rpch.NHOST.shop.other.x",
        "_INBOX.foo",
    ] {
        host.publish(subject, "secret".into()).await.unwrap();
    }
    host.flush().await.unwrap();
    for (subject, mut sub) in watchers {
        let got = tokio::time::timeout(Duration::from_millis(300), sub.next()).await;
        assert!(
            !matches!(got, Ok(Some(_))),
            "the provider received a message on {subject}"
        );
    }

    // And it cannot publish to them: a host subscriber sees nothing.
    let mut host_side = host.subscribe("lattice.default.host.>").await.unwrap();
    let mut other_app = host
        .subscribe("lattice.default.rpch.*.billing.>")
        .await
        .unwrap();
    // Nor call as a host (a component's call) or as another provider.
    let mut as_host = host.subscribe("lattice.default.rpch.>").await.unwrap();
    let mut as_host_near = host.subscribe("lattice.default.rpchl.>").await.unwrap();
    let mut as_other = host
        .subscribe("lattice.default.rpcp.shop.other.>")
        .await
        .unwrap();
    host.flush().await.unwrap();
    provider
        .publish(
            "lattice.default.rpch.NHOST.shop.web.lattice.http.gateway.handle",
            "forged".into(),
        )
        .await
        .unwrap();
    provider
        .publish(
            "lattice.default.rpchl.NHOST.zone.a.shop.web.lattice.http.gateway.handle",
            "forged".into(),
        )
        .await
        .unwrap();
    provider
        .publish(
            "lattice.default.rpcp.shop.other.web.lattice.http.gateway.handle",
            "forged".into(),
        )
        .await
        .unwrap();
    provider
        .publish("lattice.default.host.abc.cmd", "forged".into())
        .await
        .unwrap();
    provider
        .publish("lattice.default.rpch.NHOST.billing.web.x", "forged".into())
        .await
        .unwrap();
    provider.flush().await.unwrap();
    for sub in [
        &mut host_side,
        &mut other_app,
        &mut as_host,
        &mut as_host_near,
        &mut as_other,
    ] {
        let got = tokio::time::timeout(Duration::from_millis(300), sub.next()).await;
        assert!(!matches!(got, Ok(Some(_))), "a forged message got through");
    }
}
