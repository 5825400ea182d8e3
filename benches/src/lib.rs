//! Benchmarks that need more than one lattice crate: a host in this process running
//! a capability provider's executable (`benches/benches/kv.rs`). A bench that needs only
//! its own crate stays beside it (`host/benches/`, `controller/benches/`).
//!
//! Cargo builds another package's executables for its own tests only, so a bench
//! here finds a provider in the target folder it was built into: build the provider
//! first, with the same profile (`cargo build --release -p keyvalue-redis`).

use std::path::PathBuf;

/// The executable `name` in the target folder this bench was built into (its
/// `release` folder for `cargo bench`), if it was built.
pub fn executable(name: &str) -> Option<PathBuf> {
    let bench = std::env::current_exe().ok()?;
    // `target/release/deps/kv-<hash>`: the executables are one folder up.
    let path = bench.parent()?.parent()?.join(name);
    path.is_file().then_some(path)
}

/// [`executable`], or a panic that says how to build it.
pub fn required_executable(name: &str) -> PathBuf {
    executable(name).unwrap_or_else(|| {
        panic!("{name} is not built beside this bench: run `cargo build --release -p {name}` first")
    })
}
