//! A service: one long-running instance beside the app's components on every
//! host that runs them, listening on the app's private loopback network (no one
//! outside the app reaches it). It keeps a visit count in memory: each connection
//! that sends a line gets the new count back.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

fn main() {
    let listener = TcpListener::bind("0.0.0.0:7000").expect("the app's loopback port 7000 is free");
    eprintln!("listening on 0.0.0.0:7000");
    let mut visits: u64 = 0;
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let mut line = String::new();
        if BufReader::new(&stream).read_line(&mut line).is_ok() {
            visits += 1;
            let _ = writeln!(stream, "{visits}");
        }
    }
}
