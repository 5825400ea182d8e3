//! Sending host commands: each signed with the lattice signing key under this
//! controller's lease term, from a short-lived task, at most [`CONCURRENT_SENDS`]
//! in flight, every answer (or failure, as a sentence) reported back to the state
//! task as [`Msg::CommandDone`]. A command is sent only while its term's lease is
//! still held: one that waited for a slot past the lease is dropped.

use super::election::View;
use super::metrics::Metrics;
use super::msg::Msg;
use super::secrets::SecretStore;
use super::signer::Signer;
use crate::brain::attempts::command_app;
use lattice_bus::{Bus, RequestError, SharedBus};
use lattice_protocol::decode;
use lattice_protocol::messages::{CommandReply, HostCommand};
use lattice_protocol::subjects::Subjects;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch, Semaphore};

/// Host commands in flight at once.
const CONCURRENT_SENDS: usize = 256;

pub(crate) struct Sender {
    bus: SharedBus,
    subjects: Subjects,
    signer: Signer,
    election: watch::Receiver<View>,
    timeout: Duration,
    slots: Arc<Semaphore>,
    done: mpsc::Sender<Msg>,
    /// Seals the secrets an `apply` carries for its host.
    secrets: Option<SecretStore>,
    metrics: Arc<Metrics>,
}

impl Sender {
    pub(crate) fn new(
        bus: SharedBus,
        subjects: Subjects,
        signer: Signer,
        election: watch::Receiver<View>,
        timeout: Duration,
        done: mpsc::Sender<Msg>,
    ) -> Self {
        Self {
            bus,
            subjects,
            signer,
            election,
            timeout,
            slots: Arc::new(Semaphore::new(CONCURRENT_SENDS)),
            done,
            secrets: None,
            metrics: Arc::default(),
        }
    }

    /// Time each command's round trip into `metrics`.
    pub(crate) fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Give `apply` commands the secrets their components use, from `secrets`.
    pub(crate) fn with_secrets(mut self, secrets: SecretStore) -> Self {
        self.secrets = Some(secrets);
        self
    }

    /// Send `command` (the attempt numbered `seq`) to `host_id` in the background,
    /// signed under lease `term`; an `apply` carries the secrets its components
    /// use, sealed for the host's `secrets_key`.
    pub(crate) fn send(
        &self,
        host_id: String,
        mut command: HostCommand,
        seq: u64,
        term: u64,
        secrets_key: Option<String>,
    ) {
        tracing::info!(host = %host_id, command = describe(&command), term, "sending host command");
        let bus = self.bus.clone();
        let subject = self.subjects.host_command(&host_id);
        let timeout = self.timeout;
        let done = self.done.clone();
        let slots = self.slots.clone();
        let signer = self.signer.clone();
        let election = self.election.clone();
        let secrets = self.secrets.clone();
        let metrics = self.metrics.clone();
        tokio::spawn(async move {
            let app = command_app(&command).to_string();
            let result = match slots.acquire_owned().await {
                Ok(_slot) => {
                    if !leads_in(&election, term) {
                        tracing::info!(host = %host_id, term, "lease lost before sending; command dropped");
                        return;
                    }
                    let started = std::time::Instant::now();
                    let result =
                        match add_secrets(&mut command, secrets.as_ref(), secrets_key.as_deref())
                            .await
                        {
                            Err(e) => Err(format!("could not be given its secrets: {e}")),
                            Ok(()) => match signer.sign(&host_id, term, &command) {
                                Ok(bytes) => send_command(&*bus, subject, bytes, timeout).await,
                                Err(e) => Err(format!("could not be signed: {e}")),
                            },
                        };
                    metrics.command(started.elapsed(), result.is_ok());
                    result
                }
                Err(_) => return,
            };
            let _ = done
                .send(Msg::CommandDone {
                    host: host_id,
                    app,
                    seq,
                    result,
                })
                .await;
        });
    }
}

/// Seal, for the host's key, the secrets an `apply`'s placed components use.
async fn add_secrets(
    command: &mut HostCommand,
    secrets: Option<&SecretStore>,
    host_key: Option<&str>,
) -> Result<(), String> {
    let HostCommand::Apply { workload } = command else {
        return Ok(());
    };
    let uses_secrets = workload
        .placements
        .keys()
        .any(|c| workload.manifest.secrets_of(c).next().is_some());
    if !uses_secrets {
        return Ok(());
    }
    let store = secrets.ok_or("this controller keeps no secrets")?;
    workload.secrets = store
        .seal_for(&workload.manifest, &workload.placements, host_key)
        .await?;
    Ok(())
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

/// Whether this controller still holds the lease of `term`.
pub(crate) fn leads_in(election: &watch::Receiver<View>, term: u64) -> bool {
    let view = election.borrow();
    view.leads(tokio::time::Instant::now().into_std())
        && view.leadership.is_some_and(|l| l.term == term)
}

/// Send one signed command and turn every way it can go wrong into a sentence.
pub(crate) async fn send_command(
    bus: &dyn Bus,
    subject: String,
    signed: Vec<u8>,
    timeout: Duration,
) -> Result<(), String> {
    let msg = bus
        .request(subject, None, signed.into(), timeout)
        .await
        .map_err(|e| match e {
            RequestError::TimedOut { .. } => {
                format!("did not answer within {}s", timeout.as_secs_f64())
            }
            RequestError::NoResponders { .. } => {
                "is not listening for commands (no responders)".to_string()
            }
            RequestError::Other { source, .. } => format!("could not be reached: {source}"),
        })?;
    match decode::<CommandReply>(&msg.payload) {
        Ok(reply) if reply.ok => Ok(()),
        Ok(reply) => Err(reply
            .error
            .unwrap_or_else(|| "refused without saying why".to_string())),
        Err(e) => Err(format!("answered something unreadable: {e}")),
    }
}
