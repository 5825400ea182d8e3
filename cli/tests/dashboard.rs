//! `lattice dashboard` in a real headless Chromium against a running lattice: after
//! the shop is deployed (auth on an edge host, business on a core host) the page
//! shows the app, its hosts and its link with the calls going through it, a
//! screenshot of it is written; killing the core host updates the open page
//! without a reload, and the order that then fails is listed with its trace id.

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

mod multi_host_support;

use lattice_testing::browser::Browser;
use lattice_testing::nats::free_port;
use lattice_testing::process::Process;
use multi_host_support::*;
use std::time::Duration;

const TRACE: &str = "5bf92f3577b34da6a3ce929d0e0e4799";

/// One order at the edge, as a browser's client would send it.
async fn order(port: u16, traceparent: Option<String>) -> Result<u16, String> {
    let mut req = reqwest::Client::new()
        .get(format!(
            "http://127.0.0.1:{port}/order?customer=alice&items=apple:1"
        ))
        .bearer_auth("let-me-in")
        .timeout(Duration::from_secs(10));
    if let Some(tp) = traceparent {
        req = req.header("traceparent", tp);
    }
    req.send()
        .await
        .map(|r| r.status().as_u16())
        .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_the_shop_and_follows_a_host_loss_live() {
    let mut lattice = TestLattice::start("dashboard").await;
    lattice.start_host("edge", &[("tier", "edge")]);
    lattice.start_host("core", &[("tier", "core")]);
    lattice.wait_hosts(&["core", "edge"]).await;
    lattice.start_controller().await;
    let port = free_port().unwrap();
    lattice.deploy(&lattice.shop_manifest(port));
    lattice
        .wait_placement("shop", "business", &[("core", 50)])
        .await;

    let address = format!("127.0.0.1:{}", free_port().unwrap());
    let dashboard = Process::spawn(
        "dashboard",
        lattice.command(&["dashboard", "--address", &address, "--refresh", "200ms"]),
    )
    .unwrap();
    let url = format!("http://{address}/");
    eventually("the dashboard to answer", || async {
        reqwest::get(&url)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    })
    .await;

    let mut browser = Browser::start().await;
    let page = browser.open(&url).await;
    // The app, deployed, with its link and both hosts.
    let shows = |what: &str| format!("document.body.innerText.includes({what:?})");
    let deployed = "document.querySelector('[data-app=\"shop\"] .state-deployed') !== null";
    browser
        .wait_for(&page, deployed, Duration::from_secs(30))
        .await;
    for text in [
        "business (component, deployed): 50 on core of 50",
        "→ business",
        "example:shop/orders",
    ] {
        browser
            .wait_for(&page, &shows(text), Duration::from_secs(10))
            .await;
    }
    for host in ["edge", "core"] {
        let row = format!("document.querySelector('[data-host=\"{host}\"]') !== null");
        browser.wait_for(&page, &row, Duration::from_secs(10)).await;
    }
    // Orders flowing: the auth → business link shows its calls per second.
    let orders = tokio::spawn(async move {
        loop {
            let _ = order(port, None).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let link_busy = "[...document.querySelectorAll('#links tbody tr')].some((r) => \
        r.cells.length > 4 && r.cells[2].textContent.includes('business') && Number(r.cells[4].textContent) > 0)";
    browser
        .wait_for(&page, link_busy, Duration::from_secs(30))
        .await;
    orders.abort();
    // Config values never reach the page (auth's token is config in the manifest).
    let state = reqwest::get(format!("{url}state"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        state.contains("example:shop/orders") && !state.contains("let-me-in"),
        "{state}"
    );
    let text = browser
        .eval(&page, "document.documentElement.outerHTML")
        .await;
    assert!(!text.as_str().unwrap().contains("let-me-in"));
    let shot = browser.screenshot(&page).await;
    assert!(
        shot.starts_with(b"\x89PNG") && shot.len() > 10_000,
        "{} bytes",
        shot.len()
    );
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    std::fs::write(&out, &shot).unwrap();
    eprintln!("screenshot: {}", out.display());

    // The core host dies: the open page says so without a reload.
    let updates = browser
        .eval(&page, "window.updates")
        .await
        .as_u64()
        .unwrap();
    browser.eval(&page, "window.loadedOnce = true").await;
    lattice.kill_host("core");
    let gone = "document.querySelector('[data-host=\"core\"]') === null";
    browser.wait_for(&page, gone, Duration::from_secs(30)).await;
    browser
        .wait_for(&page, &shows("host core is gone"), Duration::from_secs(10))
        .await;
    // An order now fails at the edge's linked call: listed with its trace id.
    let traceparent = format!("00-{TRACE}-00f067aa0ba902b7-01");
    let status = order(port, Some(traceparent)).await.unwrap();
    assert_ne!(status, 200, "business is gone, the order cannot succeed");
    let failed = format!(
        "(() => {{ const r = document.querySelector('#failed tr[data-trace=\"{TRACE}\"]'); \
         return r !== null && r.textContent.includes('example:shop/orders.place-order') \
         && r.textContent.includes('shop/auth on edge'); }})()"
    );
    browser
        .wait_for(&page, &failed, Duration::from_secs(30))
        .await;
    assert_eq!(
        browser.eval(&page, "window.loadedOnce").await,
        serde_json::json!(true),
        "the page reloaded"
    );
    assert!(
        browser
            .eval(&page, "window.updates")
            .await
            .as_u64()
            .unwrap()
            > updates
    );
    drop(dashboard);
}
