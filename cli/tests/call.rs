//! `lattice call` on a real nats-server, a real `lattice host` and a controller:
//! the shop's `business` component answers `place-order` and `catalogue` with
//! arguments and results in WAVE (records, lists, options, tuples, variants,
//! results), over the CLI's call subject. Unknown functions name the ones there
//! are; arguments of the wrong type or number name the parameter and its type.

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

mod multi_host_support;

use lattice_testing::manifest::{App, Component};
use multi_host_support::*;

const PLACE_ORDER: &str = "example:shop/orders.place-order";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wave_values_round_trip_through_a_running_component() {
    let mut lattice = TestLattice::start("calls").await;
    lattice.start_controller().await;
    lattice.start_host("a", &[]);
    lattice.wait_hosts(&["a"]).await;
    // The shop's `business` alone, two instances.
    let yaml = App::new("shop")
        .with(Component::wasm("business", "shop-business").instances(2))
        .yaml();
    let path = lattice.dir.path().join("shop.yaml");
    std::fs::write(&path, yaml).unwrap();
    lattice.deploy(&path);
    lattice
        .wait_placement("shop", "business", &[("a", 2)])
        .await;

    // A record holding a list of records and an option in; a result of a record
    // holding a list of tuples out.
    let order = r#"{customer: "alice", items: [{sku: "apple", quantity: 2}, {sku: "pear", quantity: 1}], coupon: some("TENOFF")}"#;
    let (ok, out, err) = lattice.run(&["call", "shop", "business", PLACE_ORDER, order]);
    assert!(ok, "{out}{err}");
    assert_eq!(
        out,
        "ok({order-id: 5595653295556370804, customer: \"alice\", lines: [(\"apple\", 100), (\"pear\", 75)], total-cents: 158, discount-percent: 10})\n"
    );
    // A variant case with a payload, and one without, in the error side.
    let unknown = r#"{customer: "bob", items: [{sku: "kiwi", quantity: 1}]}"#;
    let (ok, out, err) = lattice.run(&["call", "shop", "business", PLACE_ORDER, unknown]);
    assert!(ok, "{out}{err}");
    assert_eq!(out, "err(unknown-sku(\"kiwi\"))\n");
    let empty = r#"{customer: "bob", items: [], coupon: none}"#;
    let (_, out, _) = lattice.run(&["call", "shop", "business", PLACE_ORDER, empty]);
    assert_eq!(out, "err(empty-order)\n");
    // No parameters; a list of tuples out; the `#` form and a version are accepted.
    let (ok, out, err) = lattice.run(&[
        "call",
        "shop",
        "business",
        "example:shop/orders@0.1.0#catalogue",
    ]);
    assert!(ok, "{out}{err}");
    assert_eq!(
        out,
        "[(\"apple\", 50), (\"coffee\", 1250), (\"melon\", 320), (\"pear\", 75), (\"tea\", 900)]\n"
    );

    // An unknown function names the ones there are.
    let (ok, _, err) = lattice.run(&["call", "shop", "business", "example:shop/orders.cancel"]);
    assert!(!ok);
    assert!(
        err.contains("does not export example:shop/orders.cancel")
            && err.contains("example:shop/orders.catalogue, example:shop/orders.place-order"),
        "{err}"
    );
    // A value of the wrong type names the parameter and its type.
    let (ok, _, err) = lattice.run(&[
        "call",
        "shop",
        "business",
        PLACE_ORDER,
        r#"{customer: "x", items: [{sku: "apple", quantity: -1}]}"#,
    ]);
    assert!(!ok);
    assert!(
        err.contains("argument 'order'") && err.contains("quantity: u32"),
        "{err}"
    );
    // The wrong number of arguments names the parameters.
    let (ok, _, err) = lattice.run(&["call", "shop", "business", PLACE_ORDER]);
    assert!(!ok);
    assert!(
        err.contains("takes 1 argument (order: record {") && err.contains("0 given"),
        "{err}"
    );
    // A component nobody runs.
    let (ok, _, err) = lattice.run(&["call", "shop", "nobody", PLACE_ORDER, order]);
    assert!(!ok);
    assert!(
        err.contains("no host runs component 'nobody' of app 'shop'"),
        "{err}"
    );
}
