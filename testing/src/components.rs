//! Guest components for tests, built from source in `components/` (never checked-in
//! `.wasm` files). The first call in a process runs the components' cargo build
//! (a no-op when `scripts/build-components.sh` already built them); cargo's own
//! lock keeps parallel test processes from building twice at once.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testing/ has a parent folder")
        .to_path_buf()
}

fn target_dir() -> PathBuf {
    std::env::var_os("COMPONENTS_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("components/target"))
}

fn build() -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let output = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
        ])
        .arg(repo_root().join("components/Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir())
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .map_err(|e| format!("cannot run cargo to build the guest components: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "building the guest components failed (is the wasm32-wasip2 target installed? `rustup target add wasm32-wasip2`):\n{}",
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// The path of the built component `name` (`counter`, `hello`, `misbehave`,
/// `features`, `shop-business`, `shop-auth`, `echo`, `echo-relay`, `net-client`,
/// `cron-job`, `net-bench`, and the services `tcp-echo-service`, `cache-service`,
/// `cron-service`, `crashy-service`), building the components first if needed. `name`
/// is the package name; its `-`s become `_` in the file name, as cargo names a cdylib
/// after its crate (`shop_business.wasm`) and each service names its `[[bin]]` target
/// that way (`tcp_echo_service.wasm`).
pub fn component(name: &str) -> PathBuf {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    if let Err(e) = BUILT.get_or_init(build) {
        panic!("{e}");
    }
    let path = target_dir()
        .join("wasm32-wasip2/release")
        .join(format!("{}.wasm", name.replace('-', "_")));
    assert!(path.exists(), "component {} was not built", path.display());
    path
}

/// A sample manifest from `manifests/` (e.g. `shop.yaml`) ready for a test: every
/// `file://../components/target/wasm32-wasip2/release/NAME.wasm` image points at the
/// built component (wherever `COMPONENTS_TARGET_DIR` put it), and each
/// `127.0.0.1:FROM` address in `ports` becomes `127.0.0.1:TO`.
pub fn sample_manifest(file: &str, ports: &[(u16, u16)]) -> String {
    const RELEASE: &str = "file://../components/target/wasm32-wasip2/release/";
    let path = repo_root().join("manifests").join(file);
    let mut text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    while let Some(start) = text.find(RELEASE) {
        let rest = &text[start + RELEASE.len()..];
        let end = rest
            .find(".wasm")
            .unwrap_or_else(|| panic!("{file}: an image under {RELEASE} is not a .wasm"));
        let name = rest[..end].replace('_', "-");
        let image = format!("file://{}", component(&name).display());
        text.replace_range(start..start + RELEASE.len() + end + ".wasm".len(), &image);
    }
    for (from, to) in ports {
        let from = format!("127.0.0.1:{from}");
        assert!(text.contains(&from), "{file} has no address {from}");
        text = text.replace(&from, &format!("127.0.0.1:{to}"));
    }
    text
}
