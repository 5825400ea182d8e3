//! Placement across real `lattice host` processes: weighted spreads land exactly as
//! computed, requirements are respected, a daemonscaler runs on every eligible host,
//! two apps coexist, and a spread no host can satisfy fails with its reason.

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

mod multi_host_support;

use lattice_protocol::messages::AppState;
use multi_host_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spreads_requirements_and_daemons_land_exactly_as_computed() {
    let mut lattice = TestLattice::start("placement").await;
    lattice.start_host("e1", &[("region", "east"), ("tier", "edge")]);
    lattice.start_host("e2", &[("region", "east"), ("tier", "core")]);
    lattice.start_host("w1", &[("region", "west"), ("tier", "edge")]);
    lattice.start_host("x1", &[("tier", "edge")]);
    lattice.wait_hosts(&["e1", "e2", "w1", "x1"]).await;
    lattice.start_controller().await;

    // A daemon on every edge host: e1, w1 and x1, never e2 (core).
    let edge = lattice.manifest(
        "edge",
        "v1",
        &[(
            "agent",
            "- type: daemonscaler\n  properties:\n    instances: 2\n    spread:\n      \
             - name: edge-only\n        requirements:\n          tier: edge",
        )],
    );
    lattice.deploy(&edge);
    lattice
        .wait_placement("edge", "agent", &[("e1", 2), ("w1", 2), ("x1", 2)])
        .await;
    lattice
        .status_until("edge", "edge deployed", |s| s.state == AppState::Deployed)
        .await;

    // 7 instances at weights 30 (east) / 40 (west): wadm's rounding gives 3 / 4.
    // The 3 east ones go to the less loaded east host first: e2 runs no daemon, so
    // e2 gets 2 and e1 1. x1 has no region and gets nothing.
    let web = lattice.manifest(
        "web",
        "v1",
        &[(
            "api",
            "- type: spreadscaler\n  properties:\n    instances: 7\n    spread:\n      \
             - name: east\n        weight: 30\n        requirements:\n          region: east\n      \
             - name: west\n        weight: 40\n        requirements:\n          region: west",
        )],
    );
    lattice.deploy(&web);
    lattice
        .wait_placement("web", "api", &[("e1", 1), ("e2", 2), ("w1", 4)])
        .await;
    let web_status = lattice
        .status_until("web", "web deployed", |s| s.state == AppState::Deployed)
        .await;
    assert_eq!(web_status.components[0].desired, 7);

    // Both apps stay deployed side by side; the daemon did not move.
    let edge_status = lattice.api.status("edge").await.unwrap();
    assert_eq!(edge_status.state, AppState::Deployed, "{edge_status:?}");
    assert_eq!(
        lattice.placement("edge", "agent").await,
        [("e1", 2), ("w1", 2), ("x1", 2)]
            .into_iter()
            .map(|(h, n)| (h.to_string(), n))
            .collect()
    );

    // The CLI sees the same inventory.
    let out = lattice
        .command(&["get", "inventory", "-o", "json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let hosts: Vec<lattice_protocol::messages::HostInfo> =
        serde_json::from_slice(&out.stdout).unwrap();
    let by_name = hosts
        .into_iter()
        .map(|h| (h.labels["name"].clone(), h))
        .collect();
    assert_eq!(
        placement_of(&by_name, "web", "api"),
        lattice.placement("web", "api").await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsatisfiable_spread_fails_with_its_reason() {
    let mut lattice = TestLattice::start("mars").await;
    lattice.start_host("e1", &[("region", "east")]);
    lattice.start_host("w1", &[("region", "west")]);
    lattice.wait_hosts(&["e1", "w1"]).await;
    lattice.start_controller().await;

    let app = lattice.manifest(
        "rover",
        "v1",
        &[(
            "drive",
            "- type: spreadscaler\n  properties:\n    instances: 2\n    spread:\n      \
             - name: red-planet\n        requirements:\n          region: mars",
        )],
    );
    // Without --no-wait the CLI waits and reports the failure.
    let out = lattice
        .command(&["app", "deploy", app.to_str().unwrap(), "--timeout", "10s"])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    let status = lattice
        .status_until("rover", "rover failed", |s| s.state == AppState::Failed)
        .await;
    let msg = &status.message;
    // The spread, the requirement and the hosts considered, with their labels.
    assert!(msg.contains("spread 'red-planet'"), "{msg}");
    assert!(msg.contains("region=mars"), "{msg}");
    assert!(msg.contains("2 host(s)"), "{msg}");
    assert!(
        msg.contains("region=east") && msg.contains("region=west"),
        "{msg}"
    );
    assert!(text.contains("red-planet"), "the CLI says why: {text}");
    assert!(lattice.placement("rover", "drive").await.is_empty());
}
