//! [`FakeKv`]: one KV bucket in memory.

use super::subject::matches;
use crate::{Entry, EntryStream, Kv, KvError, Operation};
use bytes::Bytes;
use futures::channel::mpsc;
use futures::future::BoxFuture;
use futures::StreamExt;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// One KV bucket in memory. See the [module docs](super).
#[derive(Debug, Clone)]
pub struct FakeKv {
    name: String,
    bucket: Arc<Mutex<Bucket>>,
}

#[derive(Debug, Default)]
struct Bucket {
    /// The last revision written, in the whole bucket.
    revision: u64,
    /// The last entry of every key ever written, delete markers included.
    entries: BTreeMap<String, Entry>,
    watchers: Vec<(String, mpsc::UnboundedSender<Result<Entry, KvError>>)>,
}

impl Bucket {
    /// Write the next revision of `key` and tell the watchers.
    fn write(&mut self, key: &str, value: Bytes, operation: Operation) -> u64 {
        self.revision += 1;
        let entry = Entry {
            key: key.to_string(),
            value,
            revision: self.revision,
            operation,
        };
        self.watchers.retain(|(pattern, tx)| {
            !matches(pattern, key) || tx.unbounded_send(Ok(entry.clone())).is_ok()
        });
        self.entries.insert(key.to_string(), entry);
        self.revision
    }

    fn has_value(&self, key: &str) -> bool {
        self.entries
            .get(key)
            .is_some_and(|e| e.operation == Operation::Put)
    }

    fn last_revision(&self, key: &str) -> Option<u64> {
        self.entries.get(key).map(|e| e.revision)
    }
}

impl FakeKv {
    /// An empty bucket named `name`.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            bucket: Arc::default(),
        }
    }

    fn bucket_mut(&self) -> MutexGuard<'_, Bucket> {
        self.bucket.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn conflict(&self, key: &str, expected: Option<u64>) -> KvError {
        KvError::Conflict {
            bucket: self.name.clone(),
            key: key.to_string(),
            expected,
        }
    }
}

// Each operation happens when its future is first polled, as on a real server.
impl Kv for FakeKv {
    fn bucket(&self) -> &str {
        &self.name
    }

    fn entry(&self, key: &str) -> BoxFuture<'_, Result<Option<Entry>, KvError>> {
        let key = key.to_string();
        Box::pin(async move { Ok(self.bucket_mut().entries.get(&key).cloned()) })
    }

    fn create(&self, key: &str, value: Bytes) -> BoxFuture<'_, Result<u64, KvError>> {
        let key = key.to_string();
        Box::pin(async move {
            let mut bucket = self.bucket_mut();
            if bucket.has_value(&key) {
                return Err(self.conflict(&key, None));
            }
            Ok(bucket.write(&key, value, Operation::Put))
        })
    }

    fn update(
        &self,
        key: &str,
        value: Bytes,
        revision: u64,
    ) -> BoxFuture<'_, Result<u64, KvError>> {
        let key = key.to_string();
        Box::pin(async move {
            let mut bucket = self.bucket_mut();
            if bucket.last_revision(&key) != Some(revision) {
                return Err(self.conflict(&key, Some(revision)));
            }
            Ok(bucket.write(&key, value, Operation::Put))
        })
    }

    fn put(&self, key: &str, value: Bytes) -> BoxFuture<'_, Result<u64, KvError>> {
        let key = key.to_string();
        Box::pin(async move { Ok(self.bucket_mut().write(&key, value, Operation::Put)) })
    }

    fn delete(&self, key: &str, revision: Option<u64>) -> BoxFuture<'_, Result<(), KvError>> {
        let key = key.to_string();
        Box::pin(async move {
            let mut bucket = self.bucket_mut();
            if revision.is_some() && bucket.last_revision(&key) != revision {
                return Err(self.conflict(&key, revision));
            }
            bucket.write(&key, Bytes::new(), Operation::Delete);
            Ok(())
        })
    }

    fn keys(&self) -> BoxFuture<'_, Result<Vec<String>, KvError>> {
        Box::pin(async move {
            Ok(self
                .bucket_mut()
                .entries
                .values()
                .filter(|e| e.operation == Operation::Put)
                .map(|e| e.key.clone())
                .collect())
        })
    }

    fn watch(&self, pattern: &str) -> BoxFuture<'_, Result<EntryStream, KvError>> {
        let pattern = pattern.to_string();
        Box::pin(async move {
            let (tx, rx) = mpsc::unbounded();
            self.bucket_mut().watchers.push((pattern, tx));
            Ok(rx.boxed())
        })
    }

    fn watch_with_history(&self, pattern: &str) -> BoxFuture<'_, Result<EntryStream, KvError>> {
        let pattern = pattern.to_string();
        Box::pin(async move {
            let (tx, rx) = mpsc::unbounded();
            let mut bucket = self.bucket_mut();
            let mut last: Vec<&Entry> = bucket
                .entries
                .values()
                .filter(|e| matches(&pattern, &e.key))
                .collect();
            last.sort_by_key(|e| e.revision);
            for e in last {
                let _ = tx.unbounded_send(Ok(e.clone()));
            }
            bucket.watchers.push((pattern, tx));
            Ok(rx.boxed())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    #[tokio::test]
    async fn revisions_grow_across_the_bucket() {
        let kv = FakeKv::new("b");
        assert_eq!(kv.entry("a").await.unwrap(), None);
        assert_eq!(kv.put("a", "1".into()).await.unwrap(), 1);
        assert_eq!(kv.create("b", "2".into()).await.unwrap(), 2);
        let a = kv.entry("a").await.unwrap().unwrap();
        assert_eq!((a.value.as_ref(), a.revision), (&b"1"[..], 1));
        assert_eq!(kv.keys().await.unwrap(), ["a", "b"]);
    }

    #[tokio::test]
    async fn compare_and_set_conflicts() {
        let kv = FakeKv::new("b");
        let rev = kv.create("k", "1".into()).await.unwrap();
        let err = kv.create("k", "again".into()).await.unwrap_err();
        assert!(
            matches!(err, KvError::Conflict { expected: None, .. }),
            "{err}"
        );

        let rev2 = kv.update("k", "2".into(), rev).await.unwrap();
        let err = kv.update("k", "stale".into(), rev).await.unwrap_err();
        assert!(matches!(err, KvError::Conflict { expected: Some(r), .. } if r == rev));
        assert_eq!(
            err.to_string(),
            "key 'k' in KV bucket b changed since revision 1"
        );
        assert!(kv.update("new", "x".into(), 7).await.is_err());

        assert!(kv.delete("k", Some(rev)).await.is_err());
        kv.delete("k", Some(rev2)).await.unwrap();
        let marker = kv.entry("k").await.unwrap().unwrap();
        assert_eq!(marker.operation, Operation::Delete);
        assert!(kv.keys().await.unwrap().is_empty());
        // A deleted key can be created again.
        kv.create("k", "3".into()).await.unwrap();
    }

    #[tokio::test]
    async fn watch_with_history_starts_with_the_last_entry_of_each_key() {
        let kv = FakeKv::new("b");
        kv.put("app.a", "1".into()).await.unwrap();
        kv.put("app.gone", "1".into()).await.unwrap();
        kv.put("app.a", "2".into()).await.unwrap();
        kv.delete("app.gone", None).await.unwrap();
        kv.put("lease", "x".into()).await.unwrap();
        let mut watch = kv.watch_with_history("app.>").await.unwrap();
        kv.put("app.b", "1".into()).await.unwrap();
        let mut seen = Vec::new();
        while let Some(Some(e)) = watch.next().now_or_never() {
            let e = e.unwrap();
            seen.push((e.key, e.revision, e.operation));
        }
        assert_eq!(
            seen,
            [
                ("app.a".to_string(), 3, Operation::Put),
                ("app.gone".to_string(), 4, Operation::Delete),
                ("app.b".to_string(), 6, Operation::Put),
            ]
        );
    }

    #[tokio::test]
    async fn watch_sees_later_changes_to_matching_keys_including_deletes() {
        let kv = FakeKv::new("b");
        kv.put("app.before", "0".into()).await.unwrap();
        let mut watch = kv.watch("app.>").await.unwrap();
        kv.put("app.shop", "1".into()).await.unwrap();
        kv.put("lease", "x".into()).await.unwrap();
        kv.delete("app.shop", None).await.unwrap();
        let mut seen = Vec::new();
        while let Some(Some(e)) = watch.next().now_or_never() {
            let e = e.unwrap();
            seen.push((e.key, e.revision, e.operation));
        }
        assert_eq!(
            seen,
            [
                ("app.shop".to_string(), 2, Operation::Put),
                ("app.shop".to_string(), 4, Operation::Delete),
            ]
        );
    }
}
