//! Host bindings for the interfaces in `wit/` that wasmtime-wasi does not provide.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "lattice:host/component-imports",
    imports: { default: async | trappable },
    with: {
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "wasi:blobstore/container.container": crate::plugins::blobstore::Container,
        "wasi:blobstore/container.stream-object-names": crate::plugins::blobstore::ObjectNames,
        "wasi:blobstore/types.outgoing-value": crate::plugins::blobstore::OutgoingValue,
        "wasi:blobstore/types.incoming-value": crate::plugins::blobstore::IncomingValue,
        "wasi:keyvalue/store.bucket": crate::plugins::keyvalue::Bucket,
        "wasmcloud:bus/lattice@1.0.0.call-target-interface": crate::plugins::bus::CallTarget,
        "wasmcloud:bus/lattice@2.0.0.call-target-interface": crate::plugins::bus::CallTarget,
    },
});
