//! Each `wrpc:keyvalue` function as Redis commands.
//!
//! | function | Redis |
//! |---|---|
//! | get | `GET` (nil → `ok(none)`) |
//! | set | `SET` |
//! | delete | `DEL` |
//! | exists | `EXISTS` |
//! | list-keys | `SCAN <cursor> MATCH <bucket prefix>* COUNT 1000` |
//! | increment | `INCRBY` |
//! | get-many | `MGET` |
//! | set-many | `MSET` |
//! | delete-many | `DEL k1 k2 ...` |
//!
//! A Redis failure is the function's `err(other(message))`, not a failed call.

use crate::keys::{bucket_key, redis_key, scan_pattern};
use crate::pool::Pool;
use crate::values::{self, arg, ok, other};
use lattice_protocol::provider::keyvalue::KvFunction;
use lattice_provider::{redact_url as redact, Call, WitValue};
use redis::aio::ConnectionManager;

/// Keys one SCAN step looks at (a hint to Redis, not a limit on what it returns).
const SCAN_COUNT: u64 = 1000;

/// One operation with its arguments read and its keys mapped into Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Get(String),
    Set(String, Vec<u8>),
    Delete(String),
    Exists(String),
    /// The bucket (to strip the prefix from results) and the cursor (0: start).
    ListKeys {
        bucket: String,
        cursor: u64,
    },
    Increment(String, u64),
    /// The bucket's keys and their Redis keys.
    GetMany(Vec<(String, String)>),
    SetMany(Vec<(String, Vec<u8>)>),
    DeleteMany(Vec<String>),
}

impl Op {
    /// Read the arguments of `function` (bucket first).
    pub fn parse(function: KvFunction, args: &[WitValue]) -> Result<Self, String> {
        let bucket = values::string(arg(args, 0)?)?;
        let key = || values::string(arg(args, 1)?).map(|k| redis_key(bucket, k));
        Ok(match function {
            KvFunction::Get => Op::Get(key()?),
            KvFunction::Set => Op::Set(key()?, values::to_bytes(arg(args, 2)?)?),
            KvFunction::Delete => Op::Delete(key()?),
            KvFunction::Exists => Op::Exists(key()?),
            KvFunction::ListKeys => Op::ListKeys {
                bucket: bucket.to_owned(),
                cursor: values::optional_u64(arg(args, 1)?)?.unwrap_or(0),
            },
            KvFunction::Increment => Op::Increment(key()?, values::u64(arg(args, 2)?)?),
            KvFunction::GetMany => Op::GetMany(
                values::strings(arg(args, 1)?)?
                    .into_iter()
                    .map(|k| (k.to_owned(), redis_key(bucket, k)))
                    .collect(),
            ),
            KvFunction::SetMany => Op::SetMany(
                values::list(arg(args, 1)?)?
                    .iter()
                    .map(|kv| values::key_value(kv).map(|(k, v)| (redis_key(bucket, k), v)))
                    .collect::<Result<_, _>>()?,
            ),
            KvFunction::DeleteMany => Op::DeleteMany(
                values::strings(arg(args, 1)?)?
                    .into_iter()
                    .map(|k| redis_key(bucket, k))
                    .collect(),
            ),
        })
    }

    /// Run it; the `ok` payload, or why it failed (`err(other(...))`).
    async fn run(self, con: &mut ConnectionManager) -> Result<Option<WitValue>, String> {
        let failed = |e: redis::RedisError| e.to_string();
        match self {
            Op::Get(key) => {
                let value: Option<Vec<u8>> = redis::cmd("GET")
                    .arg(&key)
                    .query_async(con)
                    .await
                    .map_err(failed)?;
                Ok(Some(values::option(value.map(values::bytes))))
            }
            Op::Set(key, value) => {
                let () = redis::cmd("SET")
                    .arg(&key)
                    .arg(value)
                    .query_async(con)
                    .await
                    .map_err(failed)?;
                Ok(None)
            }
            Op::Delete(key) => {
                let _: i64 = redis::cmd("DEL")
                    .arg(&key)
                    .query_async(con)
                    .await
                    .map_err(failed)?;
                Ok(None)
            }
            Op::Exists(key) => {
                let n: i64 = redis::cmd("EXISTS")
                    .arg(&key)
                    .query_async(con)
                    .await
                    .map_err(failed)?;
                Ok(Some(WitValue::Bool(n > 0)))
            }
            Op::ListKeys { bucket, cursor } => {
                let (next, found): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(scan_pattern(&bucket))
                    .arg("COUNT")
                    .arg(SCAN_COUNT)
                    .query_async(con)
                    .await
                    .map_err(failed)?;
                Ok(Some(key_response(&bucket, found, next)))
            }
            Op::Increment(key, delta) => {
                let delta = i64::try_from(delta).map_err(|_| {
                    format!(
                        "cannot increment '{key}' by {delta}: Redis takes increments up to {}",
                        i64::MAX
                    )
                })?;
                let n: i64 = redis::cmd("INCRBY")
                    .arg(&key)
                    .arg(delta)
                    .query_async(con)
                    .await
                    .map_err(|e| format!("cannot increment '{key}': {e}"))?;
                let n = u64::try_from(n)
                    .map_err(|_| format!("'{key}' is now {n}, which is not a u64"))?;
                Ok(Some(WitValue::U64(n)))
            }
            Op::GetMany(keys) if keys.is_empty() => Ok(Some(WitValue::List(vec![]))),
            Op::GetMany(keys) => {
                let found: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
                    .arg(keys.iter().map(|(_, r)| r.as_str()).collect::<Vec<_>>())
                    .query_async(con)
                    .await
                    .map_err(failed)?;
                Ok(Some(get_many_response(keys, found)?))
            }
            Op::SetMany(pairs) if pairs.is_empty() => Ok(None),
            Op::SetMany(pairs) => {
                let mut cmd = redis::cmd("MSET");
                for (key, value) in pairs {
                    cmd.arg(key).arg(value);
                }
                let () = cmd.query_async(con).await.map_err(failed)?;
                Ok(None)
            }
            Op::DeleteMany(keys) if keys.is_empty() => Ok(None),
            Op::DeleteMany(keys) => {
                let _: i64 = redis::cmd("DEL")
                    .arg(keys)
                    .query_async(con)
                    .await
                    .map_err(failed)?;
                Ok(None)
            }
        }
    }
}

/// Serve one call of `function`: its one result value.
pub async fn serve(pool: &Pool, function: KvFunction, call: &Call) -> Result<WitValue, String> {
    let op = Op::parse(function, &call.args)?;
    let url = pool.url_for(&call.link);
    let mut con = match pool.connection(url) {
        Ok(con) => con,
        Err(e) => return Ok(other(e)),
    };
    Ok(match op.run(&mut con).await {
        Ok(value) => ok(value),
        Err(e) => {
            tracing::debug!(url = %redact(url), "redis: {e}");
            other(format!("redis at {}: {e}", redact(url)))
        }
    })
}

/// `record { keys: list<string>, cursor: option<u64> }` from one SCAN step: keys
/// without the bucket's prefix (keys that are not UTF-8 cannot have been written
/// through keyvalue and are left out), and no cursor when SCAN is done.
fn key_response(bucket: &str, found: Vec<Vec<u8>>, next: u64) -> WitValue {
    let keys = found
        .into_iter()
        .filter_map(|k| String::from_utf8(k).ok())
        .filter_map(|k| bucket_key(bucket, &k).map(|k| WitValue::String(k.to_owned())))
        .collect();
    WitValue::Record(vec![
        ("keys".to_owned(), WitValue::List(keys)),
        (
            "cursor".to_owned(),
            values::option((next != 0).then_some(WitValue::U64(next))),
        ),
    ])
}

/// `list<option<tuple<string, list<u8>>>>`: each asked key with its value, in order.
fn get_many_response(
    keys: Vec<(String, String)>,
    found: Vec<Option<Vec<u8>>>,
) -> Result<WitValue, String> {
    if keys.len() != found.len() {
        return Err(format!(
            "MGET of {} keys answered {} values",
            keys.len(),
            found.len()
        ));
    }
    Ok(WitValue::List(
        keys.into_iter()
            .zip(found)
            .map(|((key, _), value)| {
                values::option(
                    value.map(|v| WitValue::Tuple(vec![WitValue::String(key), values::bytes(v)])),
                )
            })
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> WitValue {
        WitValue::String(text.into())
    }

    #[test]
    fn arguments_become_redis_keys() {
        use KvFunction::*;
        let some = |n| WitValue::Option(Some(Box::new(WitValue::U64(n))));
        let cases = [
            (Get, vec![s("default"), s("a")], Op::Get("a".into())),
            (Delete, vec![s("b"), s("a")], Op::Delete("b:a".into())),
            (Exists, vec![s(""), s("a")], Op::Exists("a".into())),
            (
                Set,
                vec![s("b"), s("a"), values::bytes(vec![1, 2])],
                Op::Set("b:a".into(), vec![1, 2]),
            ),
            (
                Increment,
                vec![s("b"), s("n"), WitValue::U64(5)],
                Op::Increment("b:n".into(), 5),
            ),
            (
                ListKeys,
                vec![s("b"), WitValue::Option(None)],
                Op::ListKeys {
                    bucket: "b".into(),
                    cursor: 0,
                },
            ),
            (
                ListKeys,
                vec![s("b"), some(17)],
                Op::ListKeys {
                    bucket: "b".into(),
                    cursor: 17,
                },
            ),
            (
                GetMany,
                vec![s("b"), WitValue::List(vec![s("x"), s("y")])],
                Op::GetMany(vec![("x".into(), "b:x".into()), ("y".into(), "b:y".into())]),
            ),
            (
                SetMany,
                vec![
                    s("b"),
                    WitValue::List(vec![WitValue::Tuple(vec![s("x"), values::bytes(vec![9])])]),
                ],
                Op::SetMany(vec![("b:x".into(), vec![9])]),
            ),
            (
                DeleteMany,
                vec![s("default"), WitValue::List(vec![s("x")])],
                Op::DeleteMany(vec!["x".into()]),
            ),
        ];
        for (function, args, op) in cases {
            assert_eq!(Op::parse(function, &args), Ok(op), "{function:?}");
        }
        assert_eq!(
            Op::parse(Get, &[s("b")]),
            Err("argument 1 is missing".into())
        );
        assert_eq!(
            Op::parse(Get, &[WitValue::U8(1), s("a")]),
            Err("expected a string, got a u8".into())
        );
    }

    #[test]
    fn scan_results_lose_their_prefix() {
        let found = vec![b"b:x".to_vec(), vec![0xff], b"b:y".to_vec()];
        assert_eq!(
            key_response("b", found, 0),
            WitValue::Record(vec![
                ("keys".into(), WitValue::List(vec![s("x"), s("y")])),
                ("cursor".into(), WitValue::Option(None)),
            ])
        );
        let WitValue::Record(fields) = key_response("default", vec![b"b:x".to_vec()], 12) else {
            panic!()
        };
        assert_eq!(fields[0].1, WitValue::List(vec![s("b:x")]));
        assert_eq!(
            fields[1].1,
            WitValue::Option(Some(Box::new(WitValue::U64(12))))
        );
    }

    #[test]
    fn get_many_pairs_keys_with_values() {
        let keys = vec![("x".into(), "b:x".into()), ("y".into(), "b:y".into())];
        let out = get_many_response(keys.clone(), vec![Some(vec![1]), None]).unwrap();
        assert_eq!(
            out,
            WitValue::List(vec![
                values::option(Some(WitValue::Tuple(vec![s("x"), values::bytes(vec![1])]))),
                WitValue::Option(None),
            ])
        );
        assert!(get_many_response(keys, vec![None]).is_err());
    }
}
