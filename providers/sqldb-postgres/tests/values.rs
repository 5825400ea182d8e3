//! Typed values through the real `sqldb-postgres` binary, both ways: each
//! `pg-value` parameter as PostgreSQL prints it (its encoding alone), and back as
//! the typed `pg-value` of its column.

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

mod common;

use common::sql::{
    bytes, f32_value, f64_value, list, null, query, start, time, timestamp, timestamp_tz, value,
    ymd,
};
use common::{case, s};
use lattice_protocol::wire::WitValue;
use lattice_testing::nats::NatsServer;
use lattice_testing::postgres::PostgresServer;

/// `(case, payload)` of a pg-value.
type Pg = (&'static str, WitValue);

/// A parameter, its SQL type, PostgreSQL's text of it, and what comes back.
struct Case {
    param: Pg,
    ty: &'static str,
    text: &'static str,
    back: Pg,
}

/// A value that comes back as it went.
fn same(param: Pg, ty: &'static str, text: &'static str) -> Case {
    Case {
        back: param.clone(),
        param,
        ty,
        text,
    }
}

fn changed(param: Pg, ty: &'static str, text: &'static str, back: Pg) -> Case {
    Case {
        param,
        ty,
        text,
        back,
    }
}

fn cases() -> Vec<Case> {
    use WitValue::{Bool, Option as Opt, Tuple, S16, S32, S64, U32};
    let varchar = || Tuple(vec![Opt(None), bytes(b"abc")]);
    let char2 = || Tuple(vec![U32(2), bytes(b"ab")]);
    let ts = || timestamp(ymd(1999, 12, 31), time(23, 59, 59, 500_000));
    let noon_plus_2 = timestamp(ymd(2024, 6, 1), time(12, 0, 0, 0));
    let ten_utc = timestamp(ymd(2024, 6, 1), time(10, 0, 0, 0));
    let inf = || WitValue::Variant("positive-infinity".into(), None);
    let one = "00000000-0000-0000-0000-000000000001";
    vec![
        same(("int2", S16(-7)), "int2", "-7"),
        same(("int4", S32(123_456)), "int4", "123456"),
        same(("int8", S64(i64::MAX)), "int8", "9223372036854775807"),
        changed(("int", S32(5)), "int8", "5", ("int8", S64(5))),
        changed(("serial4", U32(9)), "int4", "9", ("int4", S32(9))),
        same(("bool", Bool(true)), "bool", "true"),
        same(("float8", f64_value(0.1)), "float8", "0.1"),
        changed(
            ("double", f64_value(-2.5e-300)),
            "float8",
            "-2.5e-300",
            ("float8", f64_value(-2.5e-300)),
        ),
        same(("float4", f32_value(1.5)), "float4", "1.5"),
        same(("numeric", s("12345.678")), "numeric", "12345.678"),
        changed(
            ("decimal", s("-0.000123")),
            "numeric",
            "-0.000123",
            ("numeric", s("-0.000123")),
        ),
        same(
            ("numeric", s("98765432109876543210.5")),
            "numeric",
            "98765432109876543210.5",
        ),
        same(("text", s("héllo wörld")), "text", "héllo wörld"),
        same(("varchar", varchar()), "varchar", "abc"),
        same(("char", char2()), "char(2)", "ab"),
        same(("name", s("pg_class")), "name", "pg_class"),
        same(("bytea", bytes(&[0, 1, 255])), "bytea", "\\x0001ff"),
        same(("json", s("{\"a\": [1, 2]}")), "json", "{\"a\": [1, 2]}"),
        changed(
            ("jsonb", s("{\"b\":1,\"a\":2}")),
            "jsonb",
            "{\"a\": 2, \"b\": 1}",
            ("jsonb", s("{\"a\": 2, \"b\": 1}")),
        ),
        changed(
            ("text", s("{\"t\":true}")),
            "jsonb",
            "{\"t\": true}",
            ("jsonb", s("{\"t\": true}")),
        ),
        changed(
            ("uuid", s("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11")),
            "uuid",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            ("uuid", s("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")),
        ),
        same(("date", ymd(2024, 2, 29)), "date", "2024-02-29"),
        same(("date", ymd(-44, 3, 15)), "date", "0045-03-15 BC"),
        same(("date", inf()), "date", "infinity"),
        same(("time", time(13, 45, 6, 789)), "time", "13:45:06.000789"),
        same(("timestamp", ts()), "timestamp", "1999-12-31 23:59:59.5"),
        changed(
            (
                "timestamp-tz",
                timestamp_tz(noon_plus_2, "eastern-hemisphere-secs", 7200),
            ),
            "timestamptz",
            "2024-06-01 10:00:00+00",
            (
                "timestamp-tz",
                timestamp_tz(ten_utc, "western-hemisphere-secs", 0),
            ),
        ),
        same(
            ("int4-array", list(vec![S32(1), S32(-2)])),
            "int4[]",
            "{1,-2}",
        ),
        same(("int8-array", list(vec![])), "int8[]", "{}"),
        same(
            ("text-array", list(vec![s("a"), s("b c")])),
            "text[]",
            "{a,\"b c\"}",
        ),
        same(("bool-array", list(vec![Bool(false)])), "bool[]", "{f}"),
        same(
            ("float8-array", list(vec![f64_value(1.25)])),
            "float8[]",
            "{1.25}",
        ),
        same(
            ("numeric-array", list(vec![s("1.50")])),
            "numeric[]",
            "{1.50}",
        ),
        same(
            ("uuid-array", list(vec![s(one)])),
            "uuid[]",
            "{00000000-0000-0000-0000-000000000001}",
        ),
        same(
            ("date-array", list(vec![ymd(2000, 1, 1)])),
            "date[]",
            "{2000-01-01}",
        ),
        same(
            ("bytea-array", list(vec![bytes(b"x")])),
            "bytea[]",
            "{\"\\\\x78\"}",
        ),
    ]
}

#[tokio::test]
async fn values_round_trip_with_their_types() {
    let pg = PostgresServer::start().unwrap();
    let nats = NatsServer::builder().jetstream(false).start().unwrap();
    let p = start(&pg, &nats).await;
    for Case {
        param,
        ty,
        text,
        back,
    } in cases()
    {
        let param = case(param.0, param.1);
        // What PostgreSQL understood, in its own words (the encoding alone).
        let sql = if ty == "timestamptz" {
            "SELECT ($1::timestamptz AT TIME ZONE 'UTC')::text || '+00'".to_owned()
        } else {
            format!("SELECT ($1::{ty})::text")
        };
        let printed = value(&p, &sql, vec![param.clone()]).await;
        assert_eq!(printed, case("text", s(text)), "{param:?} as {ty}");
        // And the value itself, typed.
        let typed = value(&p, &format!("SELECT $1::{ty} AS v"), vec![param.clone()]).await;
        assert_eq!(typed, case(back.0, back.1), "{param:?} as {ty}");
    }
    assert_eq!(value(&p, "SELECT $1::int4", vec![null()]).await, null());

    // Rows of a query: names and order of columns, NULLs, several rows.
    let sql = "SELECT n, n * 2 AS twice, CASE WHEN n > 1 THEN NULL ELSE 'one' END AS word \
               FROM generate_series(1, 2) AS n";
    let int4 = |n| case("int4", WitValue::S32(n));
    let rows = query(&p, "app", sql, vec![]).await.unwrap();
    assert_eq!(
        rows,
        vec![
            vec![
                ("n".into(), int4(1)),
                ("twice".into(), int4(2)),
                ("word".into(), case("text", s("one"))),
            ],
            vec![
                ("n".into(), int4(2)),
                ("twice".into(), int4(4)),
                ("word".into(), null()),
            ],
        ]
    );
    p.shutdown().await;
}
