//! Riding through a NATS restart with real processes: two `lattice host`s and a
//! `lattice controller` keep running while their one nats-server is killed and
//! started again on the same port with the same store. The shop app (an edge host
//! calling a core host over NATS) answers again, the hosts are the same processes
//! (same ids), and an app deployed after the restart reaches its host and answers.
//! Prints how long the hosts took to serve again (docs/benchmarks.md).

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

mod multi_host_support;

use lattice_protocol::messages::AppState;
use lattice_testing::components::sample_manifest;
use lattice_testing::nats::free_port;
use lattice_testing::process::Process;
use multi_host_support::*;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const TOKEN: &str = "let-me-in";
const ALICE: &str = "/order?customer=alice&items=apple:2,pear:1";

async fn get(port: u16, path: &str) -> Result<(u16, String), String> {
    let resp = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}{path}"))
        .bearer_auth(TOKEN)
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    Ok((status, resp.text().await.map_err(|e| e.to_string())?))
}

/// Wait until `port` answers `path` with 200; returns the body.
async fn answered(port: u16, path: &str, what: &str) -> String {
    eventually(what, || async {
        match get(port, path).await {
            Ok((200, body)) => Ok(body),
            other => Err(format!("{other:?}")),
        }
    })
    .await
}

fn write(lattice: &TestLattice, name: &str, text: String) -> std::path::PathBuf {
    let path = lattice.dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// `lattice controller` for `lattice`, expecting the test hosts' fast heartbeats.
fn start_controller(lattice: &TestLattice) -> Process {
    let beat = BEAT_SECS.to_string();
    let mut cmd = lattice.command(&["controller", "--host-heartbeat-interval", &beat]);
    cmd.env("NO_COLOR", "1")
        .env("LATTICE_SIGNING_KEY", lattice.key.seed());
    Process::spawn("controller", cmd).unwrap()
}

fn host_ids(hosts: &BTreeMap<String, lattice_protocol::messages::HostInfo>) -> Vec<String> {
    hosts.values().map(|h| h.host_id.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_and_controller_serve_again_after_nats_restarts() {
    let mut lattice = TestLattice::start("restart").await;
    lattice.start_host("edge", &[("tier", "edge")]);
    lattice.start_host("core1", &[("tier", "core")]);
    let before = host_ids(&lattice.wait_hosts(&["core1", "edge"]).await);
    let mut controller = start_controller(&lattice);

    let shop_port = free_port().unwrap();
    let shop = write(
        &lattice,
        "shop.yaml",
        sample_manifest("shop.yaml", &[(8082, shop_port)]),
    );
    lattice.deploy(&shop);
    let receipt = answered(shop_port, ALICE, "the shop to answer").await;

    // Down for half a second, then for three: async-nats's reconnect delay grows
    // (to 4 s) with the attempts, so a longer outage is followed by a longer wait.
    for (round, down) in [(1, Duration::from_millis(500)), (2, Duration::from_secs(3))] {
        lattice.nats.stop();
        tokio::time::sleep(down).await;
        lattice.nats.restart().unwrap();
        let ready = Instant::now();
        let again = answered(shop_port, ALICE, "the shop to answer after the restart").await;
        assert_eq!(again, receipt, "round {round}");
        let serving = ready.elapsed();
        // The controller serves its API again, from the same process.
        lattice
            .status_until("shop", "the controller to answer after the restart", |s| {
                s.state == AppState::Deployed
            })
            .await;
        eprintln!(
            "NATS restart {round} (down {down:?}): the shop answers again through NATS \
             {serving:?} after the server is ready; the controller's API {:?}",
            ready.elapsed()
        );
    }

    // Same processes, same ids: nothing was restarted.
    let after = host_ids(&lattice.wait_hosts(&["core1", "edge"]).await);
    assert_eq!(before, after);
    assert!(controller.exited().is_none(), "{}", controller.log());

    // A deploy made after the restart reaches the hosts and answers.
    let hello_port = free_port().unwrap();
    let hello = write(
        &lattice,
        "hello.yaml",
        sample_manifest("hello.yaml", &[(8081, hello_port)]),
    );
    lattice.deploy(&hello);
    let greeting = answered(hello_port, "/", "hello, deployed after the restart").await;
    assert!(!greeting.is_empty());
    // An app record written by someone else (another controller) after the
    // restart reaches this controller through its KV watch, and the hosts.
    let late = lattice.manifest(
        "late",
        "v1",
        &[(
            "api",
            "- type: spreadscaler\n  properties:\n    instances: 2",
        )],
    );
    let late = lattice_protocol::manifest::parse(&std::fs::read_to_string(late).unwrap()).unwrap();
    let js = async_nats::jetstream::new(lattice.client.clone());
    let store = lattice_controller::store::Store::open(
        &js,
        &lattice_protocol::subjects::Subjects::new(&lattice.name).state_bucket(),
        1,
        64 << 20,
    )
    .await
    .unwrap();
    store
        .update("late", |current| {
            let mut r = current.unwrap_or_default();
            r.store(late.clone(), 0)?;
            r.deploy("late", None)?;
            Ok(r)
        })
        .await
        .unwrap();
    lattice
        .status_until("late", "the watched record to be deployed", |s| {
            s.state == AppState::Deployed
        })
        .await;

    // Nothing ran twice: shop's placement is still exactly as deployed.
    lattice
        .wait_placement("shop", "auth", &[("edge", 50)])
        .await;
    lattice
        .wait_placement("shop", "business", &[("core1", 50)])
        .await;

    let log = controller.log();
    assert!(
        log.contains("disconnected from NATS") && log.contains("connected to NATS"),
        "the controller logs its connection events:\n{log}"
    );
    eprintln!("{log}");
    controller.interrupt(Duration::from_secs(10)).unwrap();
}
