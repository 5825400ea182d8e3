//! [`watch_connection`]: what a long-lived task needs to know about its NATS
//! connection to ride through a server restart or the loss of a cluster node.
//!
//! async-nats reconnects by itself and subscribes again to every core NATS
//! subscription, but it does not tell the tasks above it. Those that keep state
//! learnt from NATS need to: a controller must not call hosts lost for a silence
//! that was its own, must wait a heartbeat interval after a reconnect before it
//! commands anyone (so every live host has reported again), and must watch its KV
//! bucket again and read what it missed; a host beats at once to re-announce itself.

use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::watch;

/// How often the connection is looked at.
const POLL: Duration = Duration::from_millis(100);

/// The connection as the tasks above it see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connection {
    /// Whether the client is connected right now.
    pub connected: bool,
    /// How many times it connected: 1 after the first connect, one more per
    /// reconnect (a reconnect too quick to see as a disconnect still counts).
    pub connects: u64,
}

impl Connection {
    /// Whether `self` is a reconnect that happened after `before`.
    pub fn reconnected_since(&self, before: &Connection) -> bool {
        self.connected && self.connects > before.connects
    }
}

/// Watch `client`'s connection, looked at every 100 ms, until every receiver is
/// dropped. Needs a tokio runtime.
pub fn watch_connection(client: async_nats::Client) -> watch::Receiver<Connection> {
    let read = move || Connection {
        connected: client.connection_state() == async_nats::connection::State::Connected,
        connects: client.statistics().connects.load(Ordering::Relaxed),
    };
    let (tx, rx) = watch::channel(read());
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = tx.closed() => return,
                () = tokio::time::sleep(POLL) => {}
            }
            let now = read();
            tx.send_if_modified(|seen| {
                let changed = *seen != now;
                *seen = now;
                changed
            });
        }
    });
    rx
}
