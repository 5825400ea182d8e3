//! Unit tests of the state task on the in-memory bus, with tokio's paused clock:
//! simulated hosts heartbeat and answer commands on a [`FakeBus`]; the test talks to
//! the state task as the API task does.

use super::*;
use crate::brain::lease::Leadership;
use lattice_bus::fake::FakeBus;
use lattice_bus::Bus;
use lattice_protocol::encode;
use lattice_protocol::manifest::{Component, ComponentKind, Image, Manifest, Scaler};
use lattice_protocol::messages::{CommandReply, ComponentReport, HostCommand, WorkloadReport};
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;

const LATTICE: &str = "t";
const BEAT: Duration = Duration::from_secs(1);
const BACKOFF: Duration = Duration::from_secs(2);
/// Far longer than any wait a passing test does (the clock is paused: free).
const DEADLINE: Duration = Duration::from_secs(60);

fn config() -> ControllerConfig {
    ControllerConfig {
        tick: Duration::from_millis(250),
        command_timeout: Duration::from_secs(1),
        host_heartbeat_interval: BEAT,
        missed_beats: 3,
        backoff_base: BACKOFF,
        backoff_max: Duration::from_secs(30),
        resend_after: Duration::from_secs(10),
        ..ControllerConfig::default()
    }
}

fn manifest(instances: u32) -> Manifest {
    Manifest {
        name: "shop".into(),
        version: "1".into(),
        description: None,
        components: vec![Component {
            name: "api".into(),
            kind: ComponentKind::Component,
            image: Image::File("file:///components/api.wasm".into()),
            config: Default::default(),
            scaler: Some(Scaler::Spreadscaler {
                instances,
                spread: vec![],
            }),
            links: vec![],
            restart: None,
        }],
    }
}

/// A state task of a controller that leads, on its own fake bus.
struct Controller {
    bus: FakeBus,
    subjects: Subjects,
    tx: mpsc::Sender<Msg>,
    _election: watch::Sender<View>,
    task: JoinHandle<()>,
}

impl Controller {
    async fn start() -> Self {
        let bus = FakeBus::new();
        let subjects = Subjects::new(LATTICE);
        let beats = bus
            .subscribe(subjects.event("host_heartbeat"))
            .await
            .unwrap();
        let stops = bus.subscribe(subjects.event("host_stopped")).await.unwrap();
        let leads = View {
            leadership: Some(Leadership {
                term: 1,
                until: now() + Duration::from_secs(24 * 3600),
            }),
            holder: Some("me".into()),
        };
        let (election, view) = watch::channel(leads);
        let (tx, rx) = mpsc::channel(16);
        let state = State::new(
            Arc::new(bus.clone()),
            LATTICE.into(),
            subjects.clone(),
            config(),
            BTreeMap::new(),
            Vec::new(),
            view,
            tx.clone(),
        );
        let task = tokio::spawn(state.run(rx, beats, stops, std::future::pending()));
        Self {
            bus,
            subjects,
            tx,
            _election: election,
            task,
        }
    }

    /// Store and deploy `manifest`, as the API does after writing KV.
    async fn deploy(&self, manifest: Manifest, revision: u64) -> AppStatus {
        let mut record = AppRecord::default();
        record.store(manifest, 0).unwrap();
        record.deploy("shop", None).unwrap();
        let (reply, status) = oneshot::channel();
        let upsert = Msg::Upsert {
            name: "shop".into(),
            record,
            revision,
            reply,
        };
        self.tx.send(upsert).await.unwrap();
        status.await.unwrap()
    }

    async fn status(&self) -> AppStatus {
        let (reply, status) = oneshot::channel();
        let name = "shop".to_string();
        self.tx.send(Msg::Status { name, reply }).await.unwrap();
        status.await.unwrap().unwrap()
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A command a simulated host received, and when.
type Received = (tokio::time::Instant, HostCommand);

/// A simulated host on the fake bus: heartbeats every [`BEAT`] with what it runs,
/// refuses the first `refusals` applies, carries out the rest.
struct Host {
    commands: mpsc::UnboundedReceiver<Received>,
    task: JoinHandle<()>,
}

impl Host {
    async fn start(c: &Controller, id: &str, refusals: usize) -> Self {
        let (bus, subjects, id) = (c.bus.clone(), c.subjects.clone(), id.to_string());
        let mut inbox = bus.subscribe(subjects.host_command(&id)).await.unwrap();
        let (seen, commands) = mpsc::unbounded_channel();
        let workloads = Arc::new(Mutex::new(Vec::<WorkloadReport>::new()));
        let task = tokio::spawn(async move {
            let mut refusals = refusals;
            let mut beat = tokio::time::interval(BEAT);
            loop {
                tokio::select! {
                    _ = beat.tick() => {
                        let info = host_info(&id, workloads.lock().unwrap().clone());
                        let beat = encode(&Event::HostHeartbeat(info));
                        let subject = subjects.event("host_heartbeat");
                        bus.publish(subject, None, beat.into()).await.unwrap();
                    }
                    Some(msg) = inbox.next() => {
                        let command: HostCommand = decode(&msg.payload).unwrap();
                        let _ = seen.send((tokio::time::Instant::now(), command.clone()));
                        let reply = match command {
                            HostCommand::Apply { .. } if refusals > 0 => {
                                refusals -= 1;
                                CommandReply::error("no room for it")
                            }
                            HostCommand::Apply { workload } => {
                                let report = WorkloadReport {
                                    app: workload.manifest.name.clone(),
                                    version: workload.manifest.version.clone(),
                                    components: workload
                                        .placements
                                        .iter()
                                        .map(|(name, n)| ComponentReport {
                                            name: name.clone(),
                                            instances: *n,
                                            in_flight: 0,
                                        })
                                        .collect(),
                                    service: None,
                                    providers: vec![],
                                };
                                let mut w = workloads.lock().unwrap();
                                w.retain(|r| r.app != report.app);
                                w.push(report);
                                CommandReply::ok()
                            }
                            _ => CommandReply::ok(),
                        };
                        let reply_to = msg.reply.unwrap();
                        bus.publish(reply_to, None, encode(&reply).into()).await.unwrap();
                    }
                }
            }
        });
        Self { commands, task }
    }

    /// The next command this host receives.
    async fn next_command(&mut self) -> Received {
        tokio::time::timeout(DEADLINE, self.commands.recv())
            .await
            .expect("a command within the deadline")
            .unwrap()
    }

    /// Crash: stop heartbeating and answering.
    fn kill(&self) {
        self.task.abort();
    }
}

/// What host `id` reports: its workloads; every other field as the protocol
/// defaults it (built from JSON, so a field the protocol adds needs no change here).
fn host_info(id: &str, workloads: Vec<WorkloadReport>) -> HostInfo {
    let minimal = serde_json::json!({
        "host_id": id,
        "lattice": LATTICE,
        "labels": {},
        "version": "test",
        "started_at_ms": 0,
    });
    let mut info: HostInfo = serde_json::from_value(minimal).expect("a minimal host report");
    info.workloads = workloads;
    info
}

/// `api`'s instances in an apply of app `shop`.
fn applied(command: &HostCommand) -> u32 {
    match command {
        HostCommand::Apply { workload } if workload.manifest.name == "shop" => {
            workload.placements.get("api").copied().unwrap_or(0)
        }
        other => panic!("expected an apply of shop, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_deployed_app_is_applied_to_a_host_that_beats() {
    let controller = Controller::start().await;
    let mut host = Host::start(&controller, "host-a", 0).await;
    // Let the first heartbeat arrive.
    tokio::time::sleep(BEAT / 2).await;

    controller.deploy(manifest(2), 1).await;
    let (_, command) = host.next_command().await;
    assert_eq!(applied(&command), 2);

    // The next beats report it: the app is deployed and nothing more is sent.
    tokio::time::sleep(BEAT * 3).await;
    let status = controller.status().await;
    assert_eq!(status.state, AppState::Deployed, "{status:?}");
    assert!(host.commands.try_recv().is_err(), "applied only once");
}

#[tokio::test(start_paused = true)]
async fn a_host_that_stops_beating_is_dropped_and_its_work_moves() {
    let controller = Controller::start().await;
    let mut lost_events = controller
        .bus
        .subscribe(controller.subjects.event("host_lost"))
        .await
        .unwrap();
    let mut a = Host::start(&controller, "host-a", 0).await;
    let mut b = Host::start(&controller, "host-b", 0).await;
    tokio::time::sleep(BEAT / 2).await;

    controller.deploy(manifest(2), 1).await;
    assert_eq!(applied(&a.next_command().await.1), 1);
    assert_eq!(applied(&b.next_command().await.1), 1);
    tokio::time::sleep(BEAT * 2).await;

    let killed_at = tokio::time::Instant::now();
    a.kill();
    let (moved_at, command) = b.next_command().await;
    assert_eq!(applied(&command), 2, "host-b takes host-a's instance too");
    let silent = moved_at - killed_at;
    assert!(
        silent >= BEAT * 2 && silent <= BEAT * 4,
        "moved after {silent:?}: about three missed beats"
    );
    let lost = tokio::time::timeout(DEADLINE, lost_events.next())
        .await
        .unwrap()
        .unwrap();
    match decode::<Event>(&lost.payload).unwrap() {
        Event::HostLost { host_id } => assert_eq!(host_id, "host-a"),
        other => panic!("expected host_lost, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_refused_command_is_retried_with_growing_backoff() {
    let controller = Controller::start().await;
    let mut host = Host::start(&controller, "host-a", 2).await;
    tokio::time::sleep(BEAT / 2).await;

    controller.deploy(manifest(1), 1).await;
    let (first, _) = host.next_command().await;
    tokio::time::sleep(BEAT / 2).await;
    let status = controller.status().await;
    assert!(
        status.message.contains("no room for it") && status.message.contains("failed once"),
        "{status:?}"
    );

    let (second, _) = host.next_command().await;
    let (third, command) = host.next_command().await;
    assert_eq!(applied(&command), 1);
    let (wait1, wait2) = (second - first, third - second);
    assert!(
        wait1 >= BACKOFF && wait1 < BACKOFF * 2,
        "first retry after {wait1:?}"
    );
    assert!(
        wait2 >= BACKOFF * 2 && wait2 < BACKOFF * 3,
        "second retry after {wait2:?}"
    );

    tokio::time::sleep(BEAT * 2).await;
    assert_eq!(controller.status().await.state, AppState::Deployed);
}
