//! `lattice get ...`: ask every host of the lattice about itself (scatter/gather ping).

use crate::output::{human_duration, now_ms, print_json, print_table, Output};
use anyhow::bail;
use clap::Subcommand;
use lattice_controller::{ping_hosts, short_host_id, ApiClient, ApiError};
use lattice_protocol::messages::HostInfo;
use std::time::Duration;

/// How long to collect answers from hosts.
const GATHER: Duration = Duration::from_millis(500);

#[derive(Debug, Subcommand)]
pub enum GetCommand {
    /// The hosts of the lattice: id, labels, uptime, workloads, and linked calls
    /// since start (L: in-process, R: sent over NATS, S: served for other hosts,
    /// F: failed). As the controller admitted them, from their signed heartbeats;
    /// with no controller running, the hosts that answer a ping, marked
    /// unverified.
    Hosts,
    /// What each host runs: per app, its components with instances and in-flight
    /// invocations, and the state of its providers and service (restarts, last
    /// error).
    Inventory {
        /// Only the host whose id starts with this.
        host: Option<String>,
    },
}

/// The hosts the controller admitted; without a controller, whoever answers a
/// ping (anyone on NATS could), said so on stderr.
async fn admitted_hosts(
    client: async_nats::Client,
    lattice: &str,
) -> anyhow::Result<Vec<HostInfo>> {
    let api = ApiClient::new(client.clone(), lattice);
    match api.hosts().await {
        Ok(hosts) => Ok(hosts),
        Err(ApiError::NoController { .. }) => {
            eprintln!(
                "note: no controller answers on lattice '{lattice}'; listing the hosts that answer a ping, unverified"
            );
            Ok(ping_hosts(&client, lattice, GATHER).await?)
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn run(
    cmd: GetCommand,
    client: async_nats::Client,
    lattice: &str,
    output: Output,
) -> anyhow::Result<()> {
    let hosts = admitted_hosts(client, lattice).await?;
    match cmd {
        GetCommand::Hosts => {
            if output == Output::Json {
                return print_json(&hosts);
            }
            if hosts.is_empty() {
                outln!("{}", no_hosts(lattice));
                return Ok(());
            }
            let now = now_ms();
            let rows: Vec<Vec<String>> = hosts
                .iter()
                .map(|h| {
                    vec![
                        short_host_id(&h.host_id).to_string(),
                        if h.draining { "draining" } else { "ready" }.to_string(),
                        human_duration(now.saturating_sub(h.started_at_ms)),
                        h.workloads.len().to_string(),
                        format!(
                            "{}/{}/{}/{}",
                            h.calls.local, h.calls.remote, h.calls.served, h.calls.failed
                        ),
                        h.version.clone(),
                        labels(h),
                    ]
                })
                .collect();
            print_table(
                &[
                    "HOST",
                    "STATE",
                    "UPTIME",
                    "WORKLOADS",
                    "CALLS L/R/S/F",
                    "VERSION",
                    "LABELS",
                ],
                &rows,
            );
            Ok(())
        }
        GetCommand::Inventory { host } => {
            let hosts: Vec<HostInfo> = match &host {
                Some(prefix) => {
                    let found: Vec<HostInfo> = hosts
                        .into_iter()
                        .filter(|h| h.host_id.starts_with(prefix.as_str()))
                        .collect();
                    if found.is_empty() {
                        bail!(
                            "no host whose id starts with '{prefix}' answered on lattice \
                             '{lattice}' within {}ms; `lattice get hosts` lists them",
                            GATHER.as_millis()
                        );
                    }
                    found
                }
                None => hosts,
            };
            if output == Output::Json {
                return print_json(&hosts);
            }
            if hosts.is_empty() {
                outln!("{}", no_hosts(lattice));
                return Ok(());
            }
            for (i, h) in hosts.iter().enumerate() {
                if i > 0 {
                    outln!();
                }
                print_inventory(h);
            }
            Ok(())
        }
    }
}

fn print_inventory(h: &HostInfo) {
    let draining = if h.draining { " (draining)" } else { "" };
    outln!("host {}{draining}  {}", h.host_id, labels(h));
    if h.workloads.is_empty() {
        outln!("  runs nothing");
        return;
    }
    let mut rows = Vec::new();
    for w in &h.workloads {
        // Providers and the service: how their processes and runs are doing.
        let state = |name: &str| {
            w.providers
                .iter()
                .chain(&w.service)
                .find(|r| r.name == name)
                .map(|r| {
                    let state = format!("{:?}", r.state).to_lowercase();
                    match (&r.last_error, r.restarts) {
                        (Some(e), n) if n > 0 => format!("{state}, {n} restart(s), last: {e}"),
                        _ => state,
                    }
                })
                .unwrap_or_default()
        };
        for c in &w.components {
            rows.push(vec![
                format!("  {}", w.app),
                w.version.clone(),
                c.name.clone(),
                c.instances.to_string(),
                c.in_flight.to_string(),
                state(&c.name),
            ]);
        }
        if let Some(service) = &w.service {
            rows.push(vec![
                format!("  {}", w.app),
                w.version.clone(),
                format!("{} (service)", service.name),
                "1".into(),
                "-".into(),
                state(&service.name),
            ]);
        }
        if w.components.is_empty() {
            rows.push(vec![
                format!("  {}", w.app),
                w.version.clone(),
                "-".into(),
                "0".into(),
                "0".into(),
                String::new(),
            ]);
        }
    }
    print_table(
        &[
            "  APP",
            "VERSION",
            "COMPONENT",
            "INSTANCES",
            "IN-FLIGHT",
            "STATE",
        ],
        &rows,
    );
}

/// `k=v,k=v`, user labels first, the automatic `hostcore.*` ones after.
fn labels(h: &HostInfo) -> String {
    let (core, user): (Vec<_>, Vec<_>) = h
        .labels
        .iter()
        .partition(|(k, _)| k.starts_with("hostcore."));
    user.into_iter()
        .chain(core)
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn no_hosts(lattice: &str) -> String {
    format!(
        "no host answered on lattice '{lattice}' within {}ms; start one with `lattice host` \
         or `lattice up`",
        GATHER.as_millis()
    )
}
