//! Warm instances of a component that asked for them (`properties.warm`): an
//! invocation takes an idle instance when there is one, and an instance whose
//! export returned goes back for the next invocation.
//!
//! Architecture invariants:
//! - Only an instance that returned normally goes back. One that trapped, passed
//!   its deadline, failed to be called or was cancelled (its future dropped
//!   mid-call) is dropped with its `Store`, so no invocation ever sees a guest
//!   stopped halfway.
//! - An instance serves at most `max_invocations`, then is dropped; one left
//!   unused for the pool's `idle` is dropped by the pool's sweeper (a task that
//!   ends with the pool), so idle instances give their memory back.
//! - Idle instances hold slots of the engine's pooling allocator; all warm pools
//!   of a host together keep at most [`WarmBudget`]'s share, so fresh instances
//!   always find a slot.
//! - A pool belongs to one `ComponentRuntime` (one app's component at one
//!   version): guest state never crosses apps, components or versions.

use crate::ctx::Ctx;
use lattice_protocol::manifest::Warm;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use wasmtime::component::Instance;
use wasmtime::Store;

/// The idle warm instances of one component runtime.
pub struct WarmPool {
    /// Idle instances kept at most (the manifest's `pool`, at most the
    /// component's `instances` here).
    size: usize,
    max_invocations: u32,
    /// How long an instance is kept unused.
    idle_for: Duration,
    /// Idle instances, the most recently used last (taken first, so the oldest
    /// age out).
    idle: Arc<Mutex<Vec<WarmInstance>>>,
    budget: WarmBudget,
}

/// An instance and its store, between invocations or in one.
pub struct WarmInstance {
    pub store: Store<Ctx>,
    pub instance: Instance,
    /// Invocations it has served.
    served: u32,
    /// Its share of the host's budget while it is idle.
    _held: Option<Held>,
    /// Since when it is idle.
    since: Instant,
}

impl WarmInstance {
    /// A freshly instantiated one.
    pub fn new(store: Store<Ctx>, instance: Instance) -> Self {
        Self {
            store,
            instance,
            served: 0,
            _held: None,
            since: Instant::now(),
        }
    }

    /// Whether it has served invocations before this one.
    pub fn reused(&self) -> bool {
        self.served > 0
    }
}

impl WarmPool {
    /// A pool for a component placed with `instances` concurrent invocations;
    /// its sweeper runs on the current tokio runtime while the pool lives.
    pub fn new(warm: Warm, instances: u32, budget: WarmBudget) -> Self {
        let pool = Self {
            size: warm.pool.min(instances) as usize,
            max_invocations: warm.max_invocations,
            idle_for: Duration::from_millis(warm.idle_ms),
            idle: Arc::default(),
            budget,
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let every =
                (pool.idle_for / 2).clamp(Duration::from_millis(10), Duration::from_secs(10));
            runtime.spawn(sweep(Arc::downgrade(&pool.idle), pool.idle_for, every));
        }
        pool
    }

    /// An idle instance, if there is one.
    pub fn take(&self) -> Option<WarmInstance> {
        let mut taken = self.lock().pop()?;
        taken._held = None;
        Some(taken)
    }

    /// `instance` returned from an invocation: keep it for the next one unless it
    /// has served its invocations, the pool is full, or the host's budget is spent.
    pub fn give_back(&self, mut instance: WarmInstance) {
        instance.served += 1;
        if instance.served >= self.max_invocations {
            return;
        }
        let mut idle = self.lock();
        if idle.len() >= self.size {
            return;
        }
        let Some(held) = self.budget.hold() else {
            return;
        };
        instance.store.data_mut().end();
        instance._held = Some(held);
        instance.since = Instant::now();
        idle.push(instance);
    }

    /// Idle instances now.
    pub fn idle(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<WarmInstance>> {
        lock(&self.idle)
    }
}

fn lock(idle: &Mutex<Vec<WarmInstance>>) -> std::sync::MutexGuard<'_, Vec<WarmInstance>> {
    idle.lock().unwrap_or_else(|p| p.into_inner())
}

/// Every `every`, drop the instances of `idle` unused for `idle_for`, until the
/// pool is gone.
async fn sweep(idle: Weak<Mutex<Vec<WarmInstance>>>, idle_for: Duration, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let Some(idle) = idle.upgrade() else {
            return;
        };
        let stale: Vec<WarmInstance> = {
            let mut idle = lock(&idle);
            // The oldest are first: cut them off the front.
            let fresh = idle.partition_point(|i| i.since.elapsed() >= idle_for);
            idle.drain(..fresh).collect()
        };
        // Dropped outside the lock: a store's teardown resets its memory.
        drop(stale);
    }
}

/// How many idle warm instances all pools of a host may keep together.
#[derive(Clone)]
pub struct WarmBudget {
    idle: Arc<AtomicUsize>,
    max: usize,
}

impl WarmBudget {
    pub fn new(max: usize) -> Self {
        Self {
            idle: Arc::default(),
            max,
        }
    }

    /// A share of the budget, given back when dropped; `None` when it is spent.
    fn hold(&self) -> Option<Held> {
        self.idle
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()?;
        Some(Held(self.idle.clone()))
    }

    /// Idle warm instances on the host now.
    pub fn in_use(&self) -> usize {
        self.idle.load(Ordering::Acquire)
    }
}

/// One idle instance's share of a [`WarmBudget`].
struct Held(Arc<AtomicUsize>);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_shared_and_given_back() {
        let budget = WarmBudget::new(2);
        let a = budget.hold();
        let b = budget.clone().hold();
        assert!(a.is_some() && b.is_some());
        assert!(budget.hold().is_none(), "a third share over a budget of 2");
        drop(a);
        assert_eq!(budget.in_use(), 1);
        assert!(budget.hold().is_some());
    }
}
