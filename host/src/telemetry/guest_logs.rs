//! Guests' log lines (`wasi:logging`, stdout, stderr) published on NATS, so a
//! person follows an app's logs wherever it runs (`lattice app logs`, `lattice
//! dev`): `lattice.<L>.log.<app>.<component>`, a [`LogLine`] as JSON.
//!
//! Publishing never waits on NATS: lines go through a bounded queue to one task
//! per host, and a line that finds the queue full is dropped and counted (the
//! host's own tracing still has it).

use lattice_protocol::messages::LogLine;
use lattice_protocol::wire::rpc::escape_token;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use tokio::sync::mpsc;

/// Lines waiting to be published, per host.
pub const QUEUE: usize = 4096;

/// One host's publisher of guests' log lines; a no-op until [`GuestLogs::publish`].
#[derive(Clone, Default)]
pub struct GuestLogs(Arc<Inner>);

#[derive(Default)]
struct Inner {
    queue: OnceLock<mpsc::Sender<(String, LogLine)>>,
    dropped: AtomicU64,
}

impl GuestLogs {
    /// Queue one line of `component` of `app`.
    pub fn send(&self, app: &str, component: &str, level: &str, message: &str) {
        let Some(queue) = self.0.queue.get() else {
            return;
        };
        let subject = format!("{}.{}", escape_token(app), escape_token(component));
        let line = LogLine {
            host: String::new(),
            app: app.to_owned(),
            component: component.to_owned(),
            level: level.to_owned(),
            message: message.to_owned(),
        };
        if queue.try_send((subject, line)).is_err() {
            self.0.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Lines dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.0.dropped.load(Ordering::Relaxed)
    }

    /// Start publishing on `nats` as host `host_id` of `lattice`; the task ends
    /// when the returned handle is aborted. Only the first call has an effect.
    pub fn publish(
        &self,
        nats: async_nats::Client,
        lattice: &str,
        host_id: &str,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let (tx, mut rx) = mpsc::channel::<(String, LogLine)>(QUEUE);
        self.0.queue.set(tx).ok()?;
        let prefix = format!("lattice.{lattice}.log");
        let host_id = host_id.to_owned();
        Some(tokio::spawn(async move {
            while let Some((subject, mut line)) = rx.recv().await {
                line.host.clone_from(&host_id);
                let payload = lattice_protocol::messages::encode(&line);
                let _ = nats
                    .publish(format!("{prefix}.{subject}"), payload.into())
                    .await;
            }
        }))
    }
}
