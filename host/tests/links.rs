//! Links between components across hosts, with a real nats-server: every value type
//! round-trips, large payloads are chunked, local targets stay in-process, locality
//! is preferred, failures are answers and unlinked or forged calls are refused.
//!
//! The hosts here are in-process `Host`s with their own NATS connections; the
//! `echo-relay` component forwards each call of `lattice:echo/values` to its link,
//! the `echo` component answers it.

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

use futures::StreamExt;
use lattice_host::links::types::to_wire;
use lattice_host::links::CallError;
use lattice_host::{Host, HostConfig};
use lattice_protocol::manifest::{parse, Manifest};
use lattice_protocol::messages::WorkloadSpec;
use lattice_protocol::wire::rpc::headers;
use lattice_protocol::wire::{host_call_subject, CallErrorKind, CallTarget, WitValue};
use lattice_testing::host::{client, get, quick_limits};
use lattice_testing::manifest::{App, Component, Link};
use lattice_testing::nats::{free_port, NatsServer};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::time::Duration;
use wasmtime::component::Val;

const VALUES: &str = "lattice:echo/values";

/// App `echoes`: `relay` linked to `echo` (unless `linked` is false), with the
/// link's `timeout` source config when given.
fn echo_app(linked: bool, timeout: Option<&str>) -> Manifest {
    let mut relay = Component::wasm("relay", "echo-relay");
    if linked {
        let mut link = Link::to("echo", "lattice:echo", &["values"]);
        if let Some(t) = timeout {
            link = link.source_config("limits", &[("timeout", t)]);
        }
        relay = relay.link(link);
    }
    App::new("echoes")
        .with(relay)
        .with(Component::wasm("echo", "echo"))
        .manifest()
}

/// `manifest` with only `components` placed (one instance each, `echo` with 4).
fn placed(manifest: &Manifest, components: &[&str]) -> WorkloadSpec {
    WorkloadSpec {
        manifest: manifest.clone(),
        placements: components
            .iter()
            .map(|c| (c.to_string(), if *c == "echo" { 4 } else { 1 }))
            .collect(),
        secrets: None,
    }
}

async fn host(nats: &NatsServer, labels: &[(&str, &str)]) -> Host {
    let config = HostConfig {
        limits: quick_limits(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        allow_file_load: true,
        ..HostConfig::default()
    };
    Host::new(config, Some(nats.connect().await.unwrap())).unwrap()
}

async fn relay(host: &Host, function: &str, params: &[Val]) -> Result<Vec<Val>, CallError> {
    tokio::time::timeout(
        Duration::from_secs(20),
        host.call("echoes", "relay", VALUES, function, params),
    )
    .await
    .expect("a linked call always ends")
}

fn assert_same(function: &str, sent: &Val, got: &[Val]) {
    let [got] = got else {
        panic!("{function} returned {got:?}")
    };
    let (a, b) = (to_wire(sent).unwrap(), to_wire(got).unwrap());
    assert!(a.bits_eq(&b), "{function}: sent {a:?}, got {b:?}");
}

fn random_string(rng: &mut StdRng) -> String {
    let len = rng.gen_range(0..24);
    (0..len)
        .map(|_| match rng.gen_range(0..4) {
            0 => rng.gen_range('a'..='z'),
            1 => rng.gen_range('\u{80}'..='\u{7ff}'),
            2 => rng.gen_range('\u{1f300}'..='\u{1f5ff}'),
            _ => rng.gen_range('\0'..='\u{7f}'),
        })
        .collect()
}

fn shape(rng: &mut StdRng) -> Val {
    match rng.gen_range(0..4) {
        0 => Val::Variant("circle".into(), Some(Box::new(Val::Float64(rng.gen())))),
        1 => Val::Variant(
            "rectangle".into(),
            Some(Box::new(Val::Tuple(vec![
                Val::Float32(rng.gen()),
                Val::Float32(-rng.gen::<f32>()),
            ]))),
        ),
        2 => Val::Variant("point".into(), None),
        _ => Val::Variant(
            "named".into(),
            Some(Box::new(Val::String(random_string(rng)))),
        ),
    }
}

fn color(rng: &mut StdRng) -> Val {
    Val::Enum(["red", "green", "blue"][rng.gen_range(0..3)].into())
}

fn maybe(rng: &mut StdRng) -> Val {
    match rng.gen_range(0..3) {
        0 => Val::Option(None),
        1 => Val::Option(Some(Box::new(Val::Option(None)))),
        _ => Val::Option(Some(Box::new(Val::Option(Some(Box::new(Val::U32(
            rng.gen(),
        ))))))),
    }
}

fn outcome(rng: &mut StdRng) -> Val {
    if rng.gen() {
        Val::Result(Ok(Some(Box::new(Val::String(random_string(rng))))))
    } else {
        Val::Result(Err(Some(Box::new(color(rng)))))
    }
}

fn perms(rng: &mut StdRng) -> Val {
    Val::Flags(
        ["read", "write", "execute"]
            .into_iter()
            .filter(|_| rng.gen())
            .map(String::from)
            .collect(),
    )
}

fn bytes(rng: &mut StdRng, len: usize) -> Val {
    Val::List((0..len).map(|_| Val::U8(rng.gen())).collect())
}

fn strings(rng: &mut StdRng) -> Val {
    let n = rng.gen_range(0..5);
    Val::List((0..n).map(|_| Val::String(random_string(rng))).collect())
}

fn float64(rng: &mut StdRng) -> f64 {
    [
        f64::NAN,
        -0.0,
        f64::INFINITY,
        f64::MIN_POSITIVE,
        rng.gen::<f64>() * 1e300,
    ][rng.gen_range(0..5)]
}

fn everything(rng: &mut StdRng) -> Val {
    let nested = Val::List(
        (0..rng.gen_range(0..3))
            .map(|_| Val::List((0..rng.gen_range(0..3)).map(|_| shape(rng)).collect()))
            .collect(),
    );
    let len = rng.gen_range(0..40);
    Val::Record(vec![
        ("flag".into(), Val::Bool(rng.gen())),
        ("small".into(), Val::S8(rng.gen())),
        ("byte".into(), Val::U8(rng.gen())),
        ("short".into(), Val::S16(rng.gen())),
        ("ushort".into(), Val::U16(rng.gen())),
        ("int".into(), Val::S32(rng.gen())),
        ("uint".into(), Val::U32(rng.gen())),
        ("long".into(), Val::S64(rng.gen())),
        ("ulong".into(), Val::U64(rng.gen())),
        ("single".into(), Val::Float32(rng.gen())),
        ("double".into(), Val::Float64(float64(rng))),
        ("letter".into(), Val::Char(rng.gen())),
        ("text".into(), Val::String(random_string(rng))),
        ("bytes".into(), bytes(rng, len)),
        ("names".into(), strings(rng)),
        (
            "pair".into(),
            Val::Tuple(vec![Val::U32(rng.gen()), Val::String(random_string(rng))]),
        ),
        ("shape".into(), shape(rng)),
        ("color".into(), color(rng)),
        ("maybe".into(), maybe(rng)),
        ("outcome".into(), outcome(rng)),
        ("perms".into(), perms(rng)),
        ("nested".into(), nested),
    ])
}

/// One random argument for each `echo-*` function.
fn cases(rng: &mut StdRng) -> Vec<(&'static str, Val)> {
    let len = rng.gen_range(0..64);
    vec![
        ("echo-bool", Val::Bool(rng.gen())),
        ("echo-s8", Val::S8(rng.gen())),
        ("echo-u8", Val::U8(rng.gen())),
        ("echo-s16", Val::S16(rng.gen())),
        ("echo-u16", Val::U16(rng.gen())),
        ("echo-s32", Val::S32(rng.gen())),
        ("echo-u32", Val::U32(rng.gen())),
        ("echo-s64", Val::S64(rng.gen())),
        ("echo-u64", Val::U64(rng.gen())),
        ("echo-f32", Val::Float32(f32::from_bits(rng.gen()))),
        ("echo-f64", Val::Float64(float64(rng))),
        ("echo-char", Val::Char(rng.gen())),
        ("echo-string", Val::String(random_string(rng))),
        ("echo-bytes", bytes(rng, len)),
        ("echo-list", strings(rng)),
        (
            "echo-tuple",
            Val::Tuple(vec![
                Val::U8(rng.gen()),
                Val::String(random_string(rng)),
                Val::Float64(float64(rng)),
            ]),
        ),
        ("echo-shape", shape(rng)),
        ("echo-color", color(rng)),
        ("echo-option", maybe(rng)),
        ("echo-result", outcome(rng)),
        ("echo-flags", perms(rng)),
        ("echo-everything", everything(rng)),
    ]
}

#[tokio::test]
async fn every_value_type_round_trips_across_hosts() {
    let nats = NatsServer::start().unwrap();
    let (edge, core) = (host(&nats, &[]).await, host(&nats, &[]).await);
    let app = echo_app(true, None);
    core.apply(placed(&app, &["echo"])).await.unwrap();
    edge.apply(placed(&app, &["relay"])).await.unwrap();

    let mut rng = StdRng::seed_from_u64(7);
    let mut calls = 0;
    for _ in 0..20 {
        for (function, value) in cases(&mut rng) {
            let got = relay(&edge, function, std::slice::from_ref(&value))
                .await
                .unwrap_or_else(|e| panic!("{function}({value:?}): {e}"));
            assert_same(function, &value, &got);
            calls += 1;
        }
    }
    // Several parameters, no result.
    let shapes = Val::List(vec![shape(&mut rng), shape(&mut rng)]);
    let none = relay(
        &edge,
        "ignore",
        &[Val::U8(1), Val::String("x".into()), shapes],
    )
    .await;
    assert_eq!(none.unwrap(), vec![]);
    calls += 1;

    let (sent, served) = (edge.calls(), core.calls());
    assert_eq!(sent.remote, calls, "every call crossed hosts: {sent:?}");
    assert_eq!(sent.local, 0);
    assert_eq!(served.served, calls);
    assert_eq!(sent.failed, 0);
}

#[tokio::test]
async fn payloads_over_max_payload_are_chunked() {
    // 64 KiB messages: a 300 KiB argument and result travel in chunks both ways.
    let nats = NatsServer::builder()
        .max_payload(64 * 1024)
        .start()
        .unwrap();
    let (edge, core) = (host(&nats, &[]).await, host(&nats, &[]).await);
    let app = echo_app(true, None);
    core.apply(placed(&app, &["echo"])).await.unwrap();
    edge.apply(placed(&app, &["relay"])).await.unwrap();
    // Every chunk request, on any host's offers.
    let spy = nats.connect().await.unwrap();
    let mut requests = spy.subscribe("_INBOX_default.host.*.body.>").await.unwrap();
    spy.flush().await.unwrap();

    let mut rng = StdRng::seed_from_u64(1);
    let big = bytes(&mut rng, 300 * 1024);
    let got = relay(&edge, "echo-bytes", std::slice::from_ref(&big))
        .await
        .unwrap();
    assert_same("echo-bytes", &big, &got);
    // 300 KiB and 6 bytes of framing in chunks of 56 KiB (64 KiB less room for
    // headers): chunk 0 travels with the call and with its answer, so each side
    // fetches only chunks 1 to 5.
    let mut fetched = Vec::new();
    while let Ok(Some(msg)) =
        tokio::time::timeout(Duration::from_millis(500), requests.next()).await
    {
        let index = msg.headers.as_ref().and_then(|h| h.get(headers::CHUNK));
        fetched.push(index.unwrap().as_str().parse::<u32>().unwrap());
    }
    fetched.sort_unstable();
    assert_eq!(fetched, [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]);
    let text = Val::String("ü".repeat(100_000));
    let got = relay(&edge, "echo-string", std::slice::from_ref(&text))
        .await
        .unwrap();
    assert_same("echo-string", &text, &got);
    assert_eq!(core.calls().served, 2);
}

#[tokio::test]
async fn calls_over_the_size_limit_fail_clearly() {
    let nats = NatsServer::builder()
        .max_payload(64 * 1024)
        .start()
        .unwrap();
    let mut config = HostConfig {
        limits: quick_limits(),
        allow_file_load: true,
        ..HostConfig::default()
    };
    config.links.max_call_bytes = 100 * 1024;
    let edge = Host::new(config, Some(nats.connect().await.unwrap())).unwrap();
    let core = host(&nats, &[]).await;
    let app = echo_app(true, None);
    core.apply(placed(&app, &["echo"])).await.unwrap();
    edge.apply(placed(&app, &["relay"])).await.unwrap();

    let big = Val::List(vec![Val::U8(0); 200 * 1024]);
    // `echo-bytes` returns a plain list: no room for an error, so the relay traps.
    let err = relay(&edge, "echo-bytes", &[big]).await.unwrap_err();
    assert_eq!(err.kind, CallErrorKind::Trap, "{err}");
    assert!(
        err.message
            .contains("over the host's limit of 102400 bytes"),
        "{err}"
    );
    assert_eq!(core.calls().served, 0);
}

/// A host running both `relay` and `echo`, linked.
async fn relay_and_echo_on_one_host(nats: &NatsServer) -> Host {
    let one = host(nats, &[]).await;
    one.apply(placed(&echo_app(true, None), &["relay", "echo"]))
        .await
        .unwrap();
    one
}

#[tokio::test]
async fn byte_string_functions_take_the_typed_path() {
    let nats = NatsServer::start().unwrap();
    let one = relay_and_echo_on_one_host(&nats).await;
    let echo = one.component("echoes", "echo").unwrap();
    let typed = |function: &str| echo.exports.get(VALUES, function).unwrap().shape.is_some();
    // Bytes and strings, and bytes in a `result<_, string>`, skip wasmtime's `Val`s.
    for function in ["echo-bytes", "echo-string", "check-bytes"] {
        assert!(typed(function), "{function} should take the typed path");
    }
    // These take the dynamic path.
    for function in ["echo-u8", "echo-list", "echo-everything", "fail", "ignore"] {
        assert!(!typed(function), "{function} should take the dynamic path");
    }
    // Both paths answer a call made in the wire model; a wrong argument is named.
    let bytes = WitValue::Bytes(vec![1, 2, 3]);
    let got = one
        .call_wire("echoes", "relay", VALUES, "echo-bytes", vec![bytes.clone()])
        .await
        .unwrap();
    assert_eq!(got, vec![bytes]);
    let err = one
        .call_wire(
            "echoes",
            "relay",
            VALUES,
            "echo-bytes",
            vec![WitValue::U8(1)],
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind, CallErrorKind::BadArguments, "{err}");
    assert!(err.message.contains("argument 1"), "{err}");
}

#[tokio::test]
async fn a_target_on_the_same_host_is_called_in_process() {
    let nats = NatsServer::start().unwrap();
    let one = relay_and_echo_on_one_host(&nats).await;
    for i in 0..10u32 {
        let got = relay(&one, "echo-u32", &[Val::U32(i)]).await.unwrap();
        assert_eq!(got, vec![Val::U32(i)]);
    }
    let calls = one.calls();
    assert_eq!((calls.local, calls.remote, calls.served), (10, 0, 0));
}

#[tokio::test]
async fn calls_prefer_hosts_in_the_same_zone() {
    let nats = NatsServer::start().unwrap();
    let edge = host(&nats, &[("zone", "a")]).await;
    let near = host(&nats, &[("zone", "a")]).await;
    let far = host(&nats, &[("zone", "b")]).await;
    let app = echo_app(true, None);
    near.apply(placed(&app, &["echo"])).await.unwrap();
    far.apply(placed(&app, &["echo"])).await.unwrap();
    edge.apply(placed(&app, &["relay"])).await.unwrap();
    for i in 0..20u8 {
        relay(&edge, "echo-u8", &[Val::U8(i)]).await.unwrap();
    }
    assert_eq!((near.calls().served, far.calls().served), (20, 0));

    // With no instance left in its zone, calls go anywhere.
    near.remove("echoes");
    for i in 0..5u8 {
        let got = relay(&edge, "echo-u8", &[Val::U8(i)]).await.unwrap();
        assert_eq!(got, vec![Val::U8(i)]);
    }
    assert_eq!(far.calls().served, 5);
}

#[tokio::test]
async fn failures_reach_the_caller_as_answers() {
    let nats = NatsServer::start().unwrap();
    let (edge, core) = (host(&nats, &[]).await, host(&nats, &[]).await);
    let app = echo_app(true, Some("300ms"));
    core.apply(placed(&app, &["echo"])).await.unwrap();
    edge.apply(placed(&app, &["relay"])).await.unwrap();

    // An error the callee chose is a value, not a failure.
    let chosen = relay(&edge, "fail", &[Val::String("out of beans".into())]).await;
    assert_eq!(
        chosen.unwrap(),
        vec![Val::Result(Err(Some(Box::new(Val::String(
            "out of beans".into()
        )))))]
    );

    // The same through the typed path (bytes in and out of a `result`).
    let bytes_ok = relay(&edge, "check-bytes", &[Val::List(vec![Val::U8(7); 3])]).await;
    assert_eq!(
        bytes_ok.unwrap(),
        vec![Val::Result(Ok(Some(Box::new(Val::List(vec![
            Val::U8(7);
            3
        ])))))]
    );
    let bytes_err = relay(&edge, "check-bytes", &[Val::List(vec![])]).await;
    assert_eq!(
        bytes_err.unwrap(),
        vec![Val::Result(Err(Some(Box::new(Val::String(
            "empty".into()
        )))))]
    );

    // The callee traps: the relay (whose `trap` returns nothing) traps too, saying why.
    let err = relay(&edge, "trap", &[Val::String("boom".into())])
        .await
        .unwrap_err();
    assert!(
        err.message
            .contains("component 'echo' of app 'echoes' failed: wasm trap"),
        "{err}"
    );
    assert!(err.message.contains("(trap)"), "{err}");

    // The link's timeout of 300ms cuts a 5s call short.
    let started = std::time::Instant::now();
    let err = relay(&edge, "sleep", &[Val::U32(5_000)]).await.unwrap_err();
    assert!(err.message.contains("(timeout)"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3));

    // No instance anywhere: a clear error, mapped into `result<_, string>` where the
    // function has one.
    // A removed component's subscriptions drain for a moment (calls the server
    // routed there before the unsubscribe are answered `unavailable`, and the
    // caller tries again until its link's timeout), so under load the first call
    // may still time out; the error the caller settles on names the cause.
    core.remove("echoes");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let err = relay(&edge, "echo-u8", &[Val::U8(1)]).await.unwrap_err();
        if err
            .message
            .contains("no instance of 'echo' (app 'echoes') runs anywhere")
        {
            break;
        }
        assert!(
            err.message.contains("(timeout)") && std::time::Instant::now() < deadline,
            "{err}"
        );
    }
    // A dynamic import (`fail`) and a typed one (`check-bytes`, bytes in a
    // `result<_, string>`) both deliver the failure as the error value.
    for (function, arg) in [
        ("fail", Val::String("x".into())),
        ("check-bytes", Val::List(vec![Val::U8(1)])),
    ] {
        let mapped = relay(&edge, function, &[arg]).await.unwrap();
        let [Val::Result(Err(Some(message)))] = &mapped[..] else {
            panic!("{function}: expected err(string), got {mapped:?}")
        };
        assert!(
            matches!(&**message, Val::String(m) if m.contains("no instance of 'echo'")),
            "{function}: {message:?}"
        );
    }

    // Placed again: answers again.
    core.apply(placed(&app, &["echo"])).await.unwrap();
    let got = relay(&edge, "echo-u8", &[Val::U8(9)]).await.unwrap();
    assert_eq!(got, vec![Val::U8(9)]);
}

#[tokio::test]
async fn a_component_without_a_link_cannot_call() {
    let nats = NatsServer::start().unwrap();
    let one = host(&nats, &[]).await;
    // The relay imports lattice:echo/values but the manifest links it nowhere.
    one.apply(placed(&echo_app(false, None), &["relay", "echo"]))
        .await
        .unwrap();
    let err = relay(&one, "echo-u8", &[Val::U8(1)]).await.unwrap_err();
    assert!(
        err.message.contains(
            "component 'relay' of app 'echoes' called lattice:echo/values.echo-u8, but no link of the app gives it lattice:echo/values"
        ),
        "{err}"
    );
    assert_eq!(one.calls().local, 0);
}

/// A raw NATS request to `echo-u8` from host `NFORGED` with the given caller
/// headers: the reply's `lattice-error` kind and text, or the payload.
async fn forged(
    client: &async_nats::Client,
    set: &[(&str, String)],
    payload: &'static [u8],
) -> (Option<String>, Vec<u8>) {
    let target = CallTarget {
        app: "echoes".into(),
        component: "echo".into(),
        namespace: "lattice".into(),
        package: "echo".into(),
        interface: "values".into(),
        function: "echo-u8".into(),
    };
    let mut h = async_nats::HeaderMap::new();
    for (k, v) in set {
        h.insert(*k, v.as_str());
    }
    let reply = tokio::time::timeout(
        Duration::from_secs(5),
        client.request_with_headers(
            host_call_subject("default", "NFORGED", &target),
            h,
            payload.into(),
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
    (kind, reply.payload.to_vec())
}

#[tokio::test]
async fn the_callee_refuses_calls_no_link_allows() {
    let nats = NatsServer::start().unwrap();
    let core = host(&nats, &[]).await;
    core.apply(placed(&echo_app(true, None), &["echo"]))
        .await
        .unwrap();
    let client = nats.connect().await.unwrap();
    let fingerprint = lattice_protocol::wire::signature_fingerprint(
        &[lattice_protocol::wire::WitType::U8],
        &[lattice_protocol::wire::WitType::U8],
    );
    let call = |component: &str, link: &str, signature: &str| {
        lattice_protocol::wire::CallHeader {
            host: "NFORGED".into(),
            app: "echoes".into(),
            component: component.into(),
            link: link.into(),
            signature: signature.into(),
            timeout_ms: 5000,
            trace: None,
        }
        .encode()
    };
    let caller =
        |component: &str, link: &str| vec![(headers::CALL, call(component, link, &fingerprint))];
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap();
    let (kind, reply) = forged(&client, &caller("intruder", "default"), b"\x91\x07").await;
    let reply = text(reply);
    assert_eq!(kind.as_deref(), Some("refused"), "{reply}");
    assert!(
        reply.contains("no link of app 'echoes' lets component 'intruder'"),
        "{reply}"
    );
    let (kind, _) = forged(&client, &caller("relay", "other"), b"\x91\x07").await;
    assert_eq!(kind.as_deref(), Some("refused"));

    // The right caller, but built against another signature.
    let other = call("relay", "default", "0000000000000000");
    let (kind, reply) = forged(&client, &[(headers::CALL, other)], b"\x91\x07").await;
    let reply = text(reply);
    assert_eq!(kind.as_deref(), Some("signature"), "{reply}");
    assert!(reply.contains("func(u8) -> u8"), "{reply}");

    // The right caller and signature: garbage is refused, a good call answered.
    let h = caller("relay", "default");
    let (kind, reply) = forged(&client, &h, b"\xc1").await;
    assert_eq!(kind.as_deref(), Some("bad-arguments"), "{}", text(reply));
    let (kind, payload) = forged(&client, &h, b"\x91\x07").await;
    assert_eq!(kind, None, "{payload:?}");
    // No identity at all.
    let (kind, reply) = forged(&client, &[], b"\x91\x07").await;
    assert_eq!(kind.as_deref(), Some("refused"));
    assert!(text(reply).contains("does not say who makes it"));
    assert_eq!(payload, b"\x91\x07");
}

/// A call whose few bytes would decode into far more memory than the callee's
/// call limit allows (an array of one-byte empty strings: a value each) is
/// answered `too-large` before anything is allocated for it, and the callee
/// still serves the next call. Without the bound it would be decoded and run.
#[tokio::test]
async fn arguments_that_decode_huge_are_refused_too_large() {
    let nats = NatsServer::start().unwrap();
    let mut config = HostConfig {
        limits: quick_limits(),
        allow_file_load: true,
        ..HostConfig::default()
    };
    config.links.max_call_bytes = 16 * 1024;
    let core = Host::new(config, Some(nats.connect().await.unwrap())).unwrap();
    core.apply(placed(&echo_app(true, None), &["echo"]))
        .await
        .unwrap();
    let client = nats.connect().await.unwrap();
    let list = [lattice_protocol::wire::WitType::list(
        lattice_protocol::wire::WitType::String,
    )];
    let fingerprint = lattice_protocol::wire::signature_fingerprint(&list, &list);
    let header = lattice_protocol::wire::CallHeader {
        host: "NFORGED".into(),
        app: "echoes".into(),
        component: "relay".into(),
        link: "default".into(),
        signature: fingerprint,
        timeout_ms: 5000,
        trace: None,
    }
    .encode();
    let target = CallTarget {
        app: "echoes".into(),
        component: "echo".into(),
        namespace: "lattice".into(),
        package: "echo".into(),
        interface: "values".into(),
        function: "echo-list".into(),
    };
    let call = |n: u32| {
        // [ array32(n) of "" ]: 6 + n bytes, n values once decoded.
        let mut payload = vec![0x91, 0xdd];
        payload.extend_from_slice(&n.to_be_bytes());
        payload.extend(std::iter::repeat_n(0xa0u8, n as usize));
        let mut h = async_nats::HeaderMap::new();
        h.insert(headers::CALL, header.as_str());
        let subject = host_call_subject("default", "NFORGED", &target);
        let client = client.clone();
        async move {
            let reply = tokio::time::timeout(
                Duration::from_secs(5),
                client.request_with_headers(subject, h, payload.into()),
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
    };
    // 16 KiB of input, 16 Ki values: over 16 times the 16 KiB limit decoded.
    let (kind, text) = call(16 * 1024 - 16).await;
    assert_eq!(kind.as_deref(), Some("too-large"), "{text}");
    assert!(
        text.contains("decoded, the value would take more than 262144 bytes of memory"),
        "{text}"
    );
    // A modest list is decoded and echoed.
    let (kind, text) = call(10).await;
    assert_eq!(kind, None, "{text}");
}

/// `manifests/shop.yaml` with the built components and HTTP on `port`.
fn shop(port: u16) -> Manifest {
    let text = lattice_testing::components::sample_manifest("shop.yaml", &[(8082, port)]);
    parse(&text).unwrap()
}

#[tokio::test]
async fn the_shop_on_one_host_calls_business_in_process() {
    let nats = NatsServer::start().unwrap();
    let one = host(&nats, &[]).await;
    let port = free_port().unwrap();
    let manifest = shop(port);
    one.apply(placed(&manifest, &["auth", "business"]))
        .await
        .unwrap();
    let resp = client()
        .get(format!(
            "http://127.0.0.1:{port}/order?customer=alice&items=apple:2,pear:1&coupon=TENOFF"
        ))
        .bearer_auth("let-me-in")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.text().await.unwrap(),
        "order 5595653295556370804 for alice: apple x2 = 100, pear x1 = 75; total 158 cents (discount 10%)\n"
    );
    let (status, body) = get(port, "/catalogue").await;
    assert_eq!(status, 200);
    assert!(body.starts_with("apple 50\n"), "{body}");
    let calls = one.calls();
    assert_eq!((calls.local, calls.remote, calls.failed), (2, 0, 0));
}

#[tokio::test]
async fn a_link_passing_resources_is_refused_at_apply() {
    // A component importing an interface whose function returns a resource handle.
    let wasm = wat::parse_str(
        r#"(component
             (import "example:res/things@0.1.0" (instance
               (export "thing" (type (sub resource)))
               (export "make" (func (result (own 0))))
             ))
           )"#,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("maker.wasm");
    std::fs::write(&path, wasm).unwrap();
    let maker = Component::image("maker", &format!("file://{}", path.display())).link(Link::to(
        "echo",
        "example:res",
        &["things"],
    ));
    let manifest = App::new("things")
        .with(maker)
        .with(Component::wasm("echo", "echo"))
        .manifest();
    let nats = NatsServer::start().unwrap();
    let one = host(&nats, &[]).await;
    let err = one
        .apply(WorkloadSpec {
            manifest,
            placements: [("maker".to_string(), 1)].into(),
            secrets: None,
        })
        .await
        .unwrap_err();
    let lattice_host::ApplyError::Component(err) = err else {
        panic!("refused for another reason: {err}");
    };
    assert!(
        err.contains("component 'maker' of app 'things' cannot be linked: function 'make' of example:res/things passes a handle to resource 'thing' of example:res/things"),
        "{err}"
    );
    assert!(one.apps().is_empty());
}

#[tokio::test]
async fn an_overloaded_callee_answers_overloaded() {
    let nats = NatsServer::start().unwrap();
    let (edge, core) = (host(&nats, &[]).await, host(&nats, &[]).await);
    let app = echo_app(true, None);
    // One instance of echo and a queue of 4 (quick_limits): 12 slow calls at once
    // cannot all be admitted.
    let mut spec = placed(&app, &["echo"]);
    spec.placements.insert("echo".into(), 1);
    core.apply(spec).await.unwrap();
    let mut spec = placed(&app, &["relay"]);
    spec.placements.insert("relay".into(), 16);
    edge.apply(spec).await.unwrap();
    let calls = (0..12).map(|_| relay(&edge, "sleep", &[Val::U32(300)]));
    let results = futures::future::join_all(calls).await;
    let overloaded: Vec<&CallError> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(!overloaded.is_empty(), "every call was admitted");
    for err in &overloaded {
        assert!(err.message.contains("(overloaded)"), "{err}");
        assert!(
            err.message
                .contains("component 'echo' of app 'echoes' is overloaded"),
            "{err}"
        );
    }
    assert!(results.iter().any(Result::is_ok));
}

#[tokio::test]
async fn locality_follows_labels_changed_at_run_time() {
    let nats = NatsServer::start().unwrap();
    let edge = host(&nats, &[("zone", "b")]).await;
    let moved = host(&nats, &[("zone", "a")]).await;
    let other = host(&nats, &[("zone", "c")]).await;
    let app = echo_app(true, None);
    moved.apply(placed(&app, &["echo"])).await.unwrap();
    other.apply(placed(&app, &["echo"])).await.unwrap();
    edge.apply(placed(&app, &["relay"])).await.unwrap();
    // The host moves into the edge's zone while it serves.
    moved
        .set_labels([("zone".to_string(), "b".to_string())].into(), &[])
        .unwrap();
    moved.refresh_locality().await.unwrap();
    for i in 0..20u8 {
        relay(&edge, "echo-u8", &[Val::U8(i)]).await.unwrap();
    }
    assert_eq!((moved.calls().served, other.calls().served), (20, 0));
}

/// A provider process hears of the host's new locality labels too, so it serves
/// calls on the subjects of the labels the host has now (the SDK's side:
/// `providers/sdk/tests/serve.rs`). The provider here is a script that keeps the
/// lines it is told.
#[tokio::test]
async fn a_provider_is_told_labels_changed_at_run_time() {
    use std::os::unix::fs::PermissionsExt;
    let nats = NatsServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let told = dir.path().join("told");
    let script = dir.path().join("listening-provider");
    std::fs::write(
        &script,
        format!("#!/bin/sh\nexec cat > '{}'\n", told.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = HostConfig {
        limits: quick_limits(),
        labels: [("zone".to_string(), "a".to_string())].into(),
        allow_file_load: true,
        provider_nats_url: Some(nats.url()),
        ..HostConfig::default()
    };
    let host = Host::new(config, Some(nats.connect().await.unwrap())).unwrap();
    let manifest = App::new("prov")
        .with(Component::capability(
            "aprov",
            &format!("file://{}", script.display()),
        ))
        .manifest();
    let mut spec = lattice_testing::manifest::spec(manifest);
    spec.placements.insert("aprov".into(), 1);
    host.apply(spec).await.unwrap();
    told_lines(&told, "init", |l| {
        l.contains(r#""locality":[["zone","a"]]"#)
    })
    .await;

    host.set_labels([("zone".to_string(), "b".to_string())].into(), &[])
        .unwrap();
    host.refresh_locality().await.unwrap();
    told_lines(&told, "the new labels", |l| {
        l.lines()
            .any(|l| l == r#"{"v":1,"message":"locality","locality":[["zone","b"]]}"#)
    })
    .await;
}

/// Wait up to 5 s until the lines in `file` satisfy `want`.
async fn told_lines(file: &std::path::Path, what: &str, want: impl Fn(&str) -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let lines = std::fs::read_to_string(file).unwrap_or_default();
        if want(&lines) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: the provider was told {lines}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
