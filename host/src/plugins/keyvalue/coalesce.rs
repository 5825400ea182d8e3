//! Per-key coalescing of increments on a compare-and-set store (issue 15).
//!
//! Concurrent increments of one key on this host wait behind one compare-and-set in
//! flight; the ones that queued meanwhile are then applied together as one write of
//! their summed deltas, and each caller gets the value after its own delta, in queue
//! order, so every caller still sees its own atomic increment. Between hosts the
//! compare-and-set decides; a host that loses the race retries with jittered backoff.
//!
//! The queue bookkeeping ([`Queues`]) and the arithmetic ([`apportion`]) are pure;
//! the store is a small trait ([`CasStore`]) so the whole thing runs against a fake
//! in unit tests. A key has an entry in [`Queues`] exactly while one task drives its
//! queue: the task removes it when it finds the queue empty, so keys that cool down
//! leave nothing behind.

use super::KvError;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

/// A counter as the coalescer needs it from a backend.
pub trait CasStore: Clone + Send + Sync + 'static {
    /// The counter's value (0 when absent or deleted) and the revision a write must
    /// name (`None`: the key never existed).
    fn read(&self, key: &str) -> impl Future<Output = Result<(u64, Option<u64>), KvError>> + Send;

    /// Write `value` if the key is still at `revision`: the new revision, or `None`
    /// when another writer got there first.
    fn write(
        &self,
        key: &str,
        value: u64,
        revision: Option<u64>,
    ) -> impl Future<Output = Result<Option<u64>, KvError>> + Send;
}

/// Bounds of the coalescer.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Increments waiting for one key (besides the batch in flight).
    pub max_queue: usize,
    /// Keys with increments waiting or in flight at once, on this host.
    pub max_keys: usize,
    /// How long a caller waits for its result, and a batch for its write.
    pub deadline: Duration,
    /// Compare-and-set attempts of one batch before it fails.
    pub attempts: u32,
    /// Backoff after the first lost race; doubles up to `max_backoff`, full jitter.
    pub backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_queue: 4096,
            max_keys: 16_384,
            deadline: Duration::from_secs(10),
            attempts: 100,
            backoff: Duration::from_micros(500),
            max_backoff: Duration::from_millis(50),
        }
    }
}

/// The values after each delta, applied in order to `start` (saturating at
/// `u64::MAX`, as wasmCloud's hosts do).
pub fn apportion(start: u64, deltas: &[u64]) -> Vec<u64> {
    deltas
        .iter()
        .scan(start, |value, delta| {
            *value = value.saturating_add(*delta);
            Some(*value)
        })
        .collect()
}

/// Why an increment was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    QueueFull,
    TooManyKeys,
}

/// Whether the caller that queued must start the key's driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joined {
    Lead,
    Follow,
}

/// Waiting increments per key. A key is present exactly while its driver runs.
#[derive(Debug)]
pub struct Queues<K, W> {
    keys: HashMap<K, VecDeque<W>>,
    max_queue: usize,
    max_keys: usize,
}

impl<K: std::hash::Hash + Eq + Clone, W> Queues<K, W> {
    pub fn new(max_queue: usize, max_keys: usize) -> Self {
        Self {
            keys: HashMap::new(),
            max_queue,
            max_keys,
        }
    }

    /// Queue `waiter` behind `key`; [`Joined::Lead`] when no driver runs for it yet.
    pub fn join(&mut self, key: &K, waiter: W) -> Result<Joined, Refused> {
        if let Some(queue) = self.keys.get_mut(key) {
            if queue.len() >= self.max_queue {
                return Err(Refused::QueueFull);
            }
            queue.push_back(waiter);
            return Ok(Joined::Follow);
        }
        if self.keys.len() >= self.max_keys {
            return Err(Refused::TooManyKeys);
        }
        self.keys.insert(key.clone(), VecDeque::from([waiter]));
        Ok(Joined::Lead)
    }

    /// Everything queued for `key`, in order; `None` (and the key forgotten) when
    /// nothing is, which ends its driver.
    pub fn take(&mut self, key: &K) -> Option<Vec<W>> {
        let queue = self.keys.get_mut(key)?;
        if queue.is_empty() {
            self.keys.remove(key);
            return None;
        }
        Some(queue.drain(..).collect())
    }

    /// Keys with a driver.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

struct Waiter {
    delta: u64,
    reply: oneshot::Sender<Result<u64, KvError>>,
}

/// `(bucket, key)`: the coalescer of a host serves every bucket.
type Key = (Arc<str>, String);

/// The host's coalescer: a cloneable handle.
#[derive(Clone)]
pub struct Coalescer {
    queues: Arc<Mutex<Queues<Key, Waiter>>>,
    limits: Limits,
}

impl Coalescer {
    pub fn new(limits: Limits) -> Self {
        Self {
            queues: Arc::new(Mutex::new(Queues::new(limits.max_queue, limits.max_keys))),
            limits,
        }
    }

    fn queues(&self) -> std::sync::MutexGuard<'_, Queues<Key, Waiter>> {
        self.queues.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keys with increments waiting or in flight.
    pub fn hot_keys(&self) -> usize {
        self.queues().len()
    }

    /// Add `delta` to `key` of `bucket` (reached through `store`): the value after
    /// this caller's delta.
    pub async fn increment<S: CasStore>(
        &self,
        store: S,
        bucket: &Arc<str>,
        key: &str,
        delta: u64,
    ) -> Result<u64, KvError> {
        let id: Key = (bucket.clone(), key.to_string());
        let (reply, result) = oneshot::channel();
        let joined = self.queues().join(&id, Waiter { delta, reply });
        match joined {
            Ok(Joined::Lead) => {
                tokio::spawn(self.clone().drive(store, id));
            }
            Ok(Joined::Follow) => {}
            Err(Refused::QueueFull) => {
                return Err(KvError(format!(
                    "increment of '{key}' refused: {} increments of it are already waiting on this host; try again later",
                    self.limits.max_queue
                )))
            }
            Err(Refused::TooManyKeys) => {
                return Err(KvError(format!(
                    "increment of '{key}' refused: increments of {} keys are already in flight on this host; try again later",
                    self.limits.max_keys
                )))
            }
        }
        match tokio::time::timeout(self.limits.deadline, result).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(KvError(format!(
                "increment of '{key}' was abandoned (the host is stopping)"
            ))),
            Err(_) => Err(KvError(format!(
                "increment of '{key}' did not finish within {:?}; it may or may not have been applied",
                self.limits.deadline
            ))),
        }
    }

    /// Apply the key's queue batch by batch until it is empty.
    async fn drive<S: CasStore>(self, store: S, id: Key) {
        // The value and revision this host last wrote: the next batch tries them
        // before reading again (a lost race means someone else wrote; then read).
        let mut known: Option<(u64, Option<u64>)> = None;
        loop {
            let Some(batch) = self.queues().take(&id) else {
                return;
            };
            // Callers that gave up while queued are not applied.
            let batch: Vec<Waiter> = batch.into_iter().filter(|w| !w.reply.is_closed()).collect();
            if batch.is_empty() {
                continue;
            }
            let deltas: Vec<u64> = batch.iter().map(|w| w.delta).collect();
            let outcome = tokio::time::timeout(
                self.limits.deadline,
                self.apply(&store, &id.1, &deltas, &mut known),
            )
            .await
            .unwrap_or_else(|_| {
                Err(KvError(format!(
                    "increment of '{}' did not finish within {:?}",
                    id.1, self.limits.deadline
                )))
            });
            match outcome {
                Ok(values) => {
                    for (waiter, value) in batch.into_iter().zip(values) {
                        let _ = waiter.reply.send(Ok(value));
                    }
                }
                Err(e) => {
                    known = None;
                    for waiter in batch {
                        let _ = waiter.reply.send(Err(KvError(e.0.clone())));
                    }
                }
            }
        }
    }

    /// One compare-and-set of the summed `deltas`, retried when another host wins.
    async fn apply<S: CasStore>(
        &self,
        store: &S,
        key: &str,
        deltas: &[u64],
        known: &mut Option<(u64, Option<u64>)>,
    ) -> Result<Vec<u64>, KvError> {
        let total = deltas.iter().fold(0u64, |sum, d| sum.saturating_add(*d));
        for attempt in 0..self.limits.attempts {
            let remembered = known.take();
            let fresh = remembered.is_none();
            let (current, revision) = match remembered {
                Some(known) => known,
                None => store.read(key).await?,
            };
            let next = current.saturating_add(total);
            if let Some(written) = store.write(key, next, revision).await? {
                *known = Some((next, Some(written)));
                return Ok(apportion(current, deltas));
            }
            // A lost race on a remembered revision only means someone else wrote
            // since: read again at once. After a fresh read, back off.
            if fresh {
                tokio::time::sleep(backoff(&self.limits, attempt)).await;
            }
        }
        Err(KvError(format!(
            "increment of '{key}' lost {} compare-and-set races in a row to other writers; try again",
            self.limits.attempts
        )))
    }
}

/// Full-jitter exponential backoff: uniform in [0, min(max, base * 2^attempt)].
fn backoff(limits: &Limits, attempt: u32) -> Duration {
    let cap = limits
        .backoff
        .saturating_mul(1u32 << attempt.min(16))
        .min(limits.max_backoff);
    cap.mul_f64(rand::random::<f64>())
}

#[cfg(test)]
#[path = "coalesce_tests.rs"]
mod tests;
