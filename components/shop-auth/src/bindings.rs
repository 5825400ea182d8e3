//! Bindings generated from the repository's WIT: `example:shop/auth` (the `orders`
//! import) and `wasi:config/imports` (the `store` import), the same files the host
//! binds. The `wasi:http` export comes from the `wasi` crate instead.
#![allow(missing_docs, clippy::all)]

pub mod shop {
    wit_bindgen::generate!({
        path: "../../wit/examples/shop.wit",
        world: "example:shop/auth",
    });
}

pub mod config {
    wit_bindgen::generate!({
        path: "../../wit/deps/config",
        world: "wasi:config/imports",
    });
}
