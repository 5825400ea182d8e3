//! The [`Controller`]: the thin NATS runtime around [`crate::reconcile`].
//!
//! Four tasks:
//! - the *state task* (`state.rs`) owns every piece of mutable state (apps, hosts,
//!   attempts). It observes heartbeats, runs reconcile on a tick and after every batch
//!   of changes, and — only while this controller leads — sends host commands from
//!   short-lived tasks that report back over a channel;
//! - the *API task* (`api.rs`) answers `lattice.L.api.>` (a few requests at a time):
//!   it writes app records to KV, then hands the new record to the state task and
//!   answers with the status the state task computes; a follower forwards requests
//!   to the leader first;
//! - the *election task* (`election.rs`, protocol in `lease.rs`) holds or watches the
//!   lease in KV that makes exactly one controller of the lattice the one that acts;
//! - the *watch task* passes app record changes in KV (whoever wrote them) to the
//!   state task.
//!
//! They talk over bounded channels and a `watch` of the election; no lock is shared
//! and every wait has a deadline.

use crate::client::ping_hosts;
use crate::election::View;
use crate::error::ControllerError;
use crate::lease::Elector;
use crate::state::Msg;
use crate::state::State;
use crate::store::{Store, StoreChange, StoreError};
use futures::StreamExt;
use lattice_protocol::subjects::{valid_lattice_name, Subjects, CONTROLLER_QUEUE};
use std::future::Future;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// Bound of the channel into the state task.
pub(crate) const STATE_CHANNEL: usize = 256;
/// How long opening the KV bucket may take.
const STORE_DEADLINE: Duration = Duration::from_secs(10);

/// Timing of the controller. The defaults suit a real lattice; tests shorten them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControllerConfig {
    /// How often the reconcile loop runs even when nothing changed.
    pub tick: Duration,
    /// Deadline for a host to answer a command.
    pub command_timeout: Duration,
    /// The hosts' heartbeat interval.
    pub host_heartbeat_interval: Duration,
    /// A host is lost after this many heartbeat intervals without a beat.
    pub missed_beats: u32,
    /// How long to collect answers to the start-up host ping.
    pub ping_gather: Duration,
    /// First wait after a host refuses a command; doubles per failure ...
    pub backoff_base: Duration,
    /// ... up to this.
    pub backoff_max: Duration,
    /// An acknowledged command that the host's heartbeat does not reflect after this
    /// long is sent again.
    pub resend_after: Duration,
    /// How long the leader's lease lasts without renewal: a dead leader is replaced
    /// after about this long (plus half a renewal).
    pub lease_ttl: Duration,
    /// How often the leader renews its lease; followers look twice as often.
    pub lease_renew: Duration,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        Self {
            tick: Duration::from_millis(500),
            command_timeout: Duration::from_secs(5),
            host_heartbeat_interval: Duration::from_secs(1),
            missed_beats: 3,
            ping_gather: Duration::from_millis(300),
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            resend_after: Duration::from_secs(10),
            lease_ttl: Duration::from_secs(3),
            lease_renew: Duration::from_secs(1),
        }
    }
}

impl ControllerConfig {
    /// How long a host may stay silent before it is lost.
    pub fn host_timeout(&self) -> Duration {
        self.host_heartbeat_interval
            .saturating_mul(self.missed_beats.max(1))
    }
}

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
        }
    }

    /// This controller's id: the `holder` in the lease while it leads.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Serve the API and reconcile until `shutdown` completes. Fails only when it
    /// cannot start (bad lattice name, no JetStream, subscriptions refused).
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), ControllerError> {
        let Controller {
            client,
            lattice,
            config,
            id,
        } = self;
        if !valid_lattice_name(&lattice) {
            return Err(ControllerError::InvalidLattice { lattice });
        }
        let subjects = Subjects::new(&lattice);
        let js = async_nats::jetstream::new(client.clone());
        let store = within(Store::open(&js, &subjects.state_bucket())).await?;
        // Watch before loading so no change falls between the two.
        let changes = within(store.changes()).await?;
        let apps = within(store.load_all()).await?;

        let subscribe_err =
            |subject: String| move |source| ControllerError::Subscribe { subject, source };
        let api_subject = subjects.api_all();
        let api_sub = client
            .queue_subscribe(api_subject.clone(), CONTROLLER_QUEUE.to_string())
            .await
            .map_err(subscribe_err(api_subject))?;
        let direct_subject = subjects.controller_api(&id, ">");
        let direct_sub = client
            .subscribe(direct_subject.clone())
            .await
            .map_err(subscribe_err(direct_subject))?;
        let beat_subject = subjects.event("host_heartbeat");
        let beats = client
            .subscribe(beat_subject.clone())
            .await
            .map_err(subscribe_err(beat_subject))?;
        let stop_subject = subjects.event("host_stopped");
        let stops = client
            .subscribe(stop_subject.clone())
            .await
            .map_err(subscribe_err(stop_subject))?;

        let hosts = match ping_hosts(&client, &lattice, config.ping_gather).await {
            Ok(hosts) => hosts,
            Err(e) => {
                tracing::warn!(error = %e, "start-up host ping failed; waiting for heartbeats");
                Vec::new()
            }
        };
        tracing::info!(
            lattice = %lattice,
            controller = %id,
            apps = apps.len(),
            hosts = hosts.len(),
            "controller started"
        );

        let (tx, rx) = mpsc::channel(STATE_CHANNEL);
        let (view_tx, view) = watch::channel(View::default());
        let (release_tx, release) = oneshot::channel::<()>();
        // Dropping `run` (an aborted task) stops every task it started.
        let mut election = AbortOnDrop(tokio::spawn(crate::election::run(
            store.kv().clone(),
            Elector::new(id.clone(), config.lease_ttl),
            config.lease_renew,
            view_tx,
            async {
                let _ = release.await;
            },
        )));
        let _watch = AbortOnDrop(tokio::spawn(forward_changes(
            changes,
            store.clone(),
            tx.clone(),
        )));
        let _api = AbortOnDrop(tokio::spawn(crate::api::serve(
            api_sub,
            direct_sub,
            crate::api::Api::new(
                client.clone(),
                subjects.clone(),
                id,
                store,
                tx.clone(),
                view.clone(),
            ),
        )));
        let lease_renew = config.lease_renew;
        let state = State::new(client, lattice, subjects, config, apps, hosts, view, tx);
        state.run(rx, beats, stops, shutdown).await;
        // The state task sends nothing any more: hand the lease over.
        let _ = release_tx.send(());
        let _ = tokio::time::timeout(lease_renew * 2, &mut election.0).await;
        Ok(())
    }
}

/// A task aborted when this handle is dropped.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
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

/// Pass every app record change in KV to the state task; when the watch ends (NATS
/// trouble), start a new one after a pause. Runs until aborted.
async fn forward_changes(
    changes: impl futures::Stream<Item = Result<StoreChange, StoreError>> + Send + 'static,
    store: Store,
    tx: mpsc::Sender<Msg>,
) {
    const PAUSE: Duration = Duration::from_secs(1);
    let mut changes: std::pin::Pin<Box<dyn futures::Stream<Item = _> + Send>> = Box::pin(changes);
    loop {
        while let Some(change) = changes.next().await {
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
                Err(e) => tracing::warn!(error = %e, "skipping an app record change"),
            }
        }
        tracing::warn!("the KV watch of app records ended; watching again");
        loop {
            tokio::time::sleep(PAUSE).await;
            match store.changes().await {
                Ok(c) => {
                    changes = Box::pin(c);
                    break;
                }
                Err(e) => tracing::warn!(error = %e, "cannot watch app records yet"),
            }
        }
    }
}
