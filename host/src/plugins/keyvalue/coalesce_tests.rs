//! The coalescer against a fake compare-and-set store: batching, apportioning,
//! lost races, failures and deadlines, on tokio's clock.

use super::*;
use std::collections::BTreeSet;
use tokio::sync::Semaphore;

/// A counter with a revision, whose writes can be held (`gate`), lost to an
/// imagined other host (`lose`) or failed (`fail`).
#[derive(Clone)]
struct Fake {
    state: Arc<Mutex<State>>,
    gate: Arc<Semaphore>,
}

#[derive(Default)]
struct State {
    value: u64,
    revision: Option<u64>,
    /// The totals written, one per successful write.
    writes: Vec<u64>,
    lose: u32,
    fail: u32,
}

impl Fake {
    fn open() -> Self {
        Self {
            state: Arc::default(),
            gate: Arc::new(Semaphore::new(Semaphore::MAX_PERMITS)),
        }
    }

    /// Writes wait until [`Fake::release`].
    fn held() -> Self {
        Self {
            gate: Arc::new(Semaphore::new(0)),
            ..Self::open()
        }
    }

    fn release(&self, writes: usize) {
        self.gate.add_permits(writes);
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }
}

impl CasStore for Fake {
    async fn read(&self, _key: &str) -> Result<(u64, Option<u64>), KvError> {
        let s = self.state();
        Ok((s.value, s.revision))
    }

    async fn write(
        &self,
        _key: &str,
        value: u64,
        revision: Option<u64>,
    ) -> Result<Option<u64>, KvError> {
        self.gate.acquire().await.unwrap().forget();
        let mut s = self.state();
        if s.fail > 0 {
            s.fail -= 1;
            return Err(KvError("the store is down".into()));
        }
        if s.lose > 0 {
            // Another host adds 1000 first.
            s.lose -= 1;
            s.value += 1000;
            s.revision = Some(s.revision.unwrap_or(0) + 1);
            return Ok(None);
        }
        if s.revision != revision {
            return Ok(None);
        }
        let written = s.value.abs_diff(value);
        s.writes.push(written);
        s.value = value;
        s.revision = Some(s.revision.unwrap_or(0) + 1);
        Ok(s.revision)
    }
}

fn limits() -> Limits {
    Limits {
        max_queue: 64,
        max_keys: 4,
        ..Limits::default()
    }
}

fn bucket() -> Arc<str> {
    Arc::from("b")
}

/// Spawn `n` increments of `key` by 1; yield until all are queued.
async fn spawn_increments(
    c: &Coalescer,
    store: &Fake,
    key: &str,
    n: usize,
) -> Vec<tokio::task::JoinHandle<Result<u64, KvError>>> {
    let handles = (0..n)
        .map(|_| {
            let (c, store, key) = (c.clone(), store.clone(), key.to_string());
            tokio::spawn(async move { c.increment(store, &bucket(), &key, 1).await })
        })
        .collect();
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    handles
}

async fn results(
    handles: Vec<tokio::task::JoinHandle<Result<u64, KvError>>>,
) -> Vec<Result<u64, KvError>> {
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[test]
fn apportion_gives_each_delta_its_own_value() {
    assert_eq!(apportion(10, &[1, 5, 1]), [11, 16, 17]);
    // Saturating at u64::MAX.
    assert_eq!(
        apportion(u64::MAX - 2, &[1, 5, 1]),
        [u64::MAX - 1, u64::MAX, u64::MAX]
    );
    assert_eq!(apportion(0, &[]), Vec::<u64>::new());
}

#[test]
fn queues_lead_follow_bound_and_forget() {
    let mut q: Queues<&str, u32> = Queues::new(3, 1);
    assert_eq!(q.join(&"a", 1), Ok(Joined::Lead));
    assert_eq!(q.join(&"a", 2), Ok(Joined::Follow));
    assert_eq!(q.join(&"a", 3), Ok(Joined::Follow));
    assert_eq!(q.join(&"a", 4), Err(Refused::QueueFull));
    assert_eq!(q.join(&"b", 1), Err(Refused::TooManyKeys));
    assert_eq!(q.take(&"a"), Some(vec![1, 2, 3]));
    assert_eq!(q.join(&"a", 5), Ok(Joined::Follow));
    assert_eq!(q.take(&"a"), Some(vec![5]));
    // Empty: the driver ends and the key is forgotten.
    assert_eq!(q.take(&"a"), None);
    assert!(q.is_empty());
    assert_eq!(q.join(&"b", 1), Ok(Joined::Lead));
}

#[tokio::test]
async fn increments_queued_behind_one_write_go_in_one_batch() {
    let store = Fake::held();
    let c = Coalescer::new(limits());
    let first = spawn_increments(&c, &store, "k", 1).await;
    // The first write is in flight (held); these queue behind it.
    let rest = spawn_increments(&c, &store, "k", 20).await;
    store.release(2);
    let mut values = Vec::new();
    for r in results(first).await.into_iter().chain(results(rest).await) {
        values.push(r.unwrap());
    }
    let distinct: BTreeSet<u64> = values.iter().copied().collect();
    assert_eq!(distinct, (1..=21).collect::<BTreeSet<u64>>());
    let s = store.state();
    assert_eq!(s.value, 21);
    assert_eq!(
        s.writes,
        [1, 20],
        "one write for the first, one for the 20 queued"
    );
    drop(s);
    assert_eq!(c.hot_keys(), 0, "a cooled key leaves nothing behind");
}

#[tokio::test]
async fn values_follow_queue_order_with_mixed_deltas() {
    let store = Fake::held();
    let c = Coalescer::new(limits());
    let b = bucket();
    let first = {
        let (c, s, b) = (c.clone(), store.clone(), b.clone());
        tokio::spawn(async move { c.increment(s, &b, "k", 100).await })
    };
    tokio::task::yield_now().await;
    let mut later = Vec::new();
    for delta in [1u64, 10, 5] {
        let (c, s, b) = (c.clone(), store.clone(), b.clone());
        later.push(tokio::spawn(
            async move { c.increment(s, &b, "k", delta).await },
        ));
        tokio::task::yield_now().await;
    }
    store.release(2);
    assert_eq!(first.await.unwrap().unwrap(), 100);
    let got: Vec<u64> = results(later)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(got, [101, 111, 116]);
}

#[tokio::test(start_paused = true)]
async fn a_lost_race_is_retried_on_fresh_values() {
    let store = Fake::open();
    store.state().lose = 3;
    let c = Coalescer::new(limits());
    let got = c.increment(store.clone(), &bucket(), "k", 1).await.unwrap();
    // Three other writers added 1000 each before this host won.
    assert_eq!(got, 3001);
    assert_eq!(store.state().value, 3001);
}

#[tokio::test(start_paused = true)]
async fn too_many_lost_races_fail_with_a_clear_error() {
    let store = Fake::open();
    store.state().lose = u32::MAX;
    let c = Coalescer::new(Limits {
        attempts: 5,
        ..limits()
    });
    let e = c.increment(store, &bucket(), "k", 1).await.unwrap_err();
    assert!(e.0.contains("lost 5 compare-and-set races"), "{e}");
    assert_eq!(c.hot_keys(), 0);
}

#[tokio::test]
async fn a_failed_batch_fails_every_waiter_of_it_and_only_them() {
    let store = Fake::held();
    let c = Coalescer::new(limits());
    let first = spawn_increments(&c, &store, "k", 1).await;
    let batch = spawn_increments(&c, &store, "k", 5).await;
    store.state().fail = 0;
    store.release(1); // the first write succeeds
    assert_eq!(results(first).await[0].as_ref().unwrap(), &1);
    store.state().fail = 1;
    store.release(1); // the batch's write fails
    for r in results(batch).await {
        assert_eq!(r.unwrap_err().0, "the store is down");
    }
    // The key recovers: the next increment reads again and succeeds.
    store.release(1);
    assert_eq!(
        c.increment(store.clone(), &bucket(), "k", 1).await.unwrap(),
        2
    );
    assert_eq!(c.hot_keys(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_caller_waits_no_longer_than_its_deadline() {
    let store = Fake::held(); // never released
    let c = Coalescer::new(Limits {
        deadline: Duration::from_secs(2),
        ..limits()
    });
    let e = c
        .increment(store.clone(), &bucket(), "k", 1)
        .await
        .unwrap_err();
    assert!(e.0.contains("did not finish within 2s"), "{e}");
    // The batch gives up by its own deadline too: the key is forgotten.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(c.hot_keys(), 0);
    assert_eq!(store.state().value, 0);
}

#[tokio::test]
async fn a_full_queue_and_too_many_keys_are_refused_at_once() {
    let store = Fake::held();
    let c = Coalescer::new(Limits {
        max_queue: 3,
        max_keys: 2,
        ..limits()
    });
    let first = spawn_increments(&c, &store, "k", 1).await;
    let queued = spawn_increments(&c, &store, "k", 3).await;
    let e = c
        .increment(store.clone(), &bucket(), "k", 1)
        .await
        .unwrap_err();
    assert!(
        e.0.contains("3 increments of it are already waiting"),
        "{e}"
    );
    let other = spawn_increments(&c, &store, "j", 1).await;
    let e = c
        .increment(store.clone(), &bucket(), "x", 1)
        .await
        .unwrap_err();
    assert!(
        e.0.contains("increments of 2 keys are already in flight"),
        "{e}"
    );
    store.release(100);
    // "k" and "j" share the fake's one counter: 5 distinct values in all.
    let mut values = BTreeSet::new();
    for handles in [first, queued, other] {
        for r in results(handles).await {
            values.insert(r.unwrap());
        }
    }
    assert_eq!(values, (1..=5).collect::<BTreeSet<u64>>());
    assert_eq!(c.hot_keys(), 0);
}

#[tokio::test]
async fn buckets_are_separate_keys() {
    let store = Fake::open();
    let c = Coalescer::new(limits());
    let a: Arc<str> = Arc::from("a");
    c.increment(store.clone(), &a, "k", 1).await.unwrap();
    // Same key name, other bucket: its own queue (the fake has one counter, so the
    // value continues; what matters is that both ran and nothing is left).
    c.increment(store.clone(), &bucket(), "k", 1).await.unwrap();
    assert_eq!(c.hot_keys(), 0);
}
