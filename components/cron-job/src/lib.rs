//! The job half of `manifests/cron.yaml`: exports `example:cron/job` (world `cron-job`
//! of `wit/examples/cron.wit`), which `cron-service` calls every interval, plus a
//! `wasi:http` handler to read what the calls did.
//!
//! - `run(tick)` increments key `ticks` by 1 (`wasi:keyvalue/atomics.increment`) and
//!   sets key `last` to `tick` in decimal, both in bucket `default`. A keyvalue error
//!   returns `err("<operation> <key>: <error>")`.
//! - `GET /count` answers `200 <ticks> <last>\n` (`0` for a key not set), other paths
//!   `404 no such route\n`, and a keyvalue error `500 error: <detail>\n`.
//!
//! The bindings come from two worlds of the repository's WIT (like `shop-auth`):
//! `example:cron/cron-job` for the export and `wasi:keyvalue/imports` for the store;
//! `wasi:http` comes from the `wasi` crate. Only `store` and `atomics` end up imported.

mod bindings {
    #![allow(missing_docs, clippy::all)]
    pub mod cron {
        wit_bindgen::generate!({
            path: "../../wit/examples/cron.wit",
            world: "example:cron/cron-job",
        });
    }
    pub mod keyvalue {
        wit_bindgen::generate!({
            path: "../../wit/deps/keyvalue",
            world: "wasi:keyvalue/imports",
        });
    }
}

use bindings::keyvalue::wasi::keyvalue::{atomics, store};
use wasi::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

const BUCKET: &str = "default";

struct CronJob;

bindings::cron::export!(CronJob with_types_in bindings::cron);
wasi::http::proxy::export!(CronJob);

impl bindings::cron::exports::example::cron::job::Guest for CronJob {
    fn run(tick: u64) -> Result<(), String> {
        let bucket = open()?;
        atomics::increment(&bucket, "ticks", 1).map_err(|e| format!("increment ticks: {e:?}"))?;
        bucket
            .set("last", tick.to_string().as_bytes())
            .map_err(|e| format!("set last: {e:?}"))
    }
}

impl wasi::exports::http::incoming_handler::Guest for CronJob {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let path_with_query = request.path_with_query().unwrap_or_default();
        let path = path_with_query.split('?').next().unwrap_or_default();
        let (status, body) = match path {
            "/count" => match count() {
                Ok(body) => (200, body),
                Err(e) => (500, format!("error: {e}\n")),
            },
            _ => (404, "no such route\n".to_string()),
        };
        send(status, body.as_bytes(), response_out);
    }
}

fn open() -> Result<store::Bucket, String> {
    store::open(BUCKET).map_err(|e| format!("open bucket {BUCKET:?}: {e:?}"))
}

/// `<ticks> <last>\n`, each the stored text or `0` when not set.
fn count() -> Result<String, String> {
    let bucket = open()?;
    let read = |key: &str| -> Result<String, String> {
        let value = bucket.get(key).map_err(|e| format!("get {key}: {e:?}"))?;
        Ok(value.map_or_else(
            || "0".to_string(),
            |v| String::from_utf8_lossy(&v).into_owned(),
        ))
    };
    Ok(format!("{} {}\n", read("ticks")?, read("last")?))
}

fn send(status: u16, body: &[u8], response_out: ResponseOutparam) {
    let headers = Fields::from_list(&[
        ("content-type".to_string(), b"text/plain".to_vec()),
        (
            "content-length".to_string(),
            body.len().to_string().into_bytes(),
        ),
    ])
    .expect("static headers are valid");
    let response = OutgoingResponse::new(headers);
    response
        .set_status_code(status)
        .expect("status code is valid");
    let outgoing = response.body().expect("body is taken once");
    ResponseOutparam::set(response_out, Ok(response));
    let stream = outgoing.write().expect("stream is taken once");
    // The body is a few bytes, far below the 4 KiB one blocking write may carry.
    stream
        .blocking_write_and_flush(body)
        .expect("host accepted the body");
    drop(stream);
    OutgoingBody::finish(outgoing, None).expect("body is complete");
}
