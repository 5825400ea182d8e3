//! The `wasi:blobstore` host traits: resources live in the invocation's table, data
//! in the app's store behind the component's blobstore link.
//!
//! Writing follows wasmCloud's semantics: `write-data` names where an
//! `outgoing-value` goes (it may come before or after the body is written), and
//! `finish` stores the body there. A value dropped without `finish` stores nothing,
//! as the WIT says of an unfinished value (wasmCloud's host stores it on drop: the
//! one habit not copied, since no wasmCloud example relies on it and it would turn
//! a guest's abandoned write into a stored object).
//!
//! Resources are as independent as wasmCloud's host makes them: the output stream
//! of `write-body` is not a child of its value, so `finish` (and dropping the
//! value) while the stream is still alive works, as wasmCloud's own blobstore
//! example does it; bytes written to the stream after `finish` go nowhere.
//! `write-body` may be called again, as wasmCloud's host allows (the WIT says once):
//! each call returns another stream onto the same body. The
//! input stream of `consume-async` and the values and name streams of a container
//! outlive the resources they came from.
//!
//! Each operation that reaches the store is a client span of the invocation,
//! named `"{operation} {container}"`.

use super::bindings::wasi::blobstore::{blobstore, container, types};
use super::{BlobError, BlobLinks, Container, IncomingValue, ObjectNames, OutgoingValue, Store};
use crate::ctx::Ctx;
use crate::telemetry::trace::{self, KeyValue, Kind, Span};
use bytes::Bytes;
use wasmtime::component::{HasSelf, Linker, Resource};
use wasmtime_wasi::p2::bindings::io::streams::{InputStream, OutputStream};
use wasmtime_wasi::p2::pipe::MemoryInputPipe;

type BlobResult<T> = wasmtime::Result<Result<T, String>>;

pub fn add_to_linker(linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
    types::add_to_linker::<Ctx, HasSelf<Ctx>>(linker, |c| c)?;
    container::add_to_linker::<Ctx, HasSelf<Ctx>>(linker, |c| c)?;
    blobstore::add_to_linker::<Ctx, HasSelf<Ctx>>(linker, |c| c)
}

fn msg(e: BlobError) -> String {
    e.0
}

impl Ctx {
    /// The app's store behind the component's `wasi:blobstore` link.
    fn blob_store(&self) -> Result<Store, String> {
        let name = self.link_name("wasi", "blobstore", "blobstore");
        let links = self.env.settings.get::<BlobLinks>();
        let Some((links, builtin)) = links.and_then(|l| Some((l, l.links.get(name)?))) else {
            return Err(format!(
                "component '{}' of app '{}' has no wasi:blobstore link named '{name}': \
                 add a link trait to builtin://blobstore-fs or builtin://blobstore-nats",
                self.env.component, self.env.app
            ));
        };
        links.registry.store(*builtin, &self.env.app).map_err(msg)
    }

    fn container(&self, handle: &Resource<Container>) -> wasmtime::Result<Container> {
        Ok(self.table.get(handle)?.clone())
    }

    /// The span of `op` on `container` (and `object`) of a `system` store.
    fn blob_span(
        &self,
        system: &'static str,
        op: &'static str,
        container: &str,
        object: Option<&str>,
    ) -> Span {
        trace::operation(Kind::Client, self.trace.as_ref(), op, container, || {
            let mut attributes = vec![
                KeyValue::new("lattice.blobstore.system", system),
                KeyValue::new("lattice.blobstore.operation", op),
                KeyValue::new("lattice.blobstore.container", container.to_owned()),
            ];
            if let Some(object) = object {
                attributes.push(KeyValue::new("lattice.blobstore.object", object.to_owned()));
            }
            attributes
        })
    }

    /// The container behind `handle` and the span of `op` on it.
    fn container_op(
        &self,
        handle: &Resource<Container>,
        op: &'static str,
        object: Option<&str>,
    ) -> wasmtime::Result<(Container, Span)> {
        let c = self.container(handle)?;
        let span = self.blob_span(c.system(), op, c.name(), object);
        Ok((c, span))
    }

    /// The store behind the link and the span of `op` on `container`.
    fn store_op(&self, op: &'static str, container: &str) -> Result<(Store, Span), String> {
        let store = self.blob_store()?;
        let span = self.blob_span(store.system(), op, container, None);
        Ok((store, span))
    }
}

impl blobstore::Host for Ctx {
    async fn create_container(&mut self, name: String) -> BlobResult<Resource<Container>> {
        let (store, span) = match self.store_op("create-container", &name) {
            Ok(op) => op,
            Err(e) => return Ok(Err(e)),
        };
        match span.ended(store.create_container(&name).await.map_err(msg)) {
            Ok(c) => Ok(Ok(self.table.push(c)?)),
            Err(e) => Ok(Err(e)),
        }
    }

    async fn get_container(&mut self, name: String) -> BlobResult<Resource<Container>> {
        let (store, span) = match self.store_op("get-container", &name) {
            Ok(op) => op,
            Err(e) => return Ok(Err(e)),
        };
        match span.ended(store.get_container(&name).await.map_err(msg)) {
            Ok(c) => Ok(Ok(self.table.push(c)?)),
            Err(e) => Ok(Err(e)),
        }
    }

    async fn delete_container(&mut self, name: String) -> BlobResult<()> {
        match self.store_op("delete-container", &name) {
            Ok((store, span)) => Ok(span.ended(store.delete_container(&name).await.map_err(msg))),
            Err(e) => Ok(Err(e)),
        }
    }

    async fn container_exists(&mut self, name: String) -> BlobResult<bool> {
        match self.store_op("container-exists", &name) {
            Ok((store, span)) => Ok(span.ended(store.container_exists(&name).await.map_err(msg))),
            Err(e) => Ok(Err(e)),
        }
    }

    async fn copy_object(&mut self, src: types::ObjectId, dest: types::ObjectId) -> BlobResult<()> {
        match self.store_op("copy-object", &src.container) {
            Ok((store, span)) => Ok(span.ended(
                store
                    .copy_object(
                        (&src.container, &src.object),
                        (&dest.container, &dest.object),
                    )
                    .await
                    .map_err(msg),
            )),
            Err(e) => Ok(Err(e)),
        }
    }

    async fn move_object(&mut self, src: types::ObjectId, dest: types::ObjectId) -> BlobResult<()> {
        match self.store_op("move-object", &src.container) {
            Ok((store, span)) => Ok(span.ended(
                store
                    .move_object(
                        (&src.container, &src.object),
                        (&dest.container, &dest.object),
                    )
                    .await
                    .map_err(msg),
            )),
            Err(e) => Ok(Err(e)),
        }
    }
}

impl container::Host for Ctx {}

impl container::HostContainer for Ctx {
    async fn name(&mut self, this: Resource<Container>) -> BlobResult<String> {
        Ok(Ok(self.container(&this)?.name().to_string()))
    }

    async fn info(&mut self, this: Resource<Container>) -> BlobResult<types::ContainerMetadata> {
        let c = self.container(&this)?;
        Ok(Ok(types::ContainerMetadata {
            name: c.name().to_string(),
            created_at: c.created_at(),
        }))
    }

    async fn get_data(
        &mut self,
        this: Resource<Container>,
        name: String,
        start: u64,
        end: u64,
    ) -> BlobResult<Resource<IncomingValue>> {
        let (c, span) = self.container_op(&this, "get-data", Some(&name))?;
        match span.ended(c.get(&name, start, end).await.map_err(msg)) {
            Ok(data) => Ok(Ok(self.table.push(IncomingValue(data))?)),
            Err(e) => Ok(Err(e)),
        }
    }

    async fn write_data(
        &mut self,
        this: Resource<Container>,
        name: String,
        data: Resource<OutgoingValue>,
    ) -> BlobResult<()> {
        let container = self.container(&this)?;
        if let Err(e) = super::check_name("object", &name) {
            return Ok(Err(msg(e)));
        }
        // Stored (and traced) when the value is finished.
        self.table.get_mut(&data)?.targets.push((container, name));
        Ok(Ok(()))
    }

    async fn list_objects(
        &mut self,
        this: Resource<Container>,
    ) -> BlobResult<Resource<ObjectNames>> {
        let (c, span) = self.container_op(&this, "list-objects", None)?;
        match span.ended(c.list().await.map_err(msg)) {
            Ok(names) => Ok(Ok(self.table.push(ObjectNames {
                names: names.into_iter(),
            })?)),
            Err(e) => Ok(Err(e)),
        }
    }

    async fn delete_object(&mut self, this: Resource<Container>, name: String) -> BlobResult<()> {
        let (c, span) = self.container_op(&this, "delete-object", Some(&name))?;
        Ok(span.ended(c.delete(&name).await.map_err(msg)))
    }

    async fn delete_objects(
        &mut self,
        this: Resource<Container>,
        names: Vec<String>,
    ) -> BlobResult<()> {
        let (container, span) = self.container_op(&this, "delete-objects", None)?;
        for name in names {
            if let Err(e) = container.delete(&name).await {
                return Ok(span.ended(Err(msg(e))));
            }
        }
        Ok(Ok(()))
    }

    async fn has_object(&mut self, this: Resource<Container>, name: String) -> BlobResult<bool> {
        let (c, span) = self.container_op(&this, "has-object", Some(&name))?;
        Ok(span.ended(c.has(&name).await.map_err(msg)))
    }

    async fn object_info(
        &mut self,
        this: Resource<Container>,
        name: String,
    ) -> BlobResult<types::ObjectMetadata> {
        let (c, span) = self.container_op(&this, "object-info", Some(&name))?;
        let info = c.object_info(&name).await.map_err(msg);
        Ok(span.ended(info).map(|meta| types::ObjectMetadata {
            name,
            container: c.name().to_string(),
            created_at: meta.created_at,
            size: meta.size,
        }))
    }

    async fn clear(&mut self, this: Resource<Container>) -> BlobResult<()> {
        let (c, span) = self.container_op(&this, "clear", None)?;
        Ok(span.ended(c.clear().await.map_err(msg)))
    }

    async fn drop(&mut self, rep: Resource<Container>) -> wasmtime::Result<()> {
        self.table.delete(rep)?;
        Ok(())
    }
}

impl container::HostStreamObjectNames for Ctx {
    async fn read_stream_object_names(
        &mut self,
        this: Resource<ObjectNames>,
        len: u64,
    ) -> BlobResult<(Vec<String>, bool)> {
        let names = &mut self.table.get_mut(&this)?.names;
        let take = usize::try_from(len).unwrap_or(usize::MAX);
        let page: Vec<String> = names.by_ref().take(take).collect();
        Ok(Ok((page, names.len() == 0)))
    }

    async fn skip_stream_object_names(
        &mut self,
        this: Resource<ObjectNames>,
        num: u64,
    ) -> BlobResult<(u64, bool)> {
        let names = &mut self.table.get_mut(&this)?.names;
        let take = usize::try_from(num).unwrap_or(usize::MAX);
        let skipped = names.by_ref().take(take).count() as u64;
        Ok(Ok((skipped, names.len() == 0)))
    }

    async fn drop(&mut self, rep: Resource<ObjectNames>) -> wasmtime::Result<()> {
        self.table.delete(rep)?;
        Ok(())
    }
}

impl types::Host for Ctx {}

impl types::HostOutgoingValue for Ctx {
    async fn new_outgoing_value(&mut self) -> wasmtime::Result<Resource<OutgoingValue>> {
        Ok(self.table.push(OutgoingValue::new())?)
    }

    async fn outgoing_value_write_body(
        &mut self,
        this: Resource<OutgoingValue>,
    ) -> wasmtime::Result<Result<Resource<OutputStream>, ()>> {
        // Every call gives a stream onto the same body, as wasmCloud's host does (the
        // WIT allows one); bytes land in the order they are written, whichever
        // stream they go through.
        let stream: OutputStream = Box::new(self.table.get(&this)?.body.clone());
        // Not a child of the value: guests finish the value with the stream alive.
        Ok(Ok(self.table.push(stream)?))
    }

    async fn finish(&mut self, this: Resource<OutgoingValue>) -> BlobResult<()> {
        let value = self.table.delete(this)?;
        let body: Bytes = value.body.contents();
        // No write-data named an object: nothing to store, and no error, as
        // wasmCloud's host answers it.
        for (container, name) in value.targets {
            let span = self.blob_span(
                container.system(),
                "write-data",
                container.name(),
                Some(&name),
            );
            if let Err(e) = span.ended(container.put(&name, body.clone()).await.map_err(msg)) {
                return Ok(Err(e));
            }
        }
        Ok(Ok(()))
    }

    async fn drop(&mut self, rep: Resource<OutgoingValue>) -> wasmtime::Result<()> {
        self.table.delete(rep)?;
        Ok(())
    }
}

impl types::HostIncomingValue for Ctx {
    async fn incoming_value_consume_sync(
        &mut self,
        this: Resource<IncomingValue>,
    ) -> BlobResult<Vec<u8>> {
        Ok(Ok(self.table.delete(this)?.0.to_vec()))
    }

    async fn incoming_value_consume_async(
        &mut self,
        this: Resource<IncomingValue>,
    ) -> BlobResult<Resource<InputStream>> {
        let data = self.table.delete(this)?.0;
        let stream: InputStream = Box::new(MemoryInputPipe::new(data));
        Ok(Ok(self.table.push(stream)?))
    }

    async fn size(&mut self, this: Resource<IncomingValue>) -> wasmtime::Result<u64> {
        Ok(self.table.get(&this)?.0.len() as u64)
    }

    async fn drop(&mut self, rep: Resource<IncomingValue>) -> wasmtime::Result<()> {
        self.table.delete(rep)?;
        Ok(())
    }
}
