//! Attack: a provider's NATS user claims, in its `lattice-call` header, to be
//! another caller, to make a call the links allow only that caller. On an
//! operator-mode nats-server with providers minted by the scoped provider key, a
//! real host serves `hello` to the `gateway` provider of app `site` (a link from
//! `gateway` to `hello`); provider `other` of the same app has no link.

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

use async_nats::HeaderMap;
use lattice_protocol::creds;
use lattice_protocol::provider::http;
use lattice_protocol::wire::rpc::headers;
use lattice_protocol::wire::{self, CallHeader, CallTarget, WitValue};
use lattice_testing::host::{host, quick_limits};
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
    let as_host = gateway_target().subject("default");

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
