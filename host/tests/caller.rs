//! Attacks on who a call says it is from, on an operator-mode nats-server where
//! the call subject names its sender and each sender's user may publish only
//! under its own name (`wire::check_caller`).
//!
//! - A provider's NATS user claims, in its `lattice-call` header, to be another
//!   caller, to make a call the links allow only that caller: a real host serves
//!   `hello` to the `gateway` provider of app `site` (a link from `gateway` to
//!   `hello`); provider `other` of the same app has no link.
//! - A host's NATS user claims to be another host (whose id also says where the
//!   callee fetches chunked arguments from): real hosts on their own
//!   least-privilege users, one serving `echo`, one running `relay` linked to it.

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

use async_nats::HeaderMap;
use lattice_protocol::creds::{self, Role};
use lattice_protocol::provider::http;
use lattice_protocol::wire::rpc::headers;
use lattice_protocol::wire::{self, host_call_subject, CallHeader, CallTarget, WitType, WitValue};
use lattice_testing::host::{host, quick_limits, Host, HostConfig};
use lattice_testing::manifest::{placed, App, Component, Link};
use lattice_testing::nats::NatsServer;
use std::time::{Duration, Instant};

const APP: &str = "site";

/// A provider user of `APP` as a host mints it (scoped key, its inbox prefix).
async fn provider_client(server: &NatsServer, name: &str) -> async_nats::Client {
    let auth = server.auth().unwrap().lattice();
    let user = nkeys::KeyPair::new_user();
    let jwt = creds::provider_user_jwt(
        "default",
        APP,
        name,
        &user.public_key(),
        &auth.account(),
        auth.provider_key(),
        true,
    )
    .unwrap();
    async_nats::ConnectOptions::with_credentials(&creds::creds_file(&jwt, &user.seed().unwrap()))
        .unwrap()
        .custom_inbox_prefix(creds::provider_inbox_prefix("default", APP, name))
        .connect(server.url())
        .await
        .unwrap()
}

/// `GET /` to `hello`'s HTTP handler, as the gateway provider calls it.
fn gateway_target() -> CallTarget {
    CallTarget {
        app: APP.into(),
        component: "hello".into(),
        namespace: http::NAMESPACE.into(),
        package: http::PACKAGE.into(),
        interface: http::INTERFACE.into(),
        function: http::FUNCTION.into(),
    }
}

/// Send the call on `subject` with a header naming `claimed`: the reply's error
/// kind and text, or the body of the answer; `Err` when no reply came.
async fn call(
    client: &async_nats::Client,
    subject: String,
    claimed: &str,
) -> Result<(Option<String>, String), String> {
    let (params, results) = (http::params(), http::results());
    let request = http::Message {
        method: "GET".into(),
        path_with_query: "/".into(),
        headers: vec![("host".into(), b"site.example".to_vec())],
        ..Default::default()
    };
    let payload = wire::encode_args(&params, &[request.request_value()]).unwrap();
    let header = CallHeader {
        host: "NFORGED".into(),
        app: APP.into(),
        component: claimed.into(),
        link: "default".into(),
        signature: wire::signature_fingerprint(&params, &results),
        timeout_ms: 5_000,
        trace: None,
    };
    let mut h = HeaderMap::new();
    h.insert(headers::CALL, header.encode().as_str());
    let request = async_nats::Request::new()
        .payload(payload.into())
        .headers(h)
        .timeout(Some(Duration::from_millis(700)));
    let reply = client
        .send_request(subject, request)
        .await
        .map_err(|e| e.to_string())?;
    let kind = reply
        .headers
        .as_ref()
        .and_then(|h| h.get(headers::ERROR))
        .map(|k| k.as_str().to_owned());
    if kind.is_some() {
        return Ok((kind, String::from_utf8_lossy(&reply.payload).into_owned()));
    }
    let values = wire::decode_results(&results, &reply.payload).unwrap();
    let [WitValue::Result(Ok(Some(response)))] = &values[..] else {
        panic!("unexpected answer {values:?}");
    };
    let body = http::Message::from_value(response).unwrap().body;
    Ok((None, String::from_utf8(body).unwrap()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_cannot_call_as_another_caller() {
    let server = NatsServer::builder().operator_auth().start().unwrap();
    let h = host(quick_limits(), Some(server.connect().await.unwrap()));
    // The providers are never started here: the test plays them.
    let manifest = App::new(APP)
        .with(Component::wasm("hello", "hello"))
        .with(
            Component::capability("gateway", "file:///bin/true").link(Link::to(
                "hello",
                "wasi:http",
                &["incoming-handler"],
            )),
        )
        .with(Component::capability("other", "file:///bin/true"))
        .manifest();
    h.apply(placed(manifest, &["hello"], 1)).await.unwrap();
    let (gateway, other) = (
        provider_client(&server, "gateway").await,
        provider_client(&server, "other").await,
    );
    let as_provider = |name: &str| wire::provider_call_subject("default", name, &gateway_target());
    // The hosts' subject, naming the host the forged headers below name.
    let as_host = host_call_subject("default", "NFORGED", &gateway_target());

    // The gateway, on its own subject, is served (retried while the host's
    // subscriptions reach the server).
    let deadline = Instant::now() + Duration::from_secs(10);
    let served = loop {
        match call(&gateway, as_provider("gateway"), "gateway").await {
            Ok(answer) => break answer,
            Err(e) => assert!(Instant::now() < deadline, "the gateway's call failed: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(served, (None, "Hello from lattice!\n".to_owned()));
    assert_eq!(h.calls().served, 1);

    // `other` claiming to be the gateway, on its own subject: refused by the host.
    let (kind, text) = call(&other, as_provider("other"), "gateway").await.unwrap();
    assert_eq!(kind.as_deref(), Some("refused"), "{text}");
    assert!(text.contains("says it is from 'gateway'"), "{text}");
    // ... or claiming a component of the app: refused too.
    let (kind, text) = call(&other, as_provider("other"), "hello").await.unwrap();
    assert_eq!(kind.as_deref(), Some("refused"), "{text}");
    // On the gateway's subject, or a host's: NATS drops it, nothing answers.
    for subject in [as_provider("gateway"), as_host.clone()] {
        let answer = call(&other, subject.clone(), "gateway").await;
        assert!(answer.is_err(), "{subject}: {answer:?}");
    }
    assert_eq!(h.calls().served, 1, "no forged call reached the component");

    // A host-role connection (allowed the hosts' call subjects) naming the
    // provider: refused, since providers call on their own subjects only.
    let anyone = server.connect().await.unwrap();
    let (kind, text) = call(&anyone, as_host, "gateway").await.unwrap();
    assert_eq!(kind.as_deref(), Some("refused"), "{text}");
    assert!(
        text.contains("did not come on that provider's subject"),
        "{text}"
    );
    assert_eq!(h.calls().served, 1);
}

/// A connection on the user `lattice nats-auth host` mints for host `id`, and the
/// errors the server reports to it (permission violations).
async fn host_client(
    server: &NatsServer,
    id: &str,
) -> (
    async_nats::Client,
    tokio::sync::mpsc::UnboundedReceiver<String>,
) {
    let creds = server
        .auth()
        .unwrap()
        .lattice()
        .role_creds(Role::Host(id))
        .unwrap();
    let prefix = creds::creds_jwt(&creds)
        .and_then(creds::inbox_prefix_of)
        .unwrap();
    let (tx, errors) = tokio::sync::mpsc::unbounded_channel();
    let client = async_nats::ConnectOptions::with_credentials(&creds)
        .unwrap()
        .custom_inbox_prefix(prefix)
        .event_callback(move |event| {
            let tx = tx.clone();
            async move {
                if let async_nats::Event::ServerError(e) = event {
                    let _ = tx.send(e.to_string());
                }
            }
        })
        .connect(server.url())
        .await
        .unwrap();
    (client, errors)
}

/// A real host with key `key`, on its own least-privilege user.
async fn role_host(server: &NatsServer, key: &nkeys::KeyPair) -> Host {
    let (client, _) = host_client(server, &key.public_key()).await;
    let config = HostConfig {
        limits: quick_limits(),
        allow_file_load: true,
        key_seed: Some(key.seed().unwrap()),
        ..HostConfig::default()
    };
    let host = Host::new(config, Some(client)).unwrap();
    assert_eq!(host.id(), key.public_key());
    host
}

/// App `echoes`: `relay` linked to `echo`, only `placed` placed.
fn echoes(placed_here: &str) -> lattice_protocol::messages::WorkloadSpec {
    let manifest = App::new("echoes")
        .with(Component::wasm("relay", "echo-relay").link(Link::to(
            "echo",
            "lattice:echo",
            &["values"],
        )))
        .with(Component::wasm("echo", "echo"))
        .manifest();
    placed(manifest, &[placed_here], 1)
}

/// `echo-u8` of `echo` in app `echoes`.
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

/// How a raw call carries its call header.
#[derive(Clone, Copy, Debug)]
enum Carried {
    /// A `lattice-call` header.
    Header,
    /// The payload's first line, the request without headers.
    Line,
}

/// `echo-u8(7)` from `relay` on `subject`, its call header naming host `claimed`:
/// the reply's error kind and text, or the echoed number; `Err` when no reply
/// came.
async fn echo_call(
    client: &async_nats::Client,
    subject: String,
    claimed: &str,
    carried: Carried,
) -> Result<(Option<String>, String), String> {
    let types = [WitType::U8];
    let header = CallHeader {
        host: claimed.into(),
        app: "echoes".into(),
        component: "relay".into(),
        link: "default".into(),
        signature: wire::signature_fingerprint(&types, &types),
        timeout_ms: 5_000,
        trace: None,
    };
    let args = wire::encode_args(&types, &[WitValue::U8(7)]).unwrap();
    let request = match carried {
        Carried::Header => {
            let mut h = HeaderMap::new();
            h.insert(headers::CALL, header.encode().as_str());
            async_nats::Request::new().payload(args.into()).headers(h)
        }
        Carried::Line => {
            let mut payload = format!("{}\n", header.encode()).into_bytes();
            payload.extend_from_slice(&args);
            async_nats::Request::new().payload(payload.into())
        }
    }
    .timeout(Some(Duration::from_millis(700)));
    let reply = client
        .send_request(subject, request)
        .await
        .map_err(|e| e.to_string())?;
    let text = |reply: &async_nats::Message| String::from_utf8_lossy(&reply.payload).into_owned();
    match reply.headers.as_ref().and_then(|h| h.get(headers::ERROR)) {
        Some(kind) => Ok((Some(kind.as_str().to_owned()), text(&reply))),
        None => {
            let values = wire::decode_results(&types, &reply.payload).unwrap();
            Ok((None, format!("{values:?}")))
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_cannot_call_as_another_host() {
    let server = NatsServer::builder().operator_auth().start().unwrap();
    let (core_key, a_key, b_key) = (
        nkeys::KeyPair::new_server(),
        nkeys::KeyPair::new_server(),
        nkeys::KeyPair::new_server(),
    );
    let (a, b) = (a_key.public_key(), b_key.public_key());
    let core = role_host(&server, &core_key).await;
    core.apply(echoes("echo")).await.unwrap();
    let edge = role_host(&server, &a_key).await;
    edge.apply(echoes("relay")).await.unwrap();

    // Host A's own call, through `relay`'s link: it goes out on A's subject and
    // `core` serves it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let echoed = loop {
        let call = edge.call(
            "echoes",
            "relay",
            "lattice:echo/values",
            "echo-u8",
            &[wasmtime::component::Val::U8(7)],
        );
        match call.await {
            Ok(values) => break values,
            Err(e) => assert!(Instant::now() < deadline, "host A's call failed: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(echoed, vec![wasmtime::component::Val::U8(7)]);
    assert_eq!(core.calls().served, 1);

    // Host B's user, naming host A: on A's subject NATS refuses the publish and
    // nothing answers.
    let (forger, mut violations) = host_client(&server, &b).await;
    let on_a = host_call_subject("default", &a, &echo_u8());
    let answer = echo_call(&forger, on_a.clone(), &a, Carried::Header).await;
    assert!(answer.is_err(), "{on_a}: {answer:?}");
    let violation = tokio::time::timeout(Duration::from_secs(5), violations.recv())
        .await
        .expect("the server reports the forged publish")
        .unwrap();
    assert!(
        violation.contains("Permissions Violation") && violation.contains(&on_a),
        "{violation}"
    );
    // On its own subject the callee compares the call header with the
    // subject, whether it comes as a header or as the payload's first line.
    let on_b = host_call_subject("default", &b, &echo_u8());
    for carried in [Carried::Header, Carried::Line] {
        let (kind, text) = echo_call(&forger, on_b.clone(), &a, carried).await.unwrap();
        assert_eq!(kind.as_deref(), Some("refused"), "{carried:?}: {text}");
        assert!(
            text.contains(&format!("says it is from host '{a}'")),
            "{carried:?}: {text}"
        );
    }
    assert_eq!(
        core.calls().served,
        1,
        "no forged call reached the component"
    );

    // In its own name host B is served: any host may call for the app's
    // components (it may be given the app to run).
    for carried in [Carried::Header, Carried::Line] {
        let (kind, text) = echo_call(&forger, on_b.clone(), &b, carried).await.unwrap();
        assert_eq!((kind, text.as_str()), (None, "[U8(7)]"), "{carried:?}");
    }
    assert_eq!(core.calls().served, 3);
}
