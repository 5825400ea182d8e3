//! `lattice secret put|list|rm`: secrets stored in the lattice, which manifests
//! give components and providers (`properties.secrets`, wadm's form). A value is
//! read from stdin or a file, sealed here for the controller's secrets key, and
//! never printed by any command.

use crate::output::{print_json, print_table, Output};
use anyhow::Context;
use clap::Subcommand;
use lattice_controller::ApiClient;
use std::io::Read;
use std::path::PathBuf;

/// The largest value read (the controller's limit is the same).
const MAX_VALUE_BYTES: u64 = 64 * 1024;

#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Store secret NAME (replacing its value) from stdin, or from --file. A
    /// manifest gives it to a component with `secrets: [{name: ASKED-AS,
    /// properties: {policy: P, key: NAME}}]`; hosts get it at their next apply.
    Put {
        /// The secret's name (letters, digits, '-', '_', '.').
        name: String,
        /// Read the value from this file instead of stdin (taken as it is, a
        /// trailing newline included).
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// List the names of the stored secrets (never their values).
    List,
    /// Remove secret NAME.
    Rm {
        /// The secret's name.
        name: String,
    },
}

/// The value: the file's bytes, or stdin's without one trailing newline (as a
/// person types it, or `echo` writes it).
fn read_value(file: Option<&PathBuf>) -> anyhow::Result<Vec<u8>> {
    let mut value = Vec::new();
    match file {
        Some(path) => {
            std::fs::File::open(path)
                .with_context(|| format!("cannot read --file {}", path.display()))?
                .take(MAX_VALUE_BYTES + 1)
                .read_to_end(&mut value)?;
        }
        None => {
            std::io::stdin()
                .take(MAX_VALUE_BYTES + 1)
                .read_to_end(&mut value)
                .context("reading the secret from stdin")?;
            if value.ends_with(b"\n") {
                value.pop();
                if value.ends_with(b"\r") {
                    value.pop();
                }
            }
        }
    }
    if value.len() as u64 > MAX_VALUE_BYTES {
        anyhow::bail!("the secret is over the limit of {MAX_VALUE_BYTES} bytes");
    }
    if value.is_empty() {
        anyhow::bail!("the secret is empty: give its value on stdin or with --file");
    }
    Ok(value)
}

pub async fn run(
    cmd: SecretCommand,
    client: async_nats::Client,
    lattice: &str,
    output: Output,
) -> anyhow::Result<()> {
    let api = ApiClient::new(client, lattice);
    match cmd {
        SecretCommand::Put { name, file } => {
            let value = read_value(file.as_ref())?;
            let size = api.secret_put(&name, &value).await?;
            if output == Output::Json {
                return print_json(&serde_json::json!({ "name": name, "bytes": size }));
            }
            outln!("stored secret '{name}' ({size} bytes)");
        }
        SecretCommand::List => {
            let names = api.secret_list().await?;
            if output == Output::Json {
                return print_json(&names);
            }
            if names.is_empty() {
                outln!("no secrets stored on lattice '{lattice}'");
                return Ok(());
            }
            let rows: Vec<Vec<String>> = names.into_iter().map(|n| vec![n]).collect();
            print_table(&["NAME"], &rows);
        }
        SecretCommand::Rm { name } => {
            api.secret_rm(&name).await?;
            if output == Output::Json {
                return print_json(&serde_json::json!({ "removed": name }));
            }
            outln!("removed secret '{name}'");
        }
    }
    Ok(())
}
