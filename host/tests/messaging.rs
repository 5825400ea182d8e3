//! `builtin://messaging-nats` with a real nats-server: a message published on the
//! lattice's NATS is handled by a component, which answers through its consumer
//! link; each app's subscriptions reach only its own components. Guests cannot
//! publish, request, ask for replies or subscribe on the lattice's or NATS's own
//! subjects (attacked with `msg-echo`'s `!publish` and `!request` commands), an
//! `allowed_prefix` narrows an app further, and guests' messages can travel on a
//! connection of their own.
#![allow(clippy::unwrap_used)] // tests: an unwrap that fails is a failed test

use futures::StreamExt;
use lattice_protocol::messages::WorkloadSpec;
use lattice_testing::host::{host, quick_limits, Host, HostConfig};
use lattice_testing::manifest::{placed, App, Component, Link};
use lattice_testing::nats::NatsServer;
use std::time::{Duration, Instant};

fn app(name: &str, subscriptions: &str) -> WorkloadSpec {
    narrowed_app(name, subscriptions, None)
}

/// [`app`] with `allowed_prefix` on both links when given.
fn narrowed_app(name: &str, subscriptions: &str, prefix: Option<&str>) -> WorkloadSpec {
    let mut consumer = Link::to("messaging", "wasmcloud:messaging", &["consumer"]);
    let mut handler = Link::to("echo", "wasmcloud:messaging", &["handler"])
        .source_config("subscribe", &[("subscriptions", subscriptions)]);
    if let Some(prefix) = prefix {
        consumer = consumer.target_config("narrow", &[("allowed_prefix", prefix)]);
        handler = handler.source_config("narrow", &[("allowed_prefix", prefix)]);
    }
    let manifest = App::new(name)
        .with(Component::wasm("echo", "msg-echo").link(consumer))
        .with(Component::capability("messaging", "builtin://messaging-nats").link(handler))
        .manifest();
    placed(manifest, &["echo"], 4)
}

#[tokio::test]
async fn messages_are_handled_and_answered_per_app() {
    let nats = NatsServer::start().unwrap();
    let host = host(quick_limits(), Some(nats.connect().await.unwrap()));
    host.apply(app("shop", "orders.>")).await.unwrap();
    host.apply(app("billing", "invoices.>, refunds.*"))
        .await
        .unwrap();
    let client = nats.connect().await.unwrap();

    // The subscriptions exist once apply returns.
    let reply = tokio::time::timeout(
        Duration::from_secs(10),
        client.request("orders.new", "two apples".into()),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(&reply.payload[..], b"echo: two apples");
    let reply = tokio::time::timeout(
        Duration::from_secs(10),
        client.request("refunds.7", "sorry".into()),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(&reply.payload[..], b"echo: sorry");
    // The handler is called through wasmtime's typed API: the body is copied
    // into the guest whole, not lifted a value per byte.
    let echo = host.component("shop", "echo").unwrap();
    let handler = echo
        .exports
        .get("wasmcloud:messaging/handler", "handle-message")
        .unwrap();
    assert!(handler.shape.is_some(), "{:?}", handler.signature);
    // A body of 512 KiB (half the server's max payload) is echoed whole.
    let big = vec![b'x'; 512 * 1024];
    let reply = tokio::time::timeout(
        Duration::from_secs(10),
        client.request("orders.big", big.clone().into()),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(&reply.payload[..6], b"echo: ");
    assert_eq!(&reply.payload[6..], &big[..]);

    // Without a reply subject, the echo goes to `<subject>.echoed`: billing's
    // subscription covers invoices, shop's does not, so exactly one echo.
    let mut echoed = client.subscribe("invoices.*.echoed").await.unwrap();
    client.flush().await.unwrap();
    client.publish("invoices.1", "paid".into()).await.unwrap();
    let msg = tokio::time::timeout(
        Duration::from_secs(10),
        futures::StreamExt::next(&mut echoed),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(&msg.payload[..], b"echo: paid");
    let started = Instant::now();
    let more = tokio::time::timeout(
        Duration::from_millis(300),
        futures::StreamExt::next(&mut echoed),
    )
    .await;
    assert!(
        more.is_err(),
        "a second echo after {:?}: {more:?}",
        started.elapsed()
    );

    // Removing the app stops its subscriptions: nobody answers orders any more.
    host.remove("shop");
    let gone = tokio::time::timeout(
        Duration::from_secs(2),
        client.request("orders.new", "late".into()),
    )
    .await;
    assert!(
        !matches!(gone, Ok(Ok(_))),
        "orders still answered after removal"
    );
}

/// Send `body` to the echo component on `subject` and return its answer.
async fn ask(client: &async_nats::Client, subject: &str, body: &str) -> String {
    let reply = tokio::time::timeout(
        Duration::from_secs(10),
        client.request(subject.to_owned(), body.to_owned().into()),
    )
    .await
    .unwrap_or_else(|_| panic!("no answer to '{body}'"))
    .unwrap();
    String::from_utf8(reply.payload.to_vec()).unwrap()
}

/// The subjects `spy` saw within `wait`.
async fn seen(
    spy: &mut (impl futures::Stream<Item = async_nats::Message> + Unpin),
    wait: Duration,
) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(Some(msg)) = tokio::time::timeout(wait, spy.next()).await {
        out.push(msg.subject.to_string());
    }
    out
}

#[tokio::test]
async fn guests_cannot_publish_or_request_on_lattice_or_nats_subjects() {
    let nats = NatsServer::start().unwrap();
    let host = host(quick_limits(), Some(nats.connect().await.unwrap()));
    host.apply(app("intruder", "cmd.>")).await.unwrap();
    let client = nats.connect().await.unwrap();
    // Raw subscribers on what a guest must never reach, and on a subject it may.
    let mut forbidden = futures::stream::select_all([
        client.subscribe("lattice.>").await.unwrap(),
        client.subscribe("$JS.>").await.unwrap(),
        client.subscribe("$SYS.>").await.unwrap(),
        client.subscribe("_INBOX.victim.>").await.unwrap(),
    ]);
    let mut free = client.subscribe("free.>").await.unwrap();
    client.flush().await.unwrap();

    let attacks = [
        (
            "!publish lattice.default.ctl.host.NHOST",
            "cannot publish to 'lattice.default.ctl.host.NHOST': subjects under `lattice.>` belong to the lattice itself",
        ),
        (
            "!request lattice.default.ctl.host.NHOST",
            "cannot publish to 'lattice.default.ctl.host.NHOST'",
        ),
        (
            "!request $JS.API.STREAM.LIST",
            "cannot publish to '$JS.API.STREAM.LIST': subjects starting with `$` belong to NATS itself",
        ),
        (
            "!publish $JS.API.STREAM.DELETE.lattice_default_state",
            "cannot publish to '$JS.API.STREAM.DELETE.lattice_default_state'",
        ),
        ("!publish $SYS.REQ.SERVER.PING", "belong to NATS itself"),
        (
            "!publish _INBOX.victim.1",
            "cannot publish to '_INBOX.victim.1': `_INBOX.>` holds other clients' reply inboxes",
        ),
        (
            "!publish free.x lattice.default.api.deploy",
            "cannot ask for replies on 'lattice.default.api.deploy'",
        ),
        // Another client's inbox, which the host did not hand the guest.
        (
            "!publish free.x _INBOX.victim.1",
            "cannot ask for replies on '_INBOX.victim.1'",
        ),
        ("!publish free.>", "wildcards"),
    ];
    let mut answers = Vec::new();
    for (command, refusal) in attacks {
        answers.push((command, refusal, ask(&client, "cmd.1", command).await));
    }
    let leaked = seen(&mut forbidden, Duration::from_millis(500)).await;
    assert!(leaked.is_empty(), "guests reached {leaked:?}");
    for (command, refusal, answer) in answers {
        assert!(
            answer.starts_with("error: ") && answer.contains(refusal),
            "{command}: {answer}"
        );
    }
    // The answers above went to the requester's inbox: the one inbox a handler may
    // use, because the host handed it that message. An allowed subject works.
    assert_eq!(ask(&client, "cmd.1", "!publish free.x").await, "ok");
    let msg = tokio::time::timeout(Duration::from_secs(5), free.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (msg.subject.as_str(), &msg.payload[..]),
        ("free.x", &b"attack"[..])
    );
    let leaked = seen(&mut forbidden, Duration::from_millis(200)).await;
    assert!(leaked.is_empty(), "guests reached {leaked:?}");

    // The inbox of a request it was handed may be handed on, as the reply subject
    // of a message to another service, which then answers the requester.
    let mut service = client.subscribe("free.service").await.unwrap();
    client.flush().await.unwrap();
    let answering = {
        let client = client.clone();
        tokio::spawn(async move {
            let msg = service.next().await.unwrap();
            assert_eq!(&msg.payload[..], b"forwarded");
            let reply = msg.reply.expect("the requester's inbox");
            client
                .publish(reply, "from the service".into())
                .await
                .unwrap();
        })
    };
    assert_eq!(
        ask(&client, "cmd.1", "!forward free.service").await,
        "from the service"
    );
    answering.await.unwrap();
}

#[tokio::test]
async fn subscriptions_to_lattice_or_nats_subjects_are_refused_at_apply() {
    let nats = NatsServer::start().unwrap();
    let host = host(quick_limits(), Some(nats.connect().await.unwrap()));
    let refused = [
        (
            "lattice.>",
            "cannot subscribe to 'lattice.>': a guest cannot subscribe to 'lattice.>': subjects under `lattice.>` belong to the lattice itself",
        ),
        ("orders.>, $JS.>", "cannot subscribe to '$JS.>'"),
        ("$JS.API.>", "belong to NATS itself"),
        (">", "cannot subscribe to '>'"),
        ("*.default.ctl.>", "belong to the lattice itself"),
        ("_INBOX.>", "other clients' reply inboxes"),
        ("_INBOX_default.host.>", "other clients' reply inboxes"),
    ];
    for (subscriptions, refusal) in refused {
        let err = host
            .apply(app("snoop", subscriptions))
            .await
            .expect_err(subscriptions)
            .to_string();
        assert!(err.contains(refusal), "{subscriptions}: {err}");
    }
    assert!(host.info().workloads.is_empty());

    // Nothing was subscribed: a host command on the lattice reaches no guest.
    let client = nats.connect().await.unwrap();
    let reply = client
        .request("lattice.default.ctl.host.NHOST", "x".into())
        .await;
    assert!(reply.is_err(), "someone answered: {reply:?}");
}

#[tokio::test]
async fn an_allowed_prefix_narrows_an_app() {
    let nats = NatsServer::start().unwrap();
    let host = host(quick_limits(), Some(nats.connect().await.unwrap()));
    let err = host
        .apply(narrowed_app("shop", "orders.>", Some("shop")))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cannot subscribe to 'orders.>'")
            && err.contains("allows only subjects under 'shop'"),
        "{err}"
    );
    let err = host
        .apply(narrowed_app("shop", "shop.>", Some("lattice.default")))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("allowed_prefix 'lattice.default'"), "{err}");

    host.apply(narrowed_app("shop", "shop.cmd.>", Some("shop")))
        .await
        .unwrap();
    let client = nats.connect().await.unwrap();
    assert_eq!(
        ask(&client, "shop.cmd.1", "!publish shop.orders.1").await,
        "ok"
    );
    let answer = ask(&client, "shop.cmd.1", "!publish other.x").await;
    assert!(
        answer.contains(
            "cannot publish to 'other.x': its manifest allows only subjects under 'shop'"
        ),
        "{answer}"
    );
    let answer = ask(&client, "shop.cmd.1", "!publish shop.x other.replies").await;
    assert!(answer.contains("'other.replies'"), "{answer}");
}

#[tokio::test]
async fn guests_messages_can_travel_on_a_connection_of_their_own() {
    // Two servers: the lattice's, and one for guests (another account, in a real
    // deployment).
    let (lattice, guests) = (NatsServer::start().unwrap(), NatsServer::start().unwrap());
    let config = HostConfig {
        limits: quick_limits(),
        allow_file_load: true,
        messaging_nats: Some(guests.connect().await.unwrap()),
        ..HostConfig::default()
    };
    let host = Host::new(config, Some(lattice.connect().await.unwrap())).unwrap();
    host.apply(app("apart", "cmd.>")).await.unwrap();
    let (on_lattice, on_guests) = (
        lattice.connect().await.unwrap(),
        guests.connect().await.unwrap(),
    );
    let mut lattice_spy = on_lattice.subscribe("free.>").await.unwrap();
    let mut guests_spy = on_guests.subscribe("free.>").await.unwrap();
    on_lattice.flush().await.unwrap();
    on_guests.flush().await.unwrap();

    assert_eq!(ask(&on_guests, "cmd.1", "!publish free.x").await, "ok");
    assert_eq!(
        seen(&mut guests_spy, Duration::from_millis(500)).await,
        ["free.x"]
    );
    assert!(seen(&mut lattice_spy, Duration::from_millis(200))
        .await
        .is_empty());
    // The subscription is on the guests' server only.
    let reply = on_lattice.request("cmd.1", "!publish free.y".into()).await;
    assert!(reply.is_err(), "answered on the lattice's NATS: {reply:?}");
}
