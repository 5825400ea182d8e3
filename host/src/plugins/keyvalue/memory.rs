//! The in-memory keyvalue backend: one map per (app, bucket identifier), kept for
//! the life of the host process.

use super::{parse_counter, KvError};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Clone, Default)]
pub struct Bucket(Arc<Mutex<BTreeMap<String, Vec<u8>>>>);

impl Bucket {
    fn map(&self) -> MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.map().get(key).cloned()
    }

    pub fn set(&self, key: &str, value: Vec<u8>) {
        self.map().insert(key.to_string(), value);
    }

    pub fn delete(&self, key: &str) {
        self.map().remove(key);
    }

    pub fn keys(&self) -> Vec<String> {
        self.map().keys().cloned().collect()
    }

    pub fn increment(&self, key: &str, delta: u64) -> Result<u64, KvError> {
        let mut map = self.map();
        let current = match map.get(key) {
            Some(v) => parse_counter(key, v)?,
            None => 0,
        };
        let next = current.saturating_add(delta);
        map.insert(key.to_string(), next.to_string().into_bytes());
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn concurrent_increments_are_atomic() {
        let bucket = Bucket::default();
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let bucket = bucket.clone();
                std::thread::spawn(move || {
                    (0..500)
                        .map(|_| bucket.increment("hot", 1).unwrap())
                        .collect::<Vec<u64>>()
                })
            })
            .collect();
        let values: Vec<u64> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        let distinct: BTreeSet<u64> = values.iter().copied().collect();
        assert_eq!(distinct, (1..=4000).collect::<BTreeSet<u64>>());
        assert_eq!(bucket.get("hot").unwrap(), b"4000");
    }
}
