//! What the dashboard shows, read from the controller's API, and what changed
//! since the last read.

use lattice_controller::{short_host_id, ApiClient};
use lattice_protocol::manifest::{ComponentKind, Manifest};
use lattice_protocol::messages::HostInfo;
use lattice_protocol::now_ms;
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};

/// The whole page's data.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub lattice: String,
    /// When it was read (ms since the Unix epoch).
    pub at_ms: u64,
    /// Why the lattice could not be read, if it could not (the rest is the last
    /// good read).
    pub error: Option<String>,
    pub hosts: Vec<Host>,
    pub apps: Vec<App>,
    pub links: Vec<Link>,
    /// The last calls that failed, over every host, newest first.
    pub failed_calls: Vec<Failed>,
    /// Newest first.
    pub events: VecDeque<Change>,
}

/// Failed calls the page lists.
const SHOWN_FAILURES: usize = 20;

/// A call that failed, with the trace to open.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failed {
    pub at_ms: u64,
    /// The caller's host, by name.
    pub host: String,
    pub app: String,
    pub component: String,
    pub call: String,
    pub kind: String,
    pub message: String,
    pub trace_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Host {
    pub id: String,
    /// The `name` label, else the short id.
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub draining: bool,
    /// Invocations running now, over every component.
    pub in_flight: u32,
    /// `app/component` and its instances here.
    pub components: Vec<(String, u32)>,
    /// Linked calls per second since the last read, by route.
    pub calls_per_s: CallRates,
    /// The host's counters as reported (for the next rate).
    #[serde(skip)]
    pub counts: lattice_protocol::messages::CallCounts,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct CallRates {
    pub local: f64,
    pub remote: f64,
    pub served: f64,
    pub failed: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct App {
    pub name: String,
    pub deployed_version: Option<String>,
    pub latest_version: String,
    pub state: String,
    pub message: String,
    pub components: Vec<Placement>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Placement {
    pub name: String,
    /// `component`, `capability` or `service`.
    pub kind: String,
    pub state: String,
    pub desired: u32,
    /// Host name -> instances.
    pub running: BTreeMap<String, u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Link {
    pub app: String,
    pub source: String,
    pub target: String,
    /// `ns:pkg/iface` each.
    pub interfaces: Vec<String>,
    pub name: String,
    /// Calls per second through the link's interfaces since the last read (a
    /// source with several links of one interface counts them together).
    pub calls_per_s: f64,
    /// Of those, failed calls per second.
    pub errors_per_s: f64,
    /// `(calls, failed)` as the hosts reported them (for the next rate).
    #[serde(skip)]
    pub totals: (u64, u64),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub at_ms: u64,
    pub text: String,
}

/// Deployed manifests already read, by `(app, version)`: a version never changes.
#[derive(Default)]
pub struct Manifests(BTreeMap<(String, String), Manifest>);

impl Snapshot {
    pub fn empty(lattice: &str) -> Self {
        Self {
            lattice: lattice.to_owned(),
            at_ms: now_ms(),
            error: None,
            hosts: Vec::new(),
            apps: Vec::new(),
            links: Vec::new(),
            failed_calls: Vec::new(),
            events: VecDeque::new(),
        }
    }

    /// Read the lattice now; `before` gives the rates' baseline and the changes.
    pub async fn read(
        api: &ApiClient,
        manifests: &mut Manifests,
        before: &Snapshot,
        max_events: usize,
    ) -> Snapshot {
        let at_ms = now_ms();
        let (hosts, apps) = match tokio::try_join!(api.hosts(), api.list()) {
            Ok(read) => read,
            Err(e) => {
                return Snapshot {
                    at_ms,
                    error: Some(e.to_string()),
                    ..before.clone()
                }
            }
        };
        let names: BTreeMap<String, String> = hosts
            .iter()
            .map(|h| (h.host_id.clone(), host_name(h)))
            .collect();
        let seconds = (at_ms.saturating_sub(before.at_ms) as f64 / 1000.0).max(0.001);
        let mut failed_calls: Vec<Failed> = hosts
            .iter()
            .flat_map(|h| {
                let host = names.get(&h.host_id).cloned().unwrap_or_default();
                h.failed_calls.iter().map(move |f| Failed {
                    at_ms: f.at_ms,
                    host: host.clone(),
                    app: f.app.clone(),
                    component: f.component.clone(),
                    call: f.call.clone(),
                    kind: f.kind.clone(),
                    message: f.message.clone(),
                    trace_id: f.trace_id.clone(),
                })
            })
            .collect();
        failed_calls.sort_by_key(|f| std::cmp::Reverse(f.at_ms));
        failed_calls.truncate(SHOWN_FAILURES);
        let link_calls: Vec<&lattice_protocol::messages::LinkCalls> =
            hosts.iter().flat_map(|h| &h.link_calls).collect();
        let hosts: Vec<Host> = hosts
            .iter()
            .map(|h| host(h, before.hosts.iter().find(|b| b.id == h.host_id), seconds))
            .collect();
        let mut links = Vec::new();
        let mut out_apps = Vec::new();
        for status in apps {
            let manifest = match &status.deployed_version {
                Some(version) => manifests.get(api, &status.name, version).await,
                None => None,
            };
            let kind_of = |name: &str| {
                manifest
                    .and_then(|m| m.components.iter().find(|c| c.name == name))
                    .map_or("component", |c| match c.kind {
                        ComponentKind::Component => "component",
                        ComponentKind::Capability => "capability",
                        ComponentKind::Service => "service",
                    })
            };
            if let Some(m) = manifest {
                for c in &m.components {
                    for l in &c.links {
                        let interfaces: Vec<String> = l
                            .interfaces
                            .iter()
                            .map(|i| format!("{}:{}/{i}", l.namespace, l.package))
                            .collect();
                        let totals = link_calls
                            .iter()
                            .filter(|lc| {
                                lc.app == m.name
                                    && lc.source == c.name
                                    && interfaces.contains(&lc.interface)
                            })
                            .fold((0, 0), |(calls, failed), lc| {
                                (calls + lc.calls, failed + lc.failed)
                            });
                        let mut link = Link {
                            app: m.name.clone(),
                            source: c.name.clone(),
                            target: l.target.clone(),
                            interfaces,
                            name: l.name.clone(),
                            calls_per_s: 0.0,
                            errors_per_s: 0.0,
                            totals,
                        };
                        if let Some(b) = before.links.iter().find(|b| b.same_link(&link)) {
                            link.calls_per_s = rate(totals.0, b.totals.0, seconds);
                            link.errors_per_s = rate(totals.1, b.totals.1, seconds);
                        }
                        links.push(link);
                    }
                }
            }
            out_apps.push(App {
                components: status
                    .components
                    .iter()
                    .map(|c| Placement {
                        name: c.name.clone(),
                        kind: kind_of(&c.name).to_owned(),
                        state: c.state.to_string(),
                        desired: c.desired,
                        running: c
                            .running
                            .iter()
                            .map(|(id, n)| {
                                let name = names
                                    .get(id)
                                    .cloned()
                                    .unwrap_or_else(|| short_host_id(id).to_owned());
                                (name, *n)
                            })
                            .collect(),
                    })
                    .collect(),
                name: status.name,
                deployed_version: status.deployed_version,
                latest_version: status.latest_version,
                state: status.state.to_string(),
                message: status.message,
            });
        }
        let mut now = Snapshot {
            lattice: before.lattice.clone(),
            at_ms,
            error: None,
            hosts,
            apps: out_apps,
            links,
            failed_calls,
            events: before.events.clone(),
        };
        for text in changes(before, &now) {
            now.events.push_front(Change { at_ms, text });
        }
        now.events.truncate(max_events);
        now
    }

    /// Equal but for the time it was read.
    pub fn same_as(&self, other: &Snapshot) -> bool {
        self.error == other.error
            && self.hosts == other.hosts
            && self.apps == other.apps
            && self.links == other.links
            && self.failed_calls == other.failed_calls
            && self.events == other.events
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

impl Manifests {
    async fn get(&mut self, api: &ApiClient, app: &str, version: &str) -> Option<&Manifest> {
        let key = (app.to_owned(), version.to_owned());
        if !self.0.contains_key(&key) {
            let stored = api.get(app, Some(version)).await.ok()?;
            // Only what the page shows of it: never config values or secrets.
            let mut manifest = stored.manifest;
            for c in &mut manifest.components {
                c.config = Default::default();
                c.secrets.clear();
                c.config_layers.clear();
                for l in &mut c.links {
                    l.target_config = Default::default();
                    l.source_config = Default::default();
                    l.target_secrets.clear();
                    l.source_secrets.clear();
                }
            }
            // Bounded: old versions are forgotten first (keys sort by version text,
            // good enough for a cache).
            if self.0.len() >= 256 {
                self.0.pop_first();
            }
            self.0.insert(key.clone(), manifest);
        }
        self.0.get(&key)
    }
}

impl Link {
    fn same_link(&self, other: &Link) -> bool {
        (&self.app, &self.source, &self.target, &self.name)
            == (&other.app, &other.source, &other.target, &other.name)
    }
}

/// Per second over `seconds`, to a tenth; a counter that went down (its
/// component restarted) counts from zero.
fn rate(now: u64, then: u64, seconds: f64) -> f64 {
    let delta = if now >= then { now - then } else { now };
    (delta as f64 / seconds * 10.0).round() / 10.0
}

fn host(info: &HostInfo, before: Option<&Host>, seconds: f64) -> Host {
    let counts = info.calls;
    let rate = |now: u64, then: Option<u64>| then.map_or(0.0, |then| rate(now, then, seconds));
    let then = before.map(|b| b.counts);
    Host {
        id: info.host_id.clone(),
        name: host_name(info),
        labels: info
            .labels
            .iter()
            .filter(|(k, _)| !k.starts_with("hostcore."))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        draining: info.draining,
        in_flight: info
            .workloads
            .iter()
            .flat_map(|w| &w.components)
            .map(|c| c.in_flight)
            .sum(),
        components: info
            .workloads
            .iter()
            .flat_map(|w| {
                w.components
                    .iter()
                    .map(move |c| (format!("{}/{}", w.app, c.name), c.instances))
            })
            .collect(),
        calls_per_s: CallRates {
            local: rate(counts.local, then.map(|c| c.local)),
            remote: rate(counts.remote, then.map(|c| c.remote)),
            served: rate(counts.served, then.map(|c| c.served)),
            failed: rate(counts.failed, then.map(|c| c.failed)),
        },
        counts,
    }
}

fn host_name(info: &HostInfo) -> String {
    info.labels
        .get("name")
        .cloned()
        .unwrap_or_else(|| short_host_id(&info.host_id).to_owned())
}

/// What a person would want told: hosts that came or went, apps whose state,
/// version or message changed, apps that appeared or vanished.
fn changes(before: &Snapshot, now: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    if before.at_ms == 0
        || (before.hosts.is_empty() && before.apps.is_empty() && before.events.is_empty())
    {
        // The first read: what is there is not news.
        if !now.hosts.is_empty() || !now.apps.is_empty() {
            out.push(format!(
                "dashboard started: {} host(s), {} app(s)",
                now.hosts.len(),
                now.apps.len()
            ));
        }
        return out;
    }
    for h in &now.hosts {
        if !before.hosts.iter().any(|b| b.id == h.id) {
            out.push(format!("host {} joined", h.name));
        }
    }
    for b in &before.hosts {
        if !now.hosts.iter().any(|h| h.id == b.id) {
            out.push(format!("host {} is gone", b.name));
        }
    }
    for a in &now.apps {
        match before.apps.iter().find(|b| b.name == a.name) {
            None => out.push(format!("app {} stored ({})", a.name, a.state)),
            Some(b)
                if (b.state.as_str(), &b.deployed_version, &b.message)
                    != (a.state.as_str(), &a.deployed_version, &a.message) =>
            {
                let version = a.deployed_version.as_deref().unwrap_or("-");
                out.push(format!(
                    "app {} {} ({version}): {}",
                    a.name, a.state, a.message
                ));
            }
            Some(_) => {}
        }
    }
    for b in &before.apps {
        if !now.apps.iter().any(|a| a.name == b.name) {
            out.push(format!("app {} deleted", b.name));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(id: &str, name: &str) -> Host {
        Host {
            id: id.into(),
            name: name.into(),
            labels: BTreeMap::new(),
            draining: false,
            in_flight: 0,
            components: Vec::new(),
            calls_per_s: CallRates::default(),
            counts: Default::default(),
        }
    }

    #[test]
    fn changes_name_hosts_that_came_and_went_and_apps_that_moved() {
        let mut before = Snapshot::empty("l");
        before.hosts = vec![host("NA", "a"), host("NB", "b")];
        before.events.push_back(Change {
            at_ms: 1,
            text: "dashboard started".into(),
        });
        let mut now = before.clone();
        now.hosts = vec![host("NA", "a"), host("NC", "c")];
        now.apps = vec![App {
            name: "shop".into(),
            deployed_version: Some("v1".into()),
            latest_version: "v1".into(),
            state: "deployed".into(),
            message: "runs".into(),
            components: Vec::new(),
        }];
        assert_eq!(
            changes(&before, &now),
            [
                "host c joined",
                "host b is gone",
                "app shop stored (deployed)"
            ]
        );
        let mut later = now.clone();
        later.apps[0].state = "reconciling".into();
        later.apps[0].message = "converging".into();
        assert_eq!(
            changes(&now, &later),
            ["app shop reconciling (v1): converging"]
        );
        assert!(changes(&later, &later).is_empty());
    }
}
