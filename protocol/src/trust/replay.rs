//! The commands a host obeyed recently, to refuse them a second time.
//!
//! Memory is bounded two ways: entries older than the accepted window are dropped
//! (such commands are refused as too old anyway), and when the cache is full the
//! oldest entry goes and becomes a *floor*: nothing at or before it (in the order
//! of issue time, then nonce) is accepted again. A flood can make a host refuse old-but-valid commands; it can
//! never make it obey one twice.

use super::Nonce;
use std::collections::BTreeSet;

/// `(issued_ms, nonce)` of obeyed commands, oldest first.
#[derive(Debug, Clone)]
pub(super) struct ReplayCache {
    seen: BTreeSet<(u64, Nonce)>,
    capacity: usize,
    /// Commands at or before this `(issued_ms, nonce)` were forgotten: refuse them.
    floor: Option<(u64, Nonce)>,
}

impl ReplayCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            seen: BTreeSet::new(),
            capacity: capacity.max(1),
            floor: None,
        }
    }

    /// Forget commands issued before `oldest_ms`: they are refused by age now.
    pub fn expire(&mut self, oldest_ms: u64) {
        while let Some(first) = self.seen.first() {
            if first.0 >= oldest_ms {
                break;
            }
            self.seen.pop_first();
        }
    }

    /// Whether a command is above the floor (`Err(floor issue time)` if not).
    pub fn above_floor(&self, issued_ms: u64, nonce: Nonce) -> Result<(), u64> {
        match self.floor {
            Some(floor) if (issued_ms, nonce) <= floor => Err(floor.0),
            _ => Ok(()),
        }
    }

    /// Refuse everything issued at or before `issued_ms` from now on (what a
    /// restarted host knows of the commands it obeyed before).
    pub fn raise_floor(&mut self, issued_ms: u64) {
        let floor = (issued_ms, Nonce([0xff; 16]));
        self.floor = Some(self.floor.map_or(floor, |f| f.max(floor)));
    }

    pub fn contains(&self, issued_ms: u64, nonce: Nonce) -> bool {
        self.seen.contains(&(issued_ms, nonce))
    }

    pub fn insert(&mut self, issued_ms: u64, nonce: Nonce) {
        if self.seen.len() >= self.capacity {
            if let Some(oldest) = self.seen.pop_first() {
                self.floor = Some(self.floor.map_or(oldest, |f| f.max(oldest)));
            }
        }
        self.seen.insert((issued_ms, nonce));
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_cache_raises_a_floor_instead_of_forgetting_silently() {
        let mut cache = ReplayCache::new(2);
        cache.insert(10, Nonce([1; 16]));
        cache.insert(20, Nonce([2; 16]));
        assert_eq!(cache.above_floor(0, Nonce([0; 16])), Ok(()));
        cache.insert(30, Nonce([3; 16]));
        assert_eq!(cache.len(), 2);
        assert!(!cache.contains(10, Nonce([1; 16])));
        // The forgotten command (issued at 10) is refused by the floor, and so is
        // anything before it; a command issued in the same ms is ordered by nonce.
        assert_eq!(cache.above_floor(10, Nonce([1; 16])), Err(10));
        assert_eq!(cache.above_floor(10, Nonce([0; 16])), Err(10));
        assert_eq!(cache.above_floor(10, Nonce([2; 16])), Ok(()));
        cache.expire(25);
        assert_eq!(cache.len(), 1);
        assert!(cache.contains(30, Nonce([3; 16])));
    }
}
