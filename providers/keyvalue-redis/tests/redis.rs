//! The real `keyvalue-redis` binary against a real redis-server and nats-server,
//! called over NATS exactly as a host calls it.

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

use lattice_protocol::provider::keyvalue::KvFunction;
use lattice_protocol::provider::ProviderLink;
use lattice_protocol::wire::WitValue;
use lattice_testing::keyvalue::{bytes, list, none, pair, s, some, Keyvalue};
use lattice_testing::nats::NatsServer;
use lattice_testing::provider::{ProviderProcess, ProviderSetup};
use lattice_testing::redis::RedisServer;
use std::time::Duration;
use tokio::process::Child;

const APP: &str = "counter";
const NAME: &str = "kv";
/// Nothing listens there.
const NO_REDIS: &str = "redis://127.0.0.1:1";

fn link(component: &str, url: Option<&str>) -> ProviderLink {
    ProviderLink {
        component: component.into(),
        to_provider: true,
        name: "default".into(),
        namespace: "wasi".into(),
        package: "keyvalue".into(),
        interfaces: vec!["store".into(), "atomics".into(), "batch".into()],
        config: url
            .map(|u| ("url".to_owned(), u.to_owned()))
            .into_iter()
            .collect(),
        secrets: Default::default(),
    }
}

fn setup(config_url: &str, links: Vec<ProviderLink>) -> ProviderSetup<'static> {
    ProviderSetup {
        executable: env!("CARGO_BIN_EXE_keyvalue-redis"),
        app: APP,
        name: NAME,
        config: [("url".to_owned(), config_url.to_owned())].into(),
        links,
    }
}

async fn spawn(nats: &NatsServer, config_url: &str, links: Vec<ProviderLink>) -> Child {
    lattice_testing::provider::spawn(nats, setup(config_url, links)).await
}

/// Every key of `bucket`, sorted (Redis lists them in no order).
async fn all_keys(p: &Keyvalue<'_>, bucket: &str) -> Vec<String> {
    let mut keys = p.keys(bucket).await;
    keys.sort();
    keys
}

#[tokio::test]
async fn every_function_works_on_redis() {
    let redis = RedisServer::start().unwrap();
    let nats = NatsServer::builder().jetstream(false).start().unwrap();
    // The link's url wins over the provider's (which points nowhere).
    let links = vec![link("counter", Some(&redis.url())), link("lost", None)];
    let provider = ProviderProcess::start(&nats, setup(NO_REDIS, links)).await;
    let p = Keyvalue::new(&provider, "counter");
    use KvFunction::*;

    // store
    assert_eq!(p.ok(Get, &[s("default"), s("a")]).await, Some(none()));
    assert_eq!(
        p.ok(Exists, &[s("default"), s("a")]).await,
        Some(WitValue::Bool(false))
    );
    assert_eq!(
        p.ok(Set, &[s("default"), s("a"), bytes(&[1, 2, 3])]).await,
        None
    );
    assert_eq!(
        p.ok(Get, &[s(""), s("a")]).await,
        Some(some(bytes(&[1, 2, 3])))
    );
    assert_eq!(
        p.ok(Exists, &[s("default"), s("a")]).await,
        Some(WitValue::Bool(true))
    );
    // Buckets are key prefixes.
    p.ok(Set, &[s("users"), s("a"), bytes(b"ana")]).await;
    assert_eq!(
        p.ok(Get, &[s("users"), s("a")]).await,
        Some(some(bytes(b"ana")))
    );
    assert_eq!(
        p.ok(Get, &[s("default"), s("users:a")]).await,
        Some(some(bytes(b"ana")))
    );
    assert_eq!(p.ok(Delete, &[s("users"), s("a")]).await, None);
    assert_eq!(p.ok(Get, &[s("users"), s("a")]).await, Some(none()));
    assert_eq!(
        p.ok(Get, &[s("default"), s("a")]).await,
        Some(some(bytes(&[1, 2, 3])))
    );
    assert_eq!(p.ok(Delete, &[s("users"), s("never")]).await, None);

    // atomics
    assert_eq!(
        p.ok(Increment, &[s("c"), s("n"), WitValue::U64(5)]).await,
        Some(WitValue::U64(5))
    );
    assert_eq!(
        p.ok(Increment, &[s("c"), s("n"), WitValue::U64(2)]).await,
        Some(WitValue::U64(7))
    );
    assert_eq!(p.ok(Get, &[s("c"), s("n")]).await, Some(some(bytes(b"7"))));
    let e = p
        .other_error(Increment, &[s("default"), s("a"), WitValue::U64(1)])
        .await;
    assert!(e.contains("not an integer"), "{e}");
    let e = p
        .other_error(Increment, &[s("c"), s("n"), WitValue::U64(u64::MAX)])
        .await;
    assert!(
        e.contains("cannot increment 'c:n' by 18446744073709551615"),
        "{e}"
    );

    // batch
    let kvs = list(vec![pair("x", b"1"), pair("y", b"2"), pair("z", b"3")]);
    assert_eq!(p.ok(SetMany, &[s("b"), kvs]).await, None);
    let asked = list(vec![s("x"), s("missing"), s("z")]);
    assert_eq!(
        p.ok(GetMany, &[s("b"), asked]).await,
        Some(list(vec![
            some(pair("x", b"1")),
            none(),
            some(pair("z", b"3"))
        ]))
    );
    assert_eq!(
        p.ok(DeleteMany, &[s("b"), list(vec![s("x"), s("y")])])
            .await,
        None
    );
    assert_eq!(
        p.ok(GetMany, &[s("b"), list(vec![s("x"), s("y"), s("z")])])
            .await,
        Some(list(vec![none(), none(), some(pair("z", b"3"))]))
    );
    assert_eq!(
        p.ok(GetMany, &[s("b"), list(vec![])]).await,
        Some(list(vec![]))
    );
    assert_eq!(p.ok(SetMany, &[s("b"), list(vec![])]).await, None);
    assert_eq!(p.ok(DeleteMany, &[s("b"), list(vec![])]).await, None);

    // list-keys: pages through a bucket, sees only its own keys, strips the prefix
    // and takes glob characters in bucket names literally.
    let many: Vec<String> = (0..1_500).map(|i| format!("k{i:04}")).collect();
    for chunk in many.chunks(500) {
        let kvs = list(chunk.iter().map(|k| pair(k, b"v")).collect());
        p.ok(SetMany, &[s("many"), kvs]).await;
    }
    assert_eq!(all_keys(&p, "many").await, many);
    p.ok(Set, &[s("we*rd"), s("k1"), bytes(b"1")]).await;
    p.ok(Set, &[s("weXrd"), s("k2"), bytes(b"2")]).await;
    assert_eq!(all_keys(&p, "we*rd").await, vec!["k1".to_owned()]);
    assert_eq!(all_keys(&p, "c").await, vec!["n".to_owned()]);
    // a, c:n, b:z, we*rd:k1, weXrd:k2 and the 1500 of `many`.
    assert_eq!(all_keys(&p, "default").await.len(), 1_500 + 5);

    // A link without a url uses the provider's, where no Redis runs: the error is
    // the function's err(other).
    let e = Keyvalue::new(&provider, "lost")
        .other_error(Get, &[s("default"), s("a")])
        .await;
    assert!(e.starts_with("redis at redis://127.0.0.1:1: "), "{e}");

    // An unlinked component is refused before any Redis command.
    let (kind, message) = Keyvalue::new(&provider, "stranger")
        .call(Get, &[s("default"), s("a")])
        .await
        .unwrap_err();
    assert_eq!(kind, "refused");
    assert!(message.contains("component 'stranger'"), "{message}");

    provider.shutdown().await;
}

#[tokio::test]
async fn a_bad_config_stops_it_with_a_clear_error() {
    let nats = NatsServer::builder().jetstream(false).start().unwrap();
    let child = spawn(&nats, "http://:hunter2@example.invalid", vec![]).await;
    let out = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .expect("keyvalue-redis kept running with a bad config")
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        text.contains("keyvalue-redis provider 'kv' of app 'counter' has a bad config"),
        "{text}"
    );
    assert!(
        text.contains("'url': 'http://***@example.invalid' is not a Redis URL"),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "{text}");
}
