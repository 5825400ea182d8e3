//! Exports `{{name}}:greeter/greet` (see `../wit/greeter.wit`).

wit_bindgen::generate!({ path: "../wit", world: "greeter" });

use exports::{{crate}}::greeter::greet::Guest;

struct Greeter;

impl Guest for Greeter {
    fn hello(who: String) -> String {
        format!("Hello, {who}, from the greeter!")
    }
}

export!(Greeter);
