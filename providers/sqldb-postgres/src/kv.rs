//! `wasi:keyvalue` (the resource-free `wrpc:keyvalue/{store,atomics,batch}` the
//! host calls, bucket name first) on a table, so a component written for
//! keyvalue runs unchanged on PostgreSQL:
//!
//! ```sql
//! CREATE TABLE IF NOT EXISTS lattice_kv (app text, bucket text, key text,
//!     value bytea NOT NULL, PRIMARY KEY (app, bucket, key))
//! ```
//!
//! made at the first keyvalue call on a database. Keys belong to the caller's
//! app; buckets are separate (the empty bucket is `default`). `increment` keeps
//! decimal text (`b"7"`, as Redis does) and is one atomic upsert; `list-keys`
//! pages 1000 keys at a time in key order, the cursor counting keys already
//! returned. Database failures are the functions' `err(other(...))`.

use crate::config::Settings;
use crate::pool::{self, error_text, Pools};
use crate::values::read::{self, arg, to_list};
use deadpool_postgres::Object;
use lattice_protocol::provider::keyvalue::KvFunction;
use lattice_provider::{Call, WitValue};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use tokio_postgres::error::SqlState;

/// Keys one `list-keys` call returns at most.
const PAGE: i64 = 1_000;

const CREATE: &str = "CREATE TABLE IF NOT EXISTS lattice_kv (app text NOT NULL, \
    bucket text NOT NULL, key text NOT NULL, value bytea NOT NULL, \
    PRIMARY KEY (app, bucket, key))";
const GET: &str = "SELECT value FROM lattice_kv WHERE app = $1 AND bucket = $2 AND key = $3";
const SET: &str = "INSERT INTO lattice_kv (app, bucket, key, value) VALUES ($1, $2, $3, $4) \
    ON CONFLICT (app, bucket, key) DO UPDATE SET value = EXCLUDED.value";
const DELETE: &str = "DELETE FROM lattice_kv WHERE app = $1 AND bucket = $2 AND key = $3";
const EXISTS: &str =
    "SELECT EXISTS (SELECT 1 FROM lattice_kv WHERE app = $1 AND bucket = $2 AND key = $3)";
const LIST: &str = "SELECT key FROM lattice_kv WHERE app = $1 AND bucket = $2 \
    ORDER BY key LIMIT $3 OFFSET $4";
/// Adds `$4` (decimal text) to an integer value, or starts it at `$4`; returns
/// nothing when the value there is not a non-negative integer or the sum would
/// pass `u64::MAX`.
const INCREMENT: &str = "INSERT INTO lattice_kv AS kv (app, bucket, key, value) \
    VALUES ($1, $2, $3, convert_to($4::text, 'UTF8')) \
    ON CONFLICT (app, bucket, key) DO UPDATE \
    SET value = convert_to((convert_from(kv.value, 'UTF8')::numeric + $4::text::numeric)::text, 'UTF8') \
    WHERE convert_from(kv.value, 'UTF8') ~ '^[0-9]{1,20}$' \
    AND convert_from(kv.value, 'UTF8')::numeric + $4::text::numeric <= 18446744073709551615 \
    RETURNING convert_from(value, 'UTF8')";
const GET_MANY: &str =
    "SELECT key, value FROM lattice_kv WHERE app = $1 AND bucket = $2 AND key = ANY($3)";
const SET_MANY: &str = "INSERT INTO lattice_kv (app, bucket, key, value) \
    SELECT $1, $2, k, v FROM unnest($3::text[], $4::bytea[]) AS t(k, v) \
    ON CONFLICT (app, bucket, key) DO UPDATE SET value = EXCLUDED.value";
const DELETE_MANY: &str = "DELETE FROM lattice_kv WHERE app = $1 AND bucket = $2 AND key = ANY($3)";

/// Keyvalue on the databases of the provider's links.
pub struct Kv {
    pools: Arc<Pools>,
    /// Databases where the table is known to exist.
    ready: Mutex<HashSet<Settings>>,
}

impl Kv {
    pub fn new(pools: Arc<Pools>) -> Self {
        Self {
            pools,
            ready: Mutex::default(),
        }
    }

    /// Serve one call of `function`: its one result value.
    pub async fn serve(&self, function: KvFunction, call: &Call) -> Result<WitValue, String> {
        let app = call.caller.app.as_str();
        let bucket = match read::string(arg(&call.args, 0)?)? {
            "" => "default",
            b => b,
        };
        let db = match self.pools.for_link(&call.link) {
            Ok(db) => db,
            Err(e) => return Ok(other(e)),
        };
        let deadline = pool::deadline(call.timeout());
        let client = match db.client_before(deadline).await {
            Ok(client) => client,
            Err(e) => return Ok(other(e)),
        };
        let (args, settings) = (&call.args, db.settings());
        let outcome = db
            .bounded(client, deadline, |client| async move {
                self.ensure_table(settings, &client)
                    .await
                    .map_err(Failure::Db)?;
                run(function, &client, app, bucket, args).await
            })
            .await;
        match outcome {
            Ok(Ok(value)) => Ok(WitValue::Result(Ok(value.map(Box::new)))),
            Ok(Err(Failure::Bad(e))) => Err(e),
            Ok(Err(Failure::Refused(e))) => Ok(other(e)),
            Ok(Err(Failure::Db(e))) => {
                tracing::debug!(database = %db.settings(), "keyvalue: {e}");
                Ok(other(format!("postgres at {}: {e}", db.settings())))
            }
            Err(ran) => Ok(other(format!(
                "postgres at {}: no answer within {ran:?} (the caller's timeout); the statement was cancelled",
                db.settings()
            ))),
        }
    }

    /// Create the table once per database.
    async fn ensure_table(&self, settings: &Settings, client: &Object) -> Result<(), String> {
        if self
            .ready
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(settings)
        {
            return Ok(());
        }
        match client.batch_execute(CREATE).await {
            Ok(()) => {}
            // Two first calls at once: the other one created it.
            Err(e) if matches!(e.code(), Some(c) if *c == SqlState::UNIQUE_VIOLATION || *c == SqlState::DUPLICATE_TABLE) =>
                {}
            Err(e) => {
                return Err(format!(
                    "cannot create table lattice_kv: {}",
                    error_text(&e)
                ))
            }
        }
        self.ready
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(settings.clone());
        Ok(())
    }
}

/// One keyvalue operation on `client`: the `ok` payload, or why it failed.
async fn run(
    function: KvFunction,
    client: &Object,
    app: &str,
    bucket: &str,
    args: &[WitValue],
) -> Result<Option<WitValue>, Failure> {
    let key = || read::string(arg(args, 1)?);
    let value = match function {
        KvFunction::Get => {
            let row = client
                .query_opt(&prepare(client, GET).await?, &[&app, &bucket, &key()?])
                .await?;
            let value = match row {
                Some(r) => Some(to_list(r.try_get::<_, &[u8]>(0)?)),
                None => None,
            };
            Some(WitValue::Option(value.map(Box::new)))
        }
        KvFunction::Set => {
            let value = read::bytes(arg(args, 2)?)?;
            client
                .execute(
                    &prepare(client, SET).await?,
                    &[&app, &bucket, &key()?, &value],
                )
                .await?;
            None
        }
        KvFunction::Delete => {
            client
                .execute(&prepare(client, DELETE).await?, &[&app, &bucket, &key()?])
                .await?;
            None
        }
        KvFunction::Exists => {
            let row = client
                .query_one(&prepare(client, EXISTS).await?, &[&app, &bucket, &key()?])
                .await?;
            Some(WitValue::Bool(row.try_get(0)?))
        }
        KvFunction::ListKeys => {
            let cursor = match arg(args, 1)? {
                WitValue::Option(Some(c)) => read::int(c)?,
                _ => 0,
            };
            let rows = client
                .query(
                    &prepare(client, LIST).await?,
                    &[&app, &bucket, &PAGE, &cursor],
                )
                .await?;
            let keys = rows
                .iter()
                .map(|r| r.try_get(0).map(WitValue::String))
                .collect::<Result<Vec<_>, _>>()?;
            let next = (keys.len() as i64 == PAGE)
                .then(|| WitValue::U64(cursor.saturating_add(PAGE) as u64));
            Some(WitValue::Record(vec![
                ("keys".into(), WitValue::List(keys)),
                ("cursor".into(), WitValue::Option(next.map(Box::new))),
            ]))
        }
        KvFunction::Increment => {
            let key = key()?;
            let delta = match arg(args, 2)? {
                WitValue::U64(n) => n.to_string(),
                other => {
                    return Err(Failure::Bad(format!(
                        "expected a u64, got a {}",
                        other.kind()
                    )))
                }
            };
            let row = client
                .query_opt(
                    &prepare(client, INCREMENT).await?,
                    &[&app, &bucket, &key, &delta],
                )
                .await?;
            let Some(row) = row else {
                return Err(Failure::Refused(format!(
                        "cannot increment '{key}' by {delta}: its value is not an integer, or the sum is over {}",
                        u64::MAX
                    )));
            };
            let n: String = row.try_get(0)?;
            let n = n
                .parse()
                .map_err(|_| Failure::Refused(format!("'{key}' is now {n}")))?;
            Some(WitValue::U64(n))
        }
        KvFunction::GetMany => {
            let keys = read::list(arg(args, 1)?)?
                .iter()
                .map(|k| read::string(k).map(str::to_owned))
                .collect::<Result<Vec<_>, _>>()?;
            let rows = client
                .query(&prepare(client, GET_MANY).await?, &[&app, &bucket, &keys])
                .await?;
            let mut found = rows
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect::<Result<HashMap<String, Vec<u8>>, tokio_postgres::Error>>()?;
            let values = keys
                .into_iter()
                .map(|k| {
                    let pair = found
                        .remove(&k)
                        .map(|v| Box::new(WitValue::Tuple(vec![WitValue::String(k), to_list(&v)])));
                    WitValue::Option(pair)
                })
                .collect();
            Some(WitValue::List(values))
        }
        KvFunction::SetMany => {
            // The last value of a key given twice wins, as with MSET.
            let mut pairs = BTreeMap::new();
            for pair in read::list(arg(args, 1)?)? {
                match pair {
                    WitValue::Tuple(kv) if kv.len() == 2 => {
                        pairs.insert(read::string(&kv[0])?.to_owned(), read::bytes(&kv[1])?);
                    }
                    other => {
                        return Err(Failure::Bad(format!(
                            "expected a (key, value) tuple, got a {}",
                            other.kind()
                        )))
                    }
                }
            }
            let (keys, values): (Vec<String>, Vec<Vec<u8>>) = pairs.into_iter().unzip();
            client
                .execute(
                    &prepare(client, SET_MANY).await?,
                    &[&app, &bucket, &keys, &values],
                )
                .await?;
            None
        }
        KvFunction::DeleteMany => {
            let keys = read::list(arg(args, 1)?)?
                .iter()
                .map(|k| read::string(k).map(str::to_owned))
                .collect::<Result<Vec<_>, _>>()?;
            client
                .execute(
                    &prepare(client, DELETE_MANY).await?,
                    &[&app, &bucket, &keys],
                )
                .await?;
            None
        }
    };
    Ok(value)
}

/// Why a call failed: malformed arguments (a failed call), a refusal of the
/// function itself, or the database.
enum Failure {
    Bad(String),
    Refused(String),
    Db(String),
}

impl From<String> for Failure {
    fn from(e: String) -> Self {
        Failure::Bad(e)
    }
}

impl From<tokio_postgres::Error> for Failure {
    fn from(e: tokio_postgres::Error) -> Self {
        Failure::Db(error_text(&e))
    }
}

async fn prepare(
    client: &Object,
    sql: &str,
) -> Result<tokio_postgres::Statement, tokio_postgres::Error> {
    client.prepare_cached(sql).await
}

/// `err(other(message))`.
fn other(message: impl Into<String>) -> WitValue {
    WitValue::Result(Err(Some(Box::new(WitValue::Variant(
        "other".to_owned(),
        Some(Box::new(WitValue::String(message.into()))),
    )))))
}
