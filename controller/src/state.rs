//! The state task: the one owner of apps, hosts and attempts. See `runtime.rs`.

use crate::attempts::{command_app, Attempts, Backoff};
use crate::reconcile::{reconcile, Context, DesiredApp, ObservedHost, Plan, PlannedCommand};
use crate::runtime::ControllerConfig;
use crate::store::AppRecord;
use futures::StreamExt;
use lattice_protocol::messages::{
    AppState, AppStatus, CommandReply, Event, HostCommand, HostInfo, VersionInfo,
};
use lattice_protocol::subjects::Subjects;
use lattice_protocol::{decode, encode};
use std::collections::BTreeMap;
use std::future::Future;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// What other tasks tell or ask the state task.
pub(crate) enum Msg {
    /// This controller wrote an app record to KV: adopt it, reconcile, answer the
    /// app's status.
    Upsert {
        name: String,
        record: AppRecord,
        revision: u64,
        reply: oneshot::Sender<AppStatus>,
    },
    /// An app record changed in KV (`None`: deleted), seen by this controller's API or
    /// through the KV watch (writes of other controllers too).
    Stored {
        name: String,
        record: Option<AppRecord>,
        revision: u64,
    },
    Status {
        name: String,
        reply: oneshot::Sender<Option<AppStatus>>,
    },
    List {
        reply: oneshot::Sender<Vec<AppStatus>>,
    },
    History {
        name: String,
        reply: oneshot::Sender<Option<Vec<VersionInfo>>>,
    },
    /// A host answered (or did not answer) command `seq`.
    CommandDone {
        host: String,
        app: String,
        seq: u64,
        result: Result<(), String>,
    },
}

pub(crate) struct State {
    client: async_nats::Client,
    lattice: String,
    subjects: Subjects,
    config: ControllerConfig,
    apps: BTreeMap<String, AppRecord>,
    /// KV revision of what `apps` holds per app (also of deletions), so an older
    /// change arriving late never overwrites a newer one.
    revisions: BTreeMap<String, u64>,
    /// Live hosts, sorted by id.
    hosts: Vec<ObservedHost>,
    last_seen: BTreeMap<String, Instant>,
    attempts: Attempts,
    /// Last state and deployed version per app, to publish events on transitions.
    last_states: BTreeMap<String, (AppState, Option<String>)>,
    tx: mpsc::Sender<Msg>,
}

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

impl State {
    pub(crate) fn new(
        client: async_nats::Client,
        lattice: String,
        subjects: Subjects,
        config: ControllerConfig,
        apps: BTreeMap<String, (AppRecord, u64)>,
        hosts: Vec<HostInfo>,
        tx: mpsc::Sender<Msg>,
    ) -> Self {
        let revisions = apps.iter().map(|(n, (_, rev))| (n.clone(), *rev)).collect();
        let apps = apps.into_iter().map(|(n, (r, _))| (n, r)).collect();
        let mut state = Self {
            client,
            lattice,
            subjects,
            config,
            apps,
            revisions,
            hosts: Vec::new(),
            last_seen: BTreeMap::new(),
            attempts: Attempts::default(),
            last_states: BTreeMap::new(),
            tx,
        };
        for info in hosts {
            state.observe(info);
        }
        state
    }

    pub(crate) async fn run(
        mut self,
        mut rx: mpsc::Receiver<Msg>,
        mut beats: async_nats::Subscriber,
        mut stops: async_nats::Subscriber,
        shutdown: impl Future<Output = ()>,
    ) {
        let mut tick = tokio::time::interval(self.config.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                Some(msg) = rx.recv() => self.handle(msg).await,
                beat = beats.next() => match beat {
                    Some(m) => self.heartbeat(&m.payload).await,
                    None => {
                        tracing::warn!("heartbeat subscription closed; controller stops");
                        break;
                    }
                },
                Some(stop) = stops.next() => self.host_stopped(&stop.payload).await,
                _ = tick.tick() => {
                    self.check_lost().await;
                    self.reconcile(true).await;
                }
            }
        }
        tracing::info!(lattice = %self.lattice, "controller stopped");
    }

    async fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Upsert {
                name,
                record,
                revision,
                reply,
            } => {
                self.adopt(&name, Some(record), revision);
                let plan = self.reconcile(true).await;
                if let Some(status) = plan.statuses.get(&name) {
                    let _ = reply.send(status.clone());
                }
            }
            Msg::Stored {
                name,
                record,
                revision,
            } => {
                if self.adopt(&name, record, revision) {
                    self.reconcile(true).await;
                }
            }
            Msg::Status { name, reply } => {
                let plan = self.reconcile(false).await;
                let _ = reply.send(plan.statuses.get(&name).cloned());
            }
            Msg::List { reply } => {
                let plan = self.reconcile(false).await;
                let _ = reply.send(plan.statuses.into_values().collect());
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
                    self.reconcile(true).await;
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
        let host = ObservedHost::from(info);
        self.last_seen.insert(host.id.clone(), now());
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

    async fn heartbeat(&mut self, payload: &[u8]) {
        // Hosts publish `Event::HostHeartbeat`; a bare `HostInfo` is accepted too.
        let info = match decode::<Event>(payload) {
            Ok(Event::HostHeartbeat(info)) => info,
            _ => match decode::<HostInfo>(payload) {
                Ok(info) => info,
                Err(e) => {
                    tracing::warn!(error = %e, "skipping an unreadable heartbeat");
                    return;
                }
            },
        };
        if self.observe(info) {
            self.reconcile(true).await;
        }
    }

    async fn host_stopped(&mut self, payload: &[u8]) {
        if let Ok(Event::HostStopped { host_id }) = decode::<Event>(payload) {
            if self.forget_host(&host_id) {
                tracing::info!(host = %host_id, "host stopped");
                self.reconcile(true).await;
            }
        }
    }

    fn forget_host(&mut self, id: &str) -> bool {
        self.last_seen.remove(id);
        self.attempts.forget_host(id);
        let before = self.hosts.len();
        self.hosts.retain(|h| h.id != id);
        self.hosts.len() != before
    }

    /// Forget hosts silent for longer than the configured number of beats.
    async fn check_lost(&mut self) {
        let limit = self.config.host_timeout();
        let now = now();
        let lost: Vec<String> = self
            .last_seen
            .iter()
            .filter(|(_, seen)| now.saturating_duration_since(**seen) > limit)
            .map(|(id, _)| id.clone())
            .collect();
        for host_id in lost {
            tracing::warn!(host = %host_id, silent_for = ?limit, "host lost");
            self.forget_host(&host_id);
            self.publish(Event::HostLost { host_id }).await;
        }
    }

    /// Run reconcile; with `send`, send its commands and publish app events.
    async fn reconcile(&mut self, send: bool) -> Plan {
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
        if !send {
            return plan;
        }
        for cmd in &plan.commands {
            self.send(cmd.clone(), now);
        }
        self.attempts.prune(now, self.config.resend_after);
        self.publish_transitions(&plan.statuses).await;
        plan
    }

    fn send(&mut self, planned: PlannedCommand, now: Instant) {
        let PlannedCommand { host_id, command } = planned;
        tracing::info!(host = %host_id, command = describe(&command), "sending host command");
        let seq = self.attempts.sent(&host_id, command.clone(), now);
        let client = self.client.clone();
        let subject = self.subjects.host_command(&host_id);
        let timeout = self.config.command_timeout;
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let app = command_app(&command).to_string();
            let result = send_command(&client, subject, &command, timeout).await;
            let _ = tx
                .send(Msg::CommandDone {
                    host: host_id,
                    app,
                    seq,
                    result,
                })
                .await;
        });
    }

    async fn publish_transitions(&mut self, statuses: &BTreeMap<String, AppStatus>) {
        let mut events = Vec::new();
        for (name, s) in statuses {
            let now = (s.state, s.deployed_version.clone());
            let before = self.last_states.insert(name.clone(), now.clone());
            if before.as_ref() == Some(&now) {
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
        crate::publish_event(&self.client, &self.subjects, &event).await;
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

fn describe(command: &HostCommand) -> String {
    match command {
        HostCommand::Apply { workload } => format!(
            "apply {}@{} {:?}",
            workload.manifest.name, workload.manifest.version, workload.placements
        ),
        HostCommand::Remove { app } => format!("remove {app}"),
        HostCommand::SetLabels { set, unset } => format!("set labels {set:?}, unset {unset:?}"),
    }
}

/// Send one command and turn every way it can go wrong into a sentence.
async fn send_command(
    client: &async_nats::Client,
    subject: String,
    command: &HostCommand,
    timeout: std::time::Duration,
) -> Result<(), String> {
    let request = async_nats::Request::new()
        .payload(encode(command).into())
        .timeout(Some(timeout));
    let msg = client
        .send_request(subject, request)
        .await
        .map_err(|e| match e.kind() {
            async_nats::RequestErrorKind::TimedOut => {
                format!("did not answer within {}s", timeout.as_secs_f64())
            }
            async_nats::RequestErrorKind::NoResponders => {
                "is not listening for commands (no responders)".to_string()
            }
            _ => format!("could not be reached: {e}"),
        })?;
    match decode::<CommandReply>(&msg.payload) {
        Ok(reply) if reply.ok => Ok(()),
        Ok(reply) => Err(reply
            .error
            .unwrap_or_else(|| "refused without saying why".to_string())),
        Err(e) => Err(format!("answered something unreadable: {e}")),
    }
}
