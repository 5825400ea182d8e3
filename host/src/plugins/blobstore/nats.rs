//! The NATS blobstore: one JetStream object store per app and container
//! (`Subjects::app_blob_bucket`), created by `create-container`. Object names are
//! stored as they are (the object store encodes them itself).

use super::{range_len, BlobError, ObjectMeta};
use async_nats::jetstream::{self, object_store, ErrorCode};
use bytes::Bytes;
use futures::TryStreamExt;
use lattice_protocol::subjects::Subjects;
use std::sync::Arc;
use tokio::io::AsyncReadExt;

fn err(what: &str, e: impl std::fmt::Display) -> BlobError {
    BlobError(format!("NATS blobstore {what} failed: {e}"))
}

#[derive(Clone)]
pub struct Backend {
    js: jetstream::Context,
    subjects: Subjects,
    /// JetStream replicas of each container created.
    replicas: usize,
}

impl Backend {
    pub fn new(js: jetstream::Context, subjects: Subjects, replicas: usize) -> Self {
        Self {
            js,
            subjects,
            replicas: replicas.max(1),
        }
    }

    pub fn store(self: &Arc<Self>, app: &str) -> Store {
        Store {
            backend: self.clone(),
            app: app.to_string(),
        }
    }
}

/// One app's containers.
#[derive(Clone)]
pub struct Store {
    backend: Arc<Backend>,
    app: String,
}

impl Store {
    fn bucket(&self, container: &str) -> String {
        self.backend.subjects.app_blob_bucket(&self.app, container)
    }

    pub async fn create_container(&self, name: &str) -> Result<Container, BlobError> {
        if let Some(found) = self.get_container(name).await? {
            return Ok(found);
        }
        let config = object_store::Config {
            bucket: self.bucket(name),
            description: Some(format!(
                "lattice blobstore container '{name}' of app '{}'",
                self.app
            )),
            num_replicas: self.backend.replicas,
            ..Default::default()
        };
        self.backend
            .js
            .create_object_store(config)
            .await
            .map_err(|e| err(&format!("creating container '{name}'"), e))?;
        self.get_container(name)
            .await?
            .ok_or_else(|| BlobError::no_container(name))
    }

    pub async fn get_container(&self, name: &str) -> Result<Option<Container>, BlobError> {
        let bucket = self.bucket(name);
        let created = match self.backend.js.get_stream(format!("OBJ_{bucket}")).await {
            Ok(stream) => stream.cached_info().created.unix_timestamp().max(0) as u64,
            Err(e) => match e.kind() {
                jetstream::context::GetStreamErrorKind::JetStream(js)
                    if js.error_code() == ErrorCode::STREAM_NOT_FOUND =>
                {
                    return Ok(None)
                }
                _ => return Err(err(&format!("opening container '{name}'"), e)),
            },
        };
        let store = self
            .backend
            .js
            .get_object_store(&bucket)
            .await
            .map_err(|e| err(&format!("opening container '{name}'"), e))?;
        Ok(Some(Container {
            store: Arc::new(store),
            name: name.to_string(),
            created_at: created,
        }))
    }

    pub async fn delete_container(&self, name: &str) -> Result<(), BlobError> {
        if self.get_container(name).await?.is_none() {
            return Ok(());
        }
        self.backend
            .js
            .delete_object_store(self.bucket(name))
            .await
            .map_err(|e| err(&format!("deleting container '{name}'"), e))
    }
}

/// An open container: its object store.
#[derive(Clone)]
pub struct Container {
    store: Arc<object_store::ObjectStore>,
    name: String,
    created_at: u64,
}

impl Container {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn created_at(&self) -> u64 {
        self.created_at
    }

    pub async fn get(&self, name: &str, start: u64, end: u64) -> Result<Bytes, BlobError> {
        let size = self.info(name).await?.size;
        let len = range_len(name, size, start, end)?;
        if len == 0 {
            return Ok(Bytes::new());
        }
        let object = self.store.get(name).await.map_err(|e| match e.kind() {
            object_store::GetErrorKind::NotFound => BlobError::no_object(&self.name, name),
            _ => err(&format!("reading object '{name}'"), e),
        })?;
        let mut object = object.take(start.saturating_add(len as u64));
        // Skip to `start`: objects are read as a stream of chunks from the start.
        tokio::io::copy(&mut (&mut object).take(start), &mut tokio::io::sink())
            .await
            .map_err(|e| err(&format!("reading object '{name}'"), e))?;
        let mut data = Vec::with_capacity(len);
        object
            .read_to_end(&mut data)
            .await
            .map_err(|e| err(&format!("reading object '{name}'"), e))?;
        Ok(data.into())
    }

    pub async fn put(&self, name: &str, data: Bytes) -> Result<(), BlobError> {
        self.store
            .put(name, &mut data.as_ref())
            .await
            .map(|_| ())
            .map_err(|e| err(&format!("writing object '{name}'"), e))
    }

    pub async fn delete(&self, name: &str) -> Result<(), BlobError> {
        match self.store.delete(name).await {
            Err(e) if e.kind() != object_store::DeleteErrorKind::NotFound => {
                Err(err(&format!("deleting object '{name}'"), e))
            }
            _ => Ok(()),
        }
    }

    pub async fn info(&self, name: &str) -> Result<ObjectMeta, BlobError> {
        let info = self.store.info(name).await.map_err(|e| match e.kind() {
            object_store::InfoErrorKind::NotFound => BlobError::no_object(&self.name, name),
            _ => err(&format!("reading object '{name}'"), e),
        })?;
        Ok(ObjectMeta {
            size: info.size as u64,
            created_at: info
                .modified
                .map(|t| t.unix_timestamp().max(0) as u64)
                .unwrap_or_default(),
        })
    }

    pub async fn list(&self) -> Result<Vec<String>, BlobError> {
        let what = format!("listing container '{}'", self.name);
        let list = self.store.list().await.map_err(|e| err(&what, e))?;
        list.try_filter(|info| std::future::ready(!info.deleted))
            .map_ok(|info| info.name)
            .try_collect()
            .await
            .map_err(|e| err(&what, e))
    }
}
