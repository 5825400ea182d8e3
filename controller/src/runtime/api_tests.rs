//! Unit tests of the API task on the in-memory bus: forwarding to the leader,
//! writes that reach KV and the state task, manifests refused as the CLI refuses
//! them, and host labels changed through a signed command.

use super::*;
use crate::brain::lease::Leadership;
use lattice_bus::fake::{FakeBus, FakeKv};
use lattice_protocol::manifest::{Component, ComponentKind, Image, Manifest, Scaler};
use lattice_protocol::messages::CommandReply;
use lattice_protocol::trust::{new_host_key, new_lattice_key, CommandVerifier, VerifierConfig};
use tokio::task::JoinHandle;

const ME: &str = "follower";
const DEADLINE: Duration = Duration::from_secs(5);

/// An API task of controller [`ME`], which believes `leader` holds the lease, and a
/// stand-in state task that answers `list` with no apps and upserts with `Deployed`.
struct Running {
    bus: FakeBus,
    /// The public key of the lattice key the API signs with.
    trusted: String,
    subjects: Subjects,
    store: Store,
    upserts: mpsc::UnboundedReceiver<String>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    async fn start(leader: Option<&str>) -> Self {
        let view = View {
            leadership: None,
            holder: leader.map(str::to_string),
        };
        Self::start_with(view, Vec::new()).await
    }

    /// An API task seeing `view`, whose state task knows `hosts`.
    async fn start_with(view: View, hosts: Vec<HostInfo>) -> Self {
        let bus = FakeBus::new();
        let subjects = Subjects::new("t");
        let store = Store::new(std::sync::Arc::new(FakeKv::new("lattice_t_state")));
        let queue = bus.subscribe(subjects.api_all()).await.unwrap();
        let direct = bus
            .subscribe(subjects.controller_api(ME, ">"))
            .await
            .unwrap();
        let (_, election) = watch::channel(view);
        let (tx, mut rx) = mpsc::channel(8);
        let (upserted, upserts) = mpsc::unbounded_channel();
        let state = tokio::spawn(async move {
            while let Some(msg) = rx.recv().await {
                match msg {
                    Msg::List { reply } => drop(reply.send(Vec::new())),
                    Msg::Hosts { query, reply } => {
                        let q = query.unwrap_or_default();
                        let found = hosts.iter().filter(|h| h.host_id.starts_with(&q));
                        let _ = reply.send(found.cloned().collect());
                    }
                    Msg::Upsert { name, reply, .. } => {
                        let _ = upserted.send(name.clone());
                        let _ = reply.send(AppStatus {
                            name,
                            deployed_version: None,
                            latest_version: String::new(),
                            state: lattice_protocol::messages::AppState::Deployed,
                            message: String::new(),
                            components: Vec::new(),
                        });
                    }
                    _ => {}
                }
            }
        });
        let key = new_lattice_key();
        let signer = Signer::from_seed(Some(&key.seed().unwrap()), "t").unwrap();
        let api = Api::new(
            std::sync::Arc::new(bus.clone()),
            subjects.clone(),
            ME.into(),
            store.clone(),
            tx,
            election,
            signer,
            Duration::from_secs(1),
            ConfigStore::new(std::sync::Arc::new(FakeKv::new("lattice_t_config"))),
            SecretStore::new(std::sync::Arc::new(FakeKv::new("lattice_t_state")), None).unwrap(),
        );
        let serving = tokio::spawn(serve(queue, direct, api));
        Self {
            bus,
            trusted: key.public_key(),
            subjects,
            store,
            upserts,
            tasks: vec![state, serving],
        }
    }

    /// Ask the API (any controller) `op`; the controller's answer, decoded.
    async fn ask<T: DeserializeOwned>(&self, op: &str, request: &impl Serialize) -> ApiReply<T> {
        let subject = self.subjects.api(op);
        let answer = self
            .bus
            .request(subject, None, encode(request).into(), DEADLINE)
            .await
            .unwrap();
        decode(&answer.payload).unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.tasks.iter().for_each(JoinHandle::abort);
    }
}

#[tokio::test]
async fn a_follower_forwards_to_the_leader_and_answers_itself_when_it_is_gone() {
    let api = Running::start(Some("leader")).await;
    let mut leader = api
        .bus
        .subscribe(api.subjects.controller_api("leader", ">"))
        .await
        .unwrap();
    let bus = api.bus.clone();
    let leader_task = tokio::spawn(async move {
        let asked = leader.next().await.unwrap();
        assert!(asked.subject.ends_with(".leader.list"), "{}", asked.subject);
        let answer = encode(&ApiReply::<()>::error("answered by the leader"));
        bus.publish(asked.reply.unwrap(), None, answer.into())
            .await
            .unwrap();
    });

    let reply: ApiReply<Vec<AppStatus>> = api.ask("list", &ListRequest {}).await;
    assert_eq!(reply.error.as_deref(), Some("answered by the leader"));

    // The leader is gone (it answered once and dropped its subscription).
    leader_task.await.unwrap();
    let reply: ApiReply<Vec<AppStatus>> = api.ask("list", &ListRequest {}).await;
    assert_eq!(reply.data, Some(vec![]), "{reply:?}");
}

#[tokio::test]
async fn a_deploy_is_written_to_kv_then_handed_to_the_state_task() {
    let mut api = Running::start(None).await;
    let request = DeployRequest {
        manifest: Some(one_component(1)),
        name: None,
        version: None,
    };
    let reply: ApiReply<AppStatus> = api.ask("deploy", &request).await;
    assert!(reply.ok, "{reply:?}");
    assert_eq!(api.upserts.recv().await.as_deref(), Some("shop"));
    let (record, _) = api.store.get("shop").await.unwrap().unwrap();
    assert_eq!(record.deployed.as_deref(), Some("1"));

    let reply: ApiReply<()> = api.ask("redeploy", &request).await;
    assert_eq!(
        reply.error.as_deref(),
        Some(
            "unknown API operation 'redeploy'; this controller answers deploy, put, get, \
             undeploy, delete, list, status, history, hosts, set_host_labels, \
             artifacts_in_use, config_put, config_get, config_list, config_rm, secret_key, \
             secret_put, secret_list, secret_rm"
        )
    );
}

fn one_component(instances: u32) -> Manifest {
    Manifest {
        name: "shop".into(),
        version: "1".into(),
        description: None,
        components: vec![Component {
            name: "api".into(),
            kind: ComponentKind::Component,
            image: Image::File("/components/api.wasm".into()),
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

#[tokio::test]
async fn a_manifest_over_budget_is_refused_at_its_path_and_never_stored() {
    let mut api = Running::start(None).await;
    let request = DeployRequest {
        manifest: Some(one_component(u32::MAX)),
        name: None,
        version: None,
    };
    let started = std::time::Instant::now();
    let reply: ApiReply<AppStatus> = api.ask("deploy", &request).await;
    assert!(started.elapsed() < Duration::from_secs(1));
    let error = reply.error.unwrap();
    assert!(
        error.contains(
            "spec.components[0].traits[0].properties.instances: expected a whole number \
             from 0 to 10000, found the number 4294967295"
        ),
        "{error}"
    );
    assert!(api.store.get("shop").await.unwrap().is_none());
    assert!(api.upserts.try_recv().is_err());

    // Within budget: stored.
    let request = DeployRequest {
        manifest: Some(one_component(10_000)),
        name: None,
        version: None,
    };
    let reply: ApiReply<AppStatus> = api.ask("deploy", &request).await;
    assert!(reply.ok, "{reply:?}");
}

fn host_info(id: &str) -> HostInfo {
    serde_json::from_value(serde_json::json!({
        "host_id": id, "lattice": "t", "labels": {}, "version": "x", "started_at_ms": 0,
    }))
    .unwrap()
}

#[tokio::test]
async fn the_leader_signs_set_labels_and_answers_with_the_hosts_reply() {
    let host = new_host_key().public_key();
    let other = new_host_key().public_key();
    let view = View {
        leadership: Some(Leadership {
            term: 5,
            until: tokio::time::Instant::now().into_std() + Duration::from_secs(3600),
        }),
        holder: Some(ME.into()),
    };
    let api = Running::start_with(view, vec![host_info(&host), host_info(&other)]).await;
    let mut inbox = api
        .bus
        .subscribe(api.subjects.host_command(&host))
        .await
        .unwrap();
    let bus = api.bus.clone();
    let trusted = api.trusted.clone();
    let host_id = host.clone();
    let simulated = tokio::spawn(async move {
        let mut verifier =
            CommandVerifier::new("t", &host_id, [trusted], VerifierConfig::default()).unwrap();
        for answer in [
            CommandReply::ok(),
            CommandReply::error("hostcore.* labels are the host's own"),
        ] {
            let msg = inbox.next().await.unwrap();
            let verified = verifier
                .verify_bytes(&msg.payload, super::super::signer::now_ms())
                .unwrap();
            assert_eq!(verified.term, 5);
            let command: HostCommand = decode(&verified.body).unwrap();
            assert!(
                matches!(command, HostCommand::SetLabels { .. }),
                "{command:?}"
            );
            bus.publish(msg.reply.unwrap(), None, encode(&answer).into())
                .await
                .unwrap();
        }
    });
    let request = |host: &str| SetHostLabelsRequest {
        host: host.into(),
        set: [("tier".to_string(), "edge".to_string())].into(),
        unset: vec![],
    };
    let prefix = &host[..8];
    let reply: ApiReply<String> = api.ask("set_host_labels", &request(prefix)).await;
    assert_eq!(reply.data.as_deref(), Some(host.as_str()), "{reply:?}");
    let reply: ApiReply<String> = api.ask("set_host_labels", &request(&host)).await;
    assert!(reply.error.unwrap().contains("hostcore.* labels"));
    simulated.await.unwrap();

    let reply: ApiReply<String> = api.ask("set_host_labels", &request("N")).await;
    assert!(reply.error.unwrap().contains("matches 2 hosts"));
    let reply: ApiReply<String> = api.ask("set_host_labels", &request("NOPE")).await;
    assert!(reply.error.unwrap().contains("no host"));
}

#[tokio::test]
async fn a_controller_that_does_not_lead_sends_no_labels() {
    let host = new_host_key().public_key();
    let api = Running::start_with(View::default(), vec![host_info(&host)]).await;
    let mut all = api
        .bus
        .subscribe(api.subjects.host_command("*"))
        .await
        .unwrap();
    let request = SetHostLabelsRequest {
        host: host.clone(),
        set: Default::default(),
        unset: vec!["tier".into()],
    };
    let reply: ApiReply<String> = api.ask("set_host_labels", &request).await;
    assert!(reply.error.unwrap().contains("does not lead"));
    assert!(futures::FutureExt::now_or_never(all.next()).is_none());
}
