//! Host bindings of `wasi:keyvalue`, the bucket resource being [`super::Bucket`].

wasmtime::component::bindgen!({
    path: "../wit",
    world: "lattice:host/keyvalue-imports",
    imports: { default: async | trappable },
    with: {
        "wasi:keyvalue/store.bucket": crate::plugins::keyvalue::Bucket,
    },
});
