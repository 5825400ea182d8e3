//! `lattice push FILE REF`: push a Wasm component (or, with `--provider`, a
//! provider executable for one OS and architecture) to an OCI registry, in the
//! layout `wash push`/`wkg` use (docs/protocol.md, "OCI artifacts"); and the
//! registry flags shared by `push`, `host`, `controller` and `up`.

use anyhow::Context;
use clap::Args;
use lattice_artifacts::credentials::Credentials;
use lattice_artifacts::oci::{Kind, Platform, Registry, RegistrySettings};
use std::path::PathBuf;
use std::time::Duration;

/// How to reach OCI registries.
#[derive(Debug, Clone, Args)]
pub struct RegistryArgs {
    /// Speak plain HTTP (no TLS) to this registry, `HOST[:PORT]` exactly as
    /// references write it; repeat for more. Every other registry, `localhost`
    /// included, is HTTPS only.
    #[arg(
        long = "allow-insecure-registry",
        value_name = "HOST[:PORT]",
        env = "LATTICE_ALLOW_INSECURE_REGISTRY",
        value_delimiter = ','
    )]
    pub allow_insecure_registry: Vec<String>,
    /// Docker's config.json to read registry logins from (`auths`, `credHelpers`,
    /// `credsStore`) [default: $DOCKER_CONFIG/config.json, else
    /// ~/.docker/config.json]. LATTICE_REGISTRY_USER and
    /// LATTICE_REGISTRY_PASSWORD (for the registry LATTICE_REGISTRY_HOST names) come
    /// first.
    #[arg(long, env = "LATTICE_REGISTRY_CONFIG", value_name = "FILE")]
    pub registry_config: Option<PathBuf>,
    /// Seconds one registry operation (a manifest, a layer) may take.
    #[arg(long, default_value_t = 120.0, value_name = "SECS")]
    pub registry_timeout: f64,
    /// The largest layer pulled from a registry, in MiB.
    #[arg(long, default_value_t = 256, value_name = "MIB")]
    pub registry_max_layer_mb: u64,
}

impl RegistryArgs {
    /// The settings these flags give.
    pub fn settings(&self) -> anyhow::Result<RegistrySettings> {
        if !(self.registry_timeout.is_finite() && self.registry_timeout > 0.0) {
            anyhow::bail!(
                "--registry-timeout must be a positive number of seconds, not {}",
                self.registry_timeout
            );
        }
        if let Some(path) = &self.registry_config {
            if !path.is_file() {
                anyhow::bail!("--registry-config {} is not a file", path.display());
            }
        }
        for host in &self.allow_insecure_registry {
            if host.is_empty() || host.contains('/') || host.contains("://") {
                anyhow::bail!(
                    "--allow-insecure-registry '{host}': give the registry as HOST[:PORT], as image references write it"
                );
            }
        }
        Ok(RegistrySettings {
            insecure: self.allow_insecure_registry.clone(),
            credentials: Credentials::from_env(self.registry_config.clone()),
            max_layer_bytes: self.registry_max_layer_mb.saturating_mul(1024 * 1024),
            timeout: Duration::from_secs_f64(self.registry_timeout),
        })
    }
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// The file to push: a Wasm component (`.wasm`), or with --provider a
    /// provider executable.
    file: PathBuf,
    /// Where to push it: `REGISTRY/REPOSITORY:TAG` (e.g.
    /// `ghcr.io/org/hello:1.0.0`; `oci://` allowed).
    reference: String,
    /// Push a provider executable: it joins the image index at REF as the entry
    /// for --os/--arch (other platforms already there are kept).
    #[arg(long)]
    provider: bool,
    /// The provider's OS, in Rust's names (`linux`, `macos`) [default: this
    /// machine's].
    #[arg(long, requires = "provider")]
    os: Option<String>,
    /// The provider's CPU architecture, in Rust's names (`x86_64`, `aarch64`)
    /// [default: this machine's].
    #[arg(long, requires = "provider")]
    arch: Option<String>,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// Push, then print the digest the tag names and the pinned reference.
pub async fn run(args: PushArgs) -> anyhow::Result<()> {
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let kind = if args.provider {
        let here = Platform::current();
        Kind::Provider(Platform {
            os: args.os.clone().unwrap_or(here.os),
            architecture: args.arch.clone().unwrap_or(here.architecture),
        })
    } else {
        if !bytes.starts_with(b"\0asm") {
            anyhow::bail!(
                "{} is not WebAssembly (no \\0asm header); push a provider executable with --provider",
                args.file.display()
            );
        }
        Kind::Component
    };
    let registry = Registry::new(args.registry.settings()?)?;
    let reference = args
        .reference
        .strip_prefix("oci://")
        .unwrap_or(&args.reference);
    let digest = registry.push(reference, bytes, &kind).await?;
    let parsed = lattice_protocol::manifest::OciReference::parse(reference)
        .map_err(|e| anyhow::anyhow!("'{reference}': {e}"))?;
    let name = match parsed.registry {
        Some(r) => format!("{r}/{}", parsed.repository),
        None => parsed.repository.to_string(),
    };
    match &kind {
        Kind::Provider(p) => outln!("pushed provider {p} to {reference}"),
        Kind::Component => outln!("pushed component to {reference}"),
    }
    outln!("digest: {digest}");
    outln!("pinned: {name}@{digest}");
    Ok(())
}
