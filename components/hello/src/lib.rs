//! The smallest useful `wasi:http/proxy` component: every request gets
//! `200 Hello from lattice!\n`.
//!
//! It imports nothing beyond `wasi:http/proxy`, so `wasmtime serve` runs the very same
//! file; that is what the throughput benchmarks compare against.

use wasi::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

const BODY: &[u8] = b"Hello from lattice!\n";

struct Hello;

wasi::http::proxy::export!(Hello);

impl wasi::exports::http::incoming_handler::Guest for Hello {
    fn handle(_request: IncomingRequest, response_out: ResponseOutparam) {
        let headers = Fields::from_list(&[
            ("content-type".to_string(), b"text/plain".to_vec()),
            (
                "content-length".to_string(),
                BODY.len().to_string().into_bytes(),
            ),
        ])
        .expect("static headers are valid");
        let response = OutgoingResponse::new(headers);
        let body = response.body().expect("body is taken once");
        ResponseOutparam::set(response_out, Ok(response));
        let stream = body.write().expect("stream is taken once");
        // The body is far below the 4 KiB a single blocking write may carry.
        stream
            .blocking_write_and_flush(BODY)
            .expect("host accepted the body");
        drop(stream);
        OutgoingBody::finish(body, None).expect("body is complete");
    }
}
