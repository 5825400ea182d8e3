//! The election task: drives the pure [`Elector`] over the lease key in JetStream KV
//! and tells the other tasks who leads (see `lease.rs` for the protocol and why it
//! is safe).

use crate::brain::lease::{Elector, Leadership, LeaseRecord, Seen, Write, Written, LEASE_KEY};
use lattice_bus::{Kv, KvError, Operation, SharedKv};
use std::future::Future;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// What the other tasks see of the election.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct View {
    /// Set while this controller holds the lease; it acts only before `until`.
    pub leadership: Option<Leadership>,
    /// The holder of the lease as far as this controller knows (possibly itself,
    /// possibly dead): where followers forward API requests.
    pub holder: Option<String>,
}

impl View {
    /// Whether this controller may act at `now`.
    pub fn leads(&self, now: Instant) -> bool {
        self.leadership.is_some_and(|l| now < l.until)
    }
}

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Keep reading and writing the lease until `shutdown`, then release it if held.
/// Leaders renew every `renew`; followers read twice as often so a dead leader is
/// noticed within half a renewal of its lease running out.
///
/// `progress` is when the state task last went round its loop: a controller whose
/// state task has not moved for `stall` neither renews nor takes the lease, so a
/// stuck leader (alive, connected, but acting on nothing) is replaced like a dead one.
pub(crate) async fn run(
    kv: SharedKv,
    mut elector: Elector,
    renew: Duration,
    progress: Progress,
    view: watch::Sender<View>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut stalled = false;
    loop {
        let started = now();
        let was_leading = elector.leadership(started).is_some();
        let idle = started.saturating_duration_since(*progress.last.borrow());
        if idle > progress.stall {
            if !stalled {
                tracing::error!(
                    controller = elector.id(),
                    idle = ?idle,
                    "the controller's state task makes no progress: not renewing or taking the lease"
                );
            }
            stalled = true;
        } else {
            if stalled {
                tracing::info!(controller = elector.id(), "the state task moves again");
            }
            stalled = false;
        }
        let seen = if stalled {
            None
        } else if elector.needs_read() {
            match tokio::time::timeout(renew, read(&*kv)).await {
                Ok(Ok(seen)) => Some(seen),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "cannot read the controller lease");
                    None
                }
                Err(_) => {
                    tracing::warn!("reading the controller lease timed out");
                    None
                }
            }
        } else {
            None
        };
        if !stalled && (!elector.needs_read() || seen.is_some()) {
            if let Some(write) = elector.step(started, seen) {
                let result = match tokio::time::timeout(renew, self::write(&*kv, &write)).await {
                    Ok(result) => result,
                    Err(_) => Written::Failed,
                };
                elector.written(started, &write, result);
            }
        }
        let leading = elector.leadership(now());
        match (was_leading, leading) {
            (false, Some(l)) => tracing::info!(
                controller = elector.id(),
                term = l.term,
                "this controller now leads the lattice"
            ),
            (true, None) => tracing::warn!(
                controller = elector.id(),
                "this controller no longer leads the lattice"
            ),
            _ => {}
        }
        view.send_replace(View {
            leadership: leading,
            holder: elector.holder().map(str::to_string),
        });

        let pause = if elector.needs_read() {
            renew / 2
        } else {
            renew
        };
        let next = tokio::time::Instant::from_std(started) + pause;
        tokio::select! {
            () = &mut shutdown => break,
            () = tokio::time::sleep_until(next) => {}
        }
    }
    // A polite stop: nobody has to wait for the lease to run out.
    view.send_replace(View::default());
    if let Some(revision) = elector.release() {
        let deleting = kv.delete(LEASE_KEY, Some(revision));
        match tokio::time::timeout(renew, deleting).await {
            Ok(Ok(())) => tracing::info!(controller = elector.id(), "released the lease"),
            Ok(Err(e)) => tracing::warn!(error = %e, "could not release the lease"),
            Err(_) => tracing::warn!("releasing the lease timed out"),
        }
        elector.released();
    }
}

/// How the election task knows the state task is alive: when it last went round
/// its loop, and how long it may stand still.
pub(crate) struct Progress {
    pub last: watch::Receiver<Instant>,
    pub stall: Duration,
}

/// Read the lease key.
pub(crate) async fn read(kv: &dyn Kv) -> Result<Seen, KvError> {
    Ok(match kv.entry(LEASE_KEY).await? {
        Some(e) if e.operation == Operation::Put => Seen::Held {
            revision: e.revision,
            record: serde_json::from_slice::<LeaseRecord>(&e.value).ok(),
        },
        _ => Seen::Vacant,
    })
}

async fn write(kv: &dyn Kv, write: &Write) -> Written {
    let bytes: bytes::Bytes = serde_json::to_vec(write.record())
        .expect("lease records always serialize")
        .into();
    let (written, doing) = match write {
        Write::Create(_) => (kv.create(LEASE_KEY, bytes).await, "create"),
        Write::Update { revision, .. } => (kv.update(LEASE_KEY, bytes, *revision).await, "renew"),
    };
    match written {
        Ok(revision) => Written::Ok(revision),
        Err(KvError::Conflict { .. }) => Written::Conflict,
        Err(e) => {
            tracing::warn!(error = %super::events::chain(&e), "could not {doing} the controller lease");
            Written::Failed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lattice_bus::fake::FakeKv;
    use std::sync::Arc;
    use tokio::sync::oneshot;

    const TTL: Duration = Duration::from_secs(3);
    const RENEW: Duration = Duration::from_secs(1);

    /// One controller's election on `kv`: what it sees, and how to stop it.
    fn elect(kv: &SharedKv, id: &str) -> (watch::Receiver<View>, oneshot::Sender<()>) {
        let (view_tx, view) = watch::channel(View::default());
        let (stop, stopped) = oneshot::channel::<()>();
        // A state task that keeps moving.
        let (moved, last) = watch::channel(now());
        tokio::spawn(async move {
            while !moved.is_closed() {
                moved.send_replace(now());
                tokio::time::sleep(RENEW / 4).await;
            }
        });
        tokio::spawn(run(
            kv.clone(),
            Elector::new(id, TTL),
            RENEW,
            Progress { last, stall: TTL },
            view_tx,
            async {
                let _ = stopped.await;
            },
        ));
        (view, stop)
    }

    fn leads(view: &watch::Receiver<View>) -> bool {
        view.borrow().leads(now())
    }

    #[tokio::test(start_paused = true)]
    async fn one_of_two_leads_and_the_other_takes_over_when_it_stops() {
        let kv: SharedKv = Arc::new(FakeKv::new("lattice_t_state"));
        let (a, stop_a) = elect(&kv, "a");
        let (b, stop_b) = elect(&kv, "b");
        tokio::time::sleep(TTL * 3).await;
        assert!(leads(&a) != leads(&b), "exactly one leads: {a:?} {b:?}");
        let (leader, follower, stop_leader, leader_id) = if leads(&a) {
            (a, b, stop_a, "a")
        } else {
            (b, a, stop_b, "b")
        };
        assert_eq!(follower.borrow().holder.as_deref(), Some(leader_id));

        // A polite stop releases the lease: the follower leads within a look.
        stop_leader.send(()).unwrap();
        tokio::time::sleep(RENEW).await;
        assert!(!leads(&leader));
        assert!(leads(&follower), "{follower:?}");
        let entry = kv.entry(LEASE_KEY).await.unwrap().unwrap();
        let lease: LeaseRecord = serde_json::from_slice(&entry.value).unwrap();
        assert_ne!(lease.holder, leader_id);
    }

    #[tokio::test(start_paused = true)]
    async fn a_leader_whose_state_task_stands_still_lets_the_lease_go() {
        let kv: SharedKv = Arc::new(FakeKv::new("lattice_t_state"));
        let (a, _stop_a) = elect(&kv, "a");
        tokio::time::sleep(TTL).await;
        assert!(leads(&a));

        // Controller b is alive and connected, but its state task never moves.
        let (view_tx, b) = watch::channel(View::default());
        let (_moved, last) = watch::channel(now());
        tokio::spawn(run(
            kv.clone(),
            Elector::new("b", TTL),
            RENEW,
            Progress { last, stall: TTL },
            view_tx,
            std::future::pending(),
        ));
        tokio::time::sleep(TTL * 4).await;
        assert!(leads(&a) && !leads(&b), "a stuck controller never leads");

        // Now the stuck one leads first, then stops moving: a takes over.
        let kv: SharedKv = Arc::new(FakeKv::new("lattice_t2_state"));
        let (view_tx, stuck) = watch::channel(View::default());
        let (moved, last) = watch::channel(now());
        tokio::spawn(run(
            kv.clone(),
            Elector::new("stuck", TTL),
            RENEW,
            Progress { last, stall: TTL },
            view_tx,
            std::future::pending(),
        ));
        let deadline = tokio::time::Instant::now() + TTL;
        while tokio::time::Instant::now() < deadline {
            moved.send_replace(now());
            tokio::time::sleep(RENEW / 4).await;
        }
        assert!(leads(&stuck));
        let (other, _stop_other) = elect(&kv, "other");
        tokio::time::sleep(TTL * 4).await;
        assert!(!leads(&stuck), "{stuck:?}");
        assert!(leads(&other), "{other:?}");
    }
}
