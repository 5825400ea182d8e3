//! The real `sqldb-postgres` binary against a real PostgreSQL and nats-server,
//! called over NATS exactly as a host calls it: the functions' own errors,
//! deadlines, prepared-statement tokens and the pool's bound.

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

mod common;

use common::sql::{list, query, start, value, ymd, T};
use common::{case, err_of, error_case, ok, s};
use lattice_protocol::wire::WitValue;
use lattice_testing::nats::NatsServer;
use lattice_testing::postgres::PostgresServer;
use std::time::{Duration, Instant};

#[tokio::test]
async fn bad_statements_and_parameters_are_the_functions_errors() {
    let pg = PostgresServer::start().unwrap();
    let nats = NatsServer::builder().jetstream(false).start().unwrap();
    let p = start(&pg, &nats).await;
    let db = common::connect(&pg.url()).await;
    db.batch_execute("CREATE TABLE t (id int PRIMARY KEY, addr inet)")
        .await
        .unwrap();

    // Bad SQL: a clear err at once, not a hang.
    let started = Instant::now();
    let (kind, message) = query(&p, "app", "SELEC 1", vec![]).await.unwrap_err();
    assert_eq!(kind, "invalid-query");
    assert!(
        message.contains("syntax error at or near \"SELEC\" (SQLSTATE 42601)"),
        "{message}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let (kind, message) = query(&p, "app", "SELECT nope FROM t", vec![])
        .await
        .unwrap_err();
    assert_eq!(kind, "invalid-query");
    assert!(
        message.contains("column \"nope\" does not exist (SQLSTATE 42703)"),
        "{message}"
    );
    let batch = p
        .sql(
            "app",
            "query-batch",
            &[s("CREATE TABLE u (x int); BOGUS")],
            T,
        )
        .await
        .unwrap();
    let (kind, message) = error_case(&err_of(batch));
    assert_eq!(kind, "invalid-query");
    assert!(message.contains("syntax error"), "{message}");

    // Parameters that do not fit.
    let cases = [
        ("SELECT $1::int2", vec![case("int4", WitValue::S32(70_000))], "parameter $1: 70000 is out of range for int2"),
        ("SELECT $1::int4", vec![case("text", s("12"))], "parameter $1: a pg-value text does not fit a parameter of type int4; pass another case or cast the parameter in the query"),
        ("SELECT $1::int4, $2::int4", vec![case("int4", WitValue::S32(1))], "the statement takes 2 parameter(s) but 1 were given"),
        ("SELECT $1::date", vec![case("date", ymd(2023, 2, 29))], "parameter $1: 2023-02-29 is not a date"),
        ("SELECT $1::uuid", vec![case("uuid", s("not-a-uuid"))], "parameter $1: 'not-a-uuid' is not a UUID"),
        ("SELECT $1::numeric", vec![case("numeric", s("1.2.3"))], "parameter $1: '1.2.3' is not a decimal number"),
        ("SELECT $1::text", vec![case("inet", s("10.0.0.1"))], "parameter $1: pg-value inet is not supported as a parameter by sqldb-postgres; pass it as text and cast it in the query (e.g. $1::inet)"),
    ];
    for (sql, params, expected) in cases {
        let (kind, message) = query(&p, "app", sql, params).await.unwrap_err();
        assert_eq!(
            (kind.as_str(), message.as_str()),
            ("invalid-params", expected),
            "{sql}"
        );
    }

    // A column of a type without a conversion: named, and the statement never ran.
    let (kind, message) = query(
        &p,
        "app",
        "INSERT INTO t VALUES (1, '10.0.0.1') RETURNING addr",
        vec![],
    )
    .await
    .unwrap_err();
    assert_eq!(kind, "invalid-query");
    assert_eq!(message, "column 'addr' has type inet, which sqldb-postgres does not return; cast it in the query (e.g. addr::text)");
    let count: i64 = db
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 0);
    let rows = query(
        &p,
        "app",
        "INSERT INTO t VALUES (1, '10.0.0.1') RETURNING host(addr) AS addr",
        vec![],
    )
    .await
    .unwrap();
    assert_eq!(rows[0][0].1, case("text", s("10.0.0.1")));

    // No database there, or no TLS where it is required: `unexpected`, saying why.
    let (kind, message) = query(&p, "nowhere", "SELECT 1", vec![]).await.unwrap_err();
    assert_eq!(kind, "unexpected");
    assert!(
        message.starts_with("cannot connect to postgres://postgres@127.0.0.1:1/postgres: "),
        "{message}"
    );
    let (kind, message) = query(&p, "secure", "SELECT 1", vec![]).await.unwrap_err();
    assert_eq!(kind, "unexpected");
    assert!(
        message.ends_with("error performing TLS handshake: server does not support TLS"),
        "{message}"
    );

    // A statement past the caller's deadline is cancelled in the database.
    let started = Instant::now();
    let slow = p
        .sql(
            "app",
            "query",
            &[s("SELECT pg_sleep(30)::text"), list(vec![])],
            Duration::from_secs(2),
        )
        .await
        .unwrap();
    let (kind, message) = error_case(&err_of(slow));
    assert_eq!(kind, "unexpected");
    assert!(
        message.contains("did not finish within") && message.contains("cancelled"),
        "{message}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let running = "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)::text' AND state = 'active'";
    let deadline = Instant::now() + Duration::from_secs(5);
    while db.query_one(running, &[]).await.unwrap().get::<_, i64>(0) > 0 {
        assert!(Instant::now() < deadline, "pg_sleep(30) still runs");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The pool still serves.
    assert_eq!(
        value(&p, "SELECT 1::int8", vec![]).await,
        case("int8", WitValue::S64(1))
    );
    p.shutdown().await;
}

#[tokio::test]
async fn prepared_statements_belong_to_their_component() {
    let pg = PostgresServer::start().unwrap();
    let nats = NatsServer::builder().jetstream(false).start().unwrap();
    let p = start(&pg, &nats).await;
    let db = common::connect(&pg.url()).await;
    db.batch_execute("CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)")
        .await
        .unwrap();

    let token = match p
        .sql(
            "app",
            "prepare",
            &[s("INSERT INTO items VALUES ($1, $2)")],
            T,
        )
        .await
        .unwrap()
    {
        WitValue::Result(Ok(Some(token))) => *token,
        other => panic!("{other:?}"),
    };
    let exec = |component: &'static str, token: WitValue, id: i32, name: &str| {
        let args = [
            token,
            list(vec![case("int4", WitValue::S32(id)), case("text", s(name))]),
        ];
        let p = &p;
        async move { p.sql(component, "exec", &args, T).await.unwrap() }
    };
    assert_eq!(
        exec("app", token.clone(), 1, "one").await,
        ok(Some(WitValue::U64(1)))
    );
    assert_eq!(
        exec("app", token.clone(), 2, "two").await,
        ok(Some(WitValue::U64(1)))
    );
    // Preparing it again gives the same token.
    let again = p
        .sql(
            "app",
            "prepare",
            &[s("INSERT INTO items VALUES ($1, $2)")],
            T,
        )
        .await
        .unwrap();
    assert_eq!(again, ok(Some(token.clone())));
    // Another component cannot use it; an unknown token is unknown.
    let e = err_of(exec("other", token.clone(), 3, "three").await);
    assert_eq!(e, WitValue::Variant("unknown-prepared-query".into(), None));
    let e = err_of(exec("app", s("ps-00000000000000000000000000000000"), 3, "x").await);
    assert_eq!(e, WitValue::Variant("unknown-prepared-query".into(), None));
    // Its errors: the database's (a duplicate key) and the parameters'.
    let (kind, message) = error_case(&err_of(exec("app", token.clone(), 1, "again").await));
    assert_eq!(kind, "query-error/invalid-query");
    assert!(
        message.contains(
            "duplicate key value violates unique constraint \"items_pkey\" (SQLSTATE 23505)"
        ),
        "{message}"
    );
    let args = [token.clone(), list(vec![case("int4", WitValue::S32(4))])];
    let (kind, message) = error_case(&err_of(p.sql("app", "exec", &args, T).await.unwrap()));
    assert_eq!(kind, "query-error/invalid-params");
    assert_eq!(
        message,
        "the statement takes 2 parameter(s) but 1 were given"
    );
    // Bad SQL is refused when prepared.
    let (kind, message) = error_case(&err_of(
        p.sql("app", "prepare", &[s("INSERT INTO nowhere VALUES (1)")], T)
            .await
            .unwrap(),
    ));
    assert_eq!(kind, "unexpected");
    assert!(
        message.contains("relation \"nowhere\" does not exist"),
        "{message}"
    );

    let rows = db
        .query("SELECT id, name FROM items ORDER BY id", &[])
        .await
        .unwrap();
    let found: Vec<(i32, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(found, vec![(1, "one".into()), (2, "two".into())]);
    // An unlinked component is refused before anything runs.
    let (kind, _) = p
        .sql("stranger", "query", &[s("SELECT 1"), list(vec![])], T)
        .await
        .unwrap_err();
    assert_eq!(kind, "refused");
    p.shutdown().await;
}

#[tokio::test]
async fn the_pool_is_bounded() {
    let pg = PostgresServer::start().unwrap();
    let nats = NatsServer::builder().jetstream(false).start().unwrap();
    let p = start(&pg, &nats).await; // `app`'s link: pool_size 2
    let db = common::connect(&pg.url()).await;
    let started = Instant::now();
    let calls = (0..6).map(|_| query(&p, "app", "SELECT pg_sleep(0.3)::text AS slept", vec![]));
    let peak = async {
        let mut peak = 0;
        while started.elapsed() < Duration::from_millis(800) {
            let sql =
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'lattice shop/db'";
            peak = peak.max(db.query_one(sql, &[]).await.unwrap().get::<_, i64>(0));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        peak
    };
    let (results, peak) = tokio::join!(futures::future::join_all(calls), peak);
    for r in results {
        assert!(r.is_ok(), "{r:?}");
    }
    // Six 0.3 s statements on two connections take three rounds.
    assert!(
        started.elapsed() >= Duration::from_millis(850),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(peak, 2);
    p.shutdown().await;
}
