//! App and component status: states and one sentence a person can act on. Pure; called
//! by `reconcile.rs`.

use super::attempts::{Attempt, Phase};
use super::model::{short_host_id, DesiredApp, ObservedHost};
use super::placement::{AppPlacement, Problem};
use lattice_protocol::manifest::Manifest;
use lattice_protocol::messages::{
    AppState, AppStatus, ComponentStatus, HostCommand, ServiceReport, ServiceState, WorkloadReport,
};
use std::collections::BTreeMap;
use std::time::Instant;

/// A command a host keeps refusing, keyed by (host, app): the sentence for status.
pub(crate) type HostFailures = BTreeMap<(String, String), String>;

/// The sentence for a command a host did not carry out.
pub(crate) fn failure_sentence(
    host: &str,
    command: &HostCommand,
    error: &str,
    attempt: &Attempt,
    now: Instant,
) -> String {
    let host = short_host_id(host);
    let what = match command {
        HostCommand::Apply { workload } => format!(
            "host {host} could not run app '{}' version {}",
            workload.manifest.name, workload.manifest.version
        ),
        HostCommand::Remove { app } => format!("host {host} could not remove app '{app}'"),
        HostCommand::SetLabels { .. } => format!("host {host} could not change its labels"),
    };
    let retry = match attempt.phase {
        Phase::Backoff { until } if until > now => {
            let secs = until.saturating_duration_since(now).as_secs_f64().ceil();
            format!("retrying in {secs:.0}s")
        }
        _ => "retrying now".to_string(),
    };
    let times = if attempt.failures == 1 {
        "once".to_string()
    } else {
        format!("{} times", attempt.failures)
    };
    format!("{what}: {error} (failed {times}; {retry})")
}

/// Status of a deployed app.
pub(crate) fn deployed(
    app: &DesiredApp,
    manifest: &Manifest,
    placement: &AppPlacement,
    reported: &[(&ObservedHost, &WorkloadReport)],
    failures: &HostFailures,
    rollout: Option<&super::rollout::Gate>,
) -> AppStatus {
    let version = &manifest.version;
    let app_failures: BTreeMap<&str, &str> = failures
        .iter()
        .filter(|((_, a), _)| a == &app.name)
        .map(|((h, _), s)| (h.as_str(), s.as_str()))
        .collect();

    let mut components = Vec::new();
    // Placement problems, then host failures: the reasons the app is failed.
    let mut failed: Vec<String> = Vec::new();
    for (name, cp) in &placement.components {
        let running: BTreeMap<String, u32> = reported
            .iter()
            .filter(|(_, w)| &w.version == version)
            .filter_map(|(h, w)| {
                let c = w.components.iter().find(|c| &c.name == name)?;
                (c.instances > 0).then(|| (h.id.clone(), c.instances))
            })
            .collect();
        let total = saturating_sum(running.values().copied());
        // Instances of an older version that still serve (a rollout going on or
        // halted): worth saying when the new version's count looks bleak.
        let older = saturating_sum(
            reported
                .iter()
                .filter(|(_, w)| &w.version != version)
                .filter_map(|(_, w)| w.components.iter().find(|c| &c.name == name))
                .map(|c| c.instances),
        );
        let older = match older {
            0 => String::new(),
            n => format!("; {n} of an older version still serving"),
        };
        let host_failure = cp
            .per_host
            .keys()
            .find_map(|h| app_failures.get(h.as_str()).copied());
        let (state, message) = if !cp.problems.is_empty() {
            let waiting = cp.problems.iter().all(|p| *p == Problem::NoHosts);
            let text: Vec<String> = cp.problems.iter().map(|p| p.sentence(name)).collect();
            let state = if waiting {
                AppState::Waiting
            } else {
                failed.push(text.join("; "));
                AppState::Failed
            };
            (state, text.join("; "))
        } else if let Some(f) = host_failure {
            (AppState::Failed, format!("{f}{older}"))
        } else if running == cp.per_host {
            (
                AppState::Deployed,
                format!("{total} instance(s) running on {} host(s)", running.len()),
            )
        } else {
            (
                AppState::Reconciling,
                format!("{total}/{} instance(s) running{older}", cp.desired),
            )
        };
        components.push(ComponentStatus {
            name: name.clone(),
            state,
            desired: cp.desired,
            running,
            message,
        });
    }

    if let Some(svc) = manifest.service() {
        let (status, failure) = service_status(&svc.name, version, placement, reported);
        failed.extend(failure);
        components.push(status);
    }

    // Hosts that still run the app but should not.
    let leftovers = reported
        .iter()
        .filter(|(h, _)| !placement.per_host.contains_key(&h.id))
        .count();

    failed.extend(app_failures.values().map(|s| s.to_string()));
    // Hosts still on another version while a rollout goes on (or is halted).
    let old_hosts = reported
        .iter()
        .filter(|(h, w)| placement.per_host.contains_key(&h.id) && &w.version != version)
        .count();
    let rolling = rollout.filter(|_| old_hosts > 0);
    let (state, message) = if let Some(gate) = rolling.filter(|g| g.halted) {
        failed.splice(0..0, gate.trapping.clone());
        (
            AppState::Failed,
            format!(
                "rollout of version {version} halted: {}; {old_hosts} of {} host(s) still run \
                 the previous version, {} waiting",
                failed.join("; "),
                placement.per_host.len(),
                gate.waiting
            ),
        )
    } else if !failed.is_empty() {
        (AppState::Failed, failed.join("; "))
    } else if rolling.is_some() {
        let hosts = placement.per_host.len();
        let at_once = manifest
            .rollout_policy()
            .max_unavailable
            .hosts_at_once(hosts);
        (
            AppState::Reconciling,
            format!(
                "rolling out version {version}, {at_once} host(s) at a time: {} of {hosts} \
                 host(s) switched",
                hosts.saturating_sub(old_hosts)
            ),
        )
    } else if let Some(c) = components.iter().find(|c| c.state == AppState::Waiting) {
        (AppState::Waiting, c.message.clone())
    } else if leftovers > 0 || components.iter().any(|c| c.state != AppState::Deployed) {
        let mut parts: Vec<String> = components
            .iter()
            .filter(|c| c.state != AppState::Deployed)
            .map(|c| {
                format!(
                    "{} {}/{} running",
                    c.name,
                    saturating_sum(c.running.values().copied()),
                    c.desired
                )
            })
            .collect();
        if leftovers > 0 {
            parts.push(format!("removing it from {leftovers} other host(s)"));
        }
        (
            AppState::Reconciling,
            format!("converging to version {version}: {}", parts.join(", ")),
        )
    } else if components.is_empty() {
        (
            AppState::Deployed,
            format!("version {version} is deployed; it has no components to place"),
        )
    } else {
        let instances: u32 = components
            .iter()
            .map(|c| saturating_sum(c.running.values().copied()))
            .fold(0u32, u32::saturating_add);
        let hosts_used = placement.per_host.len();
        (
            AppState::Deployed,
            format!(
                "version {version} runs as desired: {instances} instance(s) of {} component(s) on {hosts_used} host(s)",
                components.len()
            ),
        )
    };
    AppStatus {
        name: app.name.clone(),
        deployed_version: Some(version.clone()),
        latest_version: app.latest_version.clone(),
        state,
        message,
        components,
    }
}

/// The service's status over the hosts that should run the app: running on each,
/// with restarts and the last error said; the failure, if it gave up somewhere.
fn service_status(
    name: &str,
    version: &str,
    placement: &AppPlacement,
    reported: &[(&ObservedHost, &WorkloadReport)],
) -> (ComponentStatus, Option<String>) {
    let reports: Vec<(&str, &ServiceReport)> = reported
        .iter()
        .filter(|(h, w)| w.version == version && placement.per_host.contains_key(&h.id))
        .filter_map(|(h, w)| Some((h.id.as_str(), w.service.as_ref()?)))
        .collect();
    let running: BTreeMap<String, u32> = reports
        .iter()
        .filter(|(_, r)| r.state == ServiceState::Running)
        .map(|(h, _)| (h.to_string(), 1))
        .collect();
    let desired = u32::try_from(placement.per_host.len()).unwrap_or(u32::MAX);
    let restarts = saturating_sum(reports.iter().map(|(_, r)| r.restarts));
    let last_error = reports
        .iter()
        .filter_map(|(h, r)| Some((*h, r.last_error.as_deref()?)))
        .next();
    let gave_up = reports
        .iter()
        .find(|(_, r)| r.state == ServiceState::Failed);
    let (state, message, failure) = if let Some((host, r)) = gave_up {
        let text = format!(
            "service '{name}' crashed {} times in a row on host {} and was given up: {}",
            r.crashes_in_a_row,
            short_host_id(host),
            r.last_error.as_deref().unwrap_or("no error recorded")
        );
        (AppState::Failed, text.clone(), Some(text))
    } else {
        let mut text = format!("running on {}/{desired} host(s)", running.len());
        if restarts > 0 {
            let (host, error) = last_error.unwrap_or(("?", "no error recorded"));
            text.push_str(&format!(
                "; restarted {restarts} time(s), last on host {}: {error}",
                short_host_id(host)
            ));
        }
        let exited = reports
            .iter()
            .filter(|(_, r)| r.state == ServiceState::Exited)
            .count();
        if exited > 0 {
            text.push_str(&format!("; finished on {exited} host(s)"));
        }
        let state = if running.len() + exited == placement.per_host.len() {
            AppState::Deployed
        } else {
            AppState::Reconciling
        };
        (state, text, None)
    };
    let status = ComponentStatus {
        name: name.to_owned(),
        state,
        desired,
        running,
        message,
    };
    (status, failure)
}

/// Status of a stored app that is not deployed.
pub(crate) fn undeployed(
    app: &DesiredApp,
    reported: &[(&ObservedHost, &WorkloadReport)],
    failures: &HostFailures,
) -> AppStatus {
    let still = reported.len();
    let failed: Vec<&str> = failures
        .iter()
        .filter(|((_, a), _)| a == &app.name)
        .map(|(_, s)| s.as_str())
        .collect();
    let message = if !failed.is_empty() {
        format!("undeployed, but {}", failed.join("; "))
    } else if still > 0 {
        format!("undeployed; removing it from {still} host(s)")
    } else {
        format!(
            "version {} is stored but not deployed; deploy it with `lattice app deploy --name {}`",
            app.latest_version, app.name
        )
    };
    AppStatus {
        name: app.name.clone(),
        deployed_version: None,
        latest_version: app.latest_version.clone(),
        state: AppState::Undeployed,
        message,
        components: Vec::new(),
    }
}

/// A sum of what hosts report that cannot overflow, whatever they report.
fn saturating_sum(values: impl Iterator<Item = u32>) -> u32 {
    values.fold(0, u32::saturating_add)
}
