//! Imports and exports `lattice:echo/values` (world `relay` of
//! `wit/examples/echo.wit`): every exported function calls the imported one with the
//! same arguments and returns its result. Linked to `echo` on another host, it puts a
//! second cross-host hop in the host's call tests, so every value type is lowered,
//! sent, lifted and lowered again on the way there and back.
//!
//! wit-bindgen generates distinct Rust types for the import and the export of the same
//! interface; [`convert!`] writes the `From` impls between them, once per direction.
//! A trap in the imported call traps this instance too (the host's doing, not ours).
//!
//! It imports the `wasi:cli` interfaces Rust std brings, never `wasi:http`.

mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/examples/echo.wit",
        world: "lattice:echo/relay",
    });
}

use bindings::exports::lattice::echo::values as export;
use bindings::lattice::echo::values as import;

/// `From<$from::T> for $to::T` for every named type of `values`.
macro_rules! convert {
    ($from:ident => $to:ident) => {
        impl From<$from::Permissions> for $to::Permissions {
            fn from(x: $from::Permissions) -> Self {
                Self::from_bits_retain(x.bits())
            }
        }

        impl From<$from::Color> for $to::Color {
            fn from(x: $from::Color) -> Self {
                match x {
                    $from::Color::Red => Self::Red,
                    $from::Color::Green => Self::Green,
                    $from::Color::Blue => Self::Blue,
                }
            }
        }

        impl From<$from::Shape> for $to::Shape {
            fn from(x: $from::Shape) -> Self {
                match x {
                    $from::Shape::Circle(radius) => Self::Circle(radius),
                    $from::Shape::Rectangle(sides) => Self::Rectangle(sides),
                    $from::Shape::Point => Self::Point,
                    $from::Shape::Named(name) => Self::Named(name),
                }
            }
        }

        impl From<$from::Everything> for $to::Everything {
            fn from(x: $from::Everything) -> Self {
                Self {
                    flag: x.flag,
                    small: x.small,
                    byte: x.byte,
                    short: x.short,
                    ushort: x.ushort,
                    int: x.int,
                    uint: x.uint,
                    long: x.long,
                    ulong: x.ulong,
                    single: x.single,
                    double: x.double,
                    letter: x.letter,
                    text: x.text,
                    bytes: x.bytes,
                    names: x.names,
                    pair: x.pair,
                    shape: x.shape.into(),
                    color: x.color.into(),
                    maybe: x.maybe,
                    outcome: x.outcome.map_err(Into::into),
                    perms: x.perms.into(),
                    nested: x.nested.into_iter().map(shapes).collect(),
                }
            }
        }
    };
}

convert!(import => export);
convert!(export => import);

/// A list of shapes converted element by element, in either direction.
fn shapes<A, B: From<A>>(list: Vec<A>) -> Vec<B> {
    list.into_iter().map(B::from).collect()
}

struct Relay;

bindings::export!(Relay with_types_in bindings);

impl export::Guest for Relay {
    fn echo_bool(x: bool) -> bool {
        import::echo_bool(x)
    }
    fn echo_s8(x: i8) -> i8 {
        import::echo_s8(x)
    }
    fn echo_u8(x: u8) -> u8 {
        import::echo_u8(x)
    }
    fn echo_s16(x: i16) -> i16 {
        import::echo_s16(x)
    }
    fn echo_u16(x: u16) -> u16 {
        import::echo_u16(x)
    }
    fn echo_s32(x: i32) -> i32 {
        import::echo_s32(x)
    }
    fn echo_u32(x: u32) -> u32 {
        import::echo_u32(x)
    }
    fn echo_s64(x: i64) -> i64 {
        import::echo_s64(x)
    }
    fn echo_u64(x: u64) -> u64 {
        import::echo_u64(x)
    }
    fn echo_f32(x: f32) -> f32 {
        import::echo_f32(x)
    }
    fn echo_f64(x: f64) -> f64 {
        import::echo_f64(x)
    }
    fn echo_char(x: char) -> char {
        import::echo_char(x)
    }
    fn echo_string(x: String) -> String {
        import::echo_string(&x)
    }
    fn echo_bytes(x: Vec<u8>) -> Vec<u8> {
        import::echo_bytes(&x)
    }
    fn echo_list(x: Vec<String>) -> Vec<String> {
        import::echo_list(&x)
    }
    fn echo_tuple(x: (u8, String, f64)) -> (u8, String, f64) {
        import::echo_tuple((x.0, &x.1, x.2))
    }
    fn echo_shape(x: export::Shape) -> export::Shape {
        import::echo_shape(&x.into()).into()
    }
    fn echo_color(x: export::Color) -> export::Color {
        import::echo_color(x.into()).into()
    }
    fn echo_option(x: Option<Option<u32>>) -> Option<Option<u32>> {
        import::echo_option(x)
    }
    fn echo_result(x: Result<String, export::Color>) -> Result<String, export::Color> {
        let x: Result<String, import::Color> = x.map_err(Into::into);
        import::echo_result(x.as_ref().map(String::as_str)).map_err(Into::into)
    }
    fn echo_flags(x: export::Permissions) -> export::Permissions {
        import::echo_flags(x.into()).into()
    }
    fn echo_everything(x: export::Everything) -> export::Everything {
        import::echo_everything(&x.into()).into()
    }

    fn ignore(a: u8, b: String, c: Vec<export::Shape>) {
        import::ignore(a, &b, &shapes(c));
    }

    fn trap(message: String) {
        import::trap(&message);
    }

    fn sleep(ms: u32) -> u32 {
        import::sleep(ms)
    }

    fn fail(message: String) -> Result<u32, String> {
        import::fail(&message)
    }
    fn check_bytes(x: Vec<u8>) -> Result<Vec<u8>, String> {
        import::check_bytes(&x)
    }

    fn calls() -> u64 {
        import::calls()
    }
}
