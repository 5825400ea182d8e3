//! The lattice across sites (`lattice_testing::topology`): a three-node core
//! NATS cluster, two edge sites with leaf nodes behind links with injected
//! latency, real `lattice` processes as deploy/README.md starts them.
//!
//! - The shop app: `auth` on both edge sites answers orders that `business` in
//!   the core computes, through the leaf nodes; linked calls prefer the caller's
//!   site and fall back to the core; an edge site cut off from the core keeps
//!   answering with what it runs, and gets the lattice's changes when its link
//!   returns.
//! - Killing the core node an edge site's leaf node is connected to, while
//!   both sites take orders, loses no app record and fails no order that was
//!   not in flight.
//! - Restarting every nats-server (core and leaf) leaves every host and the
//!   controller serving again, none of them restarted, with the app record kept.
//! - A rolling upgrade while both sites take orders fails none; a broken
//!   version halts after its first host, says why, and every host keeps
//!   serving the version before it.
//!
//! Skipped, saying why, where network namespaces cannot be made (not root).

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

use lattice_protocol::messages::HostInfo;
use lattice_protocol::subjects::Subjects;
use lattice_testing::components::sample_manifest;
use lattice_testing::topology::{self, Site, Topology};
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const LATTICE_BIN: &str = env!("CARGO_BIN_EXE_lattice");
/// How long any one condition may take to come true.
const DEADLINE: Duration = Duration::from_secs(45);
const TOKEN: &str = "let-me-in";
const ALICE: &str = "/order?customer=alice&items=apple:2,pear:1";
const ALICE_RECEIPT: &str =
    "order 5595653295556370804 for alice: apple x2 = 100, pear x1 = 75; total 175 cents (discount 0%)\n";
/// The shop's HTTP port (each site is its own namespace).
const SHOP_PORT: u16 = 8082;

fn skip() -> bool {
    match topology::unavailable() {
        Some(why) => {
            eprintln!("SKIPPED: the topology tests need network namespaces: {why}");
            true
        }
        None => false,
    }
}

async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let last = match check().await {
            Ok(v) => return v,
            Err(last) => last,
        };
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}; last seen: {last}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn output(mut cmd: Command) -> (bool, String) {
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// An order at `addr`: the status and body, or why there was none.
async fn order(addr: SocketAddrV4, token: &str) -> Result<(u16, String), String> {
    let resp = reqwest::Client::new()
        .get(format!("http://{addr}{ALICE}"))
        .bearer_auth(token)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    Ok((status, resp.text().await.map_err(|e| e.to_string())?))
}

async fn receipt(addr: SocketAddrV4, token: &str) -> Result<(), String> {
    match order(addr, token).await {
        Ok((200, body)) if body == ALICE_RECEIPT => Ok(()),
        other => Err(format!("{other:?}")),
    }
}

/// `manifests/shop.yaml` as app `name` listening on every address of `port`,
/// with its placements replaced by `auth` and `business` requirement blocks
/// when given.
fn shop(dir: &Path, name: &str, port: u16, token: &str, places: Option<(&str, &str)>) -> PathBuf {
    let mut text = sample_manifest("shop.yaml", &[])
        .replace("127.0.0.1:8082", &format!("0.0.0.0:{port}"))
        .replacen("  name: shop\n", &format!("  name: {name}\n"), 1)
        .replace("token: let-me-in", &format!("token: {token}"));
    if token != TOKEN {
        // Another configuration is another version.
        text = text.replace("version: v0.1.0", "version: v0.2.0");
    }
    if let Some((auth, business)) = places {
        let edge = "            spread:\n              - name: edge\n                requirements:\n                  tier: edge\n";
        let core = "            spread:\n              - name: core\n                requirements:\n                  tier: core\n";
        assert!(
            text.contains(edge) && text.contains(core),
            "shop.yaml changed"
        );
        text = text.replace(edge, auth).replace(core, business);
    }
    let path = dir.join(format!("{name}-{token}.yaml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// `lattice app deploy` until accepted (a JetStream leader may be moving).
async fn deploy(topo: &Topology, file: &Path) {
    eventually(&format!("{} to be accepted", file.display()), || async {
        let (ok, out) = output(topo.cli(&["app", "deploy", file.to_str().unwrap(), "--no-wait"]));
        if ok {
            Ok(())
        } else {
            Err(out)
        }
    })
    .await
}

/// A topology with the shop (v0.1.0, `manifests/shop.yaml` as it is) answering
/// orders at both edge sites.
struct WithShop {
    topo: Topology,
    client: async_nats::Client,
    lattice: String,
    dir: tempfile::TempDir,
    /// The shop's manifest, as deployed.
    file: PathBuf,
    /// Its HTTP address at each edge site.
    sites: [SocketAddrV4; 2],
}

async fn with_shop(name: &str, delay: Duration) -> WithShop {
    let topo = Topology::start(Path::new(LATTICE_BIN), name, delay)
        .await
        .unwrap();
    let client = topo.connect().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lattice = topo.lattice().to_string();
    let file = shop(dir.path(), "shop", SHOP_PORT, TOKEN, None);
    deploy(&topo, &file).await;
    let sites = [topo.edge_addr(0, SHOP_PORT), topo.edge_addr(1, SHOP_PORT)];
    for addr in sites {
        eventually(&format!("an order at {addr}"), || receipt(addr, TOKEN)).await;
    }
    WithShop {
        topo,
        client,
        lattice,
        dir,
        file,
        sites,
    }
}

/// Every host answering a ping through the core, by its `name` label.
async fn hosts(client: &async_nats::Client, lattice: &str) -> BTreeMap<String, HostInfo> {
    lattice_controller::ping_hosts(client, lattice, Duration::from_millis(500))
        .await
        .unwrap()
        .into_iter()
        .filter_map(|h| Some((h.labels.get("name")?.clone(), h)))
        .collect()
}

async fn served(client: &async_nats::Client, lattice: &str) -> BTreeMap<String, u64> {
    hosts(client, lattice)
        .await
        .into_iter()
        .map(|(name, h)| (name, h.calls.served))
        .collect()
}

/// A spread with one requirement `key: value`.
fn spread(key: &str, values: &[&str]) -> String {
    let mut out = "            spread:\n".to_string();
    for v in values {
        out.push_str(&format!(
            "              - name: {v}\n                requirements:\n                  {key}: {v}\n"
        ));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sites_answer_through_leaf_nodes_prefer_their_own_and_survive_a_cut() {
    if skip() {
        return;
    }
    // The shop: auth on both edge sites, business in the core, 10 ms each way
    // between them.
    let WithShop {
        mut topo,
        client,
        lattice,
        dir,
        sites: [edge_a, edge_b],
        ..
    } = with_shop("sites", Duration::from_millis(10)).await;
    let seen = hosts(&client, &lattice).await;
    for edge in topology::EDGE_SITES {
        let calls = seen[edge].calls;
        assert!(calls.remote >= 1 && calls.local == 0, "{edge}: {calls:?}");
    }
    assert!(seen["core"].calls.served >= 2, "{:?}", seen["core"].calls);

    // A second host at edge-a runs business too: edge-a's calls stay at edge-a,
    // edge-b's (no business there) fall back to the core.
    topo.start_host("edge-a-store", Site::Edge(0), &[("tier", "store")])
        .unwrap();
    let near_port = SHOP_PORT + 1;
    let near = shop(
        dir.path(),
        "near",
        near_port,
        TOKEN,
        Some((
            &spread("name", &["edge-a", "edge-b"]),
            &spread("name", &["core", "edge-a-store"]),
        )),
    );
    deploy(&topo, &near).await;
    let (near_a, near_b) = (topo.edge_addr(0, near_port), topo.edge_addr(1, near_port));
    for addr in [near_a, near_b] {
        eventually(&format!("the near app at {addr}"), || receipt(addr, TOKEN)).await;
    }
    let before = served(&client, &lattice).await;
    const N: u64 = 10;
    for _ in 0..N {
        receipt(near_a, TOKEN).await.unwrap();
    }
    let after_a = served(&client, &lattice).await;
    assert_eq!(
        after_a["edge-a-store"],
        before["edge-a-store"] + N,
        "{after_a:?}"
    );
    assert_eq!(after_a["core"], before["core"], "{after_a:?}");
    for _ in 0..N {
        receipt(near_b, TOKEN).await.unwrap();
    }
    let after_b = served(&client, &lattice).await;
    assert_eq!(after_b["core"], after_a["core"] + N, "{after_b:?}");
    assert_eq!(
        after_b["edge-a-store"], after_a["edge-a-store"],
        "{after_b:?}"
    );

    // Cut edge-a off the core: what it runs keeps answering, every time; what
    // needs the core fails clearly; edge-b does not notice.
    topo.cut(0);
    eventually("edge-a's shop to see the core gone", || async {
        match order(edge_a, TOKEN).await {
            Ok((503, body)) => Ok(body),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    for _ in 0..N {
        receipt(near_a, TOKEN).await.unwrap();
        receipt(edge_b, TOKEN).await.unwrap();
    }

    // While it is cut, the near app gets a new token. When the link returns,
    // edge-a's host reports again and the controller brings it the new version;
    // the shop answers there through the core again.
    let near2 = shop(
        dir.path(),
        "near",
        near_port,
        "new-token",
        Some((
            &spread("name", &["edge-a", "edge-b"]),
            &spread("name", &["core", "edge-a-store"]),
        )),
    );
    deploy(&topo, &near2).await;
    eventually("edge-b to take the new token", || {
        receipt(near_b, "new-token")
    })
    .await;
    receipt(near_a, TOKEN).await.unwrap();
    topo.restore(0);
    eventually("edge-a's shop to answer through the core again", || {
        receipt(edge_a, TOKEN)
    })
    .await;
    eventually("edge-a to take the new token", || {
        receipt(near_a, "new-token")
    })
    .await;
    assert_eq!(topo.exited(), Vec::<String>::new());
}

/// One order's start, end and whether it was answered.
type Outcome = (Instant, Instant, Result<(), String>);

/// Two clients per site ordering without pause, recording every order.
struct Load {
    outcomes: Arc<Mutex<Vec<Outcome>>>,
    clients: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(sites: &[SocketAddrV4]) -> Self {
        let outcomes: Arc<Mutex<Vec<Outcome>>> = Arc::default();
        let clients = sites
            .iter()
            .chain(sites)
            .copied()
            .map(|addr| {
                let outcomes = outcomes.clone();
                tokio::spawn(async move {
                    loop {
                        let start = Instant::now();
                        let result = receipt(addr, TOKEN).await;
                        outcomes
                            .lock()
                            .unwrap()
                            .push((start, Instant::now(), result));
                    }
                })
            })
            .collect();
        Self { outcomes, clients }
    }

    /// Orders started after `t` that were answered.
    fn answered_after(&self, t: Instant) -> usize {
        self.outcomes
            .lock()
            .unwrap()
            .iter()
            .filter(|(start, _, r)| *start > t && r.is_ok())
            .count()
    }

    /// Until `n` orders started after `t` were answered.
    async fn wait_answered(&self, what: &str, t: Instant, n: usize) {
        eventually(what, || async {
            match self.answered_after(t) {
                answered if answered >= n => Ok(()),
                answered => Err(format!("{answered} answered")),
            }
        })
        .await
    }

    /// Stop the clients (an order on its way is dropped, not counted) and
    /// give every recorded order.
    fn stop(self) -> Vec<Outcome> {
        for c in &self.clients {
            c.abort();
        }
        let outcomes = self.outcomes.lock().unwrap().clone();
        outcomes
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_a_core_node_under_load_loses_no_record_and_no_order_not_in_flight() {
    if skip() {
        return;
    }
    let WithShop {
        mut topo,
        client,
        lattice,
        sites,
        ..
    } = with_shop("durable", Duration::ZERO).await;

    let load = Load::start(&sites);
    load.wait_answered("orders under load", Instant::now(), 20)
        .await;

    // Kill the core node edge-a's leaf node is connected to: orders from
    // edge-a on their way through it are lost, its leaf node reconnects to
    // another. Every node holds a copy of the state bucket.
    let js = async_nats::jetstream::new(client.clone());
    let state = format!("KV_{}", Subjects::new(&lattice).state_bucket());
    let info = js
        .get_stream(&state)
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .clone();
    assert_eq!(info.config.num_replicas, 3);
    let leader = info.cluster.and_then(|c| c.leader).unwrap_or_default();
    let dead = topo.leaf_hub(0).expect("edge-a's leaf node is connected");
    let name = topo.core_name(dead);
    topo.kill_core(dead);
    let killed = Instant::now();
    eprintln!(
        "killed {name}, edge-a's hub (edge-b's: {:?}; the state bucket's leader: {leader})",
        topo.leaf_hub(1).map(|i| topo.core_name(i))
    );

    // The record survives, and orders keep being answered.
    eventually("the app list to show the shop", || async {
        let (ok, out) = output(topo.cli(&["app", "list"]));
        if ok && out.contains("shop") {
            Ok(())
        } else {
            Err(out)
        }
    })
    .await;
    load.wait_answered("orders after the loss", killed, 100)
        .await;
    let outcomes = load.stop();
    let failed_later: Vec<_> = outcomes
        .iter()
        .filter(|(start, _, r)| *start > killed && r.is_err())
        .collect();
    let in_flight = outcomes
        .iter()
        .filter(|(start, end, r)| *start <= killed && *end > killed && r.is_err())
        .count();
    eprintln!(
        "{} orders, {in_flight} failed in flight at the kill, {} failed after it",
        outcomes.len(),
        failed_later.len()
    );
    assert!(
        failed_later.is_empty(),
        "orders failed after the kill: {failed_later:?}"
    );
    assert!(
        outcomes
            .iter()
            .all(|(start, end, r)| r.is_ok() || (*start <= killed && *end > killed)),
        "an order failed before the kill"
    );

    topo.restart_core(dead).await.unwrap();
    assert_eq!(topo.exited(), Vec::<String>::new());
}

/// The version of `app` each host reports, by the host's `name` label.
async fn versions(
    client: &async_nats::Client,
    lattice: &str,
    app: &str,
) -> BTreeMap<String, String> {
    hosts(client, lattice)
        .await
        .into_iter()
        .filter_map(|(name, h)| {
            let w = h.workloads.into_iter().find(|w| w.app == app)?;
            Some((name, w.version))
        })
        .collect()
}

/// `lattice app status APP`'s text.
fn status(topo: &Topology, app: &str) -> String {
    output(topo.cli(&["app", "status", app])).1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_upgrade_under_load_fails_no_order_and_a_broken_version_halts() {
    if skip() {
        return;
    }
    let WithShop {
        mut topo,
        client,
        lattice,
        dir,
        file: v1,
        sites,
    } = with_shop("rolling", Duration::ZERO).await;
    let load = Load::start(&sites);
    load.wait_answered("orders under load", Instant::now(), 20)
        .await;

    // v0.2.0 changes auth's call timeout: every host running the shop switches,
    // one at a time, while the orders go on.
    let v1_text = std::fs::read_to_string(&v1).unwrap();
    let v2_text = v1_text
        .replace("version: v0.1.0", "version: v0.2.0")
        .replace("timeout: 2s", "timeout: 3s");
    assert_ne!(v1_text, v2_text, "shop.yaml changed");
    let v2 = dir.path().join("shop-v2.yaml");
    std::fs::write(&v2, &v2_text).unwrap();
    let rollout = Instant::now();
    deploy(&topo, &v2).await;
    let mut seen = Vec::new();
    eventually("every host to run v0.2.0", || {
        let (client, lattice, topo) = (&client, &lattice, &topo);
        let status = status(topo, "shop");
        if !seen.contains(&status) {
            seen.push(status.clone());
        }
        async move {
            let versions = versions(client, lattice, "shop").await;
            let all = versions.len() == 3 && versions.values().all(|v| v == "v0.2.0");
            match all && status.contains("state:    deployed") {
                true => Ok(()),
                false => Err(format!("{versions:?}\n{status}")),
            }
        }
    })
    .await;
    eprintln!(
        "rolling upgrade: deploy to every host on v0.2.0 in {:.0} ms; statuses seen:\n{}",
        rollout.elapsed().as_secs_f64() * 1e3,
        seen.join("\n")
    );
    let upgraded = Instant::now();
    load.wait_answered("orders after the upgrade", upgraded, 20)
        .await;

    // v0.3.0 is broken: auth's image is business's component, which does not
    // answer HTTP. The first edge host told to switch refuses it and keeps
    // v0.2.0; the rollout stops there, so the other edge host is never told
    // (the core host, whose business is unchanged, may have switched first).
    let business = "shop_business.wasm";
    let v3_text = v2_text
        .replace("version: v0.2.0", "version: v0.3.0")
        .replacen("shop_auth.wasm", business, 1);
    assert_eq!(v3_text.matches(business).count(), 2, "shop.yaml changed");
    let v3 = dir.path().join("shop-v3.yaml");
    std::fs::write(&v3, &v3_text).unwrap();
    deploy(&topo, &v3).await;
    let halted = eventually("the broken rollout to halt", || async {
        let status = status(&topo, "shop");
        if status.contains("rollout of version v0.3.0 halted")
            && status.contains("does not export wasi:http/incoming-handler")
        {
            Ok(status)
        } else {
            Err(status)
        }
    })
    .await;
    eprintln!("{halted}");
    assert!(halted.contains("state:    failed"), "{halted}");
    let after_halt = Instant::now();
    load.wait_answered("orders after the halt", after_halt, 50)
        .await;
    let versions = versions(&client, &lattice, "shop").await;
    assert_eq!(versions.len(), 3, "{versions:?}");
    for edge in topology::EDGE_SITES {
        assert_eq!(versions[edge], "v0.2.0", "{versions:?}");
    }

    let outcomes = load.stop();
    let failed: Vec<_> = outcomes.iter().filter(|(_, _, r)| r.is_err()).collect();
    eprintln!("{} orders, {} failed", outcomes.len(), failed.len());
    assert!(failed.is_empty(), "orders failed: {failed:?}");
    assert_eq!(topo.exited(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_all_of_nats_restarts_every_process_serves_again_unrestarted() {
    if skip() {
        return;
    }
    let WithShop {
        mut topo,
        dir,
        sites,
        ..
    } = with_shop("restart", Duration::ZERO).await;
    let pids = topo.pids();

    // All five servers down for 2 s, then back on their stores.
    topo.restart_all_nats(Duration::from_secs(2)).await.unwrap();
    let ready = Instant::now();
    for addr in sites {
        eventually(&format!("an order at {addr} after the restart"), || {
            receipt(addr, TOKEN)
        })
        .await;
    }
    let serving = ready.elapsed();
    eventually("the controller to answer with the shop", || async {
        let (ok, out) = output(topo.cli(&["app", "list"]));
        if ok && out.contains("shop") {
            Ok(())
        } else {
            Err(out)
        }
    })
    .await;
    let answering = ready.elapsed();
    eprintln!(
        "all of NATS restarted: both sites' orders answered {:.0} ms and the controller's \
         API {:.0} ms after the servers were ready",
        serving.as_secs_f64() * 1e3,
        answering.as_secs_f64() * 1e3
    );

    // The controller still commands the hosts: a new version reaches both sites.
    deploy(
        &topo,
        &shop(dir.path(), "shop", SHOP_PORT, "new-token", None),
    )
    .await;
    for addr in sites {
        eventually(&format!("the new token at {addr}"), || {
            receipt(addr, "new-token")
        })
        .await;
    }
    // The same processes: none of the lattice's was restarted.
    let lattice_pids = |all: &[(String, u32)]| -> Vec<(String, u32)> {
        all.iter()
            .filter(|(name, _)| !name.starts_with("nats") && !name.starts_with("core-"))
            .cloned()
            .collect()
    };
    assert_eq!(lattice_pids(&topo.pids()), lattice_pids(&pids));
    assert_eq!(lattice_pids(&pids).len(), 4, "{pids:?}");
    assert_eq!(topo.exited(), Vec::<String>::new());
}
