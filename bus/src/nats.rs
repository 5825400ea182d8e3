//! The seam implemented by async-nats: `Client` is a [`Bus`], a JetStream
//! `kv::Store` a [`Kv`].

use crate::{
    Bus, BusError, Entry, EntryStream, HeaderMap, Kv, KvError, Message, Operation, RequestError,
    Subscription,
};
use async_nats::jetstream::kv;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt};
use std::time::Duration;

fn message(m: async_nats::Message) -> Message {
    Message {
        subject: m.subject.to_string(),
        reply: m.reply.map(|r| r.to_string()),
        headers: m.headers,
        payload: m.payload,
    }
}

impl Bus for async_nats::Client {
    fn publish(
        &self,
        subject: String,
        headers: Option<HeaderMap>,
        payload: Bytes,
    ) -> BoxFuture<'_, Result<(), BusError>> {
        Box::pin(async move {
            let published = match headers {
                Some(headers) => {
                    self.publish_with_headers(subject.clone(), headers, payload)
                        .await
                }
                None => self.publish(subject.clone(), payload).await,
            };
            published.map_err(|e| BusError::Publish {
                subject,
                source: e.into(),
            })
        })
    }

    fn request(
        &self,
        subject: String,
        headers: Option<HeaderMap>,
        payload: Bytes,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<Message, RequestError>> {
        Box::pin(async move {
            let mut request = async_nats::Request::new()
                .payload(payload)
                .timeout(Some(timeout));
            if let Some(headers) = headers {
                request = request.headers(headers);
            }
            match self.send_request(subject.clone(), request).await {
                Ok(m) => Ok(message(m)),
                Err(e) => Err(match e.kind() {
                    async_nats::RequestErrorKind::TimedOut => {
                        RequestError::TimedOut { subject, timeout }
                    }
                    async_nats::RequestErrorKind::NoResponders => {
                        RequestError::NoResponders { subject }
                    }
                    _ => RequestError::Other {
                        subject,
                        source: e.into(),
                    },
                }),
            }
        })
    }

    fn subscribe(&self, subject: String) -> BoxFuture<'_, Result<Subscription, BusError>> {
        Box::pin(async move {
            match async_nats::Client::subscribe(self, subject.clone()).await {
                Ok(sub) => Ok(sub.map(message).boxed()),
                Err(e) => Err(BusError::Subscribe {
                    subject,
                    source: e.into(),
                }),
            }
        })
    }

    fn queue_subscribe(
        &self,
        subject: String,
        queue: String,
    ) -> BoxFuture<'_, Result<Subscription, BusError>> {
        Box::pin(async move {
            match async_nats::Client::queue_subscribe(self, subject.clone(), queue).await {
                Ok(sub) => Ok(sub.map(message).boxed()),
                Err(e) => Err(BusError::Subscribe {
                    subject,
                    source: e.into(),
                }),
            }
        })
    }

    fn flush(&self) -> BoxFuture<'_, Result<(), BusError>> {
        Box::pin(async move {
            async_nats::Client::flush(self)
                .await
                .map_err(|e| BusError::Flush { source: e.into() })
        })
    }
}

fn operation(op: kv::Operation) -> Operation {
    match op {
        kv::Operation::Put => Operation::Put,
        kv::Operation::Delete => Operation::Delete,
        kv::Operation::Purge => Operation::Purge,
    }
}

fn entry(e: kv::Entry) -> Entry {
    Entry {
        key: e.key,
        value: e.value,
        revision: e.revision,
        operation: operation(e.operation),
    }
}

impl Kv for kv::Store {
    fn bucket(&self) -> &str {
        &self.name
    }

    fn entry(&self, key: &str) -> BoxFuture<'_, Result<Option<Entry>, KvError>> {
        let key = key.to_string();
        Box::pin(async move {
            match kv::Store::entry(self, key.clone()).await {
                Ok(found) => Ok(found.map(entry)),
                Err(e) => Err(other(self, "reading", key, e)),
            }
        })
    }

    fn create(&self, key: &str, value: Bytes) -> BoxFuture<'_, Result<u64, KvError>> {
        let key = key.to_string();
        Box::pin(async move {
            match kv::Store::create(self, &key, value).await {
                Ok(revision) => Ok(revision),
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                    Err(conflict(self, key, None))
                }
                Err(e) => Err(other(self, "creating", key, e)),
            }
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
            match kv::Store::update(self, &key, value, revision).await {
                Ok(revision) => Ok(revision),
                Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                    Err(conflict(self, key, Some(revision)))
                }
                Err(e) => Err(other(self, "updating", key, e)),
            }
        })
    }

    fn put(&self, key: &str, value: Bytes) -> BoxFuture<'_, Result<u64, KvError>> {
        let key = key.to_string();
        Box::pin(async move {
            kv::Store::put(self, &key, value)
                .await
                .map_err(|e| other(self, "writing", key, e))
        })
    }

    fn delete(&self, key: &str, revision: Option<u64>) -> BoxFuture<'_, Result<(), KvError>> {
        let key = key.to_string();
        Box::pin(async move {
            match kv::Store::delete_expect_revision(self, &key, revision).await {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == kv::DeleteErrorKind::WrongLastRevision => {
                    Err(conflict(self, key, revision))
                }
                Err(e) => Err(other(self, "deleting", key, e)),
            }
        })
    }

    fn keys(&self) -> BoxFuture<'_, Result<Vec<String>, KvError>> {
        Box::pin(async move {
            let keys = kv::Store::keys(self)
                .await
                .map_err(|e| other(self, "listing keys", String::new(), e))?;
            keys.try_collect()
                .await
                .map_err(|e| other(self, "listing keys", String::new(), e))
        })
    }

    fn watch(&self, pattern: &str) -> BoxFuture<'_, Result<EntryStream, KvError>> {
        let pattern = pattern.to_string();
        Box::pin(async move {
            let watch = kv::Store::watch(self, &pattern)
                .await
                .map_err(|e| other(self, "watching", pattern.clone(), e))?;
            Ok(entries(self, watch, pattern))
        })
    }

    fn watch_with_history(&self, pattern: &str) -> BoxFuture<'_, Result<EntryStream, KvError>> {
        let pattern = pattern.to_string();
        Box::pin(async move {
            let watch = kv::Store::watch_with_history(self, &pattern)
                .await
                .map_err(|e| other(self, "watching", pattern.clone(), e))?;
            Ok(entries(self, watch, pattern))
        })
    }
}

/// A watch's entries as the [`Kv`] seam gives them.
fn entries(store: &kv::Store, watch: kv::Watch, pattern: String) -> EntryStream {
    let bucket = store.name.clone();
    watch
        .map(move |e| {
            e.map(entry).map_err(|e| KvError::Other {
                bucket: bucket.clone(),
                doing: "watching",
                key: pattern.clone(),
                source: e.into(),
            })
        })
        .boxed()
}

fn conflict(store: &kv::Store, key: String, expected: Option<u64>) -> KvError {
    KvError::Conflict {
        bucket: store.name.clone(),
        key,
        expected,
    }
}

fn other(
    store: &kv::Store,
    doing: &'static str,
    key: String,
    e: impl std::error::Error + Send + Sync + 'static,
) -> KvError {
    KvError::Other {
        bucket: store.name.clone(),
        doing,
        key,
        source: Box::new(e),
    }
}
