//! The controller's decision: `reconcile(desired, observed, ctx) -> Plan`.
//!
//! A pure function: no IO, no tokio, no clock of its own. It places every deployed
//! app's components on the observed hosts (`placement.rs`), compares each host's
//! reported workloads with that placement, and answers the [`HostCommand`]s to send
//! plus an `AppStatus` per app (`status.rs`). The runtime may call it as often as it
//! likes: what was already sent and not yet reflected in a heartbeat is held back
//! through [`Attempts`].
//!
//! Architecture invariant: everything the controller decides is decided here, so it
//! can be tested with tables of cases and no NATS.

use super::attempts::{Attempts, Decision};
pub use super::model::{Context, DesiredApp, ObservedHost, Plan, PlannedCommand};
use super::placement::{self, AppPlacement};
use super::rollout;
use super::status::{self, HostFailures};
use lattice_protocol::manifest::{Component, ComponentKind, Image, Manifest};
use lattice_protocol::messages::{HostCommand, WorkloadReport, WorkloadSpec};
use std::collections::{BTreeMap, BTreeSet};

/// Whether the controller places this component: a Wasm component or a provider
/// (a capability run as a process), with a scaler. Builtin capabilities are
/// activated by hosts wherever a linked component runs; a service runs beside every
/// workload of its app.
pub fn placeable(c: &Component) -> bool {
    (c.kind == ComponentKind::Component || c.is_provider())
        && !matches!(c.image, Image::Builtin(_))
        && c.scaler.is_some()
}

/// What hosts report, by app: (host, its report of that app). Built once per
/// reconcile so no step scans every host for every app.
pub(crate) type Reports<'a> = BTreeMap<&'a str, Vec<(&'a ObservedHost, &'a WorkloadReport)>>;

/// Decide what every host should run and what to tell it. See the module docs.
pub fn reconcile(desired: &[DesiredApp], hosts: &[ObservedHost], ctx: &Context<'_>) -> Plan {
    let mut hosts: Vec<&ObservedHost> = hosts.iter().collect();
    hosts.sort_by(|a, b| a.id.cmp(&b.id));
    hosts.dedup_by(|a, b| a.id == b.id);
    let mut apps: Vec<&DesiredApp> = desired.iter().collect();
    apps.sort_by(|a, b| a.name.cmp(&b.name));
    let mut reports = Reports::new();
    for host in &hosts {
        for w in &host.workloads {
            reports.entry(w.app.as_str()).or_default().push((*host, w));
        }
    }
    let no_reports = Vec::new();

    // 1. Place every deployed app, in name order so load-balancing is deterministic.
    let mut load = vec![0; hosts.len()];
    let mut placements: BTreeMap<&str, (&Manifest, AppPlacement)> = BTreeMap::new();
    for app in &apps {
        let Some(manifest) = &app.deployed else {
            continue;
        };
        let mut placement = AppPlacement::default();
        for comp in manifest.components.iter().filter(|c| placeable(c)) {
            let Some(scaler) = &comp.scaler else { continue };
            let reported = reports.get(app.name.as_str()).unwrap_or(&no_reports);
            let current = current_instances(reported, ctx.attempts, &app.name, &comp.name);
            let p = placement::place(scaler, &hosts, &current, &mut load);
            for (host, n) in &p.per_host {
                placement
                    .per_host
                    .entry(host.clone())
                    .or_default()
                    .insert(comp.name.clone(), *n);
            }
            placement.components.push((comp.name.clone(), p));
        }
        placements.insert(&app.name, (manifest, placement));
    }

    // 2. Compare with what each host reports.
    let mut placed_on: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (app, (_, p)) in &placements {
        for host in p.per_host.keys() {
            placed_on.entry(host.as_str()).or_default().push(app);
        }
    }
    let gates: BTreeMap<&str, rollout::Gate> = placements
        .iter()
        .map(|(app, (m, p))| (*app, rollout::gate(app, m, p, &hosts, ctx.attempts)))
        .collect();
    let mut plan = Plan::default();
    let mut failures = HostFailures::new();
    for host in &hosts {
        let mut names: BTreeSet<&str> = host.workloads.iter().map(|w| w.app.as_str()).collect();
        names.extend(placed_on.get(host.id.as_str()).into_iter().flatten());
        for app in names {
            let spec = placements
                .get(app)
                .and_then(|(m, p)| p.per_host.get(&host.id).map(|pl| (*m, pl)));
            let reported = host.workload(app);
            // Build the command only for what is not yet as wanted.
            let wanted = match (spec, reported) {
                (Some((manifest, pl)), reported) => {
                    if reported.is_some_and(|r| report_matches(r, manifest, pl)) {
                        continue;
                    }
                    // A rolling upgrade: this host keeps its version until its turn.
                    let waits = reported.zip(gates.get(app)).is_some_and(|(r, g)| {
                        !g.may_switch(&host.id, &r.version, &manifest.version)
                    });
                    if waits {
                        continue;
                    }
                    HostCommand::Apply {
                        workload: WorkloadSpec {
                            manifest: manifest.clone(),
                            placements: pl.clone(),
                            secrets: None,
                        },
                    }
                }
                (None, Some(_)) => HostCommand::Remove {
                    app: app.to_string(),
                },
                (None, None) => continue,
            };
            if let Some(a) = ctx.attempts.get(&host.id, app) {
                if a.command == wanted {
                    if let Some(error) = &a.last_error {
                        failures.insert(
                            (host.id.clone(), app.to_string()),
                            status::failure_sentence(&host.id, &wanted, error, a, ctx.now),
                        );
                    }
                }
            }
            if ctx
                .attempts
                .decide(&host.id, &wanted, ctx.now, ctx.resend_after)
                == Decision::Send
            {
                plan.commands.push(PlannedCommand {
                    host_id: host.id.clone(),
                    command: wanted,
                });
            }
        }
    }

    // 3. Say how each app is doing.
    for app in apps {
        let reported = reports.get(app.name.as_str()).unwrap_or(&no_reports);
        let s = match placements.get(app.name.as_str()) {
            Some((manifest, placement)) => {
                let gate = gates.get(app.name.as_str());
                status::deployed(app, manifest, placement, reported, &failures, gate)
            }
            None => status::undeployed(app, reported, &failures),
        };
        plan.statuses.insert(app.name.clone(), s);
    }
    plan
}

/// Instances of `app`/`component` each host runs (`reported`: the hosts' reports of
/// `app`) or was just told to run.
fn current_instances(
    reported: &[(&ObservedHost, &WorkloadReport)],
    attempts: &Attempts,
    app: &str,
    component: &str,
) -> BTreeMap<String, u32> {
    let mut current: BTreeMap<String, u32> = BTreeMap::new();
    for (host, w) in reported {
        let n = w
            .components
            .iter()
            .find(|c| c.name == component)
            .map_or(0, |c| c.instances);
        if n > 0 {
            current.insert(host.id.clone(), n);
        }
    }
    for (host, a) in attempts.for_app(app) {
        let told = match &a.command {
            HostCommand::Apply { workload } if a.last_error.is_none() => {
                workload.placements.get(component).copied().unwrap_or(0)
            }
            _ => 0,
        };
        if told > 0 {
            let n = current.entry(host.to_string()).or_default();
            *n = (*n).max(told);
        }
    }
    current
}

/// Whether a host's report shows exactly `placements` of `manifest`'s version.
/// Only placeable components are compared: what a host says about builtins is its own.
pub fn report_matches(
    report: &WorkloadReport,
    manifest: &Manifest,
    placements: &BTreeMap<String, u32>,
) -> bool {
    report.version == manifest.version
        && manifest
            .components
            .iter()
            .filter(|c| placeable(c))
            .all(|c| {
                let reported = report
                    .components
                    .iter()
                    .find(|r| r.name == c.name)
                    .map_or(0, |r| r.instances);
                reported == placements.get(&c.name).copied().unwrap_or(0)
            })
}

#[cfg(test)]
#[path = "reconcile_tests.rs"]
mod tests;
