//! A `wasi:http` handler that misbehaves on request, for host-robustness tests.
//!
//! | path            | behaviour                                                        |
//! |-----------------|------------------------------------------------------------------|
//! | `/trap`         | panics, so the instance traps before any response is set         |
//! | `/loop`         | spins forever without yielding (needs epoch/fuel interruption)   |
//! | `/sleep?ms=N`   | blocks N ms on a `wasi:clocks` pollable, holding its slot         |
//! | `/alloc?mb=N`   | allocates and touches N MiB; 500 `alloc failed` if memory.grow   |
//! |                 | is refused (so a memory limit shows up as a clean response)      |
//! | anything else   | 200 `ok\n`                                                       |
//!
//! It imports only what `wasi:http/proxy` offers.

use wasi::clocks::monotonic_clock;
use wasi::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

struct Misbehave;

wasi::http::proxy::export!(Misbehave);

impl wasi::exports::http::incoming_handler::Guest for Misbehave {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let path_with_query = request.path_with_query().unwrap_or_default();
        let (path, query) = path_with_query
            .split_once('?')
            .unwrap_or((path_with_query.as_str(), ""));
        match path {
            "/trap" => panic!("misbehave: trap requested"),
            "/loop" => spin_forever(),
            "/sleep" => {
                let ms = number_param(query, "ms").unwrap_or(0);
                monotonic_clock::subscribe_duration(ms.saturating_mul(1_000_000)).block();
                respond(response_out, 200, format!("slept {ms} ms\n").as_bytes());
            }
            "/alloc" => {
                let mb = number_param(query, "mb").unwrap_or(0);
                match allocate_and_touch(mb) {
                    Ok(touched) => respond(
                        response_out,
                        200,
                        format!("allocated {mb} MiB ({touched})\n").as_bytes(),
                    ),
                    Err(reason) => respond(
                        response_out,
                        500,
                        format!("alloc failed: {mb} MiB: {reason}\n").as_bytes(),
                    ),
                }
            }
            _ => respond(response_out, 200, b"ok\n"),
        }
    }
}

/// A CPU loop with no host calls. `black_box` keeps the optimiser from proving the loop
/// useless; an infinite loop without side effects would otherwise be fair game.
fn spin_forever() -> ! {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

/// Allocates `mb` MiB and writes one byte per 4 KiB page so that the memory is really
/// committed. Returns a checksum of what was written so the work cannot be elided.
fn allocate_and_touch(mb: u64) -> Result<u64, String> {
    let bytes = usize::try_from(mb.saturating_mul(1024 * 1024)).map_err(|e| e.to_string())?;
    let mut buffer: Vec<u8> = Vec::new();
    buffer.try_reserve_exact(bytes).map_err(|e| e.to_string())?;
    buffer.resize(bytes, 0);
    for page in buffer.chunks_mut(4096) {
        page[0] = 1;
    }
    let touched = buffer.iter().step_by(4096).map(|&b| u64::from(b)).sum();
    Ok(std::hint::black_box(touched))
}

/// The value of `name` in a `a=1&b=2` query, parsed as a number.
fn number_param(query: &str, name: &str) -> Option<u64> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .and_then(|(_, value)| value.parse().ok())
}

fn respond(response_out: ResponseOutparam, status: u16, body: &[u8]) {
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
    for chunk in body.chunks(4096) {
        stream
            .blocking_write_and_flush(chunk)
            .expect("host accepted the body");
    }
    drop(stream);
    OutgoingBody::finish(outgoing, None).expect("body is complete");
}
