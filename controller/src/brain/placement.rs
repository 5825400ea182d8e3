//! Where the instances of one component go: wadm's spread arithmetic plus a stable,
//! deterministic choice of hosts inside each spread. Pure; used by `reconcile.rs`.
//!
//! Its cost depends on the number of spreads and hosts, never on the number of
//! instances: `instances: 4294967295` places as fast as `1` (the API refuses more
//! than the manifest budget anyway, but a record stored before that must not stall
//! every reconcile), and every sum saturates instead of overflowing.

use super::model::{short_host_id, ObservedHost};
use lattice_protocol::manifest::{Scaler, Spread};
use std::collections::BTreeMap;

/// Instances per host for one component, and what stood in the way.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ComponentPlacement {
    /// Host id -> instances. Hosts that get nothing are absent.
    pub per_host: BTreeMap<String, u32>,
    /// Instances the scaler asks for in total.
    pub desired: u32,
    /// Why part of the component could not be placed; empty when all of it was.
    pub problems: Vec<Problem>,
}

/// The placement of one deployed app.
#[derive(Debug, Default)]
pub(crate) struct AppPlacement {
    /// Per placeable component, in document order.
    pub components: Vec<(String, ComponentPlacement)>,
    /// Host id -> component -> instances.
    pub per_host: BTreeMap<String, BTreeMap<String, u32>>,
}

/// Why (part of) a component could not be placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The lattice has no host that takes work (none joined, or all are draining).
    NoHosts,
    /// No host matches a spread's requirements.
    NoEligibleHost {
        /// `None` for a daemonscaler without a spread that matches anything.
        spread: Option<String>,
        instances: u32,
        requirements: BTreeMap<String, String>,
        /// What each considered host has for the required labels.
        considered: Vec<String>,
    },
}

impl Problem {
    /// One sentence about the component named `component`.
    pub fn sentence(&self, component: &str) -> String {
        match self {
            Problem::NoHosts => format!(
                "component '{component}' waits for a host: no host that takes work has \
                 joined the lattice; start one with `lattice host` or `lattice up`"
            ),
            Problem::NoEligibleHost {
                spread,
                instances,
                requirements,
                considered,
            } => {
                let what = match spread {
                    Some(name) => format!("spread '{name}' of component '{component}'"),
                    None => format!("component '{component}'"),
                };
                format!(
                    "{what} needs {instances} instance(s) on hosts labelled {} but none of the \
                     {} host(s) match ({}); start a host with those labels or change the \
                     requirements",
                    format_labels(requirements),
                    considered.len(),
                    considered.join(", ")
                )
            }
        }
    }
}

/// Split `instances` across spreads by weight as wadm does: each spread gets
/// `floor(instances * weight / total)`, then the remainder goes one at a time to the
/// spreads in descending weight order (ties in document order). Returns shares in
/// the order of `weights`.
pub fn spread_shares(instances: u32, weights: &[u32]) -> Vec<u32> {
    if weights.is_empty() {
        return Vec::new();
    }
    // All-zero weights would divide by zero; treat them as equal.
    let weights: Vec<u64> = if weights.iter().all(|w| *w == 0) {
        vec![1; weights.len()]
    } else {
        weights.iter().map(|w| u64::from(*w)).collect()
    };
    let total: u64 = weights.iter().sum();
    let mut shares: Vec<u32> = weights
        .iter()
        // instances * weight / total <= instances, so the cast cannot truncate.
        .map(|w| (u64::from(instances) * w / total) as u32)
        .collect();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|a, b| weights[*b].cmp(&weights[*a])); // stable: ties keep document order
    let mut remainder = instances - shares.iter().sum::<u32>();
    for i in order.iter().cycle() {
        if remainder == 0 {
            break;
        }
        shares[*i] += 1;
        remainder -= 1;
    }
    shares
}

/// Whether `host` carries every label in `requirements`.
pub fn matches(host: &ObservedHost, requirements: &BTreeMap<String, String>) -> bool {
    requirements
        .iter()
        .all(|(k, v)| host.labels.get(k) == Some(v))
}

/// Place one component.
///
/// `hosts` must be sorted by id. `current` is how many instances of this component
/// each host runs (or was just told to run): hosts already running it are preferred so
/// work does not move on every tick. `load[i]` counts instances already placed on
/// `hosts[i]` in this round (it must be as long as `hosts`) and is updated, so later
/// components prefer emptier hosts.
pub fn place(
    scaler: &Scaler,
    hosts: &[&ObservedHost],
    current: &BTreeMap<String, u32>,
    load: &mut [u32],
) -> ComponentPlacement {
    assert_eq!(hosts.len(), load.len(), "one load per host");
    // Indices into `hosts`, so loads need no lookups.
    let active: Vec<usize> = (0..hosts.len()).filter(|i| !hosts[*i].draining).collect();
    let mut out = ComponentPlacement::default();
    let implicit = [Spread {
        name: "default".to_string(),
        requirements: BTreeMap::new(),
        weight: 100,
    }];
    let spreads = if scaler.spread().is_empty() {
        &implicit[..]
    } else {
        scaler.spread()
    };
    match scaler {
        Scaler::Spreadscaler { instances, .. } => {
            out.desired = *instances;
            let weights: Vec<u32> = spreads.iter().map(|s| s.weight).collect();
            for (spread, share) in spreads.iter().zip(spread_shares(*instances, &weights)) {
                if share == 0 {
                    continue;
                }
                if active.is_empty() {
                    push_once(&mut out.problems, Problem::NoHosts);
                    continue;
                }
                let eligible: Vec<usize> = active
                    .iter()
                    .copied()
                    .filter(|i| matches(hosts[*i], &spread.requirements))
                    .collect();
                if eligible.is_empty() {
                    out.problems.push(no_eligible(
                        (!scaler.spread().is_empty()).then(|| spread.name.clone()),
                        share,
                        &spread.requirements,
                        hosts,
                    ));
                    continue;
                }
                distribute(share, hosts, &eligible, current, load, &mut out.per_host);
            }
        }
        Scaler::Daemonscaler { instances, .. } => {
            if *instances == 0 {
                return out;
            }
            if active.is_empty() {
                out.problems.push(Problem::NoHosts);
                return out;
            }
            for &i in &active {
                if spreads.iter().any(|s| matches(hosts[i], &s.requirements)) {
                    out.per_host.insert(hosts[i].id.clone(), *instances);
                    load[i] = load[i].saturating_add(*instances);
                }
            }
            let hosts_used = u32::try_from(out.per_host.len()).unwrap_or(u32::MAX);
            out.desired = instances.saturating_mul(hosts_used);
            if out.per_host.is_empty() {
                let mut requirements = BTreeMap::new();
                for s in spreads {
                    requirements.extend(s.requirements.clone());
                }
                let spread = (spreads.len() == 1 && !scaler.spread().is_empty())
                    .then(|| spreads[0].name.clone());
                out.problems
                    .push(no_eligible(spread, *instances, &requirements, hosts));
            }
        }
    }
    out
}

/// Deal `share` instances over `eligible` as if one at a time: each to the host with
/// the fewest instances dealt so far in this spread; ties prefer a host that already
/// ran more than it has been dealt (stability), then the least loaded, then the
/// lowest id.
///
/// Dealing one at a time gives every host one instance per round, so it is computed
/// in one step: `share / n` each, and the remainder to the first hosts in the order
/// of the last, partial round. Cost O(n log n) whatever `share` is
/// (`distribute_one_at_a_time` in the tests is the definition it is checked against).
fn distribute(
    share: u32,
    hosts: &[&ObservedHost],
    eligible: &[usize],
    current: &BTreeMap<String, u32>,
    load: &mut [u32],
    per_host: &mut BTreeMap<String, u32>,
) {
    let n = u32::try_from(eligible.len()).expect("fewer hosts than u32::MAX");
    let (rounds, remainder) = (share / n, share % n);
    // In the partial round every host has been dealt `rounds`: order them as the
    // one-at-a-time rule would (load grows by the same `rounds` for each, so the
    // load before dealing orders them the same way).
    let mut order: Vec<usize> = (0..eligible.len()).collect();
    order.sort_by_key(|&e| {
        let running = current.get(&hosts[eligible[e]].id).copied().unwrap_or(0);
        let keeps_existing = rounds < running;
        // `hosts` is sorted by id: the index breaks ties by id.
        (!keeps_existing, load[eligible[e]], eligible[e])
    });
    for (rank, &e) in order.iter().enumerate() {
        let dealt = rounds + u32::from((rank as u32) < remainder);
        if dealt == 0 {
            continue;
        }
        let i = eligible[e];
        load[i] = load[i].saturating_add(dealt);
        let n = per_host.entry(hosts[i].id.clone()).or_default();
        *n = n.saturating_add(dealt);
    }
}

fn no_eligible(
    spread: Option<String>,
    instances: u32,
    requirements: &BTreeMap<String, String>,
    hosts: &[&ObservedHost],
) -> Problem {
    const SHOWN: usize = 5;
    let mut considered: Vec<String> = hosts
        .iter()
        .take(SHOWN)
        .map(|h| {
            let id = short_host_id(&h.id);
            if h.draining {
                return format!("{id}: draining");
            }
            let labels: Vec<String> = requirements
                .keys()
                .map(|k| match h.labels.get(k) {
                    Some(v) => format!("{k}={v}"),
                    None => format!("no {k}"),
                })
                .collect();
            format!("{id}: {}", labels.join(" "))
        })
        .collect();
    if hosts.len() > SHOWN {
        considered.push(format!("and {} more", hosts.len() - SHOWN));
    }
    Problem::NoEligibleHost {
        spread,
        instances,
        requirements: requirements.clone(),
        considered,
    }
}

fn push_once(problems: &mut Vec<Problem>, p: Problem) {
    if !problems.contains(&p) {
        problems.push(p);
    }
}

/// `k=v, k2=v2`, or `anything` when there are no requirements.
pub fn format_labels(labels: &BTreeMap<String, String>) -> String {
    if labels.is_empty() {
        return "anything".to_string();
    }
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(id: &str, labels: &[(&str, &str)]) -> ObservedHost {
        ObservedHost {
            id: id.to_string(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            draining: false,
            workloads: vec![],
            secrets_key: None,
        }
    }

    fn spread(name: &str, weight: u32, req: &[(&str, &str)]) -> Spread {
        Spread {
            name: name.to_string(),
            requirements: req
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            weight,
        }
    }

    #[test]
    fn spread_arithmetic_table() {
        let cases: &[(u32, &[u32], &[u32])] = &[
            // wadm's published cases (wadm lists them in weight order).
            (7, &[30, 40], &[3, 4]),
            (7, &[100, 100], &[4, 3]),
            (103, &[384, 42, 37, 3], &[85, 10, 8, 0]),
            // Remainders go by weight, not document order (wadm#154).
            (3, &[10, 50, 40], &[0, 2, 1]),
            (1, &[100], &[1]),
            (0, &[60, 40], &[0, 0]),
            (5, &[0, 0], &[3, 2]),
            (10, &[1, 1, 1], &[4, 3, 3]),
            (9001, &[100], &[9001]),
            (u32::MAX, &[u32::MAX, 1], &[u32::MAX, 0]),
        ];
        for (instances, weights, want) in cases {
            let got = spread_shares(*instances, weights);
            assert_eq!(&got[..], *want, "{instances} @ {weights:?}");
            assert_eq!(
                got.iter().map(|x| u64::from(*x)).sum::<u64>(),
                u64::from(*instances)
            );
        }
    }

    fn run(scaler: &Scaler, hosts: &[ObservedHost], current: &[(&str, u32)]) -> ComponentPlacement {
        let refs: Vec<&ObservedHost> = hosts.iter().collect();
        let current = current.iter().map(|(h, n)| (h.to_string(), *n)).collect();
        place(scaler, &refs, &current, &mut vec![0; refs.len()])
    }

    fn per_host(p: &ComponentPlacement) -> Vec<(&str, u32)> {
        p.per_host.iter().map(|(h, n)| (h.as_str(), *n)).collect()
    }

    #[test]
    fn spreads_respect_requirements_and_split_evenly() {
        let hosts = [
            host("A", &[("region", "east")]),
            host("B", &[("region", "east")]),
            host("C", &[("region", "west")]),
        ];
        let scaler = Scaler::Spreadscaler {
            instances: 7,
            spread: vec![
                spread("east", 30, &[("region", "east")]),
                spread("west", 40, &[("region", "west")]),
            ],
        };
        let p = run(&scaler, &hosts, &[]);
        assert_eq!(per_host(&p), [("A", 2), ("B", 1), ("C", 4)]);
        assert_eq!(p.desired, 7);
        assert!(p.problems.is_empty());
    }

    #[test]
    fn placement_prefers_hosts_already_running() {
        let hosts = [host("A", &[]), host("B", &[]), host("C", &[])];
        let one = Scaler::Spreadscaler {
            instances: 1,
            spread: vec![],
        };
        assert_eq!(per_host(&run(&one, &hosts, &[])), [("A", 1)]);
        assert_eq!(per_host(&run(&one, &hosts, &[("C", 1)])), [("C", 1)]);
        // 4 over 3 hosts where A and B ran 2 each: C gets one, A keeps its 2.
        let four = Scaler::Spreadscaler {
            instances: 4,
            spread: vec![],
        };
        let p = run(&four, &hosts, &[("A", 2), ("B", 2)]);
        assert_eq!(per_host(&p), [("A", 2), ("B", 1), ("C", 1)]);
        // ... and the next round keeps exactly that.
        let again = run(&four, &hosts, &[("A", 2), ("B", 1), ("C", 1)]);
        assert_eq!(per_host(&again), per_host(&p));
    }

    #[test]
    fn load_spreads_components_across_hosts() {
        let hosts = [host("A", &[]), host("B", &[])];
        let refs: Vec<&ObservedHost> = hosts.iter().collect();
        let one = Scaler::Spreadscaler {
            instances: 1,
            spread: vec![],
        };
        let mut load = vec![0; refs.len()];
        let first = place(&one, &refs, &BTreeMap::new(), &mut load);
        let second = place(&one, &refs, &BTreeMap::new(), &mut load);
        assert_eq!(per_host(&first), [("A", 1)]);
        assert_eq!(per_host(&second), [("B", 1)]);
    }

    #[test]
    fn draining_hosts_get_nothing() {
        let mut b = host("B", &[]);
        b.draining = true;
        let hosts = [host("A", &[]), b];
        let scaler = Scaler::Spreadscaler {
            instances: 2,
            spread: vec![],
        };
        assert_eq!(per_host(&run(&scaler, &hosts, &[("B", 2)])), [("A", 2)]);
    }

    #[test]
    fn spread_without_eligible_host_names_spread_requirements_and_hosts() {
        let mut b = host("NBBBBBBBBBBBBBBBB", &[("region", "east")]);
        b.draining = true;
        let hosts = [host("NAAAAAAAAAAAAAAAA", &[("region", "west")]), b];
        let scaler = Scaler::Spreadscaler {
            instances: 3,
            spread: vec![spread("east", 100, &[("region", "east")])],
        };
        let p = run(&scaler, &hosts, &[]);
        assert!(p.per_host.is_empty());
        let text = p.problems[0].sentence("api");
        assert!(text.contains("spread 'east' of component 'api'"), "{text}");
        assert!(text.contains("region=east"), "{text}");
        assert!(text.contains("region=west"), "{text}");
        assert!(text.contains("draining"), "{text}");
        // No hosts at all: waiting, not a label problem.
        let p = run(&scaler, &[], &[]);
        assert_eq!(p.problems, [Problem::NoHosts]);
    }

    /// The definition `distribute` computes in one step: deal one instance at a
    /// time.
    fn distribute_one_at_a_time(
        share: u32,
        hosts: &[&ObservedHost],
        eligible: &[usize],
        current: &BTreeMap<String, u32>,
        load: &mut [u32],
        per_host: &mut BTreeMap<String, u32>,
    ) {
        let running: Vec<u32> = eligible
            .iter()
            .map(|i| current.get(&hosts[*i].id).copied().unwrap_or(0))
            .collect();
        let mut dealt = vec![0u32; eligible.len()];
        for _ in 0..share {
            let pick = (0..eligible.len())
                .min_by_key(|&e| {
                    let keeps_existing = dealt[e] < running[e];
                    (dealt[e], !keeps_existing, load[eligible[e]], eligible[e])
                })
                .unwrap();
            dealt[pick] += 1;
            load[eligible[pick]] += 1;
        }
        for (e, n) in dealt.into_iter().enumerate().filter(|(_, n)| *n > 0) {
            *per_host.entry(hosts[eligible[e]].id.clone()).or_default() += n;
        }
    }

    #[test]
    fn dealing_in_one_step_equals_dealing_one_at_a_time() {
        let hosts: Vec<ObservedHost> = (0..5).map(|i| host(&format!("H{i}"), &[])).collect();
        let refs: Vec<&ObservedHost> = hosts.iter().collect();
        // A small deterministic generator: many shapes of loads and current runs.
        let mut seed = 0x9e37_79b9_u32;
        let mut next = |m: u32| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed % m
        };
        for _ in 0..2000 {
            let eligible: Vec<usize> = (0..5).filter(|_| next(3) > 0).collect();
            if eligible.is_empty() {
                continue;
            }
            let share = next(20);
            let current: BTreeMap<String, u32> =
                (0..5).map(|i| (format!("H{i}"), next(6))).collect();
            let load: Vec<u32> = (0..5).map(|_| next(4)).collect();
            let (mut load_a, mut load_b) = (load.clone(), load.clone());
            let (mut a, mut b) = (BTreeMap::new(), BTreeMap::new());
            distribute(share, &refs, &eligible, &current, &mut load_a, &mut a);
            distribute_one_at_a_time(share, &refs, &eligible, &current, &mut load_b, &mut b);
            assert_eq!(
                a, b,
                "share {share} over {eligible:?}, current {current:?}, load {load:?}"
            );
            assert_eq!(load_a, load_b);
        }
    }

    #[test]
    fn huge_numbers_place_at_once_without_overflow() {
        let hosts = [host("A", &[]), host("B", &[]), host("C", &[])];
        let started = std::time::Instant::now();
        let p = run(
            &Scaler::Spreadscaler {
                instances: u32::MAX,
                spread: vec![],
            },
            &hosts,
            &[("A", u32::MAX)],
        );
        assert_eq!(
            p.per_host.values().map(|n| u64::from(*n)).sum::<u64>(),
            u64::from(u32::MAX)
        );
        let p = run(
            &Scaler::Daemonscaler {
                instances: u32::MAX,
                spread: vec![],
            },
            &hosts,
            &[],
        );
        assert_eq!(p.desired, u32::MAX);
        assert!(started.elapsed() < std::time::Duration::from_millis(100));
    }

    #[test]
    fn daemonscaler_runs_on_every_eligible_host() {
        let hosts = [
            host("A", &[("tier", "edge")]),
            host("B", &[("tier", "core")]),
            host("C", &[("tier", "edge")]),
        ];
        let all = Scaler::Daemonscaler {
            instances: 2,
            spread: vec![],
        };
        let p = run(&all, &hosts, &[]);
        assert_eq!(per_host(&p), [("A", 2), ("B", 2), ("C", 2)]);
        assert_eq!(p.desired, 6);
        let edge = Scaler::Daemonscaler {
            instances: 1,
            spread: vec![spread("edge", 100, &[("tier", "edge")])],
        };
        assert_eq!(per_host(&run(&edge, &hosts, &[])), [("A", 1), ("C", 1)]);
        let moon = Scaler::Daemonscaler {
            instances: 1,
            spread: vec![spread("moon", 100, &[("tier", "moon")])],
        };
        let p = run(&moon, &hosts, &[]);
        assert!(p.per_host.is_empty());
        assert!(p.problems[0].sentence("x").contains("spread 'moon'"));
    }
}
