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
//! | `/secret?key=K`                     | `wasmcloud:secrets` `store.get` + `reveal` (404 `missing\n`); answers the value's kind, length and FNV-1a hash, never the value |
//! | `/requests`                         | none: how many requests this instance handled, this one included (1 from a fresh instance) |
//!
//! The `/kv/*` routes use the bucket named by `bucket` (default `default`).

mod bindings;
mod bus;
mod fetch;
mod kv;

use bindings::wasi::config::{runtime, store as config};
use bindings::wasi::logging::logging;
use http_support::{Query, Reply};
use std::sync::atomic::{AtomicU64, Ordering};
use wasi::http::types::{IncomingRequest, ResponseOutparam};

struct Features;

/// Requests this instance handled.
static HANDLED: AtomicU64 = AtomicU64::new(0);

wasi::http::proxy::export!(Features);

impl wasi::exports::http::incoming_handler::Guest for Features {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let (path, query) = http_support::target(&request);
        let path = path.as_str();
        let handled = HANDLED.fetch_add(1, Ordering::Relaxed) + 1;
        match path {
            "/requests" => Reply::ok(format!("{handled}\n")),
            _ => route(path, &query),
        }
        .send(response_out);
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
        "/secret" => secret(query),
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

/// A secret's length and a digest of it, so a test can check the value without
/// the component ever writing it out.
fn secret(query: &Query) -> Reply {
    use bindings::wasmcloud::secrets::{reveal, store};
    let key = match query.required("key") {
        Ok(key) => key,
        Err(reply) => return reply,
    };
    let secret = match store::get(key) {
        Ok(secret) => secret,
        Err(store::SecretsError::NotFound) => return Reply::missing(),
        Err(e) => return Reply::error(format!("secret {key:?}: {e:?}")),
    };
    let (kind, bytes) = match reveal::reveal(&secret) {
        store::SecretValue::String(s) => ("string", s.into_bytes()),
        store::SecretValue::Bytes(b) => ("bytes", b),
    };
    Reply::ok(format!(
        "{kind} {} bytes, fnv1a {:016x}\n",
        bytes.len(),
        fnv1a(&bytes)
    ))
}

/// FNV-1a, 64 bits: enough to tell values apart in a test without a crypto crate.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn log(query: &Query) -> Reply {
    let message = query.get("msg").unwrap_or_default();
    logging::log(logging::Level::Info, "features", message);
    Reply::ok("logged\n")
}
