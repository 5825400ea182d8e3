//! Exports `lattice:echo/values` (world `echo` of `wit/examples/echo.wit`): every
//! `echo-*` function returns its argument unchanged, so the host's cross-host call tests
//! can send each component-model value type across hosts and compare what comes back.
//! `echo-relay` forwards to it to add a hop.
//!
//! The other functions give the tests a callee that misbehaves on purpose:
//! - `ignore(a, b, c)` does nothing;
//! - `trap(message)` panics with `message`, so the instance traps;
//! - `sleep(ms)` blocks `ms` milliseconds on `wasi:clocks/monotonic-clock`
//!   `subscribe-duration` + `pollable.block`, holding its instance, then returns `ms`;
//! - `fail(message)` returns `err(message)`: an error the callee chose;
//! - `calls()` counts its own calls in this instance, so tests see whether an
//!   instance was fresh or warm.
//!
//! It imports `wasi:clocks` and the `wasi:cli` interfaces Rust std brings, never
//! `wasi:http`.

mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/examples/echo.wit",
        world: "lattice:echo/echo",
    });
}

use bindings::exports::lattice::echo::values::{Color, Everything, Guest, Permissions, Shape};
use std::sync::atomic::{AtomicU64, Ordering};
use wasi::clocks::monotonic_clock;

struct Echo;

bindings::export!(Echo with_types_in bindings);

impl Guest for Echo {
    fn echo_bool(x: bool) -> bool {
        x
    }
    fn echo_s8(x: i8) -> i8 {
        x
    }
    fn echo_u8(x: u8) -> u8 {
        x
    }
    fn echo_s16(x: i16) -> i16 {
        x
    }
    fn echo_u16(x: u16) -> u16 {
        x
    }
    fn echo_s32(x: i32) -> i32 {
        x
    }
    fn echo_u32(x: u32) -> u32 {
        x
    }
    fn echo_s64(x: i64) -> i64 {
        x
    }
    fn echo_u64(x: u64) -> u64 {
        x
    }
    fn echo_f32(x: f32) -> f32 {
        x
    }
    fn echo_f64(x: f64) -> f64 {
        x
    }
    fn echo_char(x: char) -> char {
        x
    }
    fn echo_string(x: String) -> String {
        x
    }
    fn echo_bytes(x: Vec<u8>) -> Vec<u8> {
        x
    }
    fn echo_list(x: Vec<String>) -> Vec<String> {
        x
    }
    fn echo_tuple(x: (u8, String, f64)) -> (u8, String, f64) {
        x
    }
    fn echo_shape(x: Shape) -> Shape {
        x
    }
    fn echo_color(x: Color) -> Color {
        x
    }
    fn echo_option(x: Option<Option<u32>>) -> Option<Option<u32>> {
        x
    }
    fn echo_result(x: Result<String, Color>) -> Result<String, Color> {
        x
    }
    fn echo_flags(x: Permissions) -> Permissions {
        x
    }
    fn echo_everything(x: Everything) -> Everything {
        x
    }

    fn ignore(_a: u8, _b: String, _c: Vec<Shape>) {}

    fn trap(message: String) {
        panic!("{message}");
    }

    fn sleep(ms: u32) -> u32 {
        monotonic_clock::subscribe_duration(u64::from(ms) * 1_000_000).block();
        ms
    }

    fn fail(message: String) -> Result<u32, String> {
        Err(message)
    }
    fn check_bytes(x: Vec<u8>) -> Result<Vec<u8>, String> {
        if x.is_empty() {
            Err("empty".to_owned())
        } else {
            Ok(x)
        }
    }

    fn calls() -> u64 {
        static CALLS: AtomicU64 = AtomicU64::new(0);
        CALLS.fetch_add(1, Ordering::Relaxed) + 1
    }
}
