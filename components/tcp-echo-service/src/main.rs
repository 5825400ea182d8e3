//! A service (`type: service` in a manifest; a `wasi:cli/run` binary) that echoes
//! every byte it receives on every TCP connection back to the sender until the sender
//! closes its side, then closes the connection. It serves any number of connections at
//! once on one thread (`service_support::serve`). Used by the host's service tests, the
//! loopback benchmark (with `net-bench`) and `manifests/echo-service.yaml`.
//!
//! Config (`wasi:config/store`): `port`, default `7070`. It listens on
//! `0.0.0.0:<port>`, which the host maps onto the workload's private loopback, and
//! prints `listening on <address>` to stderr once bound. A bad `port`, or a port it
//! cannot bind, ends it with exit code 1 and the reason on stderr.

use std::net::{SocketAddr, TcpListener};
use std::process::ExitCode;

use service_support::{config, serve, Service};

/// Sends back what it receives.
struct Echo;

impl Service for Echo {
    type Connection = ();

    fn received(&mut self, _: &mut (), data: &[u8], reply: &mut Vec<u8>) {
        reply.extend_from_slice(data);
    }
}

fn main() -> ExitCode {
    let port = config::setting("port", 7070u16);
    let address = SocketAddr::from(([0, 0, 0, 0], port));
    let listener = match TcpListener::bind(address) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("cannot listen on {address}: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("listening on {}", listener.local_addr().unwrap_or(address));
    let Err(e) = serve(&listener, &mut Echo);
    eprintln!("serving {address}: {e}");
    ExitCode::FAILURE
}
