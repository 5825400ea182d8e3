//! lattice's seam at NATS: the few things the runtime parts (the controller's tasks,
//! the host agent, the call server) do with NATS, as two small traits, so their logic
//! can be unit-tested without a server.
//!
//! - [`Bus`]: publish (with headers), request with a deadline, subscribe and
//!   queue-subscribe, flush.
//! - [`Kv`]: one JetStream KV bucket: read an entry with its revision, create,
//!   compare-and-set update, put, delete, list keys, watch.
//!
//! - [`connect`]: the one way a lattice process opens its NATS connection
//!   (credentials, inbox prefix, TLS files, deadline), with errors that name the
//!   file or the missing flag; it logs every disconnect and reconnect.
//! - [`connection`]: the connection's state and reconnect count as a `watch`, for
//!   tasks that must act after a reconnect (watch KV again, re-announce).
//!
//! Both traits are implemented for the real thing (`async_nats::Client` and
//! `async_nats::jetstream::kv::Store`, in `nats.rs`) and by the in-memory [`fake`],
//! which is always compiled so other crates' unit tests can use it. Integration tests
//! stay on a real `nats-server`.
//!
//! The traits are object-safe: take an `Arc<dyn Bus>` (or be generic over
//! `B: Bus`; `Arc<B>` is a `Bus` too) and hand the process's client in production:
//!
//! ```no_run
//! # async fn example(client: async_nats::Client) -> Result<(), lattice_bus::BusError> {
//! use futures::StreamExt;
//! use lattice_bus::{Bus, SharedBus};
//! use std::sync::Arc;
//!
//! let bus: SharedBus = Arc::new(client); // in unit tests: Arc::new(FakeBus::new())
//! let mut sub = bus.subscribe("lattice.default.evt.>".to_string()).await?;
//! bus.publish("lattice.default.evt.ping".to_string(), None, "hi".into()).await?;
//! let msg = sub.next().await; // Some(Message { subject, reply, headers, payload })
//! # Ok(()) }
//! ```
//!
//! In a unit test, [`fake::FakeBus`] and [`fake::FakeKv`] behave like a one-node
//! server: `*` and `>` wildcards, queue groups (one member gets each message),
//! request/reply through inboxes with [`RequestError::NoResponders`] when nobody
//! listens, and KV revisions, compare-and-set conflicts and watches. Its deadlines
//! use tokio's clock, so a paused clock (`#[tokio::test(start_paused = true)]`) makes
//! time-dependent tests instant.

pub mod connect;
pub mod connection;
mod error;
pub mod fake;
mod nats;

pub use async_nats::HeaderMap;
pub use connect::{connect, ConnectError, ConnectSettings};
pub use connection::{watch_connection, Connection};
pub use error::{BoxError, BusError, KvError, RequestError};

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use std::sync::Arc;
use std::time::Duration;

/// One message as a subscriber sees it.
#[derive(Debug, Clone)]
pub struct Message {
    pub subject: String,
    /// Where to answer, for a request.
    pub reply: Option<String>,
    pub headers: Option<HeaderMap>,
    pub payload: Bytes,
}

/// The messages of one subscription; dropping it unsubscribes.
pub type Subscription = BoxStream<'static, Message>;

/// A bus shared by the tasks of a process.
pub type SharedBus = Arc<dyn Bus>;

/// Core NATS: what the runtime parts do with the connection.
pub trait Bus: Send + Sync + 'static {
    /// Publish `payload` (with `headers`, if any) on `subject`.
    fn publish(
        &self,
        subject: String,
        headers: Option<HeaderMap>,
        payload: Bytes,
    ) -> BoxFuture<'_, Result<(), BusError>>;

    /// Send a request and wait at most `timeout` for the first answer.
    fn request(
        &self,
        subject: String,
        headers: Option<HeaderMap>,
        payload: Bytes,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<Message, RequestError>>;

    /// Every message on `subject` (wildcards allowed).
    fn subscribe(&self, subject: String) -> BoxFuture<'_, Result<Subscription, BusError>>;

    /// The messages on `subject` this member of queue group `queue` is given: each
    /// message goes to one member of the group.
    fn queue_subscribe(
        &self,
        subject: String,
        queue: String,
    ) -> BoxFuture<'_, Result<Subscription, BusError>>;

    /// Wait until everything published so far has reached the server.
    fn flush(&self) -> BoxFuture<'_, Result<(), BusError>>;
}

/// What happened to a key: the operation of an [`Entry`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Put,
    Delete,
    Purge,
}

/// One value of a key, or its deletion, with the bucket-wide revision that wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    /// Empty for a delete or purge.
    pub value: Bytes,
    pub revision: u64,
    pub operation: Operation,
}

/// The changes of a watch; dropping it stops watching.
pub type EntryStream = BoxStream<'static, Result<Entry, KvError>>;

/// A KV bucket shared by the tasks of a process.
pub type SharedKv = Arc<dyn Kv>;

/// One JetStream KV bucket. Revisions grow across the whole bucket.
pub trait Kv: Send + Sync + 'static {
    /// The bucket's name, for messages.
    fn bucket(&self) -> &str;

    /// The last entry of `key` (a delete marker too), or `None` if it was never
    /// written.
    fn entry(&self, key: &str) -> BoxFuture<'_, Result<Option<Entry>, KvError>>;

    /// Write `key` only if it has no value (never written, or deleted); returns the
    /// revision. [`KvError::Conflict`] if it has one.
    fn create(&self, key: &str, value: Bytes) -> BoxFuture<'_, Result<u64, KvError>>;

    /// Write `key` only if its last revision is `revision` (compare-and-set); returns
    /// the new revision. [`KvError::Conflict`] if someone else wrote it since.
    fn update(&self, key: &str, value: Bytes, revision: u64)
        -> BoxFuture<'_, Result<u64, KvError>>;

    /// Write `key` whatever it holds; returns the revision.
    fn put(&self, key: &str, value: Bytes) -> BoxFuture<'_, Result<u64, KvError>>;

    /// Delete `key`, only if its last revision is `revision` when one is given
    /// ([`KvError::Conflict`] otherwise).
    fn delete(&self, key: &str, revision: Option<u64>) -> BoxFuture<'_, Result<(), KvError>>;

    /// Every key that has a value.
    fn keys(&self) -> BoxFuture<'_, Result<Vec<String>, KvError>>;

    /// Every change from now on to the keys matching `pattern` (`*` and `>`
    /// wildcards), deletes included.
    fn watch(&self, pattern: &str) -> BoxFuture<'_, Result<EntryStream, KvError>>;

    /// The last entry of every key matching `pattern` (delete markers included),
    /// then every change from then on: what a watcher that lost its watch reads to
    /// catch up with everything it missed.
    fn watch_with_history(&self, pattern: &str) -> BoxFuture<'_, Result<EntryStream, KvError>>;
}

impl<B: Bus + ?Sized> Bus for Arc<B> {
    fn publish(
        &self,
        subject: String,
        headers: Option<HeaderMap>,
        payload: Bytes,
    ) -> BoxFuture<'_, Result<(), BusError>> {
        (**self).publish(subject, headers, payload)
    }
    fn request(
        &self,
        subject: String,
        headers: Option<HeaderMap>,
        payload: Bytes,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<Message, RequestError>> {
        (**self).request(subject, headers, payload, timeout)
    }
    fn subscribe(&self, subject: String) -> BoxFuture<'_, Result<Subscription, BusError>> {
        (**self).subscribe(subject)
    }
    fn queue_subscribe(
        &self,
        subject: String,
        queue: String,
    ) -> BoxFuture<'_, Result<Subscription, BusError>> {
        (**self).queue_subscribe(subject, queue)
    }
    fn flush(&self) -> BoxFuture<'_, Result<(), BusError>> {
        (**self).flush()
    }
}

impl<K: Kv + ?Sized> Kv for Arc<K> {
    fn bucket(&self) -> &str {
        (**self).bucket()
    }
    fn entry(&self, key: &str) -> BoxFuture<'_, Result<Option<Entry>, KvError>> {
        (**self).entry(key)
    }
    fn create(&self, key: &str, value: Bytes) -> BoxFuture<'_, Result<u64, KvError>> {
        (**self).create(key, value)
    }
    fn update(
        &self,
        key: &str,
        value: Bytes,
        revision: u64,
    ) -> BoxFuture<'_, Result<u64, KvError>> {
        (**self).update(key, value, revision)
    }
    fn put(&self, key: &str, value: Bytes) -> BoxFuture<'_, Result<u64, KvError>> {
        (**self).put(key, value)
    }
    fn delete(&self, key: &str, revision: Option<u64>) -> BoxFuture<'_, Result<(), KvError>> {
        (**self).delete(key, revision)
    }
    fn keys(&self) -> BoxFuture<'_, Result<Vec<String>, KvError>> {
        (**self).keys()
    }
    fn watch(&self, pattern: &str) -> BoxFuture<'_, Result<EntryStream, KvError>> {
        (**self).watch(pattern)
    }
    fn watch_with_history(&self, pattern: &str) -> BoxFuture<'_, Result<EntryStream, KvError>> {
        (**self).watch_with_history(pattern)
    }
}
