//! A provider run in-process against a real nats-server, called with raw NATS
//! requests exactly as a host calls it.

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

use async_nats::HeaderMap;
use lattice_protocol::provider::{health_subject, ProviderMessage};
use lattice_protocol::wire::rpc::headers;
use lattice_protocol::wire::{self, CallHeader, CallTarget, WitType, WitValue};
use lattice_provider::{Call, Provider, ProviderInit, ProviderLink};
use lattice_testing::nats::NatsServer;
use std::time::Duration;
use tokio::io::{AsyncWriteExt, DuplexStream};
use tokio::task::JoinHandle;

const APP: &str = "shop";
const NAME: &str = "greeter";

fn link(component: &str) -> ProviderLink {
    ProviderLink {
        component: component.into(),
        to_provider: true,
        name: "default".into(),
        namespace: "example".into(),
        package: "greet".into(),
        interfaces: vec!["hello".into()],
        config: [("greeting".to_owned(), "hello".to_owned())].into(),
        secrets: Default::default(),
    }
}

fn string(s: &str) -> WitValue {
    WitValue::String(s.into())
}

struct Running {
    _server: NatsServer,
    nats: async_nats::Client,
    control: Option<DuplexStream>,
    task: JoinHandle<Result<(), lattice_provider::ProviderError>>,
}

impl Running {
    /// A provider serving `example:greet/hello` `greet` (string -> string, using
    /// the link's `greeting`), `sleep` (u64 ms -> u64), `fail` (-> string) and
    /// `reverse` (list<u8> -> list<u8>) and `trace` (-> the caller's traceparent).
    async fn start(links: Vec<ProviderLink>, max_in_flight: usize) -> Self {
        Self::start_on(
            NatsServer::builder().jetstream(false),
            links,
            max_in_flight,
            Vec::new(),
        )
        .await
    }

    /// The same on a server built by `server`, the provider's host having the
    /// locality labels `locality`.
    async fn start_on(
        server: lattice_testing::nats::NatsServerBuilder,
        links: Vec<ProviderLink>,
        max_in_flight: usize,
        locality: Vec<(String, String)>,
    ) -> Self {
        let server = server.start().unwrap();
        let init = ProviderInit {
            lattice: "default".into(),
            nats_url: server.url(),
            app: APP.into(),
            name: NAME.into(),
            host_id: "NHOST".into(),
            config: Default::default(),
            links,
            nats_credentials: None,
            inbox_prefix: None,
            nats_tls: None,
            locality,
            secrets: Default::default(),
        };
        let (control, input) = tokio::io::duplex(64 * 1024);
        let mut provider = Provider::new(init, input).await.unwrap();
        assert_eq!(provider.links().len(), provider.init().links.len());
        provider
            .max_in_flight(max_in_flight)
            .serve(
                "example:greet/hello",
                "greet",
                vec![WitType::String],
                vec![WitType::String],
                |call: Call| async move {
                    let Some(WitValue::String(name)) = call.args.first() else {
                        return Err("no name".to_owned());
                    };
                    let greeting = call
                        .link
                        .config
                        .get("greeting")
                        .cloned()
                        .unwrap_or_default();
                    Ok(vec![string(&format!(
                        "{greeting}, {name} (from {})",
                        call.caller.component
                    ))])
                },
            )
            .serve(
                "example:greet/hello@1.0.0",
                "sleep",
                vec![WitType::U64],
                vec![WitType::U64],
                |call: Call| async move {
                    let Some(WitValue::U64(ms)) = call.args.first() else {
                        return Err("no duration".to_owned());
                    };
                    tokio::time::sleep(Duration::from_millis(*ms)).await;
                    Ok(vec![WitValue::U64(*ms)])
                },
            )
            .serve(
                "example:greet/hello",
                "fail",
                vec![],
                vec![WitType::String],
                |_call: Call| async move { Err("the database is on fire".to_owned()) },
            )
            .serve(
                "example:greet/hello",
                "reverse",
                vec![WitType::list(WitType::U8)],
                vec![WitType::list(WitType::U8)],
                |call: Call| async move {
                    let Some(bytes) = call.args.first().and_then(WitValue::as_bytes) else {
                        return Err("no bytes".to_owned());
                    };
                    Ok(vec![WitValue::Bytes(bytes.iter().rev().copied().collect())])
                },
            )
            .serve(
                "example:greet/hello",
                "trace",
                vec![],
                vec![WitType::String],
                |call: Call| async move {
                    Ok(vec![string(call.traceparent.as_deref().unwrap_or("none"))])
                },
            );
        let nats = server.connect().await.unwrap();
        let task = tokio::spawn(provider.run());
        let running = Self {
            _server: server,
            nats,
            control: Some(control),
            task,
        };
        running.wait_healthy().await;
        running
    }

    async fn wait_healthy(&self) {
        let subject = health_subject("default", APP, NAME, "NHOST");
        for _ in 0..100 {
            let asked = self.nats.request(subject.clone(), bytes::Bytes::new());
            if let Ok(Ok(reply)) = tokio::time::timeout(Duration::from_millis(200), asked).await {
                assert_eq!(reply.payload.as_ref(), b"ok");
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the provider never answered its health check");
    }

    /// Call `function` as `component` with the right fingerprint.
    async fn call(&self, component: &str, function: &str, args: &[WitValue]) -> Reply {
        let (params, results) = types(function);
        let payload = wire::encode_args(&params, args).unwrap();
        let fp = wire::signature_fingerprint(&params, &results);
        self.raw(component, function, &fp, payload, HeaderMap::new(), 5_000)
            .await
    }

    async fn raw(
        &self,
        component: &str,
        function: &str,
        fingerprint: &str,
        payload: Vec<u8>,
        h: HeaderMap,
        timeout_ms: u64,
    ) -> Reply {
        let caller = CallHeader {
            host: "NCALLER".into(),
            app: APP.into(),
            component: component.into(),
            link: "default".into(),
            signature: fingerprint.into(),
            timeout_ms,
            trace: None,
        };
        self.with_header(function, caller, payload, h).await
    }

    /// Call `function` with the call header `caller` and the other headers `h`.
    async fn with_header(
        &self,
        function: &str,
        caller: CallHeader,
        payload: Vec<u8>,
        mut h: HeaderMap,
    ) -> Reply {
        let subject = wire::host_call_subject("default", "NCALLER", &target(function));
        h.insert(headers::CALL, caller.encode().as_str());
        let msg = self
            .nats
            .request_with_headers(subject, h, payload.into())
            .await
            .unwrap();
        let error = msg
            .headers
            .as_ref()
            .and_then(|h| h.get(headers::ERROR))
            .map(|v| v.as_str().to_owned());
        match error {
            Some(kind) => Reply::Failed(kind, String::from_utf8(msg.payload.to_vec()).unwrap()),
            None => Reply::Ok(wire::decode_results(&types(function).1, &msg.payload).unwrap()),
        }
    }

    async fn send(&mut self, line: &str) {
        let control = self.control.as_mut().unwrap();
        control
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
    }

    async fn stopped(&mut self) {
        let done = tokio::time::timeout(Duration::from_secs(7), &mut self.task).await;
        done.expect("the provider did not stop").unwrap().unwrap();
    }
}

fn types(function: &str) -> (Vec<WitType>, Vec<WitType>) {
    match function {
        "sleep" => (vec![WitType::U64], vec![WitType::U64]),
        "trace" => (vec![], vec![WitType::String]),
        "fail" => (vec![], vec![WitType::String]),
        "reverse" => (
            vec![WitType::list(WitType::U8)],
            vec![WitType::list(WitType::U8)],
        ),
        _ => (vec![WitType::String], vec![WitType::String]),
    }
}

#[derive(Debug, PartialEq)]
enum Reply {
    Ok(Vec<WitValue>),
    Failed(String, String),
}

impl Reply {
    #[track_caller]
    fn failed(self, kind: &str, message: &str) {
        match self {
            Reply::Failed(k, m) => {
                assert_eq!(k, kind, "{m}");
                assert!(m.contains(message), "{m}");
            }
            other => panic!("expected {kind}, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn linked_callers_are_served_and_every_failure_has_its_kind() {
    let p = Running::start(vec![link("cart")], 16).await;

    let served = p.call("cart", "greet", &[string("ana")]).await;
    assert_eq!(served, Reply::Ok(vec![string("hello, ana (from cart)")]));

    p.call("stranger", "greet", &[string("ana")]).await.failed(
        "refused",
        "no link of app 'shop' lets component 'stranger' of app 'shop' call example:greet/hello.greet on provider 'greeter' (link name 'default')",
    );
    p.call("cart", "wave", &[string("ana")]).await.failed(
        "refused",
        "provider 'greeter' does not serve example:greet/hello.wave",
    );
    p.raw(
        "cart",
        "greet",
        "0000000000000000",
        vec![0x91, 0xa0],
        HeaderMap::new(),
        5_000,
    )
    .await
    .failed("signature", "the provider has func(string) -> string");
    let fp = wire::signature_fingerprint(&[WitType::String], &[WitType::String]);
    p.raw(
        "cart",
        "greet",
        &fp,
        vec![0x91, 0x07],
        HeaderMap::new(),
        5_000,
    )
    .await
    .failed("bad-arguments", "expected string");
    // Offers the provider must not fetch: malformed, outside the calling host's
    // inbox (it would make the provider publish on a subject of the caller's
    // choosing), and over the provider's limit.
    let offer = |text: &str| {
        let mut h = HeaderMap::new();
        h.insert(headers::BODY, text);
        h
    };
    p.raw("cart", "greet", &fp, vec![], offer("_INBOX.x 10 5"), 5_000)
        .await
        .failed("bad-arguments", "chunks must be at least 1024 bytes");
    let foreign = offer("$JS.API.STREAM.DELETE.x 4096 1024");
    p.raw("cart", "greet", &fp, vec![], foreign, 5_000)
        .await
        .failed("refused", "not under _INBOX_default.host.NCALLER.body.");
    let huge = offer("_INBOX_default.host.NCALLER.body.t 1099511627776 1048576");
    p.raw("cart", "greet", &fp, vec![], huge, 5_000)
        .await
        .failed("too-large", "over the provider's limit of 67108864 bytes");
    p.call("cart", "fail", &[])
        .await
        .failed("internal", "the database is on fire");
    let sleep = wire::signature_fingerprint(&[WitType::U64], &[WitType::U64]);
    let two_s = wire::encode_args(&[WitType::U64], &[WitValue::U64(2_000)]).unwrap();
    p.raw("cart", "sleep", &sleep, two_s, HeaderMap::new(), 300)
        .await
        .failed(
            "timeout",
            "did not finish example:greet/hello.sleep within the caller's timeout of 300ms",
        );

    // No lattice-call header at all.
    let subject = format!("lattice.default.rpch.NCALLER.{APP}.{NAME}.example.greet.hello.greet");
    let msg = p
        .nats
        .request(subject, vec![0x91, 0xa0].into())
        .await
        .unwrap();
    assert_eq!(
        msg.headers.unwrap().get(headers::ERROR).unwrap().as_str(),
        "refused"
    );
}

#[tokio::test]
async fn a_links_message_changes_who_is_served() {
    let mut p = Running::start(vec![link("cart")], 16).await;
    p.call("late", "greet", &[string("bo")])
        .await
        .failed("refused", "component 'late'");

    let links = vec![link("cart"), link("late")];
    p.send(&line(&ProviderMessage::Links { links })).await;
    let mut served = None;
    for _ in 0..100 {
        match p.call("late", "greet", &[string("bo")]).await {
            Reply::Ok(values) => {
                served = Some(values);
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    assert_eq!(served, Some(vec![string("hello, bo (from late)")]));

    // Garbage on stdin is ignored; an empty link set refuses everyone again.
    p.send("not json").await;
    p.send(r#"{"v":1,"message":"links","links":[]}"#).await;
    let mut refused = false;
    for _ in 0..100 {
        if let Reply::Failed(kind, _) = p.call("cart", "greet", &[string("x")]).await {
            assert_eq!(kind, "refused");
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        refused,
        "an empty links message did not take the links away"
    );
}

#[tokio::test]
async fn over_the_limit_calls_are_overloaded() {
    let p = Running::start(vec![link("cart")], 1).await;
    let slow = p.call("cart", "sleep", &[WitValue::U64(1_000)]);
    let second = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        p.call("cart", "greet", &[string("x")]).await
    };
    let (slow, second) = tokio::join!(slow, second);
    assert_eq!(slow, Reply::Ok(vec![WitValue::U64(1_000)]));
    second.failed("overloaded", "serving 1 calls already");
}

#[tokio::test]
async fn shutdown_lets_calls_in_flight_finish() {
    let mut p = Running::start(vec![link("cart")], 16).await;
    let mut control = p.control.take().unwrap();
    // The call goes out before the shutdown; its answer comes after.
    let slow = tokio::time::timeout(
        Duration::from_secs(5),
        p.call("cart", "sleep", &[WitValue::U64(1_000)]),
    );
    let stop = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        control
            .write_all(b"{\"v\":1,\"message\":\"shutdown\"}\n")
            .await
            .unwrap();
    };
    let (slow, ()) = tokio::join!(slow, stop);
    assert_eq!(slow.unwrap(), Reply::Ok(vec![WitValue::U64(1_000)]));
    p.stopped().await;
    // Nobody serves any more, though stdin is still open.
    let subject = format!("lattice.default.rpch.NCALLER.{APP}.{NAME}.example.greet.hello.greet");
    let gone = p
        .nats
        .request(subject, bytes::Bytes::new())
        .await
        .unwrap_err();
    assert_eq!(gone.kind(), async_nats::RequestErrorKind::NoResponders);
    drop(control);
}

#[tokio::test]
async fn the_end_of_stdin_stops_the_provider() {
    let mut p = Running::start(vec![], 16).await;
    drop(p.control.take());
    p.stopped().await;
}

/// Calls from another provider of the app arrive on that provider's own subject
/// (`lattice.<L>.rpcp.<app>.<caller>.<this provider>.…`): served when the header
/// names the provider the subject names and a link allows it, refused when the
/// header claims anyone else.
#[tokio::test]
async fn a_providers_call_is_served_only_as_the_provider_its_subject_names() {
    let p = Running::start(vec![link("cart"), link("relay")], 16).await;
    let (params, results) = types("greet");
    let target = target("greet");
    let call = |subject_caller: &str, claimed: &str| {
        let subject = wire::provider_call_subject("default", subject_caller, &target);
        let caller = CallHeader {
            host: "NCALLER".into(),
            app: APP.into(),
            component: claimed.into(),
            link: "default".into(),
            signature: wire::signature_fingerprint(&params, &results),
            timeout_ms: 5_000,
            trace: None,
        };
        let mut h = HeaderMap::new();
        h.insert(headers::CALL, caller.encode().as_str());
        let payload = wire::encode_args(&params, &[string("ana")]).unwrap();
        let nats = p.nats.clone();
        async move {
            let msg = nats
                .request_with_headers(subject, h, payload.into())
                .await
                .unwrap();
            let error = msg.headers.as_ref().and_then(|h| h.get(headers::ERROR));
            (
                error.map(|v| v.as_str().to_owned()),
                String::from_utf8_lossy(&msg.payload).into_owned(),
            )
        }
    };
    let (error, _) = call("relay", "relay").await;
    assert_eq!(error, None, "the relay provider's own call is served");
    // `relay` claiming to be `cart`, which has a link too.
    let (error, text) = call("relay", "cart").await;
    assert_eq!(error.as_deref(), Some("refused"), "{text}");
    assert!(text.contains("says it is from 'cart'"), "{text}");
}

/// `message` as the host writes it on the provider's stdin.
fn line(message: &ProviderMessage) -> String {
    String::from_utf8(lattice_protocol::encode(message)).unwrap()
}

fn target(function: &str) -> CallTarget {
    CallTarget {
        app: APP.into(),
        component: NAME.into(),
        namespace: "example".into(),
        package: "greet".into(),
        interface: "hello".into(),
        function: function.into(),
    }
}

/// The header of `cart`'s call of `function` from host `NCALLER`, with the
/// right fingerprint.
fn cart_calls(function: &str, timeout_ms: u64) -> CallHeader {
    let (params, results) = types(function);
    CallHeader {
        host: "NCALLER".into(),
        app: APP.into(),
        component: "cart".into(),
        link: "default".into(),
        signature: wire::signature_fingerprint(&params, &results),
        timeout_ms,
        trace: None,
    }
}

/// Arguments and results over the server's `max_payload` travel in chunks both
/// ways: a host's caller (the lattice's one transport) offers 200 KiB through a
/// 64 KiB server, the provider fetches them from the calling host's inbox and
/// offers its 200 KiB of results back from its own.
#[tokio::test]
async fn a_provider_takes_and_returns_bodies_over_max_payload() {
    let server = NatsServer::builder()
        .jetstream(false)
        .max_payload(64 * 1024);
    let p = Running::start_on(server, vec![link("cart")], 16, Vec::new()).await;
    assert_eq!(p.nats.server_info().max_payload, 64 * 1024);
    let (params, results) = types("reverse");
    let body: Vec<u8> = (0..200 * 1024).map(|i| (i % 251) as u8).collect();
    let caller = lattice_rpc::Caller::new(
        p.nats.clone(),
        "default",
        wire::host_inbox_prefix("default", "NCALLER"),
        lattice_rpc::chunks::Limit {
            bytes: 1 << 20,
            owner: "the test",
            setting: "none",
        },
        Duration::from_secs(2),
    );
    let t = target("reverse");
    let header = cart_calls("reverse", 10_000);
    let encoded = caller
        .call(lattice_rpc::Outgoing {
            target: &t,
            nearby: Vec::new(),
            anywhere: wire::host_call_subject("default", "NCALLER", &t).into(),
            header: header.encode(),
            payload: wire::encode_args(&params, &[WitValue::Bytes(body.clone())]).unwrap(),
            deadline: std::time::Instant::now() + Duration::from_secs(10),
            reply_from: wire::BodySender::Provider {
                app: APP,
                name: NAME,
            },
        })
        .await
        .unwrap_or_else(|e| panic!("a large call failed: {e}"));
    assert!(encoded.len() > 64 * 1024, "the results came inline");
    let reversed: Vec<u8> = body.iter().rev().copied().collect();
    assert_eq!(
        wire::decode_results(&results, &encoded).unwrap(),
        vec![WitValue::Bytes(reversed)]
    );
    // Sent inline over max_payload, it never reaches the provider: NATS refuses it.
    let too_big = wire::encode_args(&params, &[WitValue::Bytes(body)]).unwrap();
    let sent = p
        .nats
        .request(
            wire::host_call_subject("default", "NCALLER", &t),
            too_big.into(),
        )
        .await;
    assert!(sent.is_err(), "a payload over max_payload was sent inline");
}

/// A provider whose host has locality labels serves calls sent to instances
/// near the caller (so callers there do not wait out a no-responders round trip
/// first), and not those of another locality.
#[tokio::test]
async fn a_provider_serves_calls_routed_by_locality() {
    let locality = vec![
        ("zone".to_owned(), "eu-1a".to_owned()),
        ("region".to_owned(), "eu".to_owned()),
    ];
    let server = NatsServer::builder().jetstream(false);
    let mut p = Running::start_on(server, vec![link("cart")], 16, locality).await;
    let (params, results) = types("greet");
    let t = target("greet");
    let header = cart_calls("greet", 5_000);
    let nats = p.nats.clone();
    let send = |subject: String| {
        let mut h = HeaderMap::new();
        h.insert(headers::CALL, header.encode().as_str());
        let payload = wire::encode_args(&params, &[string("ana")]).unwrap();
        nats.request_with_headers(subject, h, payload.into())
    };
    for (key, value) in [("zone", "eu-1a"), ("region", "eu")] {
        let near = wire::locality_subject("default", "NCALLER", key, value, &t);
        let reply = send(near.clone()).await.unwrap();
        assert!(reply.headers.is_none(), "{near}: {:?}", reply.headers);
        assert_eq!(
            wire::decode_results(&results, &reply.payload).unwrap(),
            vec![string("hello, ana (from cart)")],
            "{near}"
        );
    }
    let elsewhere = wire::locality_subject("default", "NCALLER", "zone", "us-1a", &t);
    let err = send(elsewhere.clone()).await.unwrap_err();
    assert_eq!(err.kind(), async_nats::RequestErrorKind::NoResponders);

    // The host's labels change (`lattice host label`): the provider serves the
    // new locality and drains the old.
    p.send(&line(&ProviderMessage::Locality {
        locality: vec![("zone".to_owned(), "us-1a".to_owned())],
    }))
    .await;
    let before = wire::locality_subject("default", "NCALLER", "zone", "eu-1a", &t);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let now_served = send(elsewhere.clone()).await.is_ok();
        let old_gone = send(before.clone()).await.is_err();
        if now_served && old_gone {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "after the locality message: {elsewhere} served {now_served}, {before} gone {old_gone}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_callers_trace_context_reaches_the_handler_from_either_place() {
    let p = Running::start(vec![link("cart")], 16).await;
    let (params, results) = types("trace");
    let payload = wire::encode_args(&params, &[]).unwrap();
    let header = |trace: Option<&str>| CallHeader {
        host: "NCALLER".into(),
        app: APP.into(),
        component: "cart".into(),
        link: "default".into(),
        signature: wire::signature_fingerprint(&params, &results),
        timeout_ms: 5_000,
        trace: trace.map(str::to_owned),
    };
    let (ours, older) = (
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    );
    let traced = |trace: &str| Reply::Ok(vec![string(trace)]);
    // In the call header, as callers send it now.
    let got = p
        .with_header(
            "trace",
            header(Some(ours)),
            payload.clone(),
            HeaderMap::new(),
        )
        .await;
    assert_eq!(got, traced(ours));
    // In a header of its own, as older callers sent it.
    let mut h = HeaderMap::new();
    h.insert(headers::TRACEPARENT, older);
    let got = p
        .with_header("trace", header(None), payload.clone(), h.clone())
        .await;
    assert_eq!(got, traced(older));
    // Both: the call header's.
    let got = p
        .with_header("trace", header(Some(ours)), payload.clone(), h)
        .await;
    assert_eq!(got, traced(ours));
    let got = p
        .with_header("trace", header(None), payload, HeaderMap::new())
        .await;
    assert_eq!(got, traced("none"));
}
