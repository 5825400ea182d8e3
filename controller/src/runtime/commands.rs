//! Sending host commands: each from a short-lived task, at most
//! [`CONCURRENT_SENDS`] in flight, every answer (or failure, as a sentence) reported
//! back to the state task as [`Msg::CommandDone`].

use super::msg::Msg;
use crate::brain::attempts::command_app;
use lattice_bus::{Bus, RequestError, SharedBus};
use lattice_protocol::messages::{CommandReply, HostCommand};
use lattice_protocol::subjects::Subjects;
use lattice_protocol::{decode, encode};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};

/// Host commands in flight at once.
const CONCURRENT_SENDS: usize = 256;

pub(crate) struct Sender {
    bus: SharedBus,
    subjects: Subjects,
    timeout: Duration,
    slots: Arc<Semaphore>,
    done: mpsc::Sender<Msg>,
}

impl Sender {
    pub(crate) fn new(
        bus: SharedBus,
        subjects: Subjects,
        timeout: Duration,
        done: mpsc::Sender<Msg>,
    ) -> Self {
        Self {
            bus,
            subjects,
            timeout,
            slots: Arc::new(Semaphore::new(CONCURRENT_SENDS)),
            done,
        }
    }

    /// Send `command` (the attempt numbered `seq`) to `host_id` in the background.
    pub(crate) fn send(&self, host_id: String, command: HostCommand, seq: u64) {
        tracing::info!(host = %host_id, command = describe(&command), "sending host command");
        let bus = self.bus.clone();
        let subject = self.subjects.host_command(&host_id);
        let timeout = self.timeout;
        let done = self.done.clone();
        let slots = self.slots.clone();
        tokio::spawn(async move {
            let app = command_app(&command).to_string();
            let result = match slots.acquire_owned().await {
                Ok(_slot) => send_command(&*bus, subject, &command, timeout).await,
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
    bus: &dyn Bus,
    subject: String,
    command: &HostCommand,
    timeout: Duration,
) -> Result<(), String> {
    let msg = bus
        .request(subject, None, encode(command).into(), timeout)
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
