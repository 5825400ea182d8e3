//! `wasi:keyvalue` on PostgreSQL: every `wrpc:keyvalue` function of the real
//! `sqldb-postgres` binary, called over NATS as a host calls it, checked in the
//! database too.

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

mod common;

use common::{link, Provider};
use lattice_protocol::provider::keyvalue::KvFunction;
use lattice_protocol::wire::WitValue;
use lattice_testing::keyvalue::{bytes, list, none, pair, s, some, Keyvalue};
use lattice_testing::nats::NatsServer;
use lattice_testing::postgres::PostgresServer;

fn kv_link(component: &str, url: &str) -> lattice_protocol::provider::ProviderLink {
    link(
        component,
        "wasi",
        "keyvalue",
        &["store", "atomics", "batch"],
        &[("url", url)],
    )
}

#[tokio::test]
async fn every_keyvalue_function_works_on_postgres() {
    let pg = PostgresServer::start().unwrap();
    let nats = NatsServer::builder().jetstream(false).start().unwrap();
    let provider = Provider::start(&nats, &[], vec![kv_link("counter", &pg.url())]).await;
    let p = Keyvalue::new(provider.process(), "counter");
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
    p.ok(Set, &[s("default"), s("a"), bytes(b"new")]).await;
    assert_eq!(
        p.ok(Get, &[s("default"), s("a")]).await,
        Some(some(bytes(b"new")))
    );
    // Buckets are separate.
    p.ok(Set, &[s("users"), s("a"), bytes(b"ana")]).await;
    assert_eq!(
        p.ok(Get, &[s("users"), s("a")]).await,
        Some(some(bytes(b"ana")))
    );
    assert_eq!(p.ok(Delete, &[s("users"), s("a")]).await, None);
    assert_eq!(p.ok(Get, &[s("users"), s("a")]).await, Some(none()));
    assert_eq!(
        p.ok(Get, &[s("default"), s("a")]).await,
        Some(some(bytes(b"new")))
    );
    assert_eq!(p.ok(Delete, &[s("users"), s("never")]).await, None);

    // atomics
    let inc = |key: &'static str, n: u64| [s("c"), s(key), WitValue::U64(n)];
    assert_eq!(p.ok(Increment, &inc("n", 5)).await, Some(WitValue::U64(5)));
    assert_eq!(p.ok(Increment, &inc("n", 2)).await, Some(WitValue::U64(7)));
    assert_eq!(p.ok(Get, &[s("c"), s("n")]).await, Some(some(bytes(b"7"))));
    let e = p
        .other_error(Increment, &[s("default"), s("a"), WitValue::U64(1)])
        .await;
    assert!(
        e.contains("cannot increment 'a' by 1: its value is not an integer"),
        "{e}"
    );
    assert_eq!(
        p.ok(Increment, &inc("big", u64::MAX)).await,
        Some(WitValue::U64(u64::MAX))
    );
    let e = p.other_error(Increment, &inc("big", 1)).await;
    assert!(e.contains("the sum is over 18446744073709551615"), "{e}");
    // Increments at once are all counted.
    let args = inc("many", 1);
    let many = (0..20).map(|_| p.ok(Increment, &args));
    futures::future::join_all(many).await;
    assert_eq!(
        p.ok(Get, &[s("c"), s("many")]).await,
        Some(some(bytes(b"20")))
    );

    // batch
    let kvs = list(vec![
        pair("x", b"1"),
        pair("y", b"2"),
        pair("z", b"3"),
        pair("x", b"4"),
    ]);
    assert_eq!(p.ok(SetMany, &[s("b"), kvs]).await, None);
    let asked = list(vec![s("x"), s("missing"), s("z")]);
    assert_eq!(
        p.ok(GetMany, &[s("b"), asked]).await,
        Some(list(vec![
            some(pair("x", b"4")),
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

    // list-keys pages through a bucket in key order and sees only that bucket.
    let many: Vec<String> = (0..2_500).map(|i| format!("k{i:04}")).collect();
    for chunk in many.chunks(500) {
        let kvs = list(chunk.iter().map(|k| pair(k, b"v")).collect());
        p.ok(SetMany, &[s("many"), kvs]).await;
    }
    assert_eq!(p.keys("many").await, many);
    assert_eq!(p.keys("c").await, vec!["big", "many", "n"]);
    assert_eq!(p.keys("nothing").await, Vec::<String>::new());

    // It is all in the table, under the caller's app.
    let db = common::connect(&pg.url()).await;
    let row = db
        .query_one(
            "SELECT value FROM lattice_kv WHERE app = 'shop' AND bucket = 'c' AND key = 'n'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Vec<u8>>(0), b"7");
    let apps: Vec<String> = db
        .query("SELECT DISTINCT app FROM lattice_kv", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(apps, vec!["shop"]);

    // A statement that waits past the caller's deadline (here on a lock) is
    // cancelled, and the answer is the function's error.
    let mut db = db;
    let tx = db.transaction().await.unwrap();
    tx.batch_execute("LOCK TABLE lattice_kv").await.unwrap();
    let started = std::time::Instant::now();
    let result = p
        .timeout(std::time::Duration::from_secs(2))
        .call(Set, &[s("c"), s("n"), bytes(b"9")])
        .await
        .unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    match common::err_of(result) {
        WitValue::Variant(case, Some(m)) if case == "other" => {
            assert!(
                matches!(*m, WitValue::String(ref m) if m.contains("the statement was cancelled")),
                "{m:?}"
            )
        }
        other => panic!("{other:?}"),
    }
    tx.rollback().await.unwrap();
    assert_eq!(p.ok(Get, &[s("c"), s("n")]).await, Some(some(bytes(b"7"))));
    provider.shutdown().await;
}

#[tokio::test]
async fn no_database_is_the_functions_error_and_a_bad_config_stops_it() {
    let nats = NatsServer::builder().jetstream(false).start().unwrap();
    let provider = Provider::start(
        &nats,
        &[],
        vec![kv_link(
            "counter",
            "postgres://postgres@127.0.0.1:1/postgres",
        )],
    )
    .await;
    let p = Keyvalue::new(provider.process(), "counter");
    let e = p
        .other_error(KvFunction::Get, &[s("default"), s("a")])
        .await;
    assert!(
        e.starts_with("cannot connect to postgres://postgres@127.0.0.1:1/postgres: "),
        "{e}"
    );
    provider.shutdown().await;

    let child = common::spawn(
        &nats,
        &[("url", "postgres://u:hunter2@h:notaport/d")],
        vec![],
    )
    .await;
    let out = tokio::time::timeout(std::time::Duration::from_secs(10), child.wait_with_output())
        .await
        .expect("sqldb-postgres kept running with a bad config")
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        text.contains("sqldb-postgres provider 'db' of app 'shop' has a bad config"),
        "{text}"
    );
    assert!(text.contains("is not a PostgreSQL URL"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}
