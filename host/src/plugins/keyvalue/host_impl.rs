//! The `wasi:keyvalue` host traits, routing each call through the component's link.
//! Each operation on a built-in bucket is a client span of the invocation (a
//! provider's bucket is a provider call, with that call's span).

use super::bindings::wasi::keyvalue::{atomics, batch, store};
use super::{Bucket, KvBackend, KvError, KvLinks};
use crate::ctx::Ctx;
use crate::telemetry::trace::{self, KeyValue, Kind, Span};
use wasmtime::component::{HasSelf, Linker, Resource};

type KvResult<T> = wasmtime::Result<Result<T, store::Error>>;

pub fn add_to_linker(linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
    store::add_to_linker::<Ctx, HasSelf<Ctx>>(linker, |c| c)?;
    atomics::add_to_linker::<Ctx, HasSelf<Ctx>>(linker, |c| c)?;
    batch::add_to_linker::<Ctx, HasSelf<Ctx>>(linker, |c| c)
}

fn other(e: KvError) -> store::Error {
    store::Error::Other(e.0)
}

/// `result` as the guest sees it, its span marked failed if it is an error.
fn traced<T>(span: Option<Span>, result: Result<T, KvError>) -> Result<T, store::Error> {
    match span {
        Some(span) => span.ended(result),
        None => result,
    }
    .map_err(other)
}

impl Ctx {
    fn bucket(&self, handle: &Resource<Bucket>) -> wasmtime::Result<Bucket> {
        Ok(self.table.get(handle)?.clone())
    }

    /// The bucket behind `handle` and the span of `op` on it.
    fn kv_op(
        &self,
        handle: &Resource<Bucket>,
        op: &'static str,
    ) -> wasmtime::Result<(Bucket, Option<Span>)> {
        let bucket = self.bucket(handle)?;
        let span = bucket.builtin().map(|(system, name)| {
            trace::operation(Kind::Client, self.trace.as_ref(), op, name, || {
                vec![
                    KeyValue::new("db.system.name", system),
                    KeyValue::new("db.operation.name", op),
                    KeyValue::new("db.collection.name", name.to_owned()),
                ]
            })
        });
        Ok((bucket, span))
    }
}

impl store::Host for Ctx {
    async fn open(&mut self, identifier: String) -> KvResult<Resource<Bucket>> {
        let name = self.link_name("wasi", "keyvalue", "store").to_string();
        let found = self.env.settings.get::<KvLinks>().and_then(|kv| {
            let target = kv.links.get(&name)?.clone();
            Some((kv.router.clone(), kv.registry.clone(), target))
        });
        let Some((router, registry, (backend, capability))) = found else {
            return Ok(Err(store::Error::Other(format!(
                "component '{}' of app '{}' has no wasi:keyvalue link named '{name}': add a link trait to a keyvalue capability",
                self.env.component, self.env.app
            ))));
        };
        let builtin = match backend {
            KvBackend::Builtin(builtin) => builtin,
            KvBackend::Provider => {
                let bucket = super::provider::Bucket {
                    timeout: router.settings().call_timeout,
                    router,
                    app: self.env.app.clone(),
                    component: self.env.component.clone(),
                    link: name,
                    provider: capability,
                    identifier,
                    trace: *self.trace.get_or_insert_with(Default::default),
                };
                return Ok(Ok(self.table.push(Bucket::Provider(bucket))?));
            }
        };
        match registry
            .open((builtin, &capability), &self.env.app, &identifier)
            .await
        {
            Ok(bucket) => Ok(Ok(self.table.push(bucket)?)),
            Err(e) => Ok(Err(other(e))),
        }
    }
}

impl store::HostBucket for Ctx {
    async fn get(&mut self, this: Resource<Bucket>, key: String) -> KvResult<Option<Vec<u8>>> {
        let (bucket, span) = self.kv_op(&this, "get")?;
        Ok(traced(span, bucket.get(&key).await))
    }

    async fn set(&mut self, this: Resource<Bucket>, key: String, value: Vec<u8>) -> KvResult<()> {
        let (bucket, span) = self.kv_op(&this, "set")?;
        Ok(traced(span, bucket.set(&key, value).await))
    }

    async fn delete(&mut self, this: Resource<Bucket>, key: String) -> KvResult<()> {
        let (bucket, span) = self.kv_op(&this, "delete")?;
        Ok(traced(span, bucket.delete(&key).await))
    }

    async fn exists(&mut self, this: Resource<Bucket>, key: String) -> KvResult<bool> {
        let (bucket, span) = self.kv_op(&this, "exists")?;
        Ok(traced(span, bucket.get(&key).await.map(|v| v.is_some())))
    }

    async fn list_keys(
        &mut self,
        this: Resource<Bucket>,
        cursor: Option<u64>,
    ) -> KvResult<store::KeyResponse> {
        let (bucket, span) = self.kv_op(&this, "list-keys")?;
        let listed = bucket.list_keys(cursor.unwrap_or(0)).await;
        Ok(traced(
            span,
            listed.map(|(keys, cursor)| store::KeyResponse { keys, cursor }),
        ))
    }

    async fn drop(&mut self, rep: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(rep)?;
        Ok(())
    }
}

impl atomics::Host for Ctx {
    async fn increment(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        delta: u64,
    ) -> KvResult<u64> {
        let (bucket, span) = self.kv_op(&bucket, "increment")?;
        Ok(traced(span, bucket.increment(&key, delta).await))
    }
}

impl batch::Host for Ctx {
    async fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> KvResult<Vec<Option<(String, Vec<u8>)>>> {
        let (bucket, span) = self.kv_op(&bucket, "get-many")?;
        Ok(traced(span, bucket.get_many(keys).await))
    }

    async fn set_many(
        &mut self,
        bucket: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> KvResult<()> {
        let (bucket, span) = self.kv_op(&bucket, "set-many")?;
        Ok(traced(span, bucket.set_many(key_values).await))
    }

    async fn delete_many(&mut self, bucket: Resource<Bucket>, keys: Vec<String>) -> KvResult<()> {
        let (bucket, span) = self.kv_op(&bucket, "delete-many")?;
        Ok(traced(span, bucket.delete_many(keys).await))
    }
}
