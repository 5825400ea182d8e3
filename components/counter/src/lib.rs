//! The wasmCloud tutorial's counter, written exactly as a wasmCloud 1.x user would with
//! the `wasmcloud-component` crate. It proves that such components run on lattice
//! unchanged.
//!
//! `GET /<key>` increments `<key>` (or `default` for `/`) in keyvalue bucket `default`
//! and answers `"<key> -> <count>\n"`.
//!
//! `http::Result`'s error type in `wasmcloud-component` 0.2 is `wasi:http`'s `ErrorCode`
//! (not `anyhow::Error`), so failures map to `ErrorCode::InternalError`, as in
//! wasmCloud's own `http-keyvalue-counter` example.

use wasmcloud_component::http;
use wasmcloud_component::http::ErrorCode;
use wasmcloud_component::wasi::keyvalue::{atomics, store};

struct Counter;

http::export!(Counter);

impl http::Server for Counter {
    fn handle(
        request: http::IncomingRequest,
    ) -> http::Result<http::Response<impl http::OutgoingBody>> {
        let path = request.uri().path().trim_start_matches('/').to_string();
        let key = if path.is_empty() {
            "default".to_string()
        } else {
            path
        };
        let bucket = store::open("default")
            .map_err(|e| ErrorCode::InternalError(Some(format!("kv open: {e:?}"))))?;
        let count = atomics::increment(&bucket, &key, 1)
            .map_err(|e| ErrorCode::InternalError(Some(format!("kv inc: {e:?}"))))?;
        http::Response::builder()
            .status(200)
            .header("content-type", "text/plain")
            .body(format!("{key} -> {count}\n"))
            .map_err(|e| ErrorCode::InternalError(Some(format!("build response: {e}"))))
    }
}
