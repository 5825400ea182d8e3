//! The filesystem blobstore: `<root>/<app>/<container>/<object>`, each name encoded
//! so that any UTF-8 string is one safe, distinct file name (no `/`, never `.` or
//! `..`, never a leading dot, which marks the temporary files of writes in
//! progress). A write goes to a temporary file that is renamed over the object, so a
//! reader sees the old bytes or the new ones, never half.

use super::{epoch_secs, range_len, BlobError, ObjectMeta};
use bytes::Bytes;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// The longest file name most filesystems take.
const MAX_FILE_NAME: usize = 255;

fn io_err(what: &str, e: std::io::Error) -> BlobError {
    BlobError(format!("blobstore {what} failed: {e}"))
}

/// One app's directory.
#[derive(Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    pub fn new(root: &Path, app: &str) -> Self {
        Self {
            dir: root.join(encode(app)),
        }
    }

    fn path(&self, name: &str) -> Result<PathBuf, BlobError> {
        Ok(self.dir.join(file_name("container", name)?))
    }

    pub async fn create_container(&self, name: &str) -> Result<Container, BlobError> {
        let dir = self.path(name)?;
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| io_err(&format!("creating container '{name}'"), e))?;
        Container::open(dir, name).await
    }

    pub async fn get_container(&self, name: &str) -> Result<Option<Container>, BlobError> {
        let dir = self.path(name)?;
        match tokio::fs::metadata(&dir).await {
            Ok(m) if m.is_dir() => Container::open(dir, name).await.map(Some),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&format!("opening container '{name}'"), e)),
        }
    }

    pub async fn delete_container(&self, name: &str) -> Result<(), BlobError> {
        match tokio::fs::remove_dir_all(self.path(name)?).await {
            Err(e) if e.kind() != ErrorKind::NotFound => {
                Err(io_err(&format!("deleting container '{name}'"), e))
            }
            _ => Ok(()),
        }
    }
}

/// An open container directory.
#[derive(Clone)]
pub struct Container {
    dir: PathBuf,
    name: String,
    created_at: u64,
}

impl Container {
    async fn open(dir: PathBuf, name: &str) -> Result<Self, BlobError> {
        let meta = tokio::fs::metadata(&dir)
            .await
            .map_err(|e| io_err(&format!("opening container '{name}'"), e))?;
        let created = meta.created().or_else(|_| meta.modified());
        Ok(Self {
            dir,
            name: name.to_string(),
            created_at: created.map(epoch_secs).unwrap_or_default(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn created_at(&self) -> u64 {
        self.created_at
    }

    fn path(&self, name: &str) -> Result<PathBuf, BlobError> {
        Ok(self.dir.join(file_name("object", name)?))
    }

    /// Map "no such file" to "no such object" (or container, if the directory went).
    fn missing(&self, object: &str, e: std::io::Error, what: &str) -> BlobError {
        if e.kind() != ErrorKind::NotFound {
            return io_err(&format!("{what} object '{object}'"), e);
        }
        if self.dir.is_dir() {
            BlobError::no_object(&self.name, object)
        } else {
            BlobError::no_container(&self.name)
        }
    }

    pub async fn get(&self, name: &str, start: u64, end: u64) -> Result<Bytes, BlobError> {
        let path = self.path(name)?;
        let mut file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| self.missing(name, e, "reading"))?;
        let size = file
            .metadata()
            .await
            .map_err(|e| io_err(&format!("reading object '{name}'"), e))?
            .len();
        let len = range_len(name, size, start, end)?;
        let mut data = vec![0; len];
        if len > 0 {
            file.seek(std::io::SeekFrom::Start(start))
                .await
                .map_err(|e| io_err(&format!("reading object '{name}'"), e))?;
            file.read_exact(&mut data)
                .await
                .map_err(|e| io_err(&format!("reading object '{name}'"), e))?;
        }
        Ok(data.into())
    }

    pub async fn put(&self, name: &str, data: Bytes) -> Result<(), BlobError> {
        let path = self.path(name)?;
        let temp = self
            .dir
            .join(format!(".write-{:016x}", rand::random::<u64>()));
        if let Err(e) = tokio::fs::write(&temp, &data).await {
            return Err(self.missing(name, e, "writing"));
        }
        if let Err(e) = tokio::fs::rename(&temp, &path).await {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(self.missing(name, e, "writing"));
        }
        Ok(())
    }

    pub async fn delete(&self, name: &str) -> Result<(), BlobError> {
        match tokio::fs::remove_file(self.path(name)?).await {
            Err(e) if e.kind() != ErrorKind::NotFound => {
                Err(io_err(&format!("deleting object '{name}'"), e))
            }
            _ => Ok(()),
        }
    }

    pub async fn info(&self, name: &str) -> Result<ObjectMeta, BlobError> {
        let meta = tokio::fs::metadata(self.path(name)?)
            .await
            .map_err(|e| self.missing(name, e, "reading"))?;
        Ok(ObjectMeta {
            size: meta.len(),
            created_at: meta.modified().map(epoch_secs).unwrap_or_default(),
        })
    }

    pub async fn list(&self) -> Result<Vec<String>, BlobError> {
        let mut entries = tokio::fs::read_dir(&self.dir)
            .await
            .map_err(|e| match e.kind() {
                ErrorKind::NotFound => BlobError::no_container(&self.name),
                _ => io_err(&format!("listing container '{}'", self.name), e),
            })?;
        let mut names = Vec::new();
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(|e| io_err(&format!("listing container '{}'", self.name), e))?
        {
            let file = entry.file_name();
            let Some(file) = file.to_str() else { continue };
            if let Some(name) = decode(file) {
                names.push(name);
            }
        }
        Ok(names)
    }
}

/// `name` encoded as a file name, or an error when it is too long for one.
fn file_name(what: &str, name: &str) -> Result<String, BlobError> {
    let encoded = encode(name);
    if encoded.len() > MAX_FILE_NAME {
        return Err(BlobError(format!(
            "the {what} name '{name}' is too long for a file name ({} bytes encoded, at most {MAX_FILE_NAME})",
            encoded.len()
        )));
    }
    Ok(encoded)
}

/// Keep `[A-Za-z0-9_-]` and non-leading dots; every other byte becomes `%XX`.
fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (i, b) in name.bytes().enumerate() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || (b == b'.' && i > 0) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The inverse of [`encode`]; `None` for anything `encode` cannot have produced
/// (temporary files, strangers in the directory).
fn decode(file: &str) -> Option<String> {
    if file.starts_with('.') {
        return None;
    }
    let bytes = file.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = file.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let name = String::from_utf8(out).ok()?;
    (encode(&name) == file).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_is_safe_and_reversible() {
        for name in [
            "plain",
            "with space",
            "../../etc/passwd",
            ".",
            "..",
            ".hidden",
            "a/b",
            "ünïcødé",
            "100%",
            "a.b.c",
        ] {
            let file = encode(name);
            assert!(!file.contains('/'), "{file}");
            assert!(!file.starts_with('.'), "{file}");
            assert_eq!(decode(&file).as_deref(), Some(name));
        }
        assert_eq!(encode("a.b"), "a.b");
        assert_ne!(encode("a b"), encode("a%20b"));
        assert_eq!(decode(".write-0123"), None);
        assert_eq!(decode("bad%zz"), None);
    }

    #[tokio::test]
    async fn objects_round_trip_and_apps_are_apart() {
        let root = tempfile::tempdir().unwrap();
        let a = Store::new(root.path(), "a");
        let b = Store::new(root.path(), "b");
        let photos = a.create_container("photos").await.unwrap();
        photos
            .put("../x", Bytes::from_static(b"hello"))
            .await
            .unwrap();
        assert_eq!(&photos.get("../x", 1, 3).await.unwrap()[..], b"ell");
        assert_eq!(photos.list().await.unwrap(), vec!["../x".to_string()]);
        assert_eq!(photos.info("../x").await.unwrap().size, 5);
        assert!(b.get_container("photos").await.unwrap().is_none());
        let e = photos.get("nope", 0, 9).await.unwrap_err();
        assert_eq!(e, BlobError::no_object("photos", "nope"));
        a.delete_container("photos").await.unwrap();
        let e = photos.put("y", Bytes::new()).await.unwrap_err();
        assert_eq!(e, BlobError::no_container("photos"));
    }
}
