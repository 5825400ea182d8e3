//! The host's metrics, read from the counters it keeps anyway (the heartbeat's
//! report, each component's outcomes, the compile cache): what the admin
//! address's `/metrics` shows and OTLP pushes carry.

use crate::Host;
use lattice_protocol::messages::HostInfo;
use lattice_telemetry::{Family, Labels};

impl Host {
    /// Every metric of this host, read now.
    pub fn metrics(&self) -> Vec<Family> {
        let info = self.info();
        let mut out = calls(&info);
        out.extend(components(&info));
        out.extend(outcomes(self));
        out.extend(restarts(&info));
        let (hits, compiles) = self.compile_cache();
        out.push(Family::counter(
            "lattice_host_compile_cache_hits_total",
            "components found compiled by digest (no fetch, no compile)",
            vec![(vec![], hits)],
        ));
        out.push(Family::counter(
            "lattice_host_compiles_total",
            "components compiled (compile-cache misses)",
            vec![(vec![], compiles)],
        ));
        out
    }
}

fn calls(info: &HostInfo) -> Vec<Family> {
    let c = &info.calls;
    let route = |r: &str| vec![("route", r.to_string())];
    vec![
        Family::counter(
            "lattice_host_linked_calls_total",
            "linked calls by route: made in-process, sent over NATS (one request each), served for other hosts, failed",
            vec![
                (route("local"), c.local),
                (route("remote"), c.remote),
                (route("served"), c.served),
                (route("failed"), c.failed),
            ],
        ),
        Family::counter(
            "lattice_host_refused_commands_total",
            "commands this host refused (bad signature, replay, not admitted)",
            vec![(vec![], info.refused_commands)],
        ),
        Family::gauge(
            "lattice_host_draining",
            "1 while the host drains",
            vec![(vec![], f64::from(u8::from(info.draining)))],
        ),
    ]
}

fn component_labels(app: &str, version: &str, component: &str) -> Labels {
    vec![
        ("app", app.to_string()),
        ("version", version.to_string()),
        ("component", component.to_string()),
    ]
}

fn components(info: &HostInfo) -> Vec<Family> {
    let (mut instances, mut in_flight, mut invocations, mut traps) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for w in &info.workloads {
        for c in &w.components {
            let labels = component_labels(&w.app, &w.version, &c.name);
            instances.push((labels.clone(), f64::from(c.instances)));
            in_flight.push((labels.clone(), f64::from(c.in_flight)));
            invocations.push((labels.clone(), c.invocations));
            traps.push((labels, c.traps));
        }
    }
    vec![
        Family::gauge(
            "lattice_host_component_instances",
            "concurrent invocations a component may run on this host",
            instances,
        ),
        Family::gauge(
            "lattice_host_component_in_flight",
            "invocations running now",
            in_flight,
        ),
        Family::counter(
            "lattice_host_component_invocations_total",
            "invocations that ended, since this version started here",
            invocations,
        ),
        Family::counter(
            "lattice_host_component_traps_total",
            "invocations that trapped or ran out of time, since this version started here",
            traps,
        ),
    ]
}

/// Per component: the duration histogram, timeouts, the queue and overload
/// refusals.
fn outcomes(host: &Host) -> Vec<Family> {
    let (mut durations, mut timeouts, mut overloaded, mut queued, mut warm) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (app, w) in host.workloads().iter() {
        for (name, rt) in &w.components {
            let labels = component_labels(app, &w.version, name);
            let c = rt.outcomes.read();
            timeouts.push((labels.clone(), c.timed_out));
            overloaded.push((labels.clone(), c.overloaded));
            queued.push((labels.clone(), rt.limiter.queued() as f64));
            if let Some(pool) = &rt.warm {
                warm.push((labels.clone(), pool.idle() as f64));
            }
            durations.push((labels, c.durations));
        }
    }
    vec![
        Family::gauge(
            "lattice_host_component_queued",
            "invocations waiting for a free instance now",
            queued,
        ),
        Family::gauge(
            "lattice_host_component_warm_idle",
            "idle warm instances kept for the next invocations (components with properties.warm)",
            warm,
        ),
        Family::seconds(
            "lattice_host_component_invocation_duration_seconds",
            "how long admitted invocations ran, since this version started here",
            durations,
        ),
        Family::counter(
            "lattice_host_component_timeouts_total",
            "invocations stopped at their execution deadline",
            timeouts,
        ),
        Family::counter(
            "lattice_host_component_overloaded_total",
            "invocations refused for want of a free instance (HTTP 503, `overloaded` calls)",
            overloaded,
        ),
    ]
}

/// Per service and provider process: restarts.
fn restarts(info: &HostInfo) -> Vec<Family> {
    let (mut services, mut providers) = (Vec::new(), Vec::new());
    for w in &info.workloads {
        let labels = |name: &str| vec![("app", w.app.clone()), ("name", name.to_string())];
        if let Some(s) = &w.service {
            services.push((labels(&s.name), u64::from(s.restarts)));
        }
        for p in &w.providers {
            providers.push((labels(&p.name), u64::from(p.restarts)));
        }
    }
    vec![
        Family::counter(
            "lattice_host_service_restarts_total",
            "restarts of each app's service on this host",
            services,
        ),
        Family::counter(
            "lattice_host_provider_restarts_total",
            "restarts of each provider process on this host",
            providers,
        ),
    ]
}
