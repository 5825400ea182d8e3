//! The edge-plus-core example (`manifests/shop.yaml`) on real `lattice host`
//! processes: `auth` on a `tier=edge` host answers HTTP with what `business` on a
//! `tier=core` host computed; killing the core host turns orders into clear
//! errors, and once the controller re-places `business` they are answered again.

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

mod multi_host_support;

use lattice_testing::nats::free_port;
use multi_host_support::*;

const TOKEN: &str = "let-me-in";
const ALICE: &str = "/order?customer=alice&items=apple:2,pear:1";
const ALICE_RECEIPT: &str =
    "order 5595653295556370804 for alice: apple x2 = 100, pear x1 = 75; total 175 cents (discount 0%)\n";

async fn get(port: u16, path: &str, token: &str) -> Result<(u16, String), String> {
    let resp = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}{path}"))
        .bearer_auth(token)
        .timeout(std::time::Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    Ok((status, resp.text().await.map_err(|e| e.to_string())?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_calls_core_and_survives_losing_it() {
    let mut lattice = TestLattice::start("links").await;
    lattice.start_host("edge", &[("tier", "edge")]);
    lattice.start_host("core1", &[("tier", "core")]);
    lattice.wait_hosts(&["core1", "edge"]).await;
    lattice.start_controller().await;

    let port = free_port().unwrap();
    lattice.deploy(&lattice.shop_manifest(port));
    lattice
        .wait_placement("shop", "auth", &[("edge", 50)])
        .await;
    lattice
        .wait_placement("shop", "business", &[("core1", 50)])
        .await;

    let answer = eventually("the edge to answer an order", || async {
        match get(port, ALICE, TOKEN).await {
            Ok((200, body)) => Ok(body),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(answer, ALICE_RECEIPT);
    let (status, body) = get(port, "/order?customer=bob&items=kiwi:1", TOKEN)
        .await
        .unwrap();
    assert_eq!(
        (status, body.as_str()),
        (422, "rejected: unknown sku 'kiwi'\n")
    );
    let (status, _) = get(port, ALICE, "wrong").await.unwrap();
    assert_eq!(status, 401);

    // The calls crossed hosts: the edge sent them, the core served them.
    let hosts = lattice.hosts().await;
    let (edge, core) = (hosts["edge"].calls, hosts["core1"].calls);
    assert!(edge.remote >= 2 && edge.local == 0, "{edge:?}");
    assert_eq!(core.served, edge.remote, "{core:?}");

    // The core host dies: orders are answered with a clear error, at once.
    lattice.kill_host("core1");
    let (status, body) = get(port, ALICE, TOKEN).await.unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(
        body.starts_with("unavailable: no instance of 'business' (app 'shop') runs anywhere"),
        "{body}"
    );

    // A new core host: the controller places business there, and orders work again.
    lattice.start_host("core2", &[("tier", "core")]);
    lattice
        .wait_placement("shop", "business", &[("core2", 50)])
        .await;
    let answer = eventually("orders to work again", || async {
        match get(port, ALICE, TOKEN).await {
            Ok((200, body)) => Ok(body),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(answer, ALICE_RECEIPT);
}
