//! `lattice build`: build the component project in a folder for `wasm32-wasip2`
//! (adding the target with rustup when it is missing), copy each component to
//! `build/`, say what each imports and exports, and refuse a component that
//! imports what neither the lattice host provides nor a link in the project's
//! manifest carries, naming the imports.

use anyhow::{bail, Context};
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The project folder (its Cargo.toml; default: here).
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// The project's manifest, relative to --dir: its links say which imports
    /// other components or providers serve.
    #[arg(long, default_value = "wadm.yaml")]
    pub manifest: PathBuf,
}

/// Build; the copies in the project's `build/` of the components built.
pub fn run(args: &BuildArgs) -> anyhow::Result<Vec<PathBuf>> {
    let dir = &args.dir;
    if !dir.join("Cargo.toml").exists() {
        bail!(
            "{} has no Cargo.toml: run `lattice build` in a component project (make one with `lattice new`)",
            dir.display()
        );
    }
    ensure_target()?;
    let metadata = metadata(dir)?;
    say(&format!(
        "building {} for {TARGET} (release)",
        dir.display()
    ));
    let status = Command::new(cargo())
        .args(["build", "--release", "--target", TARGET, "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .status()
        .context("running cargo")?;
    if !status.success() {
        bail!("cargo build failed ({status}); its errors are above");
    }
    let manifest = read_manifest(&dir.join(&args.manifest))?;
    let out = dir.join("build");
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let mut built = Vec::new();
    let mut refused = Vec::new();
    for file in metadata.artifacts {
        let from = metadata.target_dir.join(TARGET).join("release").join(&file);
        let to = out.join(&file);
        std::fs::copy(&from, &to)
            .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
        let bytes = std::fs::read(&to).with_context(|| format!("reading {}", to.display()))?;
        let (imports, exports) = world(&bytes)
            .with_context(|| format!("{} is not a WebAssembly component", to.display()))?;
        let shown = to.strip_prefix(dir).unwrap_or(&to).display().to_string();
        outln!("built {shown} ({} KiB)", bytes.len().div_ceil(1024));
        outln!("  exports: {}", list(&exports));
        outln!("  imports: {}", list(&imports));
        match manifest.as_ref().map(|m| unsatisfied(m, &file, &imports)) {
            Some(Some((component, missing))) if !missing.is_empty() => {
                refused.push(format!(
                    "component '{component}' ({shown}) imports {}",
                    missing.join(", ")
                ));
            }
            Some(None) => outln!("  (no component of {} runs it)", args.manifest.display()),
            _ => {}
        }
        built.push(to);
    }
    if !refused.is_empty() {
        bail!(
            "the lattice cannot satisfy these imports: {}. The host provides WASI 0.2, \
             wasi:keyvalue, wasi:config, wasi:logging, wasi:blobstore, wasmcloud:messaging, \
             wasmcloud:bus and wasmcloud:secrets; any other interface needs a `link` trait in \
             {} to the component or provider that exports it",
            refused.join("; "),
            args.manifest.display()
        );
    }
    Ok(built)
}

fn say(what: &str) {
    eprintln!("build: {what}");
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".to_string()
    } else {
        items.join(", ")
    }
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string())
}

/// Add the wasm32-wasip2 target with rustup when it is not installed.
fn ensure_target() -> anyhow::Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output();
    let Ok(out) = installed else {
        say("rustup not found; assuming the toolchain has the wasm32-wasip2 target");
        return Ok(());
    };
    if String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.trim() == TARGET)
    {
        return Ok(());
    }
    say(&format!(
        "installing the {TARGET} target (rustup target add {TARGET})"
    ));
    let status = Command::new("rustup")
        .args(["target", "add", TARGET])
        .status()
        .context("running rustup")?;
    if !status.success() {
        bail!("`rustup target add {TARGET}` failed ({status})");
    }
    Ok(())
}

struct Metadata {
    target_dir: PathBuf,
    /// The `.wasm` file names cargo builds: cdylibs with `_` for `-`, binaries as named.
    artifacts: Vec<String>,
}

fn metadata(dir: &Path) -> anyhow::Result<Metadata> {
    let out = Command::new(cargo())
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--manifest-path",
        ])
        .arg(dir.join("Cargo.toml"))
        .output()
        .context("running cargo metadata")?;
    if !out.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("reading cargo metadata")?;
    let target_dir = PathBuf::from(json["target_directory"].as_str().unwrap_or("target"));
    let mut artifacts = Vec::new();
    for package in json["packages"].as_array().into_iter().flatten() {
        for target in package["targets"].as_array().into_iter().flatten() {
            let kinds: Vec<&str> = target["kind"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|k| k.as_str())
                .collect();
            let name = target["name"].as_str().unwrap_or_default();
            if kinds.contains(&"cdylib") {
                artifacts.push(format!("{}.wasm", name.replace('-', "_")));
            } else if kinds.contains(&"bin") {
                artifacts.push(format!("{name}.wasm"));
            }
        }
    }
    if artifacts.is_empty() {
        bail!(
            "{} builds no component: a component is a `cdylib` library (or a binary, for a service)",
            dir.display()
        );
    }
    Ok(Metadata {
        target_dir,
        artifacts,
    })
}

fn read_manifest(path: &Path) -> anyhow::Result<Option<lattice_protocol::manifest::Manifest>> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(None);
    };
    lattice_protocol::manifest::parse(&text)
        .map(Some)
        .map_err(|e| anyhow::anyhow!("{} has {e}", path.display()))
}

/// The interfaces a component imports and exports (its top level).
pub fn world(wasm: &[u8]) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    use wasmparser::{Parser, Payload};
    let (mut imports, mut exports) = (Vec::new(), Vec::new());
    let mut depth = 0usize;
    let mut component = false;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload? {
            Payload::Version { encoding, .. } if depth == 0 => {
                component = encoding == wasmparser::Encoding::Component;
            }
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(s) if depth == 0 => {
                for import in s {
                    imports.push(import?.name.name.to_string());
                }
            }
            Payload::ComponentExportSection(s) if depth == 0 => {
                for export in s {
                    exports.push(export?.name.name.to_string());
                }
            }
            _ => {}
        }
    }
    if !component {
        bail!("it is a core module: build for wasm32-wasip2, which makes components");
    }
    Ok((imports, exports))
}

/// The manifest component running `file` and the imports of it that neither the
/// host provides nor one of its links carries; `None` when no component runs it.
fn unsatisfied(
    manifest: &lattice_protocol::manifest::Manifest,
    file: &str,
    imports: &[String],
) -> Option<(String, Vec<String>)> {
    use lattice_protocol::manifest::Image;
    let component = manifest.components.iter().find(|c| match &c.image {
        Image::File(path) => Path::new(path).file_name() == Some(std::ffi::OsStr::new(file)),
        _ => false,
    })?;
    let linked: Vec<String> = component
        .links
        .iter()
        .flat_map(|l| {
            l.interfaces
                .iter()
                .map(move |i| format!("{}:{}/{i}", l.namespace, l.package))
        })
        .collect();
    let missing = imports
        .iter()
        .filter(|import| {
            let interface = import.split('@').next().unwrap_or(import);
            !lattice_host::links::imports::host_provides(import)
                && !linked.iter().any(|l| l == interface)
        })
        .cloned()
        .collect();
    Some((component.name.clone(), missing))
}
