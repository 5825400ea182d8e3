//! Table tests for [`reconcile`](super::reconcile): commands and statuses.

use super::*;
use crate::brain::attempts::Backoff;
use lattice_protocol::manifest::{Builtin, Scaler, Spread};
use lattice_protocol::messages::{AppState, ComponentReport};
use std::time::{Duration, Instant};

const S: Duration = Duration::from_secs(1);

/// (app, version, [(component, instances)]) as a host reports it.
type Reported<'a> = (&'a str, &'a str, &'a [(&'a str, u32)]);
/// (case name, desired, hosts, expected commands).
type Case = (
    &'static str,
    Vec<DesiredApp>,
    Vec<ObservedHost>,
    Vec<PlannedCommand>,
);

fn component(name: &str, instances: u32) -> Component {
    Component {
        name: name.to_string(),
        kind: ComponentKind::Component,
        image: Image::File(format!("file:///c/{name}.wasm")),
        config: Default::default(),
        config_layers: Vec::new(),
        secrets: Vec::new(),
        scaler: Some(Scaler::Spreadscaler {
            instances,
            spread: vec![],
        }),
        links: vec![],
        restart: None,
        warm: None,
    }
}

fn manifest(name: &str, version: &str, comps: &[(&str, u32)]) -> Manifest {
    let mut components: Vec<Component> = comps.iter().map(|(n, i)| component(n, *i)).collect();
    components.push(Component {
        name: "http".into(),
        kind: ComponentKind::Capability,
        image: Image::Builtin(Builtin::HttpServer),
        config: Default::default(),
        config_layers: Vec::new(),
        secrets: Vec::new(),
        scaler: None,
        links: vec![],
        restart: None,
        warm: None,
    });
    Manifest {
        name: name.to_string(),
        version: version.to_string(),
        description: None,
        components,
        rollout: None,
    }
}

fn deployed(m: &Manifest) -> DesiredApp {
    DesiredApp {
        name: m.name.clone(),
        latest_version: m.version.clone(),
        deployed: Some(m.clone()),
    }
}

fn host(id: &str, workloads: &[Reported<'_>]) -> ObservedHost {
    ObservedHost {
        id: id.to_string(),
        labels: BTreeMap::new(),
        draining: false,
        workloads: workloads
            .iter()
            .map(|(app, version, comps)| WorkloadReport {
                service: None,
                providers: vec![],
                app: app.to_string(),
                version: version.to_string(),
                components: comps
                    .iter()
                    .map(|(n, i)| ComponentReport {
                        name: n.to_string(),
                        instances: *i,
                        in_flight: 0,
                        invocations: 0,
                        traps: 0,
                    })
                    .collect(),
            })
            .collect(),
        secrets_key: None,
    }
}

fn apply(host: &str, m: &Manifest, placements: &[(&str, u32)]) -> PlannedCommand {
    PlannedCommand {
        host_id: host.to_string(),
        command: HostCommand::Apply {
            workload: WorkloadSpec {
                manifest: m.clone(),
                placements: placements
                    .iter()
                    .map(|(n, i)| (n.to_string(), *i))
                    .collect(),
                secrets: None,
            },
        },
    }
}

fn remove(host: &str, app: &str) -> PlannedCommand {
    PlannedCommand {
        host_id: host.to_string(),
        command: HostCommand::Remove { app: app.into() },
    }
}

fn run(desired: &[DesiredApp], hosts: &[ObservedHost], attempts: &Attempts, now: Instant) -> Plan {
    reconcile(
        desired,
        hosts,
        &Context {
            attempts,
            now,
            resend_after: 10 * S,
        },
    )
}

#[test]
fn command_table() {
    let v1 = manifest("shop", "1.0", &[("api", 2)]);
    let v2 = manifest("shop", "2.0", &[("api", 2)]);
    let undeployed = DesiredApp {
        deployed: None,
        ..deployed(&v1)
    };
    let running_v1: &[Reported<'_>] = &[("shop", "1.0", &[("api", 2)])];
    let cases: Vec<Case> = vec![
        (
            "new app -> apply on the only host",
            vec![deployed(&v1)],
            vec![host("A", &[])],
            vec![apply("A", &v1, &[("api", 2)])],
        ),
        (
            "same report -> nothing",
            vec![deployed(&v1)],
            vec![host("A", running_v1)],
            vec![],
        ),
        (
            "changed version -> apply",
            vec![deployed(&v2)],
            vec![host("A", running_v1)],
            vec![apply("A", &v2, &[("api", 2)])],
        ),
        (
            "undeployed -> remove",
            vec![undeployed],
            vec![host("A", running_v1)],
            vec![remove("A", "shop")],
        ),
        (
            "deleted (unknown) app -> remove",
            vec![],
            vec![host("A", running_v1)],
            vec![remove("A", "shop")],
        ),
        (
            "host gone -> re-placed on another",
            vec![deployed(&v1)],
            vec![host("B", &[])],
            vec![apply("B", &v1, &[("api", 2)])],
        ),
        (
            "a second host joins: the spread evens out, B keeps one",
            vec![deployed(&v1)],
            vec![host("A", &[]), host("B", running_v1)],
            vec![
                apply("A", &v1, &[("api", 1)]),
                apply("B", &v1, &[("api", 1)]),
            ],
        ),
        (
            "evenly spread already: nothing sent",
            vec![deployed(&v1)],
            vec![
                host("A", &[("shop", "1.0", &[("api", 1)])]),
                host("B", &[("shop", "1.0", &[("api", 1)])]),
            ],
            vec![],
        ),
        ("no hosts -> nothing", vec![deployed(&v1)], vec![], vec![]),
    ];
    for (name, desired, hosts, want) in cases {
        let plan = run(&desired, &hosts, &Attempts::default(), Instant::now());
        assert_eq!(plan.commands, want, "{name}");
    }
}

#[test]
fn spread_over_two_hosts_and_status_follows_reports() {
    let m = manifest("shop", "1.0", &[("api", 3), ("worker", 1)]);
    let hosts = [host("A", &[]), host("B", &[])];
    let plan = run(
        &[deployed(&m)],
        &hosts,
        &Attempts::default(),
        Instant::now(),
    );
    assert_eq!(
        plan.commands,
        [
            apply("A", &m, &[("api", 2)]),
            apply("B", &m, &[("api", 1), ("worker", 1)]),
        ]
    );
    let s = &plan.statuses["shop"];
    assert_eq!(s.state, AppState::Reconciling);
    assert!(s.message.contains("api 0/3 running"), "{}", s.message);

    let hosts = [
        host("A", &[("shop", "1.0", &[("api", 2)])]),
        host("B", &[("shop", "1.0", &[("api", 1), ("worker", 1)])]),
    ];
    let plan = run(
        &[deployed(&m)],
        &hosts,
        &Attempts::default(),
        Instant::now(),
    );
    assert!(plan.commands.is_empty(), "{:?}", plan.commands);
    let s = &plan.statuses["shop"];
    assert_eq!(s.state, AppState::Deployed, "{}", s.message);
    assert_eq!(s.components.len(), 2, "builtins are not placed");
    assert_eq!(s.components[0].running.values().sum::<u32>(), 3);
    assert_eq!(s.components[0].desired, 3);
}

#[test]
fn sent_commands_are_not_resent_until_stale() {
    let m = manifest("shop", "1.0", &[("api", 1)]);
    let hosts = [host("A", &[])];
    let t0 = Instant::now();
    let mut attempts = Attempts::default();
    let plan = run(&[deployed(&m)], &hosts, &attempts, t0);
    let cmd = plan.commands[0].clone();
    let seq = attempts.sent("A", cmd.command.clone(), t0);
    assert!(run(&[deployed(&m)], &hosts, &attempts, t0 + S)
        .commands
        .is_empty());
    let backoff = Backoff {
        base: S,
        max: 30 * S,
    };
    attempts.answered("A", "shop", seq, Ok(()), t0 + S, &backoff);
    assert!(run(&[deployed(&m)], &hosts, &attempts, t0 + 5 * S)
        .commands
        .is_empty());
    // The heartbeat never showed it: send again.
    assert_eq!(
        run(&[deployed(&m)], &hosts, &attempts, t0 + 12 * S).commands,
        [cmd]
    );
}

#[test]
fn refused_command_fails_the_app_and_backs_off() {
    let m = manifest("b", "1.0", &[("api", 1)]);
    let hosts = [host("NHOSTAAAAAAAAAAAAAAA", &[])];
    let t0 = Instant::now();
    let mut attempts = Attempts::default();
    let cmd = run(&[deployed(&m)], &hosts, &attempts, t0).commands[0].clone();
    let seq = attempts.sent(&cmd.host_id, cmd.command.clone(), t0);
    let backoff = Backoff {
        base: 2 * S,
        max: 30 * S,
    };
    let error = "address 127.0.0.1:8080 is already used by app 'a'";
    attempts.answered(&cmd.host_id, "b", seq, Err(error.into()), t0, &backoff);

    let plan = run(&[deployed(&m)], &hosts, &attempts, t0 + S);
    assert!(plan.commands.is_empty(), "backing off");
    let s = &plan.statuses["b"];
    assert_eq!(s.state, AppState::Failed);
    assert!(s.message.contains(error), "{}", s.message);
    assert!(s.message.contains("NHOSTAAAAAAA"), "{}", s.message);
    assert!(s.message.contains("retrying in 1s"), "{}", s.message);
    assert_eq!(s.components[0].state, AppState::Failed);

    let plan = run(&[deployed(&m)], &hosts, &attempts, t0 + 2 * S);
    assert_eq!(plan.commands, [cmd], "retried after the backoff");
    assert_eq!(plan.statuses["b"].state, AppState::Failed, "until it works");
}

#[test]
fn placement_problems_are_failed_or_waiting() {
    let mut m = manifest("edge", "1", &[("api", 2)]);
    m.components[0].scaler = Some(Scaler::Spreadscaler {
        instances: 2,
        spread: vec![Spread {
            name: "moon".into(),
            requirements: [("zone".to_string(), "moon".to_string())].into(),
            weight: 100,
        }],
    });
    let plan = run(&[deployed(&m)], &[], &Attempts::default(), Instant::now());
    let s = &plan.statuses["edge"];
    assert_eq!(s.state, AppState::Waiting);
    assert!(s.message.contains("lattice host"), "{}", s.message);

    let plan = run(
        &[deployed(&m)],
        &[host("A", &[])],
        &Attempts::default(),
        Instant::now(),
    );
    let s = &plan.statuses["edge"];
    assert_eq!(s.state, AppState::Failed);
    assert!(s.message.contains("spread 'moon'"), "{}", s.message);
    assert!(s.message.contains("zone=moon"), "{}", s.message);
    assert!(plan.commands.is_empty());
}

#[test]
fn undeployed_and_leftover_statuses() {
    let m = manifest("shop", "3", &[("api", 1)]);
    let app = DesiredApp {
        deployed: None,
        ..deployed(&m)
    };
    let plan = run(
        std::slice::from_ref(&app),
        &[host("A", &[])],
        &Attempts::default(),
        Instant::now(),
    );
    let s = &plan.statuses["shop"];
    assert_eq!(s.state, AppState::Undeployed);
    assert!(
        s.message.contains("lattice app deploy --name shop"),
        "{}",
        s.message
    );

    // Moved from A to B: deployed on B, still removing from A.
    let running: &[Reported<'_>] = &[("shop", "3", &[("api", 1)])];
    let mut a = host("A", running);
    a.draining = true;
    let plan = run(
        &[deployed(&m)],
        &[a, host("B", running)],
        &Attempts::default(),
        Instant::now(),
    );
    assert_eq!(plan.commands, [remove("A", "shop")]);
    let s = &plan.statuses["shop"];
    assert_eq!(s.state, AppState::Reconciling);
    assert!(
        s.message.contains("removing it from 1 other host"),
        "{}",
        s.message
    );
}

#[test]
fn reconcile_is_deterministic_whatever_the_input_order() {
    let a = manifest("a", "1", &[("x", 3)]);
    let b = manifest("b", "1", &[("y", 2)]);
    let hosts = [host("H1", &[]), host("H2", &[]), host("H3", &[])];
    let one = run(
        &[deployed(&a), deployed(&b)],
        &hosts,
        &Attempts::default(),
        Instant::now(),
    );
    let mut reversed = hosts.to_vec();
    reversed.reverse();
    let two = run(
        &[deployed(&b), deployed(&a)],
        &reversed,
        &Attempts::default(),
        Instant::now(),
    );
    assert_eq!(one.commands, two.commands);
    // 5 instances over 3 hosts: loads 2/2/1, never 3 on one host.
    let mut load: BTreeMap<&str, u32> = BTreeMap::new();
    for c in &one.commands {
        if let HostCommand::Apply { workload } = &c.command {
            *load.entry(&c.host_id).or_default() += workload.placements.values().sum::<u32>();
        }
    }
    assert_eq!(load.values().copied().collect::<Vec<_>>(), [2, 2, 1]);
}

#[test]
fn a_service_shows_restarts_and_fails_the_app_when_given_up() {
    use lattice_protocol::manifest::Restart;
    use lattice_protocol::messages::{ServiceReport, ServiceState};
    let mut m = manifest("cached", "1.0", &[("web", 2)]);
    m.components.push(Component {
        name: "cache".into(),
        kind: ComponentKind::Service,
        image: Image::File("file:///c/cache.wasm".into()),
        config: Default::default(),
        config_layers: Vec::new(),
        secrets: Vec::new(),
        scaler: None,
        links: vec![],
        restart: Some(Restart::default()),
        warm: None,
    });
    let with_service = |state: ServiceState, restarts: u32, error: Option<&str>| {
        let mut h = host("A", &[("cached", "1.0", &[("web", 2)])]);
        h.workloads[0].service = Some(ServiceReport {
            name: "cache".into(),
            state,
            restarts,
            crashes_in_a_row: restarts,
            last_error: error.map(str::to_owned),
        });
        h
    };
    let status = |h: ObservedHost| {
        let plan = run(&[deployed(&m)], &[h], &Attempts::default(), Instant::now());
        assert!(
            plan.commands.is_empty(),
            "services are not placed: {:?}",
            plan.commands
        );
        plan.statuses["cached"].clone()
    };

    let s = status(with_service(ServiceState::Running, 0, None));
    assert_eq!(s.state, AppState::Deployed, "{}", s.message);
    let svc = s.components.iter().find(|c| c.name == "cache").unwrap();
    assert_eq!(
        (svc.desired, svc.message.as_str()),
        (1, "running on 1/1 host(s)")
    );

    let s = status(with_service(
        ServiceState::Running,
        2,
        Some("wasm trap: oops"),
    ));
    assert_eq!(s.state, AppState::Deployed, "{}", s.message);
    let svc = s.components.iter().find(|c| c.name == "cache").unwrap();
    assert_eq!(
        svc.message,
        "running on 1/1 host(s); restarted 2 time(s), last on host A: wasm trap: oops"
    );

    let s = status(with_service(
        ServiceState::Restarting,
        3,
        Some("exited with status 1"),
    ));
    assert_eq!(s.state, AppState::Reconciling, "{}", s.message);
    assert!(s.message.contains("cache 0/1 running"), "{}", s.message);

    let s = status(with_service(
        ServiceState::Failed,
        10,
        Some("exited with status 1"),
    ));
    assert_eq!(s.state, AppState::Failed);
    assert_eq!(
        s.message,
        "service 'cache' crashed 10 times in a row on host A and was given up: exited with status 1"
    );
}

/// A new version replaces the old one host by host (`maxUnavailable`, default 1):
/// the next host is told once the last one reports the new version; a host that
/// fails to apply it halts the rollout with the others still on the old version.
#[test]
fn a_new_version_rolls_out_host_by_host_and_halts_on_failure() {
    let mut v2 = manifest("shop", "2", &[("api", 3)]);
    v2.components[0].scaler = Some(Scaler::Daemonscaler {
        instances: 1,
        spread: vec![],
    });
    let on = |version: &'static str| -> Vec<Reported<'static>> {
        vec![("shop", version, &[("api", 1)])]
    };
    let hosts_on = |versions: [&'static str; 3]| -> Vec<ObservedHost> {
        ["a", "b", "c"]
            .iter()
            .zip(versions)
            .map(|(id, v)| host(id, &on(v)))
            .collect()
    };
    let desired = [deployed(&v2)];
    let now = Instant::now();
    let backoff = Backoff {
        base: S,
        max: 10 * S,
    };
    let mut attempts = Attempts::default();

    // All on version 1: only the first host is told.
    let plan = run(&desired, &hosts_on(["1", "1", "1"]), &attempts, now);
    assert_eq!(plan.commands, [apply("a", &v2, &[("api", 1)])]);
    let status = &plan.statuses["shop"];
    assert_eq!(status.state, AppState::Reconciling);
    assert!(
        status
            .message
            .contains("rolling out version 2, 1 host(s) at a time: 0 of 3"),
        "{}",
        status.message
    );
    let seq = attempts.sent("a", plan.commands[0].command.clone(), now);
    attempts.answered("a", "shop", seq, Ok(()), now, &backoff);
    // Acknowledged but not yet reported: still a's turn.
    let plan = run(&desired, &hosts_on(["1", "1", "1"]), &attempts, now);
    assert!(plan.commands.is_empty(), "{:?}", plan.commands);
    // a reports version 2: b's turn.
    let plan = run(&desired, &hosts_on(["2", "1", "1"]), &attempts, now);
    assert_eq!(plan.commands, [apply("b", &v2, &[("api", 1)])]);

    // b fails: c is never told, and the status says why.
    let seq = attempts.sent("b", plan.commands[0].command.clone(), now);
    attempts.answered(
        "b",
        "shop",
        seq,
        Err("api: trap at start".into()),
        now,
        &backoff,
    );
    let later = now + 30 * S;
    let plan = run(&desired, &hosts_on(["2", "1", "1"]), &attempts, later);
    assert!(
        plan.commands.iter().all(|c| c.host_id != "c"),
        "{:?}",
        plan.commands
    );
    let status = &plan.statuses["shop"];
    assert_eq!(status.state, AppState::Failed);
    assert!(
        status.message.contains("rollout of version 2 halted")
            && status.message.contains("trap at start")
            && status
                .message
                .contains("2 of 3 host(s) still run the previous version, 1 waiting"),
        "{}",
        status.message
    );
    // The component's row says the old version still serves.
    let api = &status.components[0];
    assert!(
        api.message
            .ends_with("; 2 of an older version still serving"),
        "{}",
        api.message
    );

    // Two at a time when the manifest says so.
    v2.rollout = Some(lattice_protocol::manifest::Rollout {
        max_unavailable: lattice_protocol::manifest::MaxUnavailable::Hosts(2),
    });
    let plan = run(
        &[deployed(&v2)],
        &hosts_on(["1", "1", "1"]),
        &Attempts::default(),
        now,
    );
    let told: Vec<&str> = plan.commands.iter().map(|c| c.host_id.as_str()).collect();
    assert_eq!(told, ["a", "b"]);
}

/// A host that switched to the new version and whose instances of it mostly
/// trap halts the rollout: the next host is not told, and the status says which
/// component traps where. Traps on fewer than half, or on too few invocations
/// to judge, do not.
#[test]
fn a_switched_host_whose_new_version_traps_halts_the_rollout() {
    let mut v2 = manifest("shop", "2", &[("api", 3)]);
    v2.components[0].scaler = Some(Scaler::Daemonscaler {
        instances: 1,
        spread: vec![],
    });
    let desired = [deployed(&v2)];
    let now = Instant::now();
    // a runs version 2 (with `invocations` and `traps` for api), b and c 1.
    let hosts = |invocations: u64, traps: u64| -> Vec<ObservedHost> {
        let mut a = host("a", &[("shop", "2", &[("api", 1)])]);
        let api = &mut a.workloads[0].components[0];
        (api.invocations, api.traps) = (invocations, traps);
        vec![
            a,
            host("b", &[("shop", "1", &[("api", 1)])]),
            host("c", &[("shop", "1", &[("api", 1)])]),
        ]
    };
    let next = [apply("b", &v2, &[("api", 1)])];

    for (invocations, traps) in [(10, 5), (9, 9), (0, 0)] {
        let plan = run(
            &desired,
            &hosts(invocations, traps),
            &Attempts::default(),
            now,
        );
        assert_eq!(plan.commands, next, "{traps} of {invocations}");
    }
    let plan = run(&desired, &hosts(10, 6), &Attempts::default(), now);
    assert!(plan.commands.is_empty(), "{:?}", plan.commands);
    let status = &plan.statuses["shop"];
    assert_eq!(status.state, AppState::Failed);
    assert!(
        status.message.starts_with(
            "rollout of version 2 halted: component 'api' of version 2 trapped on 6 of 10 \
             invocations on host a"
        ) && status
            .message
            .contains("2 of 3 host(s) still run the previous version, 2 waiting"),
        "{}",
        status.message
    );
}
