//! A service (`type: service`; a `wasi:cli/run` binary) keeping an in-memory key-value
//! store that clients use over TCP with a line protocol (see [`protocol`]). It serves
//! any number of connections at once on one thread (`service_support::serve`), all
//! sharing one store, which lives as long as the service runs. Used by
//! `manifests/cache.yaml` (with `net-client`'s `/cache` route) and the host's tests.
//!
//! Config (`wasi:config/store`): `port`, default `6380`. It listens on
//! `0.0.0.0:<port>` (the workload's private loopback) and prints
//! `listening on <address>` to stderr once bound. A bad `port`, or a port it cannot
//! bind, ends it with exit code 1 and the reason on stderr.

mod protocol;

use std::net::{SocketAddr, TcpListener};
use std::process::ExitCode;

use service_support::{config, serve};

fn main() -> ExitCode {
    let port = config::setting("port", 6380u16);
    let address = SocketAddr::from(([0, 0, 0, 0], port));
    let listener = match TcpListener::bind(address) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("cannot listen on {address}: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("listening on {}", listener.local_addr().unwrap_or(address));
    let Err(e) = serve(&listener, &mut protocol::Cache::default());
    eprintln!("serving {address}: {e}");
    ExitCode::FAILURE
}
