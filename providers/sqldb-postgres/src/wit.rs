//! The types of `wasmcloud:postgres@0.1.1-draft` (`wit/deps/postgres/package.wit`)
//! as the wire sees them, and the four functions served. Callers' hosts compute
//! the signature fingerprint from the component's own import types, so these must
//! match the WIT exactly: type aliases are structural, cases and fields keep their
//! declaration order.

use lattice_provider::WitType;

pub const QUERY: &str = "wasmcloud:postgres/query";
pub const PREPARED: &str = "wasmcloud:postgres/prepared";

/// One served function: interface, name, parameter and result types.
pub struct Signature {
    pub interface: &'static str,
    pub name: &'static str,
    pub params: Vec<WitType>,
    pub results: Vec<WitType>,
}

/// `query.query`, `query.query-batch`, `prepared.prepare`, `prepared.exec`.
pub fn functions() -> [Signature; 4] {
    let s = || WitType::String;
    let params = || WitType::list(pg_value());
    let rows = || WitType::list(WitType::list(result_row_entry()));
    [
        Signature {
            interface: QUERY,
            name: "query",
            params: vec![s(), params()],
            results: vec![WitType::result(Some(rows()), Some(query_error()))],
        },
        Signature {
            interface: QUERY,
            name: "query-batch",
            params: vec![s()],
            results: vec![WitType::result(None, Some(query_error()))],
        },
        Signature {
            interface: PREPARED,
            name: "prepare",
            params: vec![s()],
            results: vec![WitType::result(Some(s()), Some(statement_prepare_error()))],
        },
        Signature {
            interface: PREPARED,
            name: "exec",
            params: vec![s(), params()],
            results: vec![WitType::result(
                Some(WitType::U64),
                Some(prepared_statement_exec_error()),
            )],
        },
    ]
}

pub fn query_error() -> WitType {
    WitType::variant([
        ("invalid-params", Some(WitType::String)),
        ("invalid-query", Some(WitType::String)),
        ("unexpected", Some(WitType::String)),
    ])
}

pub fn statement_prepare_error() -> WitType {
    WitType::variant([("unexpected", Some(WitType::String))])
}

pub fn prepared_statement_exec_error() -> WitType {
    WitType::variant([
        ("unknown-prepared-query", None),
        ("query-error", Some(query_error())),
        ("unexpected", Some(WitType::String)),
    ])
}

/// `record result-row-entry { column-name: string, value: pg-value }`.
pub fn result_row_entry() -> WitType {
    WitType::record([("column-name", WitType::String), ("value", pg_value())])
}

/// `type hashable-f64 = tuple<u64, s16, s8>` (also `hashable-f32`, `radius`).
fn hashable_f64() -> WitType {
    WitType::Tuple(vec![WitType::U64, WitType::S16, WitType::S8])
}

fn point() -> WitType {
    WitType::Tuple(vec![hashable_f64(), hashable_f64()])
}

fn two_points() -> WitType {
    WitType::Tuple(vec![point(), point()])
}

fn circle() -> WitType {
    WitType::Tuple(vec![point(), hashable_f64()])
}

fn date() -> WitType {
    WitType::variant([
        ("positive-infinity", None),
        ("negative-infinity", None),
        (
            "ymd",
            Some(WitType::Tuple(vec![
                WitType::S32,
                WitType::U32,
                WitType::U32,
            ])),
        ),
    ])
}

fn time() -> WitType {
    WitType::record([
        ("hour", WitType::U32),
        ("min", WitType::U32),
        ("sec", WitType::U32),
        ("micro", WitType::U32),
    ])
}

fn time_tz() -> WitType {
    WitType::record([("timesonze", WitType::String), ("time", time())])
}

fn timestamp() -> WitType {
    WitType::record([("date", date()), ("time", time())])
}

fn offset() -> WitType {
    WitType::variant([
        ("eastern-hemisphere-secs", Some(WitType::S32)),
        ("western-hemisphere-secs", Some(WitType::S32)),
    ])
}

fn timestamp_tz() -> WitType {
    WitType::record([("timestamp", timestamp()), ("offset", offset())])
}

fn interval() -> WitType {
    WitType::record([
        ("start", date()),
        ("start-inclusive", WitType::Bool),
        ("end", date()),
        ("end-inclusive", WitType::Bool),
    ])
}

fn mac(octets: usize) -> WitType {
    WitType::record([("bytes", WitType::Tuple(vec![WitType::U8; octets]))])
}

fn lexeme() -> WitType {
    WitType::record([
        ("position", WitType::option(WitType::U16)),
        (
            "weight",
            WitType::option(WitType::enumeration(["A", "B", "C", "D"])),
        ),
        ("data", WitType::String),
    ])
}

/// `variant pg-value`, every case in declaration order.
pub fn pg_value() -> WitType {
    use WitType::{Bool, String as Str, S16, S32, S64, U32, U64, U8};
    let list = WitType::list;
    let bytes = || list(U8);
    let bits = || WitType::Tuple(vec![U32, bytes()]);
    let varbits = || WitType::Tuple(vec![WitType::option(U32), bytes()]);
    let snapshot = WitType::Tuple(vec![S64, S64, list(S64)]);
    let hstore = list(WitType::Tuple(vec![Str, WitType::option(Str)]));
    let cases: Vec<(&str, Option<WitType>)> = vec![
        ("null", None),
        ("big-int", Some(S64)),
        ("int8", Some(S64)),
        ("int8-array", Some(list(S64))),
        ("big-serial", Some(S64)),
        ("serial8", Some(S64)),
        ("bool", Some(Bool)),
        ("boolean", Some(Bool)),
        ("bool-array", Some(list(Bool))),
        ("double", Some(hashable_f64())),
        ("float8", Some(hashable_f64())),
        ("float8-array", Some(list(hashable_f64()))),
        ("real", Some(hashable_f64())),
        ("float4", Some(hashable_f64())),
        ("float4-array", Some(list(hashable_f64()))),
        ("integer", Some(S32)),
        ("int", Some(S32)),
        ("int4", Some(S32)),
        ("int4-array", Some(list(S32))),
        ("numeric", Some(Str)),
        ("decimal", Some(Str)),
        ("numeric-array", Some(list(Str))),
        ("serial", Some(U32)),
        ("serial4", Some(U32)),
        ("small-int", Some(S16)),
        ("int2", Some(S16)),
        ("int2-array", Some(list(S16))),
        ("int2-vector", Some(list(S16))),
        ("int2-vector-array", Some(list(list(S16)))),
        ("small-serial", Some(S16)),
        ("serial2", Some(S16)),
        ("bit", Some(bits())),
        ("bit-array", Some(list(bits()))),
        ("bit-varying", Some(varbits())),
        ("varbit", Some(varbits())),
        ("varbit-array", Some(list(varbits()))),
        ("bytea", Some(bytes())),
        ("bytea-array", Some(list(bytes()))),
        ("char", Some(bits())),
        ("char-array", Some(list(bits()))),
        ("varchar", Some(varbits())),
        ("varchar-array", Some(list(varbits()))),
        ("cidr", Some(Str)),
        ("cidr-array", Some(list(Str))),
        ("inet", Some(Str)),
        ("inet-array", Some(list(Str))),
        ("macaddr", Some(mac(6))),
        ("macaddr-array", Some(list(mac(6)))),
        ("macaddr8", Some(mac(8))),
        ("macaddr8-array", Some(list(mac(8)))),
        ("box", Some(two_points())),
        ("box-array", Some(list(two_points()))),
        ("circle", Some(circle())),
        ("circle-array", Some(list(circle()))),
        ("line", Some(two_points())),
        ("line-array", Some(list(two_points()))),
        ("lseg", Some(two_points())),
        ("lseg-array", Some(list(two_points()))),
        ("path", Some(list(point()))),
        ("path-array", Some(list(list(point())))),
        ("point", Some(point())),
        ("point-array", Some(list(point()))),
        ("polygon", Some(list(point()))),
        ("polygon-array", Some(list(list(point())))),
        ("date", Some(date())),
        ("date-array", Some(list(date()))),
        ("interval", Some(interval())),
        ("interval-array", Some(list(interval()))),
        ("time", Some(time())),
        ("time-array", Some(list(time()))),
        ("time-tz", Some(time_tz())),
        ("time-tz-array", Some(list(time_tz()))),
        ("timestamp", Some(timestamp())),
        ("timestamp-array", Some(list(timestamp()))),
        ("timestamp-tz", Some(timestamp_tz())),
        ("timestamp-tz-array", Some(list(timestamp_tz()))),
        ("json", Some(Str)),
        ("json-array", Some(list(Str))),
        ("jsonb", Some(Str)),
        ("jsonb-array", Some(list(Str))),
        ("money", Some(Str)),
        ("money-array", Some(list(Str))),
        ("pg-lsn", Some(U64)),
        ("pg-lsn-array", Some(list(U64))),
        ("pg-snapshot", Some(snapshot)),
        ("txid-snapshot", Some(S64)),
        ("name", Some(Str)),
        ("name-array", Some(list(Str))),
        ("text", Some(Str)),
        ("text-array", Some(list(Str))),
        ("xml", Some(Str)),
        ("xml-array", Some(list(Str))),
        ("ts-query", Some(Str)),
        ("ts-vector", Some(list(lexeme()))),
        ("uuid", Some(Str)),
        ("uuid-array", Some(list(Str))),
        ("hstore", Some(hstore)),
    ];
    WitType::Variant(cases.into_iter().map(|(n, t)| (n.to_owned(), t)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every case name of `variant pg-value` in `wit/deps/postgres/package.wit`, in
    /// order, read from the file itself.
    fn cases_in_the_wit() -> Vec<String> {
        let wit = include_str!("../../../wit/deps/postgres/package.wit");
        let body = wit
            .split_once("variant pg-value {")
            .unwrap()
            .1
            .split_once("\n  }")
            .unwrap()
            .0;
        body.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("//"))
            .map(|l| {
                let name = l.split(['(', ',']).next().unwrap();
                name.trim_start_matches('%').to_owned()
            })
            .collect()
    }

    #[test]
    fn pg_value_has_the_cases_of_the_wit_in_order() {
        let WitType::Variant(cases) = pg_value() else {
            panic!()
        };
        let names: Vec<String> = cases.into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, cases_in_the_wit());
    }

    #[test]
    fn signatures_read_like_the_wit() {
        let [query, batch, prepare, exec] = functions();
        assert_eq!(
            lattice_protocol::wire::signature(&batch.params, &batch.results),
            "func(string) -> result<_, variant { invalid-params(string), invalid-query(string), unexpected(string) }>"
        );
        assert_eq!(
            lattice_protocol::wire::signature(&prepare.params, &prepare.results),
            "func(string) -> result<string, variant { unexpected(string) }>"
        );
        let exec = lattice_protocol::wire::signature(&exec.params, &exec.results);
        assert!(exec.ends_with(
            "-> result<u64, variant { unknown-prepared-query, query-error(variant { invalid-params(string), invalid-query(string), unexpected(string) }), unexpected(string) }>"
        ), "{exec}");
        let query = lattice_protocol::wire::signature(&query.params, &query.results);
        assert!(
            query.starts_with("func(string, list<variant { null, big-int(s64), int8(s64),"),
            "{query}"
        );
        assert!(
            query.contains(
                "-> result<list<list<record { column-name: string, value: variant { null,"
            ),
            "{query}"
        );
    }
}
