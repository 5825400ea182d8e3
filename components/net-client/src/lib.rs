//! A `wasi:http` handler that talks TCP with `std::net` (blocking; wasi-libc turns it
//! into `wasi:sockets`), so host tests can check what a component may do on its
//! workload's private loopback: connect to the app's services, but never listen.
//!
//! Query values are percent-decoded. Every answer is `text/plain`.
//!
//! | request                  | answer |
//! |--------------------------|--------|
//! | `/echo?port=P&msg=M`     | connects to `127.0.0.1:P` (default 7070), writes `M`, reads exactly `len(M)` bytes back and answers `200` with them (no newline added) |
//! | `/cache?port=P&cmd=C`    | connects to `127.0.0.1:P` (default 6380), sends `C\n`, answers `200` with the first reply line plus `\n` |
//! | `/listen?port=P`         | `TcpListener::bind("127.0.0.1:P")` (`P` default 0, any port): `200 listening\n` if it worked (it must not for a component), else `403 error: ...` |
//! | `/connect?addr=A`        | `TcpStream::connect(A)` with `A` an `IP:PORT`: `200 connected\n`, else `502 error: ...` |
//! | anything else            | `404 no such route\n` |
//!
//! An I/O failure answers `error: <kind> (<step> <address>: <detail>)\n`, where
//! `<kind>` is `std::io::ErrorKind`'s text, so tests can tell
//! `error: connection refused (...)` from `error: permission denied (...)`; for
//! example `502 error: connection refused (connect 127.0.0.1:7070: Connection refused
//! (os error 14))\n`. `/listen` answers `403`, the others `502`. A missing `msg`/`cmd`/
//! `addr`, or a `port`/`addr` that does not parse, answers `400 bad request: ...\n`.
//!
//! Addresses are parsed as IP addresses, never looked up, so the component imports
//! `wasi:sockets/{network,instance-network,tcp,tcp-create-socket}` but not
//! `ip-name-lookup`.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};

use http_support::{Query, Reply};
use wasi::http::types::{IncomingRequest, ResponseOutparam};

struct NetClient;

wasi::http::proxy::export!(NetClient);

impl wasi::exports::http::incoming_handler::Guest for NetClient {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let (path, query) = http_support::target(&request);
        let path = path.as_str();
        let reply = match path {
            "/echo" => echo(&query),
            "/cache" => cache(&query),
            "/listen" => listen(&query),
            "/connect" => connect(&query),
            _ => Err(Reply::not_found()),
        };
        reply.unwrap_or_else(|reply| reply).send(response_out);
    }
}

fn echo(query: &Query) -> Result<Reply, Reply> {
    let address = loopback(query, 7070)?;
    let message = query.required("msg")?;
    let mut stream = TcpStream::connect(address).map_err(failed("connect", address))?;
    stream
        .write_all(message.as_bytes())
        .map_err(failed("write to", address))?;
    let mut echoed = vec![0; message.len()];
    stream
        .read_exact(&mut echoed)
        .map_err(failed("read from", address))?;
    Ok(Reply::ok(echoed))
}

fn cache(query: &Query) -> Result<Reply, Reply> {
    let address = loopback(query, 6380)?;
    let command = query.required("cmd")?;
    let mut stream = TcpStream::connect(address).map_err(failed("connect", address))?;
    stream
        .write_all(format!("{command}\n").as_bytes())
        .map_err(failed("write to", address))?;
    let mut line = String::new();
    BufReader::new(stream)
        .read_line(&mut line)
        .map_err(failed("read from", address))?;
    match line.strip_suffix('\n') {
        Some(line) => Ok(Reply::ok(format!("{}\n", line.trim_end_matches('\r')))),
        None => Err(failed("read from", address)(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("the service closed the connection after {line:?}, before a whole reply line"),
        ))),
    }
}

fn listen(query: &Query) -> Result<Reply, Reply> {
    let address = loopback(query, 0)?;
    match TcpListener::bind(address) {
        Ok(_listener) => Ok(Reply::ok("listening\n")),
        Err(e) => Err(error(403, "bind", address, &e)),
    }
}

fn connect(query: &Query) -> Result<Reply, Reply> {
    let raw = query.required("addr")?;
    let address: SocketAddr = raw
        .parse()
        .map_err(|e| Reply::bad_request(format!("addr {raw:?} is not an IP:PORT address ({e})")))?;
    TcpStream::connect(address).map_err(failed("connect", address))?;
    Ok(Reply::ok("connected\n"))
}

/// `127.0.0.1:<port>`, with `port` from the query or `default`.
fn loopback(query: &Query, default: u16) -> Result<SocketAddr, Reply> {
    let port = match query.get("port") {
        None => default,
        Some(raw) => raw
            .parse()
            .map_err(|e| Reply::bad_request(format!("port {raw:?} is not a port number ({e})")))?,
    };
    Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
}

/// Maps an I/O error of `step` on `address` to a `502`.
fn failed(step: &'static str, address: SocketAddr) -> impl Fn(io::Error) -> Reply {
    move |e| error(502, step, address, &e)
}

fn error(status: u16, step: &str, address: SocketAddr, e: &io::Error) -> Reply {
    Reply::new(
        status,
        format!("error: {} ({step} {address}: {e})\n", e.kind()),
    )
}
