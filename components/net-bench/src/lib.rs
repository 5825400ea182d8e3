//! The component side of the service-loopback benchmark (`host/benches/loopback.rs`):
//! exports `lattice:netbench/client` (world `netbench` of `wit/examples/netbench.wit`)
//! and no `wasi:http`.
//!
//! `echo-rounds(address, size, rounds, reconnect)` connects to `address` (an
//! `IP:PORT`, normally `tcp-echo-service` at `127.0.0.1:7070`) with blocking
//! `std::net`, and per round writes `size` bytes then reads `size` bytes back, checking
//! they are the ones it sent. It connects once for all rounds, or once per round with
//! `reconnect`. It returns the nanoseconds from before the first connect to after the
//! last read (`std::time::Instant`, i.e. `wasi:clocks/monotonic-clock`), or
//! `err("<step> <address>: <error>")`, e.g. `err("connect 127.0.0.1:7070: Connection
//! refused (os error 14)")`. The whole message is written before reading, so the
//! service must keep reading while its replies wait (`tcp-echo-service` does).

mod bindings {
    #![allow(missing_docs, clippy::all)]
    wit_bindgen::generate!({
        path: "../../wit/examples/netbench.wit",
        world: "lattice:netbench/netbench",
    });
}

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

use bindings::exports::lattice::netbench::client::Guest;

struct NetBench;

bindings::export!(NetBench with_types_in bindings);

impl Guest for NetBench {
    fn echo_rounds(
        address: String,
        size: u32,
        rounds: u32,
        reconnect: bool,
    ) -> Result<u64, String> {
        let address: SocketAddr = address
            .parse()
            .map_err(|e| format!("address {address:?} is not an IP:PORT address ({e})"))?;
        let message: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let mut echoed = vec![0; message.len()];
        let connect = || TcpStream::connect(address).map_err(|e| format!("connect {address}: {e}"));

        let start = Instant::now();
        let mut stream = None;
        for round in 0..rounds {
            if reconnect || stream.is_none() {
                stream = Some(connect()?);
            }
            let stream = stream.as_mut().expect("connected above");
            stream
                .write_all(&message)
                .map_err(|e| format!("write to {address} in round {round}: {e}"))?;
            stream
                .read_exact(&mut echoed)
                .map_err(|e| format!("read from {address} in round {round}: {e}"))?;
            if echoed != message {
                return Err(format!(
                    "round {round}: {address} sent back other bytes than it got"
                ));
            }
        }
        Ok(start.elapsed().as_nanos() as u64)
    }
}
