//! `wasmcloud:postgres/query` and `wasmcloud:postgres/prepared`: each call runs on
//! a connection of its link's pool, under the caller's deadline (less a margin for
//! the reply). A statement still running at the deadline is cancelled on the
//! server and its connection closed, so an answer always comes back.
//!
//! Errors are the functions' own `err` cases: bad parameters `invalid-params`,
//! anything the database refuses `invalid-query` (its message, SQLSTATE, detail
//! and hint), no connection or no time left `unexpected`.

use crate::pool::{self, db_error_text, error_text, Db, Pools};
use crate::statements::{Owner, Statements, CAPACITY};
use crate::values::params::{self, Param};
use crate::values::read::{self, arg};
use crate::values::rows;
use deadpool_postgres::Object;
use lattice_provider::{Call, WitValue};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_postgres::types::ToSql;
use tokio_postgres::Statement;

/// Statements one connection keeps prepared; past it, its cache starts over.
const STATEMENT_CACHE: usize = 256;

/// `query-error`, plus whether the deadline passed (then the connection is
/// dropped, not returned to the pool).
#[derive(Debug)]
enum QueryError {
    InvalidParams(String),
    InvalidQuery(String),
    Unexpected(String),
    TimedOut(Duration),
}

impl QueryError {
    fn from_client(e: tokio_postgres::Error) -> Self {
        match e.as_db_error() {
            Some(db) => QueryError::InvalidQuery(db_error_text(db)),
            None => QueryError::Unexpected(error_text(&e)),
        }
    }

    /// `variant query-error`.
    fn wit(self) -> WitValue {
        let (case, message) = match self {
            QueryError::InvalidParams(m) => ("invalid-params", m),
            QueryError::InvalidQuery(m) => ("invalid-query", m),
            QueryError::Unexpected(m) => ("unexpected", m),
            QueryError::TimedOut(d) => (
                "unexpected",
                format!("the statement did not finish within {d:?} (the caller's timeout); it was cancelled"),
            ),
        };
        variant(case, Some(WitValue::String(message)))
    }
}

fn variant(case: &str, payload: Option<WitValue>) -> WitValue {
    WitValue::Variant(case.to_owned(), payload.map(Box::new))
}

fn ok(value: Option<WitValue>) -> WitValue {
    WitValue::Result(Ok(value.map(Box::new)))
}

fn err(value: WitValue) -> WitValue {
    WitValue::Result(Err(Some(Box::new(value))))
}

/// The query and prepared-statement functions.
pub struct Sql {
    pools: Arc<Pools>,
    statements: Statements,
}

impl Sql {
    pub fn new(pools: Arc<Pools>) -> Self {
        Self {
            pools,
            statements: Statements::new(CAPACITY),
        }
    }

    /// Serve `function` (`query`, `query-batch`, `prepare` or `exec`): its one
    /// result value.
    pub async fn serve(&self, function: &str, call: &Call) -> Result<WitValue, String> {
        let deadline = pool::deadline(call.timeout());
        match function {
            "query" => {
                let sql = read::string(arg(&call.args, 0)?)?;
                let result = match params::params(arg(&call.args, 1)?) {
                    Ok(params) => match self.pools.for_link(&call.link) {
                        Ok(db) => query(&db, sql, &params, deadline).await,
                        Err(e) => Err(QueryError::Unexpected(e)),
                    },
                    Err(e) => Err(QueryError::InvalidParams(e)),
                };
                Ok(match result {
                    Ok(rows) => ok(Some(WitValue::List(rows))),
                    Err(e) => err(e.wit()),
                })
            }
            "query-batch" => {
                let sql = read::string(arg(&call.args, 0)?)?;
                let result = match self.pools.for_link(&call.link) {
                    Ok(db) => batch(&db, sql, deadline).await,
                    Err(e) => Err(QueryError::Unexpected(e)),
                };
                Ok(match result {
                    Ok(()) => ok(None),
                    Err(e) => err(e.wit()),
                })
            }
            "prepare" => {
                let sql = read::string(arg(&call.args, 0)?)?;
                Ok(match self.prepare(call, sql, deadline).await {
                    Ok(token) => ok(Some(WitValue::String(token))),
                    Err(message) => err(variant("unexpected", Some(WitValue::String(message)))),
                })
            }
            "exec" => {
                let token = read::string(arg(&call.args, 0)?)?;
                let owner = owner(call);
                let Some(prepared) = self.statements.get(token, &owner) else {
                    return Ok(err(variant("unknown-prepared-query", None)));
                };
                let result = match params::params(arg(&call.args, 1)?) {
                    Ok(params) => {
                        let db = self.pools.db(&prepared.settings);
                        execute(&db, &prepared.sql, &params, deadline).await
                    }
                    Err(e) => Err(QueryError::InvalidParams(e)),
                };
                Ok(match result {
                    Ok(n) => ok(Some(WitValue::U64(n))),
                    // Not the query's fault: the function's own `unexpected`.
                    Err(e @ (QueryError::Unexpected(_) | QueryError::TimedOut(_))) => err(e.wit()),
                    Err(e) => err(variant("query-error", Some(e.wit()))),
                })
            }
            other => Err(format!("sqldb-postgres does not serve '{other}'")),
        }
    }

    /// Prepare `sql` on the caller's database (so errors show now) and hand out
    /// its token.
    async fn prepare(&self, call: &Call, sql: &str, deadline: Instant) -> Result<String, String> {
        let db = self.pools.for_link(&call.link)?;
        let client = connect(&db, deadline).await.map_err(message)?;
        let prepared = bounded(&db, client, deadline, |client| async move {
            cached_statement(&client, sql).await.map(drop)
        })
        .await;
        prepared.map_err(message)?;
        Ok(self
            .statements
            .insert(owner(call), db.settings().clone(), sql))
    }
}

fn owner(call: &Call) -> Owner {
    Owner {
        app: call.caller.app.clone(),
        component: call.caller.component.clone(),
    }
}

fn message(e: QueryError) -> String {
    match e.wit() {
        WitValue::Variant(_, Some(payload)) => match *payload {
            WitValue::String(m) => m,
            other => format!("{other:?}"),
        },
        other => format!("{other:?}"),
    }
}

async fn connect(db: &Db, deadline: Instant) -> Result<Object, QueryError> {
    db.client_before(deadline)
        .await
        .map_err(QueryError::Unexpected)
}

/// `work` on `client`, cancelled at `deadline`.
async fn bounded<T, F, Fut>(
    db: &Db,
    client: Object,
    deadline: Instant,
    work: F,
) -> Result<T, QueryError>
where
    F: FnOnce(Arc<Object>) -> Fut,
    Fut: Future<Output = Result<T, QueryError>>,
{
    db.bounded(client, deadline, work)
        .await
        .unwrap_or_else(|ran| Err(QueryError::TimedOut(ran)))
}

/// The statement of `sql` from the connection's cache, prepared if needed; a
/// cached plan the schema has since changed under is prepared again.
async fn cached_statement(client: &Object, sql: &str) -> Result<Statement, QueryError> {
    if client.statement_cache.size() >= STATEMENT_CACHE {
        client.statement_cache.clear();
    }
    client
        .prepare_cached(sql)
        .await
        .map_err(QueryError::from_client)
}

/// Whether `e` says a cached statement no longer fits the schema.
fn stale(e: &QueryError) -> bool {
    matches!(e, QueryError::InvalidQuery(m) if m.contains("cached plan must not change result type"))
}

fn refs(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

async fn query(
    db: &Db,
    sql: &str,
    params: &[Param],
    deadline: Instant,
) -> Result<Vec<WitValue>, QueryError> {
    let client = connect(db, deadline).await?;
    bounded(db, client, deadline, |client| async move {
        let mut retried = false;
        loop {
            let statement = cached_statement(&client, sql).await?;
            let kinds = rows::columns(statement.columns()).map_err(QueryError::InvalidQuery)?;
            params::check(params, statement.params()).map_err(QueryError::InvalidParams)?;
            match client.query(&statement, &refs(params)).await {
                Ok(found) => {
                    return found
                        .iter()
                        .map(|row| rows::row(row, &kinds))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(QueryError::InvalidQuery)
                }
                Err(e) => {
                    let e = QueryError::from_client(e);
                    if retried || !stale(&e) {
                        return Err(e);
                    }
                    client.statement_cache.clear();
                    retried = true;
                }
            }
        }
    })
    .await
}

async fn execute(
    db: &Db,
    sql: &str,
    params: &[Param],
    deadline: Instant,
) -> Result<u64, QueryError> {
    let client = connect(db, deadline).await?;
    bounded(db, client, deadline, |client| async move {
        let mut retried = false;
        loop {
            let statement = cached_statement(&client, sql).await?;
            params::check(params, statement.params()).map_err(QueryError::InvalidParams)?;
            match client.execute(&statement, &refs(params)).await {
                Ok(n) => return Ok(n),
                Err(e) => {
                    let e = QueryError::from_client(e);
                    if retried || !stale(&e) {
                        return Err(e);
                    }
                    client.statement_cache.clear();
                    retried = true;
                }
            }
        }
    })
    .await
}

async fn batch(db: &Db, sql: &str, deadline: Instant) -> Result<(), QueryError> {
    let client = connect(db, deadline).await?;
    bounded(db, client, deadline, |client| async move {
        client
            .batch_execute(sql)
            .await
            .map_err(QueryError::from_client)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_the_wit_cases() {
        assert_eq!(
            QueryError::InvalidQuery("no".into()).wit(),
            variant("invalid-query", Some(WitValue::String("no".into())))
        );
        let WitValue::Variant(case, Some(m)) = QueryError::TimedOut(Duration::from_secs(1)).wit()
        else {
            panic!()
        };
        assert_eq!(case, "unexpected");
        assert!(matches!(*m, WitValue::String(ref m) if m.contains("cancelled")));
    }
}
