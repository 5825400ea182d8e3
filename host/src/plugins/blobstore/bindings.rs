//! Host bindings of `wasi:blobstore`, its resources being this folder's types.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "lattice:host/blobstore-imports",
    imports: { default: async | trappable },
    with: {
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "wasi:blobstore/container.container": crate::plugins::blobstore::Container,
        "wasi:blobstore/container.stream-object-names": crate::plugins::blobstore::ObjectNames,
        "wasi:blobstore/types.outgoing-value": crate::plugins::blobstore::OutgoingValue,
        "wasi:blobstore/types.incoming-value": crate::plugins::blobstore::IncomingValue,
    },
});
