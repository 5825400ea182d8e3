//! Shared helpers for the host's integration tests.
#![allow(dead_code)]

use lattice_host::{Host, HostConfig, Limits};
use lattice_protocol::manifest::{parse, ComponentKind, Manifest};
use lattice_protocol::messages::WorkloadSpec;
use lattice_testing::components::component;
use std::time::Duration;

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An app with one HTTP component `name` on `port`, linked to keyvalue `kv`
/// (`keyvalue-memory` or `keyvalue-nats`), with `extra` YAML appended to the
/// component's traits.
pub fn http_app(app: &str, wasm: &str, port: u16, kv: &str, instances: u32) -> Manifest {
    let path = component(wasm);
    let yaml = format!(
        r#"
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: {app}
  annotations:
    version: v1
spec:
  components:
    - name: web
      type: component
      properties:
        image: file://{path}
        config:
          - name: settings
            properties:
              greeting: hi
              colour: blue
      traits:
        - type: spreadscaler
          properties:
            instances: {instances}
        - type: link
          properties:
            target: kv
            namespace: wasi
            package: keyvalue
            interfaces: [store, atomics, batch]
        - type: link
          properties:
            target: kv2
            name: other
            namespace: wasi
            package: keyvalue
            interfaces: [store, atomics, batch]
        - type: link
          properties:
            target:
              name: client
              config:
                - name: allow
                  properties:
                    allowed_hosts: "127.0.0.1:{port}"
            namespace: wasi
            package: http
            interfaces: [outgoing-handler]
    - name: kv
      type: capability
      properties:
        image: builtin://{kv}
    - name: kv2
      type: capability
      properties:
        image: builtin://keyvalue-memory
    - name: client
      type: capability
      properties:
        image: builtin://http-client
    - name: httpserver
      type: capability
      properties:
        image: builtin://http-server
      traits:
        - type: link
          properties:
            target: web
            namespace: wasi
            package: http
            interfaces: [incoming-handler]
            source:
              config:
                - name: listen
                  properties:
                    address: 127.0.0.1:{port}
"#,
        path = path.display()
    );
    parse(&yaml).unwrap_or_else(|e| panic!("test manifest is invalid: {e}"))
}

/// Place every Wasm component of `manifest` here with its scaler's instances.
pub fn spec(manifest: Manifest) -> WorkloadSpec {
    let placements = manifest
        .components
        .iter()
        .filter(|c| c.kind == ComponentKind::Component)
        .map(|c| {
            (
                c.name.clone(),
                c.scaler.as_ref().map_or(1, |s| s.instances()),
            )
        })
        .collect();
    WorkloadSpec {
        manifest,
        placements,
    }
}

pub fn host(limits: Limits, nats: Option<async_nats::Client>) -> Host {
    let config = HostConfig {
        limits,
        ..HostConfig::default()
    };
    Host::new(config, nats).expect("host starts")
}

pub fn quick_limits() -> Limits {
    Limits {
        max_memory_bytes: 64 << 20,
        execution_timeout: Duration::from_secs(2),
        max_queued: 4,
        queue_timeout: Duration::from_secs(1),
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// GET `path` on `port`: (status, body).
pub async fn get(port: u16, path: &str) -> (u16, String) {
    let resp = client()
        .get(format!("http://127.0.0.1:{port}{path}"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}
