//! `instances` as a hard bound on concurrent invocations of one component, with a
//! bounded, deadlined wait queue in front of it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Why an invocation was not admitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Overloaded {
    #[error("all {instances} instances are busy and {queued} requests are already waiting")]
    QueueFull { instances: u32, queued: usize },
    #[error("no instance became free within {0:?}")]
    Timeout(Duration),
}

/// Admission control for one component on one host.
#[derive(Debug, Clone)]
pub struct Limiter {
    slots: Arc<Semaphore>,
    instances: u32,
    waiting: Arc<AtomicUsize>,
    max_queued: usize,
    queue_timeout: Duration,
}

/// A held slot; dropping it frees the slot.
#[derive(Debug)]
pub struct Slot(#[allow(dead_code)] OwnedSemaphorePermit);

struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Limiter {
    pub fn new(instances: u32, max_queued: usize, queue_timeout: Duration) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(instances as usize)),
            instances,
            waiting: Arc::default(),
            max_queued,
            queue_timeout,
        }
    }

    /// Take a slot: at once if one is free, else wait in the bounded queue up to the
    /// queue timeout.
    pub async fn acquire(&self) -> Result<Slot, Overloaded> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Ok(Slot(permit));
        }
        let queued = self.waiting.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(&self.waiting);
        if queued >= self.max_queued {
            return Err(Overloaded::QueueFull {
                instances: self.instances,
                queued,
            });
        }
        match tokio::time::timeout(self.queue_timeout, self.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Slot(permit)),
            // The semaphore is never closed; treat it like a timeout all the same.
            Ok(Err(_)) | Err(_) => Err(Overloaded::Timeout(self.queue_timeout)),
        }
    }

    /// Invocations waiting for a slot now.
    pub fn queued(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Invocations running now.
    pub fn in_flight(&self) -> u32 {
        self.instances
            .saturating_sub(self.slots.available_permits() as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn bounds_concurrency_and_queue() {
        let l = Limiter::new(1, 1, Duration::from_secs(5));
        let first = l.acquire().await.unwrap();
        assert_eq!(l.in_flight(), 1);
        let l2 = l.clone();
        let waiter = tokio::spawn(async move { l2.acquire().await.map(|_| ()) });
        tokio::task::yield_now().await;
        // The queue holds one: a third caller is refused at once.
        assert!(matches!(
            l.acquire().await,
            Err(Overloaded::QueueFull { .. })
        ));
        drop(first);
        assert_eq!(waiter.await.unwrap(), Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_has_a_deadline() {
        let l = Limiter::new(1, 10, Duration::from_secs(2));
        let _held = l.acquire().await.unwrap();
        assert_eq!(
            l.acquire().await.unwrap_err(),
            Overloaded::Timeout(Duration::from_secs(2))
        );
        assert_eq!(l.waiting.load(Ordering::SeqCst), 0);
    }
}
