//! Unit tests of the API task on the in-memory bus: forwarding to the leader, and
//! writes that reach KV and the state task.

use super::*;
use lattice_bus::fake::{FakeBus, FakeKv};
use lattice_protocol::manifest::Manifest;
use tokio::task::JoinHandle;

const ME: &str = "follower";
const DEADLINE: Duration = Duration::from_secs(5);

/// An API task of controller [`ME`], which believes `leader` holds the lease, and a
/// stand-in state task that answers `list` with no apps and upserts with `Deployed`.
struct Running {
    bus: FakeBus,
    subjects: Subjects,
    store: Store,
    upserts: mpsc::UnboundedReceiver<String>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    async fn start(leader: Option<&str>) -> Self {
        let bus = FakeBus::new();
        let subjects = Subjects::new("t");
        let store = Store::new(std::sync::Arc::new(FakeKv::new("lattice_t_state")));
        let queue = bus.subscribe(subjects.api_all()).await.unwrap();
        let direct = bus
            .subscribe(subjects.controller_api(ME, ">"))
            .await
            .unwrap();
        let (_, election) = watch::channel(View {
            leadership: None,
            holder: leader.map(str::to_string),
        });
        let (tx, mut rx) = mpsc::channel(8);
        let (upserted, upserts) = mpsc::unbounded_channel();
        let state = tokio::spawn(async move {
            while let Some(msg) = rx.recv().await {
                match msg {
                    Msg::List { reply } => drop(reply.send(Vec::new())),
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
        let api = Api::new(
            std::sync::Arc::new(bus.clone()),
            subjects.clone(),
            ME.into(),
            store.clone(),
            tx,
            election,
        );
        let serving = tokio::spawn(serve(queue, direct, api));
        Self {
            bus,
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
    let manifest = Manifest {
        name: "shop".into(),
        version: "1".into(),
        description: None,
        components: vec![],
    };
    let request = DeployRequest {
        manifest: Some(manifest),
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
            "unknown API operation 'redeploy'; this controller answers deploy, undeploy, \
             delete, list, status, history"
        )
    );
}
