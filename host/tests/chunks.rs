//! Chunked bodies are fetched only from the inbox of the peer that offers them, with
//! a real nats-server: a fake peer naming any other subject in its `lattice-body`
//! offer (NATS's API, a lattice subject, another peer's inbox, a subject a spy
//! listens on) gets no request sent there, and the call fails with the reason.
//!
//! Both sides are attacked: a fake caller offering its arguments to a host serving
//! `echo`, and a fake `echo` answering a host's call with an offer of its results.
//! Each attack has a control: the same fake, offering under an inbox prefix the
//! protocol allows, is fetched from.
#![allow(clippy::unwrap_used)] // tests: an unwrap that fails is a failed test

use bytes::Bytes;
use futures::StreamExt;
use lattice_host::{Host, HostConfig};
use lattice_protocol::manifest::Manifest;
use lattice_protocol::messages::WorkloadSpec;
use lattice_protocol::wire::rpc::{headers, host_call_wildcard, RPC_QUEUE};
use lattice_protocol::wire::{
    host_call_subject, signature_fingerprint, CallHeader, CallTarget, WitType,
};
use lattice_testing::host::quick_limits;
use lattice_testing::manifest::{App, Component, Link};
use lattice_testing::nats::NatsServer;
use std::time::Duration;
use wasmtime::component::Val;

/// `echo-u8(7)` as arguments and as results: `[7]`.
const SEVEN: &[u8] = b"\x91\x07";

/// App `echoes`: `relay` linked to `echo`, with only `placed` on this host.
fn echoes(placed: &str) -> WorkloadSpec {
    let manifest: Manifest = App::new("echoes")
        .with(Component::wasm("relay", "echo-relay").link(Link::to(
            "echo",
            "lattice:echo",
            &["values"],
        )))
        .with(Component::wasm("echo", "echo"))
        .manifest();
    WorkloadSpec {
        manifest,
        placements: [(placed.to_owned(), 1)].into(),
        secrets: None,
    }
}

async fn host(nats: &NatsServer) -> Host {
    let config = HostConfig {
        limits: quick_limits(),
        allow_file_load: true,
        ..HostConfig::default()
    };
    Host::new(config, Some(nats.connect().await.unwrap())).unwrap()
}

/// Return once the server has processed `client`'s subscriptions (a message to a
/// fresh subscription of its own comes back only after them).
async fn settled(client: &async_nats::Client) {
    let inbox = client.new_inbox();
    let mut probe = client.subscribe(inbox.clone()).await.unwrap();
    client.publish(inbox, Bytes::new()).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), probe.next())
        .await
        .unwrap()
        .unwrap();
}

/// A raw subscriber on every subject an offer below names: it must see nothing.
async fn spy(client: &async_nats::Client) -> impl futures::Stream<Item = async_nats::Message> {
    let mut subs = Vec::new();
    for subject in [
        "spy.>",
        "$JS.API.>",
        "lattice.default.ctl.>",
        "_INBOX_default.>",
    ] {
        subs.push(client.subscribe(subject).await.unwrap());
    }
    settled(client).await;
    futures::stream::select_all(subs)
}

async fn seen(spy: &mut (impl futures::Stream<Item = async_nats::Message> + Unpin)) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_millis(300), spy.next()).await {
        out.push(msg.subject.to_string());
    }
    out
}

/// Serve `body` as the only chunk of an offer on `subject`, for as long as the
/// returned task lives.
async fn serve_offer(client: &async_nats::Client, subject: &str) -> tokio::task::JoinHandle<()> {
    let mut requests = client.subscribe(subject.to_owned()).await.unwrap();
    settled(client).await;
    let client = client.clone();
    tokio::spawn(async move {
        while let Some(msg) = requests.next().await {
            if let Some(reply) = msg.reply {
                let _ = client.publish(reply, Bytes::from_static(SEVEN)).await;
            }
        }
    })
}

fn echo_u8() -> CallTarget {
    CallTarget {
        app: "echoes".into(),
        component: "echo".into(),
        namespace: "lattice".into(),
        package: "echo".into(),
        interface: "values".into(),
        function: "echo-u8".into(),
    }
}

/// A call to `echo-u8` from `relay` on host `NFAKECALLER`, its arguments offered on
/// `subject`: the reply's error kind and text.
async fn call_offering(client: &async_nats::Client, subject: &str) -> (Option<String>, String) {
    call_with_body(client, &format!("{subject} 2 2"), Bytes::new()).await
}

/// [`call_offering`] with the whole `lattice-body` header and a payload.
async fn call_with_body(
    client: &async_nats::Client,
    offer: &str,
    payload: Bytes,
) -> (Option<String>, String) {
    let caller = CallHeader {
        host: "NFAKECALLER".into(),
        app: "echoes".into(),
        component: "relay".into(),
        link: "default".into(),
        signature: signature_fingerprint(&[WitType::U8], &[WitType::U8]),
        timeout_ms: 3000,
        trace: None,
    };
    let mut h = async_nats::HeaderMap::new();
    h.insert(headers::CALL, caller.encode().as_str());
    h.insert(headers::BODY, offer);
    let reply = tokio::time::timeout(
        Duration::from_secs(10),
        client.request_with_headers(
            host_call_subject("default", "NFAKECALLER", &echo_u8()),
            h,
            payload,
        ),
    )
    .await
    .unwrap()
    .unwrap();
    let kind = reply
        .headers
        .as_ref()
        .and_then(|h| h.get(headers::ERROR))
        .map(|v| v.to_string());
    (kind, String::from_utf8_lossy(&reply.payload).into_owned())
}

/// A host serving `echo`, a raw client (the fake caller) and its spy; the server
/// and host must outlive the test's calls.
async fn callee_and_spy() -> (
    NatsServer,
    Host,
    async_nats::Client,
    impl futures::Stream<Item = async_nats::Message> + Unpin,
) {
    let nats = NatsServer::start().unwrap();
    let core = host(&nats).await;
    core.apply(echoes("echo")).await.unwrap();
    let client = nats.connect().await.unwrap();
    let spy = spy(&client).await;
    (nats, core, client, spy)
}

#[tokio::test]
async fn a_callee_fetches_arguments_only_from_the_callers_inbox() {
    let (_nats, _core, client, mut spy) = callee_and_spy().await;

    let foreign = [
        "$JS.API.STREAM.LIST",
        "spy.other-app.secrets",
        "lattice.default.ctl.host.NVICTIM",
        // Another host's inbox, and a provider's: not the caller's.
        "_INBOX_default.host.NVICTIM.body.x",
        "_INBOX_default.echoes.kv.body.x",
        // The caller's own reply inbox: not where bodies are offered.
        "_INBOX_default.host.NFAKECALLER.Nx2dFDyKsiTB.1",
    ];
    let mut answers = Vec::new();
    for subject in foreign {
        answers.push((subject, call_offering(&client, subject).await));
    }
    let fetched = seen(&mut spy).await;
    assert!(fetched.is_empty(), "the host fetched from {fetched:?}");
    for (subject, (kind, text)) in answers {
        assert_eq!(kind.as_deref(), Some("refused"), "{subject}: {text}");
        assert!(
            text.contains(&format!("the body is offered on '{subject}', which is not under _INBOX_default.host.NFAKECALLER.body.")),
            "{subject}: {text}"
        );
    }

    // Control: under the calling host's own prefix, the arguments are fetched.
    let mine = "_INBOX_default.host.NFAKECALLER.body.offer1";
    let _serving = serve_offer(&client, mine).await;
    let (kind, text) = call_offering(&client, mine).await;
    assert_eq!(kind, None, "{text}");
    assert_eq!(text, String::from_utf8_lossy(SEVEN));
}

/// An offer whose first chunk travels with the message must come with exactly
/// that chunk: a payload of another length is refused before anything is
/// fetched, and the reason names both lengths.
#[tokio::test]
async fn an_inline_first_chunk_of_the_wrong_length_is_refused() {
    let (_nats, _core, client, mut spy) = callee_and_spy().await;
    let mine = "_INBOX_default.host.NFAKECALLER.body.offer2";
    for (payload, what) in [(10, "a short chunk"), (0, "no chunk"), (1500, "a long one")] {
        let offer = format!("{mine} 4096 1024 1");
        let (kind, text) = call_with_body(&client, &offer, vec![7; payload].into()).await;
        assert_eq!(kind.as_deref(), Some("bad-arguments"), "{what}: {text}");
        assert!(
            text.contains(&format!(
                "carries {payload} bytes of it; the offer says 1024"
            )),
            "{what}: {text}"
        );
    }
    let fetched = seen(&mut spy).await;
    assert!(fetched.is_empty(), "the host fetched from {fetched:?}");
}

#[tokio::test]
async fn a_caller_fetches_results_only_from_a_hosts_inbox() {
    let nats = NatsServer::start().unwrap();
    let edge = host(&nats).await;
    edge.apply(echoes("relay")).await.unwrap();
    let client = nats.connect().await.unwrap();

    // A fake `echo`: it answers every call with an offer of its results on the
    // subject the test puts in `offer`.
    let (offer_tx, offer_rx) = tokio::sync::watch::channel(String::new());
    let mut calls = client
        .queue_subscribe(
            host_call_wildcard("default", "echoes", "echo"),
            RPC_QUEUE.to_owned(),
        )
        .await
        .unwrap();
    let fake = client.clone();
    let _fake = tokio::spawn(async move {
        while let Some(call) = calls.next().await {
            let Some(reply) = call.reply else { continue };
            let mut h = async_nats::HeaderMap::new();
            h.insert(
                headers::BODY,
                format!("{} 2 2", *offer_rx.borrow()).as_str(),
            );
            let _ = fake.publish_with_headers(reply, h, Bytes::new()).await;
        }
    });
    // `spy` waits until the server has the fake's subscription too.
    let mut spy = spy(&client).await;
    let call = |offer: &str| {
        offer_tx.send_replace(offer.to_owned());
        tokio::time::timeout(
            Duration::from_secs(10),
            edge.call(
                "echoes",
                "relay",
                "lattice:echo/values",
                "echo-u8",
                &[Val::U8(7)],
            ),
        )
    };

    let foreign = [
        "$JS.API.STREAM.LIST",
        "spy.other-app.secrets",
        "lattice.default.ctl.host.NVICTIM",
        "_INBOX_default.echoes.kv.body.x",
        "_INBOX_default.host.NFAKECALLEE.Nx2dFDyKsiTB.1",
    ];
    let mut answers = Vec::new();
    for subject in foreign {
        answers.push((subject, call(subject).await.unwrap()));
    }
    let fetched = seen(&mut spy).await;
    assert!(fetched.is_empty(), "the host fetched from {fetched:?}");
    for (subject, answer) in answers {
        // `echo-u8` has no error case: the relay traps with the reason.
        let err = answer.expect_err(subject);
        assert!(
            err.message.contains(&format!(
                "the body is offered on '{subject}', which is not under _INBOX_default.host.<host id>.body."
            )),
            "{subject}: {err}"
        );
    }

    // Control: under a host's inbox prefix, the results are fetched.
    let hosts = "_INBOX_default.host.NFAKECALLEE.body.offer1";
    let _serving = serve_offer(&client, hosts).await;
    let got = call(hosts).await.unwrap().unwrap();
    assert!(matches!(got.as_slice(), [Val::U8(7)]), "{got:?}");
}
