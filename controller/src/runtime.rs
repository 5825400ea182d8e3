//! The [`Controller`]: the thin NATS runtime around [`crate::reconcile`].
//!
//! Two tasks:
//! - the *state task* (`state.rs`) owns every piece of mutable state (apps, hosts,
//!   attempts). It observes heartbeats, runs reconcile on a tick and on every change,
//!   and sends host commands from short-lived tasks that report back over a channel;
//! - the *API task* (`api.rs`) answers `lattice.L.api.>` one request at a time: it
//!   writes app records to KV, then hands the new record to the state task and answers
//!   with the status the state task computes.
//!
//! They talk over a bounded channel; no lock is shared and every wait has a deadline.

use crate::client::ping_hosts;
use crate::error::ControllerError;
use crate::state::Msg;
use crate::state::State;
use crate::store::{Store, StoreChange, StoreError};
use futures::StreamExt;
use lattice_protocol::subjects::{valid_lattice_name, Subjects, CONTROLLER_QUEUE};
use std::future::Future;
use std::time::Duration;
use tokio::sync::mpsc;

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
///
/// [`run`]: Controller::run
#[derive(Debug)]
pub struct Controller {
    client: async_nats::Client,
    lattice: String,
    config: ControllerConfig,
}

impl Controller {
    pub fn new(client: async_nats::Client, lattice: &str, config: ControllerConfig) -> Self {
        Self {
            client,
            lattice: lattice.to_string(),
            config,
        }
    }

    /// Serve the API and reconcile until `shutdown` completes. Fails only when it
    /// cannot start (bad lattice name, no JetStream, subscriptions refused).
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), ControllerError> {
        let Controller {
            client,
            lattice,
            config,
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
            apps = apps.len(),
            hosts = hosts.len(),
            "controller started"
        );

        let (tx, rx) = mpsc::channel(STATE_CHANNEL);
        let watch = tokio::spawn(forward_changes(changes, store.clone(), tx.clone()));
        let api = tokio::spawn(crate::api::serve(
            api_sub,
            crate::api::Api::new(client.clone(), subjects.clone(), store, tx.clone()),
        ));
        let state = State::new(client, lattice, subjects, config, apps, hosts, tx);
        state.run(rx, beats, stops, shutdown).await;
        api.abort();
        watch.abort();
        Ok(())
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
