//! Unit tests of the state task on the in-memory bus, with tokio's paused clock:
//! simulated hosts heartbeat (signed with their own keys) and answer commands (after
//! checking them with a [`CommandVerifier`]) on a [`FakeBus`]; the test talks to the
//! state task as the API task does. The forgeries an attacker on the bus could send
//! are tested here too.

use super::*;
use crate::brain::lease::Leadership;
use lattice_bus::fake::FakeBus;
use lattice_bus::Bus;
use lattice_protocol::manifest::{Component, ComponentKind, Image, Manifest, Scaler};
use lattice_protocol::messages::{CommandReply, ComponentReport, HostCommand, WorkloadReport};
use lattice_protocol::trust::{
    new_host_key, new_lattice_key, sign_report, CommandVerifier, VerifierConfig,
};
use lattice_protocol::{decode, encode};
use nkeys::KeyPair;
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
            config_layers: Vec::new(),
            secrets: Vec::new(),
            scaler: Some(Scaler::Spreadscaler {
                instances,
                spread: vec![],
            }),
            links: vec![],
            restart: None,
            warm: None,
        }],
        rollout: None,
    }
}

/// A state task of a controller, on its own fake bus.
struct Controller {
    bus: FakeBus,
    subjects: Subjects,
    tx: mpsc::Sender<Msg>,
    election: watch::Sender<View>,
    /// The lattice signing key's public key: what hosts trust.
    trusted: String,
    task: JoinHandle<()>,
}

/// A view of the election in which this controller leads under `term`.
fn leading(term: u64) -> View {
    View {
        leadership: Some(Leadership {
            term,
            until: now() + Duration::from_secs(24 * 3600),
        }),
        holder: Some("me".into()),
    }
}

impl Controller {
    /// A controller that leads under term 1.
    async fn start() -> Self {
        Self::start_with(leading(1)).await
    }

    async fn start_with(view: View) -> Self {
        let bus = FakeBus::new();
        let subjects = Subjects::new(LATTICE);
        let beats = bus
            .subscribe(subjects.event("host_heartbeat"))
            .await
            .unwrap();
        let stops = bus.subscribe(subjects.event("host_stopped")).await.unwrap();
        let (election, view) = watch::channel(view);
        let (tx, rx) = mpsc::channel(16);
        let key = new_lattice_key();
        let signer = Signer::from_seed(Some(&key.seed().unwrap()), LATTICE).unwrap();
        let state = State::new(
            Arc::new(bus.clone()),
            LATTICE.into(),
            subjects.clone(),
            config(),
            BTreeMap::new(),
            signer,
            view,
            tx.clone(),
        );
        let task = tokio::spawn(state.run(rx, beats, stops, std::future::pending()));
        Self {
            bus,
            subjects,
            tx,
            election,
            trusted: key.public_key(),
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

    /// The ids of the hosts the state task knows.
    async fn hosts(&self) -> Vec<String> {
        let (reply, hosts) = oneshot::channel();
        let query = None;
        self.tx.send(Msg::Hosts { query, reply }).await.unwrap();
        let hosts = hosts.await.unwrap();
        hosts.into_iter().map(|h| h.host_id).collect()
    }

    /// Publish `payload` as a heartbeat, as anyone on the bus can.
    async fn publish_beat(&self, payload: Vec<u8>) {
        let subject = self.subjects.event("host_heartbeat");
        self.bus
            .publish(subject, None, payload.into())
            .await
            .unwrap();
    }
}

/// A signed heartbeat of host `id`'s workloads, signed with `key`.
fn signed_beat(key: &KeyPair, id: &str, workloads: Vec<WorkloadReport>) -> Vec<u8> {
    let body = encode(&Event::HostHeartbeat(host_info(id, workloads)));
    sign_report(key, LATTICE, issued_ms(), &body, None).unwrap()
}

/// The wall clock in ms, but later than every earlier call's. With the paused
/// clock a simulated host beats many times within one real millisecond; two
/// beats with the same body and the same issue time have the same signature,
/// and the controller drops the second as a replay (then, after three missed
/// beats, declares the host lost and forgets what it sent it).
fn issued_ms() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = now_ms();
    let next = |prev: u64| now.max(prev + 1);
    match LAST.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |p| Some(next(p))) {
        Ok(prev) | Err(prev) => next(prev),
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
/// signed with its own key; obeys only commands its [`CommandVerifier`] (trusting
/// the controller's key) accepts, refuses the first `refusals` applies, carries
/// out the rest.
struct Host {
    id: String,
    commands: mpsc::UnboundedReceiver<Received>,
    task: JoinHandle<()>,
}

impl Host {
    async fn start(c: &Controller, refusals: usize) -> Self {
        let key = new_host_key();
        let id = key.public_key();
        let (bus, subjects) = (c.bus.clone(), c.subjects.clone());
        let mut verifier =
            CommandVerifier::new(LATTICE, &id, [&c.trusted], VerifierConfig::default()).unwrap();
        let mut inbox = bus.subscribe(subjects.host_command(&id)).await.unwrap();
        let (seen, commands) = mpsc::unbounded_channel();
        let workloads = Arc::new(Mutex::new(Vec::<WorkloadReport>::new()));
        let host_id = id.clone();
        let task = tokio::spawn(async move {
            let mut refusals = refusals;
            let mut beat = tokio::time::interval(BEAT);
            loop {
                tokio::select! {
                    _ = beat.tick() => {
                        let beat = signed_beat(&key, &id, workloads.lock().unwrap().clone());
                        let subject = subjects.event("host_heartbeat");
                        bus.publish(subject, None, beat.into()).await.unwrap();
                    }
                    Some(msg) = inbox.next() => {
                        let verified = verifier
                            .verify_bytes(&msg.payload, now_ms())
                            .expect("the controller's commands verify");
                        let command: HostCommand = decode(&verified.body).unwrap();
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
                                            invocations: 0,
                                            traps: 0,
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
        Self {
            id: host_id,
            commands,
            task,
        }
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
    let mut host = Host::start(&controller, 0).await;
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
    let mut a = Host::start(&controller, 0).await;
    let mut b = Host::start(&controller, 0).await;
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
        Event::HostLost { host_id } => assert_eq!(host_id, a.id),
        other => panic!("expected host_lost, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_refused_command_is_retried_with_growing_backoff() {
    let controller = Controller::start().await;
    let mut host = Host::start(&controller, 2).await;
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

#[tokio::test(start_paused = true)]
async fn forged_heartbeats_never_make_a_host_appear_or_receive_work() {
    let controller = Controller::start().await;
    let mut bus_commands = controller
        .bus
        .subscribe(controller.subjects.host_command("*"))
        .await
        .unwrap();
    controller.deploy(manifest(2), 1).await;
    let victim = new_host_key();
    let attacker = new_host_key();
    let victim_id = victim.public_key();
    for _ in 0..5 {
        // Unsigned, as before hosts signed their reports.
        let plain = encode(&Event::HostHeartbeat(host_info(&victim_id, vec![])));
        controller.publish_beat(plain).await;
        // Signed by the attacker's own key, naming the victim: in the envelope...
        let mut other = signed_beat(&attacker, &victim_id, vec![]);
        controller.publish_beat(other.clone()).await;
        // ... and with the envelope claiming the victim but signed by the attacker.
        let text = String::from_utf8(other.clone()).unwrap();
        other = text
            .replace(&attacker.public_key(), &victim_id)
            .into_bytes();
        controller.publish_beat(other).await;
        tokio::time::sleep(BEAT).await;
    }
    assert!(controller.hosts().await.is_empty());
    assert_eq!(controller.status().await.state, AppState::Waiting);
    assert!(
        bus_commands.next().now_or_never().is_none(),
        "no work for forgeries"
    );

    // The victim's own signed beat is heard, and it gets the work.
    controller
        .publish_beat(signed_beat(&victim, &victim_id, vec![]))
        .await;
    tokio::time::sleep(BEAT / 2).await;
    assert_eq!(controller.hosts().await, std::slice::from_ref(&victim_id));
    let command = tokio::time::timeout(DEADLINE, bus_commands.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        command.subject,
        controller.subjects.host_command(&victim_id)
    );
}

#[tokio::test(start_paused = true)]
async fn commands_are_envelopes_signed_under_the_leaders_term() {
    let controller = Controller::start_with(leading(7)).await;
    let mut host = Host::start(&controller, 0).await;
    let mut raw = controller
        .bus
        .subscribe(controller.subjects.host_command(&host.id))
        .await
        .unwrap();
    tokio::time::sleep(BEAT / 2).await;
    controller.deploy(manifest(1), 1).await;
    assert_eq!(applied(&host.next_command().await.1), 1);
    let sent = raw.next().await.unwrap();
    // Not the plain command: a host that checks signatures is needed to read it.
    assert!(decode::<HostCommand>(&sent.payload).is_err());
    assert!(sent.payload.starts_with(b"lattice-sig C"));
    let mut verifier = CommandVerifier::new(
        LATTICE,
        &host.id,
        [&controller.trusted],
        VerifierConfig::default(),
    )
    .unwrap();
    let verified = verifier.verify_bytes(&sent.payload, now_ms()).unwrap();
    assert_eq!(verified.term, 7);
    // A host trusting another key refuses it.
    let mut stranger = CommandVerifier::new(
        LATTICE,
        &host.id,
        [new_lattice_key().public_key()],
        VerifierConfig::default(),
    )
    .unwrap();
    assert!(stranger.verify_bytes(&sent.payload, now_ms()).is_err());
}

#[tokio::test(start_paused = true)]
async fn a_follower_or_a_leader_whose_lease_ran_out_sends_nothing() {
    let follower = View {
        leadership: None,
        holder: Some("someone-else".into()),
    };
    let controller = Controller::start_with(follower).await;
    let mut all = controller
        .bus
        .subscribe(controller.subjects.host_command("*"))
        .await
        .unwrap();
    let _host = Host::start(&controller, 0).await;
    tokio::time::sleep(BEAT / 2).await;
    controller.deploy(manifest(2), 1).await;
    tokio::time::sleep(BEAT * 5).await;
    assert!(
        all.next().now_or_never().is_none(),
        "a follower sends nothing"
    );

    // A lease that already ran out is no lease.
    let expired = View {
        leadership: Some(Leadership {
            term: 3,
            until: now(),
        }),
        holder: Some("me".into()),
    };
    controller.election.send_replace(expired);
    tokio::time::sleep(BEAT * 5).await;
    assert!(
        all.next().now_or_never().is_none(),
        "an expired leader sends nothing"
    );

    // Leading again: it acts.
    controller.election.send_replace(leading(4));
    let sent = tokio::time::timeout(DEADLINE, all.next())
        .await
        .unwrap()
        .unwrap();
    assert!(sent.payload.starts_with(b"lattice-sig "));
}

#[tokio::test(start_paused = true)]
async fn no_host_is_lost_while_nats_is_unreachable_and_each_gets_a_fresh_timeout_after() {
    let controller = Controller::start().await;
    let connection = |connected, connects| {
        Msg::Connection(lattice_bus::Connection {
            connected,
            connects,
        })
    };
    controller.tx.send(connection(true, 1)).await.unwrap();
    let a = Host::start(&controller, 0).await;
    let only_a = vec![a.id.clone()];
    tokio::time::sleep(BEAT / 2).await;
    assert_eq!(controller.hosts().await, only_a);

    // NATS goes away: the controller hears nothing, and that silence is its own.
    controller.tx.send(connection(false, 1)).await.unwrap();
    a.kill();
    tokio::time::sleep(BEAT * 10).await;
    assert_eq!(
        controller.hosts().await,
        only_a,
        "not lost while NATS is away"
    );

    // Back: the host has a fresh timeout, and is lost once it passes in silence.
    controller.tx.send(connection(true, 2)).await.unwrap();
    tokio::time::sleep(BEAT * 2).await;
    assert_eq!(controller.hosts().await, only_a);
    tokio::time::sleep(BEAT * 2).await;
    assert!(
        controller.hosts().await.is_empty(),
        "lost after a fresh timeout"
    );
}
