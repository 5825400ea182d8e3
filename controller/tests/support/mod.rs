//! Test support for the controller's integration tests: simulated hosts that speak the
//! host protocol over their own NATS connection (each with its own host key: its
//! heartbeats are signed, and it obeys only commands a [`CommandVerifier`] trusting
//! the test lattice key accepts), a fast controller signing with that key, and
//! polling with deadlines.

#![allow(dead_code)]
#![allow(clippy::unwrap_used)] // test support: an unwrap that fails is a failed test

use futures::StreamExt;
use lattice_controller::{ApiClient, Controller, ControllerConfig};
use lattice_protocol::manifest::{Component, ComponentKind, Image, Manifest, Scaler};
use lattice_protocol::messages::{
    AppStatus, CommandReply, ComponentReport, Event, HostCommand, HostInfo, ListRequest,
    WorkloadReport,
};
use lattice_protocol::subjects::Subjects;
use lattice_protocol::trust::{
    new_host_key, new_lattice_key, sign_report, CommandVerifier, VerifierConfig,
};
use lattice_protocol::{decode, encode};
use nkeys::KeyPair;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const LATTICE: &str = "test";
pub const BEAT: Duration = Duration::from_millis(200);
pub const DEADLINE: Duration = Duration::from_secs(15);

/// The seed of the lattice signing key every controller of this test process
/// signs with (made once per process).
pub fn lattice_seed() -> &'static str {
    static SEED: OnceLock<String> = OnceLock::new();
    SEED.get_or_init(|| new_lattice_key().seed().unwrap())
}

/// The public key simulated hosts trust.
pub fn lattice_public_key() -> String {
    KeyPair::from_seed(lattice_seed()).unwrap().public_key()
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Controller timings for tests: everything short; signing with [`lattice_seed`].
pub fn fast_config() -> ControllerConfig {
    ControllerConfig {
        tick: Duration::from_millis(100),
        command_timeout: Duration::from_secs(2),
        host_heartbeat_interval: BEAT,
        missed_beats: 3,
        ping_gather: Duration::from_millis(200),
        backoff_base: Duration::from_millis(200),
        backoff_max: Duration::from_secs(2),
        resend_after: Duration::from_secs(3),
        lease_ttl: Duration::from_millis(600),
        lease_renew: Duration::from_millis(200),
        signing_key: Some(lattice_seed().to_string()),
        ..ControllerConfig::default()
    }
}

/// A controller running in a task; stopped by [`RunningController::stop`] or on drop.
pub struct RunningController {
    pub id: String,
    lattice: String,
    client: async_nats::Client,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), lattice_controller::ControllerError>>,
}

impl RunningController {
    pub async fn start(url: &str) -> Self {
        Self::start_with(url, LATTICE, fast_config()).await
    }

    pub async fn start_with(url: &str, lattice: &str, config: ControllerConfig) -> Self {
        let client = async_nats::connect(url).await.unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let controller = Controller::new(client.clone(), lattice, config);
        let id = controller.id().to_string();
        let task = tokio::spawn(controller.run(async {
            let _ = stopped.await;
        }));
        // Ready once it answers the API itself (on its own subject: another
        // controller may answer the shared one while this one is still opening its
        // buckets).
        let asker = async_nats::connect(url).await.unwrap();
        let subject = Subjects::new(lattice).controller_api(&id, "list");
        eventually("the controller to answer", || async {
            let request = async_nats::Request::new()
                .payload(encode(&ListRequest {}).into())
                .timeout(Some(Duration::from_millis(500)));
            asker
                .send_request(subject.clone(), request)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .await;
        Self {
            id,
            lattice: lattice.to_string(),
            client,
            stop: Some(stop),
            task,
        }
    }

    /// Crash: stop at once, without releasing the lease. Returns once the server
    /// routes nothing to it any more (as after a dying process's connection closed).
    pub async fn kill(&mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
        let subject = Subjects::new(&self.lattice).controller_api(&self.id, "list");
        eventually("the killed controller's subscriptions to go", || async {
            let request = async_nats::Request::new()
                .payload(encode(&ListRequest {}).into())
                .timeout(Some(Duration::from_millis(200)));
            match self.client.send_request(subject.clone(), request).await {
                Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => Ok(()),
                other => Err(format!("{:?}", other.map(|m| m.payload))),
            }
        })
        .await;
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let result = tokio::time::timeout(DEADLINE, &mut self.task)
            .await
            .expect("controller stops within the deadline");
        result.unwrap().unwrap();
    }
}

impl Drop for RunningController {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn api(url: &str) -> ApiClient {
    ApiClient::new(async_nats::connect(url).await.unwrap(), LATTICE)
}

/// A simulated host with a fresh host key (its id): answers pings, heartbeats every
/// [`BEAT`] (signed), applies the commands its verifier accepts into the workloads
/// it reports, or refuses them with `fail_with`; commands that do not verify are
/// refused and kept in [`FakeHost::refused`].
pub struct FakeHost {
    pub id: String,
    labels: Arc<Mutex<BTreeMap<String, String>>>,
    workloads: Arc<Mutex<Vec<WorkloadReport>>>,
    commands: Arc<Mutex<Vec<HostCommand>>>,
    refused: Arc<Mutex<Vec<String>>>,
    fail_with: Arc<Mutex<Option<String>>>,
    task: JoinHandle<()>,
}

impl FakeHost {
    pub async fn start(url: &str, labels: &[(&str, &str)]) -> Self {
        Self::start_with(url, LATTICE, labels, BEAT).await
    }

    /// A host of `lattice` heartbeating every `beat`.
    pub async fn start_with(
        url: &str,
        lattice: &str,
        labels: &[(&str, &str)],
        beat: Duration,
    ) -> Self {
        let key = new_host_key();
        let id = key.public_key();
        let id = id.as_str();
        let mut verifier = CommandVerifier::new(
            lattice,
            id,
            [lattice_public_key()],
            VerifierConfig::default(),
        )
        .unwrap();
        let client = async_nats::connect(url).await.unwrap();
        let subjects = Subjects::new(lattice);
        let mut commands_sub = client.subscribe(subjects.host_command(id)).await.unwrap();
        let mut pings = client.subscribe(subjects.hosts_ping()).await.unwrap();
        client.flush().await.unwrap();
        let workloads = Arc::new(Mutex::new(Vec::new()));
        let commands = Arc::new(Mutex::new(Vec::new()));
        let refused = Arc::new(Mutex::new(Vec::new()));
        let fail_with = Arc::new(Mutex::new(None::<String>));
        let labels: Arc<Mutex<BTreeMap<String, String>>> = Arc::new(Mutex::new(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ));
        let info = {
            let id = id.to_string();
            let lattice = lattice.to_string();
            let (workloads, labels) = (workloads.clone(), labels.clone());
            move || {
                // Built from JSON so a field the protocol adds (with a default) needs
                // no change here.
                let minimal = serde_json::json!({
                    "host_id": id,
                    "lattice": lattice,
                    "labels": {},
                    "version": "test",
                    "started_at_ms": 0,
                });
                let mut info: HostInfo =
                    serde_json::from_value(minimal).expect("a minimal host report");
                info.labels = labels.lock().unwrap().clone();
                info.workloads = workloads.lock().unwrap().clone();
                info
            }
        };
        let beat_of = {
            let lattice = lattice.to_string();
            move |info: HostInfo| {
                let body = encode(&Event::HostHeartbeat(info));
                sign_report(&key, &lattice, now_ms(), &body, None).unwrap()
            }
        };
        let task = {
            let (workloads, commands, fail_with, labels, refused) = (
                workloads.clone(),
                commands.clone(),
                fail_with.clone(),
                labels.clone(),
                refused.clone(),
            );
            let event = subjects.event("host_heartbeat");
            tokio::spawn(async move {
                let mut beat = tokio::time::interval(beat);
                loop {
                    tokio::select! {
                        _ = beat.tick() => {
                            client.publish(event.clone(), beat_of(info()).into()).await.unwrap();
                        }
                        Some(ping) = pings.next() => {
                            if let Some(reply) = ping.reply {
                                client.publish(reply, encode(&info()).into()).await.unwrap();
                            }
                        }
                        Some(msg) = commands_sub.next() => {
                            let cmd: HostCommand = match verifier.verify_bytes(&msg.payload, now_ms()) {
                                Ok(verified) => decode(&verified.body).unwrap(),
                                Err(refusal) => {
                                    refused.lock().unwrap().push(refusal.to_string());
                                    if let Some(r) = msg.reply {
                                        let reply = CommandReply::error(format!("refused: {refusal}"));
                                        client.publish(r, encode(&reply).into()).await.unwrap();
                                    }
                                    continue;
                                }
                            };
                            commands.lock().unwrap().push(cmd.clone());
                            let failure = fail_with.lock().unwrap().clone();
                            let reply = match (cmd, failure) {
                                (HostCommand::Apply { .. }, Some(error)) => CommandReply::error(error),
                                (HostCommand::Apply { workload }, None) => {
                                    let report = WorkloadReport {
                                        service: None,
                                        providers: vec![],
                                        app: workload.manifest.name.clone(),
                                        version: workload.manifest.version.clone(),
                                        components: workload
                                            .placements
                                            .iter()
                                            .map(|(name, n)| ComponentReport {
                                                name: name.clone(),
                                                instances: *n,
                                                in_flight: 0,
                                                invocations: 0,
                                                traps: 0,
                                            })
                                            .collect(),
                                    };
                                    let mut w = workloads.lock().unwrap();
                                    w.retain(|r| r.app != report.app);
                                    w.push(report);
                                    CommandReply::ok()
                                }
                                (HostCommand::Remove { app }, _) => {
                                    workloads.lock().unwrap().retain(|r| r.app != app);
                                    CommandReply::ok()
                                }
                                (HostCommand::SetLabels { set, unset }, _) => {
                                    let mut l = labels.lock().unwrap();
                                    l.extend(set);
                                    for k in unset {
                                        l.remove(&k);
                                    }
                                    CommandReply::ok()
                                }
                            };
                            if let Some(r) = msg.reply {
                                client.publish(r, encode(&reply).into()).await.unwrap();
                            }
                            // Like a real host: a heartbeat right after every command.
                            client.publish(event.clone(), beat_of(info()).into()).await.unwrap();
                        }
                    }
                }
            })
        };
        Self {
            id: id.to_string(),
            labels,
            workloads,
            commands,
            refused,
            fail_with,
            task,
        }
    }

    /// Why each command this host refused was refused.
    pub fn refused(&self) -> Vec<String> {
        self.refused.lock().unwrap().clone()
    }

    /// What the host reports for `app`.
    pub fn workload(&self, app: &str) -> Option<WorkloadReport> {
        self.workloads
            .lock()
            .unwrap()
            .iter()
            .find(|w| w.app == app)
            .cloned()
    }

    /// Every app the host reports, with its components' instances.
    pub fn workloads(&self) -> Vec<WorkloadReport> {
        self.workloads.lock().unwrap().clone()
    }

    pub fn labels(&self) -> BTreeMap<String, String> {
        self.labels.lock().unwrap().clone()
    }

    pub fn commands(&self) -> Vec<HostCommand> {
        self.commands.lock().unwrap().clone()
    }

    /// Refuse every Apply with `error` from now on (`None`: accept again).
    pub fn fail_with(&self, error: Option<&str>) {
        *self.fail_with.lock().unwrap() = error.map(str::to_string);
    }

    /// Crash: stop heartbeating and answering.
    pub fn kill(&self) {
        self.task.abort();
    }
}

impl Drop for FakeHost {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A Wasm component with a spreadscaler of `instances`.
pub fn component(name: &str, instances: u32) -> Component {
    Component {
        name: name.to_string(),
        kind: ComponentKind::Component,
        image: Image::File(format!("/components/{name}.wasm")),
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

pub fn manifest(name: &str, version: &str, components: &[(&str, u32)]) -> Manifest {
    Manifest {
        name: name.to_string(),
        version: version.to_string(),
        description: None,
        components: components.iter().map(|(n, i)| component(n, *i)).collect(),
        rollout: None,
    }
}

/// Poll `check` every 50 ms until it answers `Some`, or panic after [`DEADLINE`]
/// with `what` and the last thing seen.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let last = match check().await {
            Ok(v) => return v,
            Err(last) => last,
        };
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out waiting for {what}; last seen: {last}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Wait until `app`'s status satisfies `ok`.
pub async fn status_until(
    api: &ApiClient,
    app: &str,
    what: &str,
    ok: impl Fn(&AppStatus) -> bool,
) -> AppStatus {
    eventually(what, || async {
        match api.status(app).await {
            Ok(s) if ok(&s) => Ok(s),
            Ok(s) => Err(format!("{:?}: {}", s.state, s.message)),
            Err(e) => Err(e.to_string()),
        }
    })
    .await
}

/// Wait until `host` reports `app` at `version` (`None`: not at all).
pub async fn host_runs(host: &FakeHost, app: &str, version: Option<&str>) {
    eventually(
        &format!("host {} to run {app} at {version:?}", host.id),
        || async {
            let got = host.workload(app);
            if got.as_ref().map(|w| w.version.as_str()) == version {
                Ok(())
            } else {
                Err(format!("{got:?}"))
            }
        },
    )
    .await
}
