//! The state task: the one owner of apps, hosts and attempts. See `mod.rs`.

use super::commands::Sender;
use super::election::View;
use super::events::publish_event;
use super::metrics::Metrics;
use super::msg::Msg;
use super::reports::Reports;
use super::secrets::SecretStore;
use super::signer::{now_ms, Signer};
use crate::brain::attempts::{Attempts, Backoff};
use crate::brain::model::{Context, DesiredApp, ObservedHost, PlannedCommand};
use crate::brain::reconcile::reconcile;
use crate::brain::record::AppRecord;
use crate::config::ControllerConfig;
use futures::{FutureExt, StreamExt};
use lattice_bus::{SharedBus, Subscription};
use lattice_protocol::messages::{AppState, AppStatus, Event, HostInfo};
use lattice_protocol::subjects::Subjects;
use lattice_protocol::trust::ReportPolicy;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};

pub(crate) struct State {
    bus: SharedBus,
    lattice: String,
    subjects: Subjects,
    config: ControllerConfig,
    apps: BTreeMap<String, AppRecord>,
    /// KV revision of what `apps` holds per app (also of deletions), so an older
    /// change arriving late never overwrites a newer one.
    revisions: BTreeMap<String, u64>,
    /// Live hosts, sorted by id.
    hosts: Vec<ObservedHost>,
    /// The last verified report of each live host (the API's host list).
    infos: BTreeMap<String, HostInfo>,
    /// Checks every host report; only what it passes is observed.
    reports: Reports,
    /// No host command before this: a starting controller first hears every
    /// live host's heartbeat.
    quiet_until: Instant,
    /// Whether NATS is reachable: while it is not, the silence is this
    /// controller's own and no host is declared lost.
    connected: bool,
    /// Connects seen so far (1 after the first): a higher count is a reconnect.
    connects: u64,
    /// Told the time at every turn of the loop: the election renews the lease only
    /// while this moves.
    progress: Option<watch::Sender<Instant>>,
    last_seen: BTreeMap<String, Instant>,
    attempts: Attempts,
    /// Last state and deployed version per app, to publish events on transitions.
    last_states: BTreeMap<String, (AppState, Option<String>)>,
    /// Statuses computed by the last reconcile.
    statuses: BTreeMap<String, AppStatus>,
    /// Something reconcile reads changed since the last reconcile.
    dirty: bool,
    /// Requests to answer after the next reconcile.
    waiting: Vec<Waiting>,
    /// Who leads; this controller sends commands only while it does.
    election: watch::Receiver<View>,
    /// Whether this controller led at the last look, to log changes.
    leading: bool,
    sender: Sender,
    metrics: Arc<Metrics>,
}

/// A request answered from the statuses of the next reconcile.
enum Waiting {
    /// No status (cannot happen: the app was just adopted), no answer: the API then
    /// says the controller is shutting down.
    Upsert {
        name: String,
        reply: oneshot::Sender<AppStatus>,
    },
    Status {
        name: String,
        reply: oneshot::Sender<Option<AppStatus>>,
    },
    List {
        reply: oneshot::Sender<Vec<AppStatus>>,
    },
}

/// Whether `id` may be the host meant by `query`: its id or a prefix of it.
fn host_matches(id: &str, query: &str) -> bool {
    !query.is_empty() && id.starts_with(query)
}

/// Messages, heartbeats and stops handled at most between two reconciles, so a burst
/// (a deploy of many apps, every host answering) costs one reconcile, not one each.
const BATCH: usize = 1024;

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

impl State {
    /// Give `apply` commands the secrets their components use.
    pub(crate) fn with_secrets(mut self, secrets: SecretStore) -> Self {
        self.sender = self.sender.with_secrets(secrets);
        self
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        bus: SharedBus,
        lattice: String,
        subjects: Subjects,
        config: ControllerConfig,
        apps: BTreeMap<String, (AppRecord, u64)>,
        signer: Signer,
        election: watch::Receiver<View>,
        tx: mpsc::Sender<Msg>,
    ) -> Self {
        let revisions = apps.iter().map(|(n, (_, rev))| (n.clone(), *rev)).collect();
        let apps = apps.into_iter().map(|(n, (r, _))| (n, r)).collect();
        let sender = Sender::new(
            bus.clone(),
            subjects.clone(),
            signer,
            election.clone(),
            config.command_timeout,
            tx,
        );
        let reports = Reports::new(ReportPolicy::new(&lattice, config.admission.clone()));
        let quiet_until = now() + config.host_heartbeat_interval;
        Self {
            bus,
            lattice,
            subjects,
            config,
            apps,
            revisions,
            hosts: Vec::new(),
            infos: BTreeMap::new(),
            reports,
            quiet_until,
            connected: true,
            connects: 0,
            progress: None,
            last_seen: BTreeMap::new(),
            attempts: Attempts::default(),
            last_states: BTreeMap::new(),
            statuses: BTreeMap::new(),
            dirty: true,
            waiting: Vec::new(),
            election,
            leading: false,
            sender,
            metrics: Arc::default(),
        }
    }

    /// Report timings, commands and heartbeats to `metrics`.
    pub(crate) fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.sender = self.sender.with_metrics(metrics.clone());
        self.metrics = metrics;
        self
    }

    /// Tell `progress` the time at every turn of the loop.
    pub(crate) fn with_progress(mut self, progress: watch::Sender<Instant>) -> Self {
        self.progress = Some(progress);
        self
    }

    pub(crate) async fn run(
        mut self,
        mut rx: mpsc::Receiver<Msg>,
        mut beats: Subscription,
        mut stops: Subscription,
        shutdown: impl Future<Output = ()>,
    ) {
        let mut tick = tokio::time::interval(self.config.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut election = self.election.clone();
        tokio::pin!(shutdown);
        loop {
            // Wake exactly when the quietest host becomes lost, not a tick later.
            let next_loss = self
                .last_seen
                .values()
                .min()
                .filter(|_| self.connected)
                .map(|seen| *seen + self.config.host_timeout() + Duration::from_millis(1));
            let loss_due = async {
                match next_loss {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = &mut shutdown => break,
                () = loss_due => self.check_lost().await,
                Some(msg) = rx.recv() => self.handle(msg),
                beat = beats.next() => match beat {
                    Some(m) => self.heartbeat(&m.payload),
                    None => {
                        tracing::warn!("heartbeat subscription closed; controller stops");
                        break;
                    }
                },
                Some(stop) = stops.next() => self.host_stopped(&stop.payload),
                Ok(()) = election.changed() => self.dirty = true,
                _ = tick.tick() => {
                    self.check_lost().await;
                    self.dirty = true;
                }
            }
            // Take what else is ready without waiting: one reconcile for the lot.
            for _ in 0..BATCH {
                let mut took = false;
                if let Ok(msg) = rx.try_recv() {
                    self.handle(msg);
                    took = true;
                }
                if let Some(Some(m)) = beats.next().now_or_never() {
                    self.heartbeat(&m.payload);
                    took = true;
                }
                if let Some(Some(m)) = stops.next().now_or_never() {
                    self.host_stopped(&m.payload);
                    took = true;
                }
                if !took {
                    break;
                }
            }
            if self.dirty {
                self.reconcile().await;
            }
            self.answer_waiting();
            if let Some(progress) = &self.progress {
                progress.send_replace(now());
            }
        }
        tracing::info!(lattice = %self.lattice, "controller stopped");
    }

    fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Upsert {
                name,
                record,
                revision,
                reply,
            } => {
                self.adopt(&name, Some(record), revision);
                // Answer from a reconcile that saw the new record.
                self.dirty = true;
                self.waiting.push(Waiting::Upsert { name, reply });
            }
            Msg::Stored {
                name,
                record,
                revision,
            } => {
                if self.adopt(&name, record, revision) {
                    self.dirty = true;
                }
            }
            Msg::Connection(connection) => self.connection(connection),
            Msg::Status { name, reply } => self.waiting.push(Waiting::Status { name, reply }),
            Msg::List { reply } => self.waiting.push(Waiting::List { reply }),
            Msg::Hosts { query, reply } => {
                let hosts = self
                    .infos
                    .values()
                    .filter(|h| query.as_deref().is_none_or(|q| host_matches(&h.host_id, q)))
                    .cloned()
                    .collect();
                let _ = reply.send(hosts);
            }
            Msg::History { name, reply } => {
                let _ = reply.send(self.apps.get(&name).map(AppRecord::history));
            }
            Msg::CommandDone {
                host,
                app,
                seq,
                result,
            } => {
                if let Err(error) = &result {
                    tracing::warn!(host = %host, app = %app, %error, "host command failed");
                }
                let backoff = Backoff {
                    base: self.config.backoff_base,
                    max: self.config.backoff_max,
                };
                let failed = result.is_err();
                if self
                    .attempts
                    .answered(&host, &app, seq, result, now(), &backoff)
                    && failed
                {
                    self.dirty = true;
                }
            }
        }
    }

    /// Answer status and list requests from the last reconcile's statuses.
    fn answer_waiting(&mut self) {
        for w in self.waiting.drain(..) {
            match w {
                Waiting::Upsert { name, reply } => {
                    if let Some(status) = self.statuses.get(&name) {
                        let _ = reply.send(status.clone());
                    }
                }
                Waiting::Status { name, reply } => {
                    let _ = reply.send(self.statuses.get(&name).cloned());
                }
                Waiting::List { reply } => {
                    let _ = reply.send(self.statuses.values().cloned().collect());
                }
            }
        }
    }

    /// Take a changed app record unless a newer one is already known; returns whether
    /// it was taken.
    fn adopt(&mut self, name: &str, record: Option<AppRecord>, revision: u64) -> bool {
        if self
            .revisions
            .get(name)
            .is_some_and(|known| *known >= revision)
        {
            return false;
        }
        self.revisions.insert(name.to_string(), revision);
        match record {
            Some(record) => {
                if self.apps.get(name) == Some(&record) {
                    return false;
                }
                self.apps.insert(name.to_string(), record);
            }
            None => {
                self.last_states.remove(name);
                if self.apps.remove(name).is_none() {
                    return false;
                }
            }
        }
        true
    }

    /// Record a host's report; returns whether anything reconcile cares about changed.
    fn observe(&mut self, info: HostInfo) -> bool {
        if !info.lattice.is_empty() && info.lattice != self.lattice {
            return false;
        }
        self.infos.insert(info.host_id.clone(), info.clone());
        let host = ObservedHost::from(info);
        let seen = now();
        self.last_seen.insert(host.id.clone(), seen);
        self.metrics.heartbeat(&host.id, seen);
        match self.hosts.binary_search_by(|h| h.id.cmp(&host.id)) {
            Ok(i) => {
                let changed = comparable(&self.hosts[i]) != comparable(&host);
                self.hosts[i] = host;
                changed
            }
            Err(i) => {
                tracing::info!(host = %host.id, labels = ?host.labels, "host joined");
                self.hosts.insert(i, host);
                true
            }
        }
    }

    /// A heartbeat: observed only when it is a report signed by the host it names
    /// and admitted (`reports.rs`); a forged one never makes a host appear.
    fn heartbeat(&mut self, payload: &[u8]) {
        let Some(Event::HostHeartbeat(info)) = self.reports.check(payload, now_ms(), now()) else {
            return;
        };
        if self.observe(info) {
            self.dirty = true;
        }
    }

    fn host_stopped(&mut self, payload: &[u8]) {
        if let Some(Event::HostStopped { host_id }) = self.reports.check(payload, now_ms(), now()) {
            self.metrics.forget(&host_id, false);
            if self.forget_host(&host_id) {
                tracing::info!(host = %host_id, "host stopped");
                self.dirty = true;
            }
        }
    }

    fn forget_host(&mut self, id: &str) -> bool {
        self.last_seen.remove(id);
        self.infos.remove(id);
        self.attempts.forget_host(id);
        let before = self.hosts.len();
        self.hosts.retain(|h| h.id != id);
        self.hosts.len() != before
    }

    /// The lease term this controller leads in at `now`, if it does; logs changes
    /// and starts a leadership with a clean slate (what it sent in an earlier term
    /// says nothing now).
    fn leads(&mut self, now: Instant) -> Option<u64> {
        let view = self.election.borrow().clone();
        let leads = view.leads(now);
        if leads && !self.leading {
            tracing::info!(
                lattice = %self.lattice,
                term = view.leadership.map_or(0, |l| l.term),
                "acting as the lattice's controller"
            );
            self.attempts = Attempts::default();
        } else if !leads && self.leading {
            tracing::warn!(lattice = %self.lattice, "no longer acting: another controller leads");
        }
        self.leading = leads;
        view.leadership.filter(|_| leads).map(|l| l.term)
    }

    /// NATS went away or came back. While it is away no host is lost (the silence
    /// is ours). After a reconnect every known host gets a fresh timeout and no
    /// command goes out for one heartbeat interval, so every live host has reported
    /// again before reconcile acts: none is given work twice.
    fn connection(&mut self, connection: lattice_bus::Connection) {
        if !connection.connected {
            if self.connected {
                tracing::warn!("NATS is unreachable: no host is declared lost until it is back");
            }
            self.connected = false;
            return;
        }
        let reconnected = self.connects > 0 && connection.connects > self.connects;
        self.connects = connection.connects;
        if !self.connected || reconnected {
            let now = now();
            for seen in self.last_seen.values_mut() {
                *seen = now;
            }
            self.quiet_until = now + self.config.host_heartbeat_interval;
            tracing::info!(
                quiet_for = ?self.config.host_heartbeat_interval,
                "NATS is back: hearing from the hosts again before commanding any"
            );
            self.dirty = true;
        }
        self.connected = true;
    }

    /// Forget hosts silent for longer than the configured number of beats. Every
    /// controller forgets them; the leader tells the lattice.
    async fn check_lost(&mut self) {
        if !self.connected {
            return;
        }
        let limit = self.config.host_timeout();
        let now = now();
        let lost: Vec<String> = self
            .last_seen
            .iter()
            .filter(|(_, seen)| now.saturating_duration_since(**seen) > limit)
            .map(|(id, _)| id.clone())
            .collect();
        if lost.is_empty() {
            return;
        }
        let leads = self.leads(now).is_some();
        for host_id in lost {
            tracing::warn!(host = %host_id, silent_for = ?limit, "host lost");
            self.forget_host(&host_id);
            self.metrics.forget(&host_id, true);
            if leads {
                self.publish(Event::HostLost { host_id }).await;
            }
        }
        self.dirty = true;
    }

    /// Run reconcile and keep its statuses; when leading, send its commands and
    /// publish app events.
    async fn reconcile(&mut self) {
        let started = std::time::Instant::now();
        let desired: Vec<DesiredApp> = self
            .apps
            .iter()
            .map(|(name, r)| DesiredApp {
                name: name.clone(),
                latest_version: r.latest().map(|v| v.version.clone()).unwrap_or_default(),
                deployed: r.deployed_manifest().cloned(),
            })
            .collect();
        let now = now();
        // Act only while leading, and not before every live host had a chance to
        // report (a starting controller learns hosts from heartbeats alone).
        let term = self.leads(now).filter(|_| now >= self.quiet_until);
        let leads = term.is_some();
        let placing = std::time::Instant::now();
        let plan = {
            let _span =
                tracing::debug_span!("reconcile", apps = desired.len(), hosts = self.hosts.len())
                    .entered();
            reconcile(
                &desired,
                &self.hosts,
                &Context {
                    attempts: &self.attempts,
                    now,
                    resend_after: self.config.resend_after,
                },
            )
        };
        self.metrics.placed(placing.elapsed());
        self.dirty = false;
        if let Some(term) = term {
            if !plan.commands.is_empty() {
                // A reconcile that acts is a span, each command an event of it.
                use lattice_protocol::messages::HostCommand;
                use lattice_telemetry::{KeyValue, Kind, Span};
                let span = Span::start(
                    "reconcile",
                    Kind::Internal,
                    None,
                    vec![
                        KeyValue::new("lattice.apps", desired.len() as i64),
                        KeyValue::new("lattice.hosts", self.hosts.len() as i64),
                        KeyValue::new("lattice.commands", plan.commands.len() as i64),
                    ],
                );
                for cmd in &plan.commands {
                    let (kind, app) = match &cmd.command {
                        HostCommand::Apply { workload } => {
                            ("apply", workload.manifest.name.clone())
                        }
                        HostCommand::Remove { app } => ("remove", app.clone()),
                        HostCommand::SetLabels { .. } => ("set-labels", String::new()),
                    };
                    span.event(
                        "command",
                        vec![
                            KeyValue::new("lattice.command", kind),
                            KeyValue::new("lattice.app", app),
                            KeyValue::new("lattice.host.id", cmd.host_id.clone()),
                        ],
                    );
                }
            }
            for cmd in plan.commands {
                self.send(cmd, now, term);
            }
            self.attempts.prune(now, self.config.resend_after);
        }
        self.publish_transitions(&plan.statuses, leads).await;
        self.statuses = plan.statuses;
        self.metrics.reconciled(started.elapsed());
    }

    fn send(&mut self, planned: PlannedCommand, now: Instant, term: u64) {
        let PlannedCommand { host_id, command } = planned;
        let seq = self.attempts.sent(&host_id, command.clone(), now);
        let secrets_key = self
            .hosts
            .iter()
            .find(|h| h.id == host_id)
            .and_then(|h| h.secrets_key.clone());
        self.sender.send(host_id, command, seq, term, secrets_key);
    }

    /// Remember each app's state; publish the changes when leading.
    async fn publish_transitions(&mut self, statuses: &BTreeMap<String, AppStatus>, leads: bool) {
        let mut events = Vec::new();
        for (name, s) in statuses {
            let now = (s.state, s.deployed_version.clone());
            let before = self.last_states.insert(name.clone(), now.clone());
            if before.as_ref() == Some(&now) || !leads {
                continue;
            }
            match (s.state, &s.deployed_version) {
                (AppState::Deployed, Some(version)) => events.push(Event::AppDeployed {
                    app: name.clone(),
                    version: version.clone(),
                }),
                (AppState::Failed, _) => events.push(Event::AppFailed {
                    app: name.clone(),
                    reason: s.message.clone(),
                }),
                _ => {}
            }
        }
        for e in events {
            self.publish(e).await;
        }
    }

    async fn publish(&self, event: Event) {
        publish_event(&*self.bus, &self.subjects, &event).await;
    }
}

/// A host report without what changes on every beat (in-flight counts).
fn comparable(h: &ObservedHost) -> ObservedHost {
    let mut h = h.clone();
    for w in &mut h.workloads {
        for c in &mut w.components {
            c.in_flight = 0;
        }
    }
    h
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
