//! A `wasi:http` handler that exercises every capability the lattice host offers beyond
//! plain WASI, one route each, so host tests can drive them over HTTP.
//!
//! Query parameters are percent-decoded. Errors from the host are answered with
//! `500 error: <detail>\n` (`502` for `/fetch`), never with a trap.
//!
//! | route                               | host interface used                          |
//! |-------------------------------------|----------------------------------------------|
//! | `/config?key=K`                     | `wasi:config/store.get` (404 `missing\n`)    |
//! | `/config-all`                       | `wasi:config/store.get-all`, `k=v` lines     |
//! | `/config-runtime?key=K`             | legacy `wasi:config/runtime.get`             |
//! | `/log?msg=M`                        | `wasi:logging/logging.log` (info, `features`)|
//! | `/kv/get?key=K`                     | `wasi:keyvalue/store` `bucket.get`           |
//! | `/kv/set?key=K&value=V`             | `bucket.set`                                 |
//! | `/kv/del?key=K`                     | `bucket.delete`                              |
//! | `/kv/exists?key=K`                  | `bucket.exists`                              |
//! | `/kv/incr?key=K&by=N`               | `wasi:keyvalue/atomics.increment`            |
//! | `/kv/keys`                          | `bucket.list-keys`, every page, sorted       |
//! | `/kv/batch?keys=a,b`                | `wasi:keyvalue/batch.get-many`               |
//! | `/link?name=N&key=K`                | `wasmcloud:bus/lattice@1.0.0.set-link-name`  |
//! | `/link2?name=N&key=K`               | `wasmcloud:bus/lattice@2.0.0.set-link-name`  |
//! | `/fetch?url=U`                      | `wasi:http/outgoing-handler`                 |
//!
//! The `/kv/*` routes use the bucket named by `bucket` (default `default`).

mod bindings;
mod bus;
mod fetch;
mod kv;

use bindings::wasi::config::{runtime, store as config};
use bindings::wasi::logging::logging;
use http_support::{Query, Reply};
use wasi::http::types::{IncomingRequest, ResponseOutparam};

struct Features;

wasi::http::proxy::export!(Features);

impl wasi::exports::http::incoming_handler::Guest for Features {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let (path, query) = http_support::target(&request);
        let path = path.as_str();
        route(path, &query).send(response_out);
    }
}

fn route(path: &str, query: &Query) -> Reply {
    match path {
        "/config" => config_get(query),
        "/config-all" => config_all(),
        "/config-runtime" => config_runtime_get(query),
        "/log" => log(query),
        "/link" => bus::link_v1(query),
        "/link2" => bus::link_v2(query),
        "/fetch" => fetch::fetch(query),
        _ => match path.strip_prefix("/kv/") {
            Some(operation) => kv::route(operation, query),
            None => Reply::not_found(),
        },
    }
}

fn config_get(query: &Query) -> Reply {
    let key = match query.required("key") {
        Ok(key) => key,
        Err(reply) => return reply,
    };
    match config::get(key) {
        Ok(Some(value)) => Reply::ok(value),
        Ok(None) => Reply::missing(),
        Err(e) => Reply::error(format!("config get {key:?}: {e:?}")),
    }
}

fn config_all() -> Reply {
    match config::get_all() {
        Ok(mut pairs) => {
            pairs.sort();
            let body: String = pairs.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
            Reply::ok(body)
        }
        Err(e) => Reply::error(format!("config get-all: {e:?}")),
    }
}

fn config_runtime_get(query: &Query) -> Reply {
    let key = match query.required("key") {
        Ok(key) => key,
        Err(reply) => return reply,
    };
    match runtime::get(key) {
        Ok(Some(value)) => Reply::ok(value),
        Ok(None) => Reply::missing(),
        Err(e) => Reply::error(format!("config runtime get {key:?}: {e:?}")),
    }
}

fn log(query: &Query) -> Reply {
    let message = query.get("msg").unwrap_or_default();
    logging::log(logging::Level::Info, "features", message);
    Reply::ok("logged\n")
}
