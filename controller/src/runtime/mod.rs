//! The IO around the brain: the [`Controller`] and its tasks, speaking NATS through
//! the `lattice_bus` seam (so the state task can be unit-tested on the in-memory
//! fake) and keeping app records and the lease in JetStream KV.
//!
//! Four tasks:
//! - the *state task* (`state.rs`) owns every piece of mutable state (apps, hosts,
//!   attempts). It observes heartbeats (only reports signed by the host they name
//!   and admitted: `reports.rs`), runs reconcile on a tick and after every batch
//!   of changes, and — only while this controller leads — sends host commands,
//!   signed under its lease term (`signer.rs`), from short-lived tasks that report
//!   back over a channel;
//! - the *API task* (`api.rs`) answers `lattice.L.api.>` (a few requests at a time):
//!   it writes app records to KV, then hands the new record to the state task and
//!   answers with the status the state task computes; a follower forwards requests
//!   to the leader first;
//! - the *election task* (`election.rs`, protocol in `brain/lease.rs`) holds or watches the
//!   lease in KV that makes exactly one controller of the lattice the one that acts;
//! - the *watch task* passes app record changes in KV (whoever wrote them) to the
//!   state task.
//!
//! They talk over bounded channels (`msg.rs`: what goes into the state task) and a
//! `watch` of the election; no lock is shared between them (the one lock,
//! `metrics.rs`' heartbeat table, is held only to update or copy it) and every
//! wait has a deadline. `store.rs` keeps app records in KV, `commands.rs` sends
//! host commands for the state task, `events.rs` publishes events, `signer.rs`
//! signs host commands, `reports.rs` checks host reports and `metrics.rs` times
//! placement, reconciles and commands for `/metrics`.
//!
//! Architecture invariant: files here import the brain and leaves (`msg.rs`,
//! `events.rs`, `election.rs`' `View`), never each other in a circle; only this
//! `mod.rs` wires them.

mod api;
mod commands;
mod configs;
mod election;
mod events;
mod metrics;
mod msg;
mod reports;
mod secrets;
mod signer;
mod state;
pub mod store;

use self::election::View;
pub use self::metrics::Metrics;
use self::msg::Msg;
use self::signer::Signer;
use self::state::State;
use self::store::{Store, StoreChange, StoreError};
use crate::brain::lease::Elector;
pub use crate::config::ControllerConfig;
use crate::error::ControllerError;
use futures::StreamExt;
use lattice_bus::{Bus, BusError, SharedBus, Subscription};
use lattice_protocol::subjects::{valid_lattice_name, Subjects, CONTROLLER_QUEUE};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// Bound of the channel into the state task.
pub(crate) const STATE_CHANNEL: usize = 256;
/// How long opening the KV bucket may take.
const STORE_DEADLINE: Duration = Duration::from_secs(10);

/// The controller of one lattice. Build it with [`Controller::new`], then [`run`] it.
/// Run several on one lattice for high availability: one leads (acts), the others
/// answer the API and take over within about `lease_ttl` when it dies.
///
/// [`run`]: Controller::run
#[derive(Debug)]
pub struct Controller {
    client: async_nats::Client,
    lattice: String,
    config: ControllerConfig,
    id: String,
    health: watch::Sender<Health>,
    metrics: Arc<Metrics>,
}

/// What a readiness probe asks of a controller, as [`Controller::health`] shows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Health {
    /// Its state is loaded from JetStream and it serves the API.
    pub state_loaded: bool,
    /// It knows who holds the lease (itself or another controller).
    pub lease_known: bool,
    /// It holds the lease: it acts.
    pub leads: bool,
}

impl Health {
    /// Ready to serve: the state loaded and the lease known; else why not.
    pub fn ready(&self) -> Result<(), &'static str> {
        if !self.state_loaded {
            Err("the controller's state is not loaded yet")
        } else if !self.lease_known {
            Err("the controller does not know who holds the lease yet")
        } else {
            Ok(())
        }
    }
}

impl Controller {
    pub fn new(client: async_nats::Client, lattice: &str, config: ControllerConfig) -> Self {
        // A NUID: unique, and a valid subject token.
        let inbox = client.new_inbox();
        let id = inbox.rsplit('.').next().unwrap_or(&inbox).to_string();
        Self {
            client,
            lattice: lattice.to_string(),
            config,
            id,
            health: watch::channel(Health::default()).0,
            metrics: Arc::default(),
        }
    }

    /// What it measures of its own work (placement and reconcile timings,
    /// commands, heartbeat ages), as it runs.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// How it is doing, as it changes while [`Controller::run`] runs.
    pub fn health(&self) -> watch::Receiver<Health> {
        self.health.subscribe()
    }

    /// This controller's id: the `holder` in the lease while it leads.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Serve the API and reconcile until `shutdown` completes. Fails only when it
    /// cannot start (no lattice signing key or not one, bad lattice name, no
    /// JetStream, subscriptions refused).
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), ControllerError> {
        let Controller {
            client,
            lattice,
            config,
            id,
            health,
            metrics,
        } = self;
        if !valid_lattice_name(&lattice) {
            return Err(ControllerError::InvalidLattice { lattice });
        }
        let signer = Signer::from_seed(config.signing_key.as_deref(), &lattice)?;
        let registry = lattice_artifacts::oci::Registry::new(config.registry.clone())?;
        let subjects = Subjects::new(&lattice);
        let js = async_nats::jetstream::new(client.clone());
        let storage = config.storage;
        let store = within(Store::open(
            &js,
            &subjects.state_bucket(),
            storage.replicas,
            storage.state_max_bytes,
        ))
        .await?;
        check_replicas(&js, &subjects.state_bucket(), "KV", storage.replicas).await?;
        open_artifact_store(&js, &lattice, storage).await?;
        let configs = within(configs::ConfigStore::open(
            &js,
            &subjects.config_bucket(),
            storage.replicas,
            storage.state_max_bytes,
        ))
        .await?;
        check_replicas(&js, &subjects.config_bucket(), "KV", storage.replicas).await?;
        let secrets = secrets::SecretStore::new(store.kv().clone(), config.secrets_key.as_deref())
            .map_err(|problem| ControllerError::BadSecretsKey { problem })?;
        // Watch before loading so no change falls between the two.
        let changes = within(store.changes()).await?;
        let apps = within(store.load_all()).await?;

        let bus: SharedBus = Arc::new(client.clone());
        let api_sub = subscribe(&*bus, subjects.api_all(), Some(CONTROLLER_QUEUE)).await?;
        let direct_sub = subscribe(&*bus, subjects.controller_api(&id, ">"), None).await?;
        let beats = subscribe(&*bus, subjects.event("host_heartbeat"), None).await?;
        let stops = subscribe(&*bus, subjects.event("host_stopped"), None).await?;

        // Hosts are learnt from their signed heartbeats alone (answers to pings are
        // not signed), within one heartbeat interval.
        tracing::info!(
            lattice = %lattice,
            controller = %id,
            apps = apps.len(),
            signing_key = %signer.public_key(),
            admission = ?config.admission,
            "controller started"
        );

        let (tx, rx) = mpsc::channel(STATE_CHANNEL);
        let (view_tx, view) = watch::channel(View::default());
        let (release_tx, release) = oneshot::channel::<()>();
        // The state task's turns: no turn for a lease TTL, no renewal.
        let (progress_tx, progress) = watch::channel(std::time::Instant::now());
        // Dropping `run` (an aborted task) stops every task it started.
        let mut election = AbortOnDrop(tokio::spawn(election::run(
            store.kv().clone(),
            Elector::new(id.clone(), config.lease_ttl),
            config.lease_renew,
            election::Progress {
                last: progress,
                stall: config.lease_ttl,
            },
            view_tx,
            async {
                let _ = release.await;
            },
        )));
        let connection = lattice_bus::watch_connection(client.clone());
        let _connection = AbortOnDrop(tokio::spawn(forward_connection(
            connection.clone(),
            tx.clone(),
        )));
        let _watch = AbortOnDrop(tokio::spawn(forward_changes(
            changes,
            store.clone(),
            connection,
            tx.clone(),
        )));
        let _api = AbortOnDrop(tokio::spawn(api::serve(
            api_sub,
            direct_sub,
            api::Api::new(
                bus.clone(),
                subjects.clone(),
                id,
                store,
                tx.clone(),
                view.clone(),
                signer.clone(),
                config.command_timeout,
                configs,
                secrets.clone(),
            )
            .with_registry(registry),
        )));
        health.send_modify(|h| h.state_loaded = true);
        let _health = AbortOnDrop(tokio::spawn(forward_health(view.clone(), health)));
        let lease_renew = config.lease_renew;
        let state = State::new(bus, lattice, subjects, config, apps, signer, view, tx)
            .with_progress(progress_tx)
            .with_secrets(secrets.clone())
            .with_metrics(metrics);
        state.run(rx, beats, stops, shutdown).await;
        // The state task sends nothing any more: hand the lease over.
        let _ = release_tx.send(());
        let _ = tokio::time::timeout(lease_renew * 2, &mut election.0).await;
        Ok(())
    }
}

/// Keep `health` in step with the lease as `view` shows it.
async fn forward_health(mut view: watch::Receiver<View>, health: watch::Sender<Health>) {
    loop {
        let (lease_known, leads) = {
            let v = view.borrow_and_update();
            (v.holder.is_some(), v.leads(std::time::Instant::now()))
        };
        health.send_modify(|h| (h.lease_known, h.leads) = (lease_known, leads));
        if view.changed().await.is_err() {
            return;
        }
    }
}

/// A task aborted when this handle is dropped.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Subscribe to `subject`, as a member of `queue` if given.
async fn subscribe(
    bus: &dyn Bus,
    subject: String,
    queue: Option<&str>,
) -> Result<Subscription, ControllerError> {
    let subscribing = match queue {
        Some(queue) => bus.queue_subscribe(subject.clone(), queue.to_string()),
        None => bus.subscribe(subject.clone()),
    };
    subscribing.await.map_err(|e| ControllerError::Subscribe {
        subject,
        source: match e {
            BusError::Subscribe { source, .. } => source,
            other => Box::new(other),
        },
    })
}

/// Tell the state task about every change of the NATS connection. Runs until
/// aborted or the state task is gone.
async fn forward_connection(
    mut connection: watch::Receiver<lattice_bus::Connection>,
    tx: mpsc::Sender<Msg>,
) {
    loop {
        let now = *connection.borrow_and_update();
        if tx.send(Msg::Connection(now)).await.is_err() || connection.changed().await.is_err() {
            return;
        }
    }
}

/// Refuse to run on a bucket (its stream `<kind>_<bucket>`: `KV` or `OBJ`) with
/// fewer replicas than configured: losing one node would lose what it holds.
async fn check_replicas(
    js: &async_nats::jetstream::Context,
    bucket: &str,
    kind: &str,
    wanted: usize,
) -> Result<(), ControllerError> {
    let stream = &format!("{kind}_{bucket}");
    let actual = tokio::time::timeout(STORE_DEADLINE, store::replicas_of(js, stream))
        .await
        .map_err(|_| ControllerError::StoreTimeout {
            secs: STORE_DEADLINE.as_secs(),
        })?
        .map_err(|e| ControllerError::Store {
            source: StoreError::Kv {
                bucket: stream.to_string(),
                message: format!("reading the stream's settings: {e}"),
            },
        })?;
    if actual < wanted {
        return Err(ControllerError::TooFewReplicas {
            bucket: bucket.to_string(),
            stream: stream.to_string(),
            actual,
            wanted,
        });
    }
    if actual > wanted {
        tracing::info!(
            bucket,
            actual,
            wanted,
            "the bucket has more replicas than configured"
        );
    }
    Ok(())
}

/// Create the lattice's artifact store with the configured replicas and size unless
/// it exists (uploads then find it made), and check its replicas.
async fn open_artifact_store(
    js: &async_nats::jetstream::Context,
    lattice: &str,
    storage: crate::config::StorageConfig,
) -> Result<(), ControllerError> {
    use lattice_artifacts::store::{ArtifactStore, StoreConfig};
    let config = StoreConfig {
        max_store_bytes: storage.artifacts_max_bytes,
        replicas: storage.replicas,
        ..StoreConfig::default()
    };
    let opening = ArtifactStore::open_or_create(js.clone(), lattice, config);
    let bucket = Subjects::new(lattice).artifact_bucket();
    tokio::time::timeout(STORE_DEADLINE, opening)
        .await
        .map_err(|_| ControllerError::StoreTimeout {
            secs: STORE_DEADLINE.as_secs(),
        })?
        .map_err(|e| ControllerError::ArtifactStore {
            bucket: bucket.clone(),
            message: e.to_string(),
        })?;
    check_replicas(js, &bucket, "OBJ", storage.replicas).await
}

/// Run one step of opening the store, with a deadline.
async fn within<T>(
    step: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, ControllerError> {
    tokio::time::timeout(STORE_DEADLINE, step)
        .await
        .map_err(|_| ControllerError::StoreTimeout {
            secs: STORE_DEADLINE.as_secs(),
        })?
        .map_err(|source| ControllerError::Store { source })
}

/// Pass every app record change in KV to the state task. When the watch ends or
/// fails (NATS restarted, the stream's leader moved), watch again after a pause that
/// grows while it keeps failing, from every app's current record: whatever changed
/// while nobody watched reaches the state task (which ignores revisions it already
/// knows). Runs until aborted or the state task is gone.
async fn forward_changes(
    changes: impl futures::Stream<Item = Result<StoreChange, StoreError>> + Send + 'static,
    store: Store,
    mut connection: watch::Receiver<lattice_bus::Connection>,
    tx: mpsc::Sender<Msg>,
) {
    const FIRST_PAUSE: Duration = Duration::from_millis(250);
    const MAX_PAUSE: Duration = Duration::from_secs(5);
    let mut changes: std::pin::Pin<Box<dyn futures::Stream<Item = _> + Send>> = Box::pin(changes);
    let mut watching_since = *connection.borrow_and_update();
    let mut connection_open = true;
    loop {
        loop {
            // A reconnect may leave the watch's consumer gone from the server, and
            // async-nats would notice only after missing its idle heartbeats
            // (seconds): watch again at once instead.
            let change = tokio::select! {
                change = changes.next() => change,
                changed = connection.changed(), if connection_open => {
                    connection_open = changed.is_ok();
                    let now = *connection.borrow_and_update();
                    if !now.reconnected_since(&watching_since) {
                        continue;
                    }
                    tracing::info!(
                        "reconnected to NATS: watching app records again from the current records"
                    );
                    break;
                }
            };
            let Some(change) = change else {
                tracing::warn!(
                    "the KV watch of app records ended; watching again from the current records"
                );
                break;
            };
            match change {
                Ok(StoreChange {
                    name,
                    record,
                    revision,
                }) => {
                    let msg = Msg::Stored {
                        name,
                        record,
                        revision,
                    };
                    if tx.send(msg).await.is_err() {
                        return; // the state task is gone
                    }
                }
                Err(e @ StoreError::Corrupt { .. }) => {
                    tracing::warn!(error = %e, "skipping an unreadable app record")
                }
                Err(e) => {
                    tracing::warn!(
                        error = %e,
                        "the KV watch of app records failed; watching again from the current records"
                    );
                    break;
                }
            }
        }
        let mut pause = FIRST_PAUSE;
        loop {
            tokio::time::sleep(pause).await;
            match tokio::time::timeout(STORE_DEADLINE, store.current_and_changes()).await {
                Ok(Ok(c)) => {
                    tracing::info!("watching app records again");
                    changes = Box::pin(c);
                    watching_since = *connection.borrow_and_update();
                    break;
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "cannot watch app records yet"),
                Err(_) => tracing::warn!("watching app records timed out; trying again"),
            }
            pause = (pause * 2).min(MAX_PAUSE);
        }
    }
}
