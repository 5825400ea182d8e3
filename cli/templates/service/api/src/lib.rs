//! An HTTP component asking the service (on the app's private loopback, port
//! 7000) for the next visit number.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use wasmcloud_component::http;
use wasmcloud_component::http::ErrorCode;

struct Api;

http::export!(Api);

impl http::Server for Api {
    fn handle(
        _request: http::IncomingRequest,
    ) -> http::Result<http::Response<impl http::OutgoingBody>> {
        let failed = |e: std::io::Error| ErrorCode::InternalError(Some(format!("service: {e}")));
        let mut stream = TcpStream::connect("127.0.0.1:7000").map_err(failed)?;
        stream.write_all(b"visit\n").map_err(failed)?;
        let mut count = String::new();
        BufReader::new(stream).read_line(&mut count).map_err(failed)?;
        Ok(http::Response::new(format!("visit number {} (counted by the service)\n", count.trim())))
    }
}
