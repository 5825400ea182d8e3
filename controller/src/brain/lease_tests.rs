//! Tests of the lease state machine: every step with the time passed in.

use super::*;

const TTL: Duration = Duration::from_secs(3);
const S: Duration = Duration::from_secs(1);

fn held(revision: u64, holder: &str, term: u64) -> Seen {
    Seen::Held {
        revision,
        record: Some(LeaseRecord {
            holder: holder.into(),
            term,
            ttl_ms: 3000,
        }),
    }
}

/// Run one step and, if it writes, apply `result`; returns the write.
fn go(e: &mut Elector, now: Instant, seen: Option<Seen>, result: Written) -> Option<Write> {
    let w = e.step(now, seen)?;
    e.written(now, &w, result);
    Some(w)
}

#[test]
fn a_vacant_lease_is_created_and_renewed_on_its_revision() {
    let t0 = Instant::now();
    let mut a = Elector::new("A", TTL);
    assert!(a.needs_read());
    assert_eq!(a.leadership(t0), None);
    let w = go(&mut a, t0, Some(Seen::Vacant), Written::Ok(5)).unwrap();
    assert_eq!(w.record().term, 1);
    assert!(matches!(w, Write::Create(_)));
    assert_eq!(
        a.leadership(t0 + S),
        Some(Leadership {
            term: 1,
            until: t0 + TTL
        })
    );
    assert_eq!(a.holder(), Some("A"));
    assert!(!a.needs_read());
    // Renewal: CAS on the revision it wrote, and the lease extends from its start.
    let w = go(&mut a, t0 + S, None, Written::Ok(6)).unwrap();
    assert_eq!(
        w,
        Write::Update {
            revision: 5,
            record: LeaseRecord {
                holder: "A".into(),
                term: 1,
                ttl_ms: 3000
            }
        }
    );
    assert_eq!(a.leadership(t0 + S).unwrap().until, t0 + S + TTL);
    assert_eq!(a.release(), Some(6));
}

#[test]
fn a_follower_takes_over_only_after_one_revision_stays_for_the_ttl() {
    let t0 = Instant::now();
    let mut b = Elector::new("B", TTL);
    // A renews every second: B keeps seeing new revisions and never acts.
    for i in 0..10u32 {
        let now = t0 + S * i;
        assert_eq!(b.step(now, Some(held(10 + u64::from(i), "A", 4))), None);
        assert_eq!(b.holder(), Some("A"));
    }
    // A dies after revision 19 (seen at t0+9s). Not stale before t0+12s...
    assert_eq!(b.step(t0 + S * 11, Some(held(19, "A", 4))), None);
    assert_eq!(b.leadership(t0 + S * 11), None);
    // ... then B takes over with CAS on 19, a term above A's.
    let w = go(&mut b, t0 + S * 12, Some(held(19, "A", 4)), Written::Ok(20)).unwrap();
    assert_eq!(
        w,
        Write::Update {
            revision: 19,
            record: LeaseRecord {
                holder: "B".into(),
                term: 5,
                ttl_ms: 3000
            }
        }
    );
    assert_eq!(b.leadership(t0 + S * 12).unwrap().term, 5);
}

#[test]
fn the_old_leader_lapses_before_any_follower_can_take_over() {
    let t0 = Instant::now();
    let mut a = Elector::new("A", TTL);
    let mut b = Elector::new("B", TTL);
    go(&mut a, t0, Some(Seen::Vacant), Written::Ok(1));
    // A's renewal at t0+1s is its last (it stalls afterwards).
    go(&mut a, t0 + S, None, Written::Ok(2));
    // B sees revision 2 only after it was written.
    let seen_at = t0 + S + Duration::from_millis(1);
    assert_eq!(b.step(seen_at, Some(held(2, "A", 1))), None);
    let a_until = a.leadership(t0 + S).unwrap().until;
    // The earliest moment B may act is after A's validity ended.
    let mut t = seen_at;
    while b.step(t, Some(held(2, "A", 1))).is_none() {
        t += Duration::from_millis(10);
    }
    assert!(t >= a_until, "B acts at {t:?}, A valid until {a_until:?}");
    assert_eq!(a.leadership(t), None);
}

#[test]
fn a_leader_whose_renewal_conflicts_steps_down_at_once() {
    let t0 = Instant::now();
    let mut a = Elector::new("A", TTL);
    go(&mut a, t0, Some(Seen::Vacant), Written::Ok(1));
    go(&mut a, t0 + S, None, Written::Conflict);
    assert_eq!(a.leadership(t0 + S), None);
    assert!(a.needs_read());
    // It follows the new holder, and its next term is above both.
    assert_eq!(a.step(t0 + S * 2, Some(held(7, "B", 2))), None);
    assert_eq!(a.holder(), Some("B"));
    let w = a.step(t0 + S * 6, Some(held(7, "B", 2))).unwrap();
    assert_eq!(w.record().term, 3);
}

#[test]
fn a_leader_cut_off_from_nats_lapses_at_its_deadline_and_may_come_back() {
    let t0 = Instant::now();
    let mut a = Elector::new("A", TTL);
    go(&mut a, t0, Some(Seen::Vacant), Written::Ok(1));
    go(&mut a, t0 + S, None, Written::Failed);
    go(&mut a, t0 + S * 2, None, Written::Failed);
    assert!(a.leadership(t0 + S * 2).is_some());
    assert_eq!(a.leadership(t0 + TTL), None);
    // NATS is back and nobody took over: the CAS on revision 1 still works.
    let w = go(&mut a, t0 + S * 4, None, Written::Ok(2)).unwrap();
    assert_eq!(
        w,
        Write::Update {
            revision: 1,
            record: LeaseRecord {
                holder: "A".into(),
                term: 1,
                ttl_ms: 3000
            }
        }
    );
    assert!(a.leadership(t0 + S * 4).is_some());
}

#[test]
fn a_lost_create_answer_is_recovered_from_the_lease_naming_us() {
    let t0 = Instant::now();
    let mut a = Elector::new("A", TTL);
    go(&mut a, t0, Some(Seen::Vacant), Written::Failed);
    assert_eq!(a.leadership(t0), None);
    let w = go(&mut a, t0 + S, Some(held(3, "A", 1)), Written::Ok(4)).unwrap();
    assert!(matches!(w, Write::Update { revision: 3, .. }));
    assert!(a.leadership(t0 + S).is_some());
}

#[test]
fn the_longer_ttl_of_holder_and_follower_wins_and_unreadable_leases_expire() {
    let t0 = Instant::now();
    let mut b = Elector::new("B", TTL);
    let slow = Seen::Held {
        revision: 4,
        record: Some(LeaseRecord {
            holder: "A".into(),
            term: 1,
            ttl_ms: 10_000,
        }),
    };
    assert_eq!(b.step(t0, Some(slow.clone())), None);
    assert_eq!(b.step(t0 + S * 5, Some(slow.clone())), None);
    assert!(b.step(t0 + S * 10, Some(slow)).is_some());

    let mut c = Elector::new("C", TTL);
    let junk = Seen::Held {
        revision: 9,
        record: None,
    };
    assert_eq!(c.step(t0, Some(junk.clone())), None);
    assert_eq!(c.holder(), None);
    assert!(c.step(t0 + TTL, Some(junk)).is_some());
}

#[test]
fn a_polite_stop_releases_the_lease() {
    let t0 = Instant::now();
    let mut a = Elector::new("A", TTL);
    assert_eq!(a.release(), None);
    go(&mut a, t0, Some(Seen::Vacant), Written::Ok(8));
    assert_eq!(a.release(), Some(8));
    a.released();
    assert_eq!(a.leadership(t0), None);
    // The next lease (whoever takes it) gets a higher term.
    let w = a.step(t0 + S, Some(Seen::Vacant)).unwrap();
    assert_eq!(w.record().term, 2);
}

#[test]
fn of_two_followers_racing_for_a_vacant_lease_one_wins() {
    let t0 = Instant::now();
    let mut a = Elector::new("A", TTL);
    let mut b = Elector::new("B", TTL);
    let wa = a.step(t0, Some(Seen::Vacant)).unwrap();
    let wb = b.step(t0, Some(Seen::Vacant)).unwrap();
    // The server accepts the first create and refuses the second.
    a.written(t0, &wa, Written::Ok(1));
    b.written(t0, &wb, Written::Conflict);
    assert!(a.leadership(t0).is_some());
    assert!(b.leadership(t0).is_none());
    assert_eq!(b.step(t0 + S, Some(held(1, "A", 1))), None);
}
