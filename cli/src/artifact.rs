//! `lattice artifact ...`: the lattice's own artifact store (push, list, rm), and
//! the upload `lattice app deploy` does for `file://` images.

use crate::output::{print_json, print_table, Output};
use anyhow::{bail, Context};
use clap::Subcommand;
use lattice_artifacts::{ArtifactStore, Digest, NewArtifact, StoreConfig, StoreError};
use lattice_controller::ApiClient;
use lattice_protocol::manifest::{Image, Manifest};
use std::path::Path;

#[derive(Debug, Subcommand)]
pub enum ArtifactCommand {
    /// Upload a component (.wasm) or a provider executable (for this machine's OS
    /// and architecture) into the lattice's artifact store; prints its digest, to
    /// be named in manifests as `artifact://sha256:…`.
    Push {
        /// The file to upload.
        file: std::path::PathBuf,
    },
    /// Every artifact in the store: digest, kind, size, name.
    List,
    /// Remove an artifact; refused while a stored version of any app names it
    /// (delete the app, or its versions age out, first).
    Rm {
        /// `sha256:<64 hex>`.
        digest: String,
    },
}

pub async fn run(
    cmd: ArtifactCommand,
    client: async_nats::Client,
    lattice: &str,
    output: Output,
) -> anyhow::Result<()> {
    match cmd {
        ArtifactCommand::Push { file } => {
            let store = open_for_upload(&client, lattice).await?;
            let bytes = read(&file)?;
            let meta = store.put(&bytes, describe(&file, &bytes)).await?;
            if output == Output::Json {
                return print_json(&meta);
            }
            outln!("{}", meta.digest);
            Ok(())
        }
        ArtifactCommand::List => {
            let store = match ArtifactStore::open(
                async_nats::jetstream::new(client),
                lattice,
                StoreConfig::default(),
            )
            .await
            {
                Ok(store) => store,
                Err(StoreError::NoBucket { .. }) => {
                    if output == Output::Json {
                        return print_json(&Vec::<()>::new());
                    }
                    outln!("no artifacts on lattice '{lattice}'; `lattice artifact push FILE` or `lattice app deploy` uploads");
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            };
            let list = store.list().await?;
            if output == Output::Json {
                return print_json(&list);
            }
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|a| {
                    let platform = match (&a.os, &a.arch) {
                        (Some(os), Some(arch)) => format!("{os}/{arch}"),
                        _ => "-".into(),
                    };
                    vec![
                        a.digest.clone(),
                        format!("{:?}", a.kind).to_lowercase(),
                        platform,
                        a.size.to_string(),
                        a.name.clone(),
                    ]
                })
                .collect();
            print_table(&["DIGEST", "KIND", "PLATFORM", "BYTES", "NAME"], &rows);
            Ok(())
        }
        ArtifactCommand::Rm { digest } => {
            let parsed: Digest = digest
                .parse()
                .map_err(|e| anyhow::anyhow!("'{digest}' is not a digest: {e}"))?;
            let api = ApiClient::new(client.clone(), lattice);
            let uses: Vec<_> = api
                .artifacts_in_use()
                .await
                .context("asking the controller which stored versions use artifacts")?
                .into_iter()
                .filter(|u| u.digest == parsed.to_string())
                .collect();
            if !uses.is_empty() {
                let list: Vec<String> = uses
                    .iter()
                    .map(|u| format!("{} {} (component '{}')", u.app, u.version, u.component))
                    .collect();
                bail!(
                    "artifact {parsed} is used by stored app versions, so it stays: {}; \
                     `lattice app delete APP` forgets an app's versions",
                    list.join(", ")
                );
            }
            let store = ArtifactStore::open(
                async_nats::jetstream::new(client),
                lattice,
                StoreConfig::default(),
            )
            .await?;
            store.remove(&parsed).await?;
            outln!("removed {parsed}");
            Ok(())
        }
    }
}

/// Upload every `file://` image of `manifest` (already made absolute) into the
/// artifact store once, and name it `artifact://sha256:…` instead: hosts on any
/// machine then fetch it by digest. Provider executables are recorded with this
/// machine's OS and architecture.
pub async fn upload_images(
    manifest: &mut Manifest,
    client: &async_nats::Client,
    lattice: &str,
) -> anyhow::Result<()> {
    let has_files = manifest
        .components
        .iter()
        .any(|c| matches!(c.image, Image::File(_)));
    if !has_files {
        return Ok(());
    }
    let store = open_for_upload(client, lattice).await?;
    for component in &mut manifest.components {
        let Image::File(image) = &component.image else {
            continue;
        };
        let path = Path::new(image.strip_prefix("file://").unwrap_or(image)).to_path_buf();
        let bytes = read(&path)?;
        let new = if component.is_provider() {
            NewArtifact::local_provider(&file_name(&path))
        } else {
            NewArtifact::component(&file_name(&path))
        };
        let meta = store.put(&bytes, new).await.with_context(|| {
            format!(
                "uploading the image of '{}' ({})",
                component.name,
                path.display()
            )
        })?;
        eprintln!("uploaded {} as {}", path.display(), meta.digest);
        component.image = Image::Artifact(meta.digest);
    }
    Ok(())
}

/// Open the lattice's artifact store for uploads. The controller creates it,
/// with the replicas and size it was started with: a store the CLI created
/// first would have one replica, and a controller for three would then refuse
/// to start.
async fn open_for_upload(
    client: &async_nats::Client,
    lattice: &str,
) -> anyhow::Result<ArtifactStore> {
    let js = async_nats::jetstream::new(client.clone());
    match ArtifactStore::open(js, lattice, StoreConfig::default()).await {
        Err(StoreError::NoBucket { bucket }) => bail!(
            "the artifact store of lattice '{lattice}' (bucket {bucket}) does not exist yet: \
             the lattice's controller creates it when it starts; start one (`lattice up` or \
             `lattice controller`) and try again"
        ),
        other => Ok(other?),
    }
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// A Wasm file is a component; anything else a provider executable for here.
fn describe(path: &Path, bytes: &[u8]) -> NewArtifact {
    if bytes.starts_with(b"\0asm") {
        NewArtifact::component(&file_name(path))
    } else {
        NewArtifact::local_provider(&file_name(path))
    }
}
