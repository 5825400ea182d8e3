//! `lattice config put|get|list|rm`: named config stored in the lattice, which
//! manifests reference by name (`config: [{name: NAME}]`, as wadm references
//! `wash config put`). Components read a change at their next invocation.

use crate::output::{print_json, print_table, Output};
use clap::Subcommand;
use lattice_controller::ApiClient;
use lattice_protocol::manifest::Config;

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Store config NAME with KEY=VALUE pairs, replacing what NAME held. Running
    /// components that name it in `properties.config` read the new values at
    /// their next invocation; providers at their next start.
    Put {
        /// The config's name (letters, digits, '-', '_', '.').
        name: String,
        /// KEY=VALUE pairs (the value may hold '=').
        #[arg(required = true, value_parser = key_value)]
        values: Vec<(String, String)>,
    },
    /// Print config NAME as KEY=VALUE lines.
    Get {
        /// The config's name.
        name: String,
    },
    /// List the names of the stored configs.
    List,
    /// Remove config NAME.
    Rm {
        /// The config's name.
        name: String,
    },
}

fn key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("'{text}' is not KEY=VALUE")),
    }
}

pub async fn run(
    cmd: ConfigCommand,
    client: async_nats::Client,
    lattice: &str,
    output: Output,
) -> anyhow::Result<()> {
    let api = ApiClient::new(client, lattice);
    match cmd {
        ConfigCommand::Put { name, values } => {
            let values: Config = values.into_iter().collect();
            let count = api.config_put(&name, values).await?;
            if output == Output::Json {
                return print_json(&serde_json::json!({ "name": name, "entries": count }));
            }
            outln!("stored config '{name}' ({count} entries)");
        }
        ConfigCommand::Get { name } => {
            let values = api.config_get(&name).await?;
            if output == Output::Json {
                return print_json(&values);
            }
            for (k, v) in values {
                outln!("{k}={v}");
            }
        }
        ConfigCommand::List => {
            let names = api.config_list().await?;
            if output == Output::Json {
                return print_json(&names);
            }
            if names.is_empty() {
                outln!("no config stored on lattice '{lattice}'");
                return Ok(());
            }
            let rows: Vec<Vec<String>> = names.into_iter().map(|n| vec![n]).collect();
            print_table(&["NAME"], &rows);
        }
        ConfigCommand::Rm { name } => {
            api.config_rm(&name).await?;
            if output == Output::Json {
                return print_json(&serde_json::json!({ "removed": name }));
            }
            outln!("removed config '{name}'");
        }
    }
    Ok(())
}
