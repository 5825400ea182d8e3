//! How the lattice reacts to the world, with real `lattice host` processes: a host
//! killed with SIGKILL has its work re-placed, a new host picks up work, a label
//! changed at run time moves work, and an older version can be rolled back to.

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

mod multi_host_support;

use lattice_protocol::messages::AppState;
use multi_host_support::*;
use std::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_host_is_replaced_and_a_new_host_picks_up_work() {
    let mut lattice = TestLattice::start("loss").await;
    for name in ["h1", "h2", "h3"] {
        lattice.start_host(name, &[("zone", "a")]);
    }
    lattice.wait_hosts(&["h1", "h2", "h3"]).await;
    lattice.start_controller().await;

    let app = lattice.manifest(
        "shop",
        "v1",
        &[
            (
                "api",
                "- type: spreadscaler\n  properties:\n    instances: 6",
            ),
            (
                "agent",
                "- type: daemonscaler\n  properties:\n    instances: 1",
            ),
        ],
    );
    lattice.deploy(&app);
    lattice
        .wait_placement("shop", "api", &[("h1", 2), ("h2", 2), ("h3", 2)])
        .await;
    lattice
        .status_until("shop", "deployed", |s| s.state == AppState::Deployed)
        .await;

    // SIGKILL: no drain, no goodbye. Lost after 3 missed beats (0.6 s); re-placed.
    lattice.kill_host("h2");
    let killed = Instant::now();
    let replaced = lattice
        .wait_placement("shop", "api", &[("h1", 3), ("h3", 3)])
        .await
        - killed;
    lattice
        .wait_placement("shop", "agent", &[("h1", 1), ("h3", 1)])
        .await;
    lattice
        .status_until("shop", "deployed again", |s| s.state == AppState::Deployed)
        .await;
    eprintln!("SIGKILLed host's work running elsewhere after {replaced:?} (beat 0.2 s x 3)");

    // A new host joins: the spread evens out over it and the daemon runs there too.
    lattice.start_host("h4", &[("zone", "a")]);
    lattice
        .wait_placement("shop", "api", &[("h1", 2), ("h3", 2), ("h4", 2)])
        .await;
    lattice
        .wait_placement("shop", "agent", &[("h1", 1), ("h3", 1), ("h4", 1)])
        .await;
    lattice
        .status_until("shop", "deployed on the new host", |s| {
            s.state == AppState::Deployed
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_host_is_replaced_within_5_s_with_default_settings() {
    let mut lattice = TestLattice::start("defaults").await;
    for name in ["h1", "h2", "h3"] {
        lattice.start_host_beating(name, &[], 1.0);
    }
    lattice.wait_hosts(&["h1", "h2", "h3"]).await;
    // Heartbeat 1 s, lost after 3 missed beats: the defaults of host and controller.
    lattice
        .start_controller_with(lattice_controller::ControllerConfig::default())
        .await;
    let app = lattice.manifest(
        "shop",
        "v1",
        &[(
            "api",
            "- type: spreadscaler\n  properties:\n    instances: 6",
        )],
    );
    lattice.deploy(&app);
    lattice
        .wait_placement("shop", "api", &[("h1", 2), ("h2", 2), ("h3", 2)])
        .await;
    lattice.kill_host("h1");
    let killed = Instant::now();
    let replaced = lattice
        .wait_placement("shop", "api", &[("h2", 3), ("h3", 3)])
        .await
        - killed;
    eprintln!("SIGKILLed host's work running elsewhere after {replaced:?} (defaults)");
    assert!(replaced < std::time::Duration::from_secs(5), "{replaced:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_changed_at_run_time_move_work_and_rollback_works() {
    let mut lattice = TestLattice::start("labels").await;
    lattice.start_host("a1", &[("region", "east")]);
    lattice.start_host("b1", &[("region", "west")]);
    let hosts = lattice.wait_hosts(&["a1", "b1"]).await;
    lattice.start_controller().await;

    let east = "- type: spreadscaler\n  properties:\n    instances: 2\n    spread:\n      \
                - name: east\n        requirements:\n          region: east";
    let v1 = lattice.manifest("shop", "v1", &[("api", east)]);
    lattice.deploy(&v1);
    lattice.wait_placement("shop", "api", &[("a1", 2)]).await;

    // b1 becomes an east host and a1 leaves the east: the work follows the labels.
    let b1 = &hosts["b1"].host_id;
    let a1 = &hosts["a1"].host_id;
    for (host, label) in [(b1, "region=east"), (a1, "region=north")] {
        let out = lattice
            .command(&["host", "label", &host[..16], label])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    lattice.wait_placement("shop", "api", &[("b1", 2)]).await;

    // v2 asks for 3; rolling back to v1 brings 2 back.
    let v2 = lattice.manifest(
        "shop",
        "v2",
        &[("api", &east.replace("instances: 2", "instances: 3"))],
    );
    lattice.deploy(&v2);
    lattice.wait_placement("shop", "api", &[("b1", 3)]).await;
    let out = lattice
        .command(&["app", "deploy", "shop", "--version", "v1"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    lattice.wait_placement("shop", "api", &[("b1", 2)]).await;
    let status = lattice
        .status_until("shop", "v1 deployed", |s| s.state == AppState::Deployed)
        .await;
    assert_eq!(status.deployed_version.as_deref(), Some("v1"));
    assert_eq!(status.latest_version, "v2");
    let versions: Vec<_> = lattice
        .hosts()
        .await
        .values()
        .flat_map(|h| h.workloads.iter().map(|w| w.version.clone()))
        .collect();
    assert_eq!(versions, ["v1"]);
}
