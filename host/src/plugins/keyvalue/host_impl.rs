//! The `wasi:keyvalue` host traits, routing each call through the component's link.

use super::bindings::wasi::keyvalue::{atomics, batch, store};
use super::{Bucket, KvBackend, KvError, KvLinks};
use crate::ctx::Ctx;
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

impl Ctx {
    fn bucket(&self, handle: &Resource<Bucket>) -> wasmtime::Result<Bucket> {
        Ok(self.table.get(handle)?.clone())
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
        Ok(self.bucket(&this)?.get(&key).await.map_err(other))
    }

    async fn set(&mut self, this: Resource<Bucket>, key: String, value: Vec<u8>) -> KvResult<()> {
        Ok(self.bucket(&this)?.set(&key, value).await.map_err(other))
    }

    async fn delete(&mut self, this: Resource<Bucket>, key: String) -> KvResult<()> {
        Ok(self.bucket(&this)?.delete(&key).await.map_err(other))
    }

    async fn exists(&mut self, this: Resource<Bucket>, key: String) -> KvResult<bool> {
        Ok(self
            .bucket(&this)?
            .get(&key)
            .await
            .map(|v| v.is_some())
            .map_err(other))
    }

    async fn list_keys(
        &mut self,
        this: Resource<Bucket>,
        cursor: Option<u64>,
    ) -> KvResult<store::KeyResponse> {
        Ok(self
            .bucket(&this)?
            .list_keys(cursor.unwrap_or(0))
            .await
            .map(|(keys, cursor)| store::KeyResponse { keys, cursor })
            .map_err(other))
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
        Ok(self
            .bucket(&bucket)?
            .increment(&key, delta)
            .await
            .map_err(other))
    }
}

impl batch::Host for Ctx {
    async fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> KvResult<Vec<Option<(String, Vec<u8>)>>> {
        Ok(self.bucket(&bucket)?.get_many(keys).await.map_err(other))
    }

    async fn set_many(
        &mut self,
        bucket: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> KvResult<()> {
        Ok(self
            .bucket(&bucket)?
            .set_many(key_values)
            .await
            .map_err(other))
    }

    async fn delete_many(&mut self, bucket: Resource<Bucket>, keys: Vec<String>) -> KvResult<()> {
        Ok(self.bucket(&bucket)?.delete_many(keys).await.map_err(other))
    }
}
