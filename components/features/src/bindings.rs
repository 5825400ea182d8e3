//! Bindings for the lattice host's own interfaces, generated from the repository's `wit/`
//! (the same files the host runs `wasmtime::component::bindgen!` on).
#![allow(missing_docs, clippy::all)]

wit_bindgen::generate!({
    path: "../../wit",
    world: "lattice:host/component-imports",
    generate_all,
});
