//! `wasi:blobstore@0.2.0-draft` with two backends, picked by the target of the
//! component's blobstore link: `builtin://blobstore-fs` (files under the host's
//! `--blobstore-dir`, so the data stays on that host) and `builtin://blobstore-nats`
//! (one JetStream object store per container, so every host sees the same data).
//!
//! Isolation: containers are keyed by app. On the filesystem each app has its own
//! directory; on NATS each app's container is its own object store bucket
//! (`Subjects::app_blob_bucket`). No name a guest passes can reach another app's
//! data: names are encoded, never joined into paths as they are.
//!
//! Bounds: one value read into or written from guest memory is at most
//! [`MAX_VALUE`] bytes; larger objects are read in ranges (`get-data` reads only the
//! range it is asked for).

mod bindings;
mod fs;
mod host_impl;
mod nats;

use crate::capability::{links_of, Capability, HostServices};
use crate::ctx::Ctx;
use crate::env::Settings;
use bytes::Bytes;
use lattice_protocol::manifest::{Builtin, Image, Manifest};
use lattice_protocol::subjects::Subjects;
use std::collections::BTreeMap;
use std::path::PathBuf;
use wasmtime::component::Linker;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

/// The capability: where each backend keeps the apps' data.
pub struct Blobstore {
    registry: Registry,
}

impl Blobstore {
    pub fn new(host: &HostServices) -> Self {
        let jetstream = host
            .nats
            .clone()
            .map(|c| (async_nats::jetstream::new(c), host.subjects.clone()));
        Self {
            registry: Registry::new(host.blobstore_dir.clone(), jetstream, host.bucket_replicas),
        }
    }
}

/// A component's `wasi:blobstore` links: link name -> the builtin behind it.
struct BlobLinks {
    links: BTreeMap<String, Builtin>,
    registry: Registry,
}

impl Capability for Blobstore {
    fn name(&self) -> &'static str {
        "blobstore"
    }

    fn add_to_linker(&self, linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
        host_impl::add_to_linker(linker)
    }

    fn configure(
        &self,
        manifest: &Manifest,
        component: &str,
        settings: &mut Settings,
    ) -> Result<(), String> {
        let mut links = BTreeMap::new();
        for (link, image) in links_of(manifest, component) {
            if let Some(Image::Builtin(b @ (Builtin::BlobstoreFs | Builtin::BlobstoreNats))) = image
            {
                links.insert(link.name.clone(), *b);
            }
        }
        if !links.is_empty() {
            settings.insert(BlobLinks {
                links,
                registry: self.registry.clone(),
            });
        }
        Ok(())
    }
}

/// The largest value one read or write moves between a guest and a store.
pub const MAX_VALUE: usize = 64 << 20;

/// A failure of a blobstore backend, as the guest will see it (the WIT `error`
/// string).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BlobError(pub String);

impl BlobError {
    fn no_container(name: &str) -> Self {
        BlobError(format!("container '{name}' does not exist"))
    }

    fn no_object(container: &str, name: &str) -> Self {
        BlobError(format!(
            "object '{name}' does not exist in container '{container}'"
        ))
    }
}

/// Metadata of an object: its size and when it was written (seconds since the Unix
/// epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectMeta {
    pub size: u64,
    pub created_at: u64,
}

/// Host-wide blobstore state: where files go and the JetStream context.
#[derive(Clone, Default)]
pub struct Registry {
    fs_root: Option<PathBuf>,
    nats: Option<std::sync::Arc<nats::Backend>>,
}

impl Registry {
    /// `fs_root` enables `builtin://blobstore-fs`, `jetstream` enables
    /// `builtin://blobstore-nats` (containers created with `replicas` copies).
    pub fn new(
        fs_root: Option<PathBuf>,
        jetstream: Option<(async_nats::jetstream::Context, Subjects)>,
        replicas: usize,
    ) -> Self {
        Self {
            fs_root,
            nats: jetstream.map(|(js, subjects)| nats::Backend::new(js, subjects, replicas).into()),
        }
    }

    /// The store of `app` behind builtin `backend`.
    pub fn store(&self, backend: Builtin, app: &str) -> Result<Store, BlobError> {
        match backend {
            Builtin::BlobstoreFs => match &self.fs_root {
                Some(root) => Ok(Store::Fs(fs::Store::new(root, app))),
                None => Err(BlobError(
                    "this host has no blobstore directory for builtin://blobstore-fs \
                     (start it with --blobstore-dir)"
                        .into(),
                )),
            },
            Builtin::BlobstoreNats => match &self.nats {
                Some(nats) => Ok(Store::Nats(nats.store(app))),
                None => Err(BlobError(
                    "this host has no JetStream connection for builtin://blobstore-nats".into(),
                )),
            },
            other => Err(BlobError(format!(
                "builtin://{} is not a blobstore capability",
                other.name()
            ))),
        }
    }
}

/// One app's blobstore.
#[derive(Clone)]
pub enum Store {
    Fs(fs::Store),
    Nats(nats::Store),
}

impl Store {
    /// The backend, as spans name it.
    pub fn system(&self) -> &'static str {
        match self {
            Store::Fs(_) => "fs",
            Store::Nats(_) => "nats",
        }
    }

    /// Create container `name`; an existing one is returned as it is (wasmCloud's
    /// providers behave the same, and components commonly create at start).
    pub async fn create_container(&self, name: &str) -> Result<Container, BlobError> {
        check_name("container", name)?;
        match self {
            Store::Fs(s) => s.create_container(name).await.map(Container::Fs),
            Store::Nats(s) => s.create_container(name).await.map(Container::Nats),
        }
    }

    pub async fn get_container(&self, name: &str) -> Result<Container, BlobError> {
        check_name("container", name)?;
        let found = match self {
            Store::Fs(s) => s.get_container(name).await?.map(Container::Fs),
            Store::Nats(s) => s.get_container(name).await?.map(Container::Nats),
        };
        found.ok_or_else(|| BlobError::no_container(name))
    }

    pub async fn container_exists(&self, name: &str) -> Result<bool, BlobError> {
        check_name("container", name)?;
        Ok(match self {
            Store::Fs(s) => s.get_container(name).await?.is_some(),
            Store::Nats(s) => s.get_container(name).await?.is_some(),
        })
    }

    /// Delete container `name` and everything in it; a missing one is no error.
    pub async fn delete_container(&self, name: &str) -> Result<(), BlobError> {
        check_name("container", name)?;
        match self {
            Store::Fs(s) => s.delete_container(name).await,
            Store::Nats(s) => s.delete_container(name).await,
        }
    }

    /// Copy object `src` to `dest` (which must be in an existing container).
    pub async fn copy_object(
        &self,
        src: (&str, &str),
        dest: (&str, &str),
    ) -> Result<(), BlobError> {
        let from = self.get_container(src.0).await?;
        let to = self.get_container(dest.0).await?;
        let meta = from.object_info(src.1).await?;
        if meta.size > MAX_VALUE as u64 {
            return Err(BlobError(format!(
                "object '{}' is {} bytes, over the {} MiB a copy moves at once",
                src.1,
                meta.size,
                MAX_VALUE >> 20
            )));
        }
        let data = from.get(src.1, 0, u64::MAX).await?;
        to.put(dest.1, data).await
    }

    /// Move (rename) object `src` to `dest`.
    pub async fn move_object(
        &self,
        src: (&str, &str),
        dest: (&str, &str),
    ) -> Result<(), BlobError> {
        if src == dest {
            return self
                .get_container(src.0)
                .await?
                .object_info(src.1)
                .await
                .map(|_| ());
        }
        self.copy_object(src, dest).await?;
        self.get_container(src.0).await?.delete(src.1).await
    }
}

/// An open container.
#[derive(Clone)]
pub enum Container {
    Fs(fs::Container),
    Nats(nats::Container),
}

impl Container {
    /// The backend, as spans name it.
    pub fn system(&self) -> &'static str {
        match self {
            Container::Fs(_) => "fs",
            Container::Nats(_) => "nats",
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Container::Fs(c) => c.name(),
            Container::Nats(c) => c.name(),
        }
    }

    /// When the container was created, in seconds since the Unix epoch.
    pub fn created_at(&self) -> u64 {
        match self {
            Container::Fs(c) => c.created_at(),
            Container::Nats(c) => c.created_at(),
        }
    }

    /// Bytes `start..=end` of object `name` (`end` past the end means to the end;
    /// `end` before `start` is an empty range, as wasmCloud's host answers it).
    pub async fn get(&self, name: &str, start: u64, end: u64) -> Result<Bytes, BlobError> {
        check_name("object", name)?;
        if end < start {
            return Ok(Bytes::new());
        }
        match self {
            Container::Fs(c) => c.get(name, start, end).await,
            Container::Nats(c) => c.get(name, start, end).await,
        }
    }

    /// Create or replace object `name`.
    pub async fn put(&self, name: &str, data: Bytes) -> Result<(), BlobError> {
        check_name("object", name)?;
        match self {
            Container::Fs(c) => c.put(name, data).await,
            Container::Nats(c) => c.put(name, data).await,
        }
    }

    /// Delete object `name`; a missing one is no error.
    pub async fn delete(&self, name: &str) -> Result<(), BlobError> {
        check_name("object", name)?;
        match self {
            Container::Fs(c) => c.delete(name).await,
            Container::Nats(c) => c.delete(name).await,
        }
    }

    pub async fn has(&self, name: &str) -> Result<bool, BlobError> {
        match self.object_info(name).await {
            Ok(_) => Ok(true),
            Err(e) if e == BlobError::no_object(self.name(), name) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub async fn object_info(&self, name: &str) -> Result<ObjectMeta, BlobError> {
        check_name("object", name)?;
        match self {
            Container::Fs(c) => c.info(name).await,
            Container::Nats(c) => c.info(name).await,
        }
    }

    /// The names of every object, in no particular order.
    pub async fn list(&self) -> Result<Vec<String>, BlobError> {
        match self {
            Container::Fs(c) => c.list().await,
            Container::Nats(c) => c.list().await,
        }
    }

    /// Delete every object.
    pub async fn clear(&self) -> Result<(), BlobError> {
        for name in self.list().await? {
            self.delete(&name).await?;
        }
        Ok(())
    }
}

/// The host side of `outgoing-value`: a bounded buffer the guest writes through its
/// body stream, and the objects it is to be stored as once the guest calls
/// `finish`.
pub struct OutgoingValue {
    pub body: MemoryOutputPipe,
    pub targets: Vec<(Container, String)>,
}

impl OutgoingValue {
    pub fn new() -> Self {
        Self {
            body: MemoryOutputPipe::new(MAX_VALUE),
            targets: Vec::new(),
        }
    }
}

impl Default for OutgoingValue {
    fn default() -> Self {
        Self::new()
    }
}

/// The host side of `incoming-value`: bytes read from a store.
pub struct IncomingValue(pub Bytes);

/// The host side of `stream-object-names`: a listing the guest reads in pages.
pub struct ObjectNames {
    pub names: std::vec::IntoIter<String>,
}

/// Names are any non-empty UTF-8 string without NUL (the WIT says "any valid
/// UTF-8"; an empty name has no object behind it).
fn check_name(what: &str, name: &str) -> Result<(), BlobError> {
    if name.is_empty() {
        return Err(BlobError(format!("the {what} name is empty")));
    }
    if name.contains('\0') {
        return Err(BlobError(format!(
            "the {what} name {name:?} contains a NUL character"
        )));
    }
    Ok(())
}

/// Seconds since the Unix epoch of a system time (0 when it is before).
fn epoch_secs(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// How many bytes `start..=end` covers of an object of `size` bytes, or an error
/// when that is over [`MAX_VALUE`].
fn range_len(name: &str, size: u64, start: u64, end: u64) -> Result<usize, BlobError> {
    let to = end.saturating_add(1).min(size);
    let len = to.saturating_sub(start);
    if len > MAX_VALUE as u64 {
        return Err(BlobError(format!(
            "the range {start}..={end} of object '{name}' is {len} bytes, over the {} MiB \
             one read returns: read it in smaller ranges",
            MAX_VALUE >> 20
        )));
    }
    Ok(len as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_bounded() {
        assert_eq!(range_len("o", 10, 0, u64::MAX).unwrap(), 10);
        assert_eq!(range_len("o", 10, 3, 4).unwrap(), 2);
        assert_eq!(range_len("o", 10, 12, 20).unwrap(), 0);
        let big = MAX_VALUE as u64 * 2;
        let e = range_len("o", big, 0, u64::MAX).unwrap_err();
        assert!(e.0.contains("smaller ranges"), "{e}");
        assert!(range_len("o", big, 0, MAX_VALUE as u64 - 1).is_ok());
    }

    #[test]
    fn names_must_be_present() {
        assert!(check_name("object", "").unwrap_err().0.contains("empty"));
        assert!(check_name("object", "a\0b").is_err());
        assert!(check_name("object", "../../etc/passwd").is_ok());
    }
}
