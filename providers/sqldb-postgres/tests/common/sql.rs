//! Helpers of the tests calling `wasmcloud:postgres` directly: WIT values as a
//! component builds them, and `query` with its rows unpacked.

use super::{case, err_of, error_case, s, sql_link, Provider};
use lattice_protocol::wire::WitValue;
use lattice_testing::nats::NatsServer;
use lattice_testing::postgres::PostgresServer;
use std::time::Duration;

pub const T: Duration = Duration::from_secs(10);

pub fn null() -> WitValue {
    WitValue::Variant("null".into(), None)
}

pub fn list(items: Vec<WitValue>) -> WitValue {
    WitValue::List(items)
}

pub fn bytes(b: &[u8]) -> WitValue {
    WitValue::Bytes(b.to_vec())
}

/// `integer_decode` of an f64 / f32, as a component sends it.
pub fn f64_value(f: f64) -> WitValue {
    let bits = f.to_bits();
    let exponent = ((bits >> 52) & 0x7ff) as i16;
    let mantissa = if exponent == 0 {
        (bits & 0xf_ffff_ffff_ffff) << 1
    } else {
        (bits & 0xf_ffff_ffff_ffff) | 0x10_0000_0000_0000
    };
    let sign = if bits >> 63 == 0 { 1 } else { -1 };
    WitValue::Tuple(vec![
        WitValue::U64(mantissa),
        WitValue::S16(exponent - 1075),
        WitValue::S8(sign),
    ])
}

pub fn f32_value(f: f32) -> WitValue {
    let bits = f.to_bits();
    let exponent = ((bits >> 23) & 0xff) as i16;
    let mantissa = if exponent == 0 {
        (bits & 0x7f_ffff) << 1
    } else {
        (bits & 0x7f_ffff) | 0x80_0000
    };
    let sign = if bits >> 31 == 0 { 1 } else { -1 };
    WitValue::Tuple(vec![
        WitValue::U64(u64::from(mantissa)),
        WitValue::S16(exponent - 150),
        WitValue::S8(sign),
    ])
}

pub fn ymd(y: i32, m: u32, d: u32) -> WitValue {
    case(
        "ymd",
        WitValue::Tuple(vec![WitValue::S32(y), WitValue::U32(m), WitValue::U32(d)]),
    )
}

pub fn time(hour: u32, min: u32, sec: u32, micro: u32) -> WitValue {
    WitValue::Record(vec![
        ("hour".into(), WitValue::U32(hour)),
        ("min".into(), WitValue::U32(min)),
        ("sec".into(), WitValue::U32(sec)),
        ("micro".into(), WitValue::U32(micro)),
    ])
}

pub fn timestamp(date: WitValue, time: WitValue) -> WitValue {
    WitValue::Record(vec![("date".into(), date), ("time".into(), time)])
}

pub fn timestamp_tz(timestamp: WitValue, offset: &str, secs: i32) -> WitValue {
    WitValue::Record(vec![
        ("timestamp".into(), timestamp),
        ("offset".into(), case(offset, WitValue::S32(secs))),
    ])
}

/// `query` as `component`: rows as `(column, value)` pairs, or the error case.
pub async fn query(
    p: &Provider,
    component: &str,
    sql: &str,
    params: Vec<WitValue>,
) -> Result<Vec<Vec<(String, WitValue)>>, (String, String)> {
    let result = p
        .sql(component, "query", &[s(sql), list(params)], T)
        .await
        .unwrap_or_else(|e| panic!("{sql}: the call failed: {e:?}"));
    let rows = match result {
        WitValue::Result(Ok(Some(rows))) => *rows,
        other => return Err(error_case(&err_of(other))),
    };
    let WitValue::List(rows) = rows else { panic!() };
    Ok(rows
        .into_iter()
        .map(|row| {
            let WitValue::List(entries) = row else {
                panic!()
            };
            entries
                .into_iter()
                .map(|e| match e {
                    WitValue::Record(mut f) => {
                        let value = f.pop().unwrap().1;
                        let WitValue::String(name) = f.pop().unwrap().1 else {
                            panic!()
                        };
                        (name, value)
                    }
                    other => panic!("{other:?}"),
                })
                .collect()
        })
        .collect())
}

/// The one value of a one-row, one-column query.
pub async fn value(p: &Provider, sql: &str, params: Vec<WitValue>) -> WitValue {
    let rows = query(p, "app", sql, params)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    assert_eq!(rows.len(), 1, "{sql}");
    assert_eq!(rows[0].len(), 1, "{sql}");
    rows[0][0].1.clone()
}

pub async fn start(pg: &PostgresServer, nats: &NatsServer) -> Provider {
    let url = pg.url();
    let links = vec![
        sql_link("app", &[("url", &url), ("pool_size", "2")]),
        sql_link("other", &[("url", &url)]),
        sql_link(
            "nowhere",
            &[("url", "postgres://postgres@127.0.0.1:1/postgres")],
        ),
        sql_link(
            "secure",
            &[("url", &url), ("POSTGRES_TLS_REQUIRED", "true")],
        ),
    ];
    Provider::start(nats, &[], links).await
}
