//! {{name}}: an HTTP counter on `wasi:keyvalue`. `GET /<key>` adds one to `<key>`
//! (`default` for `/`) in bucket `default` and answers `<key> -> <count>`. The
//! manifest links it to the lattice's built-in JetStream key-value store; link it
//! to Redis instead (the `keyvalue-redis` provider) without changing this code.

use wasmcloud_component::http;
use wasmcloud_component::http::ErrorCode;
use wasmcloud_component::wasi::keyvalue::{atomics, store};

struct Counter;

http::export!(Counter);

impl http::Server for Counter {
    fn handle(
        request: http::IncomingRequest,
    ) -> http::Result<http::Response<impl http::OutgoingBody>> {
        let key = match request.uri().path().trim_start_matches('/') {
            "" => "default".to_string(),
            path => path.to_string(),
        };
        let failed = |what: &str, e: String| ErrorCode::InternalError(Some(format!("{what}: {e}")));
        let bucket = store::open("default").map_err(|e| failed("open", format!("{e:?}")))?;
        let count = atomics::increment(&bucket, &key, 1)
            .map_err(|e| failed("increment", format!("{e:?}")))?;
        Ok(http::Response::new(format!("{key} -> {count}\n")))
    }
}
