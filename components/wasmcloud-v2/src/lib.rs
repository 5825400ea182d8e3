//! A `wasi:http` handler built as a component for wasmCloud 2 would be: it imports
//! `wasi:config/store@0.2.0-rc.1` and unversioned `wasi:logging/logging`, which
//! the lattice host serves, and `wasmcloud:secrets/store@0.1.0-draft`, which it
//! does not (its `secret` resource must still be defined for the component to
//! instantiate).
//!
//! | route             | host interface used                                     |
//! |-------------------|---------------------------------------------------------|
//! | `/config?key=K`   | `wasi:config/store@0.2.0-rc.1.get` (404 `missing\n`)    |
//! | `/log?msg=M`      | `wasi:logging/logging.log` (info, context `wasmcloud-v2`) |
//! | `/secret?key=K`   | `wasmcloud:secrets/store.get`: `200 secret\n` or `500 error: …` |

mod bindings {
    #![allow(missing_docs, clippy::all)]
    wit_bindgen::generate!({
        path: "wit",
        world: "lattice:wasmcloud-v2/component",
        generate_all,
    });
}

use bindings::wasi::config::store as config;
use bindings::wasi::logging::logging;
use bindings::wasmcloud::secrets::store as secrets;
use http_support::{Query, Reply};
use wasi::http::types::{IncomingRequest, ResponseOutparam};

struct WasmcloudV2;

wasi::http::proxy::export!(WasmcloudV2);

impl wasi::exports::http::incoming_handler::Guest for WasmcloudV2 {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let (path, query) = http_support::target(&request);
        let path = path.as_str();
        route(path, &query)
            .unwrap_or_else(|reply| reply)
            .send(response_out);
    }
}

fn route(path: &str, query: &Query) -> Result<Reply, Reply> {
    match path {
        "/config" => match config::get(query.required("key")?) {
            Ok(Some(value)) => Ok(Reply::ok(format!("{value}\n"))),
            Ok(None) => Ok(Reply::missing()),
            Err(e) => Err(Reply::error(format!("{e:?}"))),
        },
        "/log" => {
            let msg = query.required("msg")?;
            logging::log(logging::Level::Info, "wasmcloud-v2", msg);
            Ok(Reply::ok("logged\n"))
        }
        "/secret" => match secrets::get(query.required("key")?) {
            Ok(_secret) => Ok(Reply::ok("secret\n")),
            Err(e) => Err(Reply::error(format!("{e:?}"))),
        },
        _ => Err(Reply::not_found()),
    }
}
