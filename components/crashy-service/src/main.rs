//! A service (`type: service`; a `wasi:cli/run` binary) that crashes on purpose, so
//! the host's tests can watch it restart the service with backoff.
//!
//! Config (`wasi:config/store`):
//! - `crash_after_ms`, default `100`: how long it sleeps after starting;
//! - `mode`, default `panic`: `exit` ends with `std::process::exit(1)` (a
//!   `wasi:cli/exit` with an error status), `panic` panics, which traps the instance,
//!   `spin` burns CPU forever without yielding (the host must still serve others),
//!   `hog` allocates until the memory limit stops it.
//!
//! After the sleep it prints `crashing now` to stderr, then crashes as `mode` says. An
//! unknown `mode` or a bad `crash_after_ms` ends it with exit code 1 and the reason on
//! stderr, without the sleep.

use std::time::Duration;

use service_support::config;

fn main() {
    let after = Duration::from_millis(config::setting("crash_after_ms", 100u64));
    let mode = config::setting("mode", String::from("panic"));
    if !matches!(mode.as_str(), "exit" | "panic" | "spin" | "hog") {
        eprintln!("config key `mode` = {mode:?} is not valid (use exit, panic, spin or hog)");
        std::process::exit(1);
    }
    std::thread::sleep(after);
    eprintln!("crashing now");
    match mode.as_str() {
        "exit" => std::process::exit(1),
        "spin" => spin(),
        "hog" => hog(),
        _ => {}
    }
    panic!("crashy-service: crashing on purpose (mode `panic`)");
}

/// Never returns, never calls the host.
fn spin() -> ! {
    let mut x: u64 = 1;
    loop {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
}

/// Grows memory 1 MiB at a time until allocation fails (a trap).
fn hog() -> ! {
    let mut kept: Vec<Vec<u8>> = Vec::new();
    loop {
        kept.push(vec![1u8; 1 << 20]);
        std::hint::black_box(&kept);
    }
}
