//! No file of `host/src`, `controller/src` or `protocol/src` imports, through any
//! chain, a file that imports it back (see `lattice_testing::imports`).

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

use std::path::Path;

fn assert_no_circles(krate: &str) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(krate)
        .join("src");
    let circles = lattice_testing::imports::circles(&src).expect("read the sources");
    assert!(
        circles.is_empty(),
        "files of {krate}/src import each other in a circle; move what they share to a \
         leaf module or pass a handle down:\n{}",
        circles
            .iter()
            .map(|c| format!("  {}", c.join(" <-> ")))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn host_has_no_import_circles() {
    assert_no_circles("host");
}

#[test]
fn controller_has_no_import_circles() {
    assert_no_circles("controller");
}

#[test]
fn protocol_has_no_import_circles() {
    assert_no_circles("protocol");
}
