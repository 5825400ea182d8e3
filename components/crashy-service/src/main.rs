//! A service (`type: service`; a `wasi:cli/run` binary) that crashes on purpose, so
//! the host's tests can watch it restart the service with backoff.
//!
//! Config (`wasi:config/store`):
//! - `crash_after_ms`, default `100`: how long it sleeps after starting;
//! - `mode`, default `panic`: `exit` ends with `std::process::exit(1)` (a
//!   `wasi:cli/exit` with an error status), `panic` panics, which traps the instance.
//!
//! After the sleep it prints `crashing now` to stderr, then crashes as `mode` says. An
//! unknown `mode` or a bad `crash_after_ms` ends it with exit code 1 and the reason on
//! stderr, without the sleep.

use std::time::Duration;

use service_support::config;

fn main() {
    let after = Duration::from_millis(config::setting("crash_after_ms", 100u64));
    let mode = config::setting("mode", String::from("panic"));
    if !matches!(mode.as_str(), "exit" | "panic") {
        eprintln!("config key `mode` = {mode:?} is not valid (use `exit` or `panic`)");
        std::process::exit(1);
    }
    std::thread::sleep(after);
    eprintln!("crashing now");
    if mode == "exit" {
        std::process::exit(1);
    }
    panic!("crashy-service: crashing on purpose (mode `panic`)");
}
