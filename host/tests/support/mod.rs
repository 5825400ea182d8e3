//! The app the host's HTTP and agent tests deploy. The harness itself (a host for
//! tests, limits, HTTP helpers) is `lattice_testing::host`.

use lattice_host::Host;
use lattice_protocol::manifest::Manifest;
use lattice_testing::manifest::{spec, App, Component, Link};
use lattice_testing::nats::free_port;

/// An app with one HTTP component `web` running `wasm` on `port`, linked to
/// keyvalue `kv` (`keyvalue-memory` or `keyvalue-nats`) and to a second memory
/// keyvalue by the link name `other`, and allowed outgoing HTTP to `port` itself.
pub fn http_app(app: &str, wasm: &str, port: u16, kv: &str, instances: u32) -> Manifest {
    let keyvalue = ["store", "atomics", "batch"];
    let web = Component::wasm("web", wasm)
        .config("settings", &[("greeting", "hi"), ("colour", "blue")])
        .instances(instances)
        .link(Link::to("kv", "wasi:keyvalue", &keyvalue))
        .link(Link::to("kv2", "wasi:keyvalue", &keyvalue).named("other"))
        .link(
            Link::to("client", "wasi:http", &["outgoing-handler"])
                .target_config("allow", &[("allowed_hosts", &format!("127.0.0.1:{port}"))]),
        );
    App::new(app)
        .with(web)
        .with(Component::capability("kv", &format!("builtin://{kv}")))
        .with(Component::capability("kv2", "builtin://keyvalue-memory"))
        .with(Component::capability("client", "builtin://http-client"))
        .http_server("web", port)
        .manifest()
}

/// [`http_app`] `app` running `wasm` on keyvalue-memory, deployed on `host` on a
/// free port: the port.
pub async fn serve(host: &Host, app: &str, wasm: &str, instances: u32) -> u16 {
    let port = free_port().unwrap();
    let manifest = http_app(app, wasm, port, "keyvalue-memory", instances);
    host.apply(spec(manifest))
        .await
        .unwrap_or_else(|e| panic!("{app}: {e}"));
    port
}
