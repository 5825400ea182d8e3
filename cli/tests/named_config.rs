//! Named config (`lattice config put|get|list|rm`) on a real nats-server, a real
//! `lattice host` and a controller: a manifest names stored config as wadm
//! names `wash config put`'s, the component reads it through `wasi:config`, and a
//! change is read by the next invocation without a redeploy. A manifest naming
//! config that is not stored is refused.

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

mod multi_host_support;

use lattice_testing::components::component;
use lattice_testing::nats::free_port;
use multi_host_support::*;
use std::path::PathBuf;

/// The `features` guest behind http-server on `port`, its config the blocks
/// `config` (YAML list items, indented for `properties.config`).
fn manifest(lattice: &TestLattice, version: &str, port: u16, config: &str) -> PathBuf {
    let image = component("features");
    let yaml = format!(
        "apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: configured
  annotations:
    version: {version}
spec:
  components:
    - name: features
      type: component
      properties:
        image: file://{image}
        config:
{config}
      traits:
        - type: spreadscaler
          properties:
            instances: 1
    - name: httpserver
      type: capability
      properties:
        image: builtin://http-server
      traits:
        - type: link
          properties:
            target:
              name: features
            namespace: wasi
            package: http
            interfaces: [incoming-handler]
            source:
              config:
                - name: listen
                  properties:
                    address: 127.0.0.1:{port}
",
        image = image.display()
    );
    let path = lattice
        .dir
        .path()
        .join(format!("configured-{version}.yaml"));
    std::fs::write(&path, yaml).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_config_change_reaches_the_next_invocation_without_a_redeploy() {
    let mut lattice = TestLattice::start("named-config").await;
    lattice.start_controller().await;
    lattice.start_host("a", &[]);
    lattice.wait_hosts(&["a"]).await;
    let port = free_port().unwrap();

    // A manifest naming config that is not stored is refused, naming it.
    let blocks = "          - name: defaults
            properties:
              greeting: written-in-the-manifest
              colour: blue
          - name: site-settings
          - name: pinned
            properties:
              colour: green";
    let path = manifest(&lattice, "v1", port, blocks);
    let (ok, _, err) = lattice.run(&["app", "deploy", path.to_str().unwrap()]);
    assert!(!ok, "a deploy naming missing config succeeded");
    assert!(
        err.contains("'site-settings' (component features)") && err.contains("lattice config put"),
        "{err}"
    );

    let (ok, out, err) = lattice.run(&[
        "config",
        "put",
        "site-settings",
        "greeting=hello",
        "colour=red",
        "url=a=b",
    ]);
    assert!(ok, "{out}{err}");
    assert_eq!(out, "stored config 'site-settings' (3 entries)\n");
    let (ok, out, _) = lattice.run(&["config", "get", "site-settings"]);
    assert!(ok);
    assert_eq!(out, "colour=red\ngreeting=hello\nurl=a=b\n");
    let (ok, out, _) = lattice.run(&["-o", "json", "config", "list"]);
    assert!(ok);
    assert_eq!(
        serde_json::from_str::<Vec<String>>(&out).unwrap(),
        ["site-settings"]
    );

    lattice.deploy(&path);
    // Blocks merge in order: the stored config over `defaults`, `pinned` over both.
    let read =
        |key: &'static str| async move { http_get(port, &format!("/config?key={key}")).await };
    eventually("the component answers with the stored value", || async {
        match read("greeting").await {
            Ok(body) if body == "hello" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(read("colour").await.unwrap(), "green");
    assert_eq!(read("url").await.unwrap(), "a=b");

    // A change is read by the next invocations, with no redeploy.
    let version_before = lattice
        .api
        .status("configured")
        .await
        .unwrap()
        .deployed_version;
    let (ok, out, err) = lattice.run(&["config", "put", "site-settings", "greeting=bonjour"]);
    assert!(ok, "{out}{err}");
    eventually("the component reads the new value", || async {
        match read("greeting").await {
            Ok(body) if body == "bonjour" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    // Keys the new values no longer hold are gone; the manifest's stay.
    assert_eq!(read("url").await, Err("404 missing\n".to_string()));
    assert_eq!(read("colour").await.unwrap(), "green");
    let status = lattice.api.status("configured").await.unwrap();
    assert_eq!(
        status.deployed_version, version_before,
        "the app was redeployed"
    );

    // Removing it: the component falls back to what the manifest writes.
    let (ok, out, _) = lattice.run(&["config", "rm", "site-settings"]);
    assert!(ok);
    assert_eq!(out, "removed config 'site-settings'\n");
    eventually("the component reads the manifest's value", || async {
        match read("greeting").await {
            Ok(body) if body == "written-in-the-manifest" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let (ok, _, err) = lattice.run(&["config", "get", "site-settings"]);
    assert!(!ok);
    assert!(err.contains("no config named 'site-settings'"), "{err}");

    // Bad input is refused with a message that names the problem.
    let (ok, _, err) = lattice.run(&["config", "put", "bad name", "a=b"]);
    assert!(!ok);
    assert!(
        err.contains("'bad name' is not a valid config name"),
        "{err}"
    );
    let (ok, _, err) = lattice.run(&["config", "put", "x", "novalue"]);
    assert!(!ok);
    assert!(err.contains("'novalue' is not KEY=VALUE"), "{err}");
}
