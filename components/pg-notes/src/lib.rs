//! Notes in PostgreSQL, as a wasmCloud 1.x user writes a component for
//! `wasmcloud:postgres@0.1.1-draft`: a `wasi:http` handler whose `query` and
//! `prepared` imports a link routes to a PostgreSQL provider
//! (`manifests/notes-postgres.yaml`).
//!
//! Every request first makes sure table `notes` exists (`query-batch`):
//!
//! ```sql
//! CREATE TABLE IF NOT EXISTS notes (id bigserial PRIMARY KEY, text text NOT NULL,
//!     created timestamptz NOT NULL DEFAULT now())
//! ```
//!
//! | request | answer |
//! |---------|--------|
//! | `POST /notes?text=T` | inserts `T` with a prepared statement (`prepare`, `exec`): `201 added 1 note\n` |
//! | `GET /notes` | every note, oldest first (`query`): `<id> <created> <text>\n` lines, `created` as `2025-01-02T03:04:05.678901Z`; `no notes\n` when there are none |
//! | `GET /notes?q=S` | the notes whose text contains `S` (a parameterized `query`) |
//! | another method on `/notes` | `405 method not allowed: use GET or POST\n` |
//! | any other path | `404 no such route\n` |
//!
//! A missing `text` answers `400 bad request: ...`; an error from the database
//! (the functions' `err` cases) answers `500 error: <case>: <message>\n`, e.g.
//! `500 error: invalid query: ERROR: column "text" does not exist ...`.

mod bindings {
    #![allow(missing_docs, clippy::all)]
    wit_bindgen::generate!({
        inline: "
            package lattice:pg-notes;
            world pg-notes {
                import wasmcloud:postgres/query@0.1.1-draft;
                import wasmcloud:postgres/prepared@0.1.1-draft;
            }
        ",
        path: "../../wit/deps/postgres",
        world: "lattice:pg-notes/pg-notes",
        generate_all,
    });
}

mod rows;

use bindings::wasmcloud::postgres::types::{PgValue, PreparedStatementExecError, QueryError};
use bindings::wasmcloud::postgres::{prepared, query};
use http_support::{Query, Reply};
use wasi::http::types::{IncomingRequest, Method, ResponseOutparam};

const CREATE: &str = "CREATE TABLE IF NOT EXISTS notes (id bigserial PRIMARY KEY, \
    text text NOT NULL, created timestamptz NOT NULL DEFAULT now())";
const INSERT: &str = "INSERT INTO notes (text) VALUES ($1)";
const LIST: &str = "SELECT id, text, created FROM notes ORDER BY id";
const SEARCH: &str = "SELECT id, text, created FROM notes WHERE strpos(text, $1) > 0 ORDER BY id";

struct Notes;

wasi::http::proxy::export!(Notes);

impl wasi::exports::http::incoming_handler::Guest for Notes {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        route(&request).unwrap_or_else(|r| r).send(response_out);
    }
}

fn route(request: &IncomingRequest) -> Result<Reply, Reply> {
    let path_with_query = request.path_with_query().unwrap_or_default();
    let (path, query) = path_with_query
        .split_once('?')
        .unwrap_or((path_with_query.as_str(), ""));
    if path != "/notes" {
        return Err(Reply::not_found());
    }
    let query = Query::parse(query);
    query::query_batch(CREATE).map_err(query_failed)?;
    match request.method() {
        Method::Post => add(query.required("text")?),
        Method::Get => list(query.get("q")),
        _ => Err(Reply::new(405, "method not allowed: use GET or POST\n")),
    }
}

fn add(text: &str) -> Result<Reply, Reply> {
    let token = prepared::prepare(INSERT).map_err(|e| {
        let bindings::wasmcloud::postgres::types::StatementPrepareError::Unexpected(m) = e;
        Reply::error(format!("unexpected: {m}"))
    })?;
    let added = prepared::exec(&token, &[PgValue::Text(text.to_owned())]).map_err(|e| match e {
        PreparedStatementExecError::UnknownPreparedQuery => Reply::error("unknown prepared query"),
        PreparedStatementExecError::QueryError(e) => query_failed(e),
        PreparedStatementExecError::Unexpected(m) => Reply::error(format!("unexpected: {m}")),
    })?;
    let s = if added == 1 { "" } else { "s" };
    Ok(Reply::new(201, format!("added {added} note{s}\n")))
}

fn list(contains: Option<&str>) -> Result<Reply, Reply> {
    let found = match contains {
        Some(s) => query::query(SEARCH, &[PgValue::Text(s.to_owned())]),
        None => query::query(LIST, &[]),
    }
    .map_err(query_failed)?;
    if found.is_empty() {
        return Ok(Reply::ok("no notes\n"));
    }
    let mut body = String::new();
    for row in &found {
        body.push_str(&rows::note_line(row).map_err(Reply::error)?);
        body.push('\n');
    }
    Ok(Reply::ok(body))
}

fn query_failed(e: QueryError) -> Reply {
    Reply::error(match e {
        QueryError::InvalidParams(m) => format!("invalid params: {m}"),
        QueryError::InvalidQuery(m) => format!("invalid query: {m}"),
        QueryError::Unexpected(m) => format!("unexpected: {m}"),
    })
}
