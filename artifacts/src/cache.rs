//! The host's on-disk cache of artifacts by digest: `<dir>/sha256/<hex>`, so a
//! restarted host does not fetch again what it already has.
//!
//! Invariants: a file appears under its digest's name only complete and checked
//! (written to a temporary file in the same folder, synced, then renamed); what is
//! read back is checked again, and a file that no longer matches its name is
//! removed and reported as absent. Small text notes about an entry (what kind
//! of artifact it is, which layer an OCI manifest names) live in other folders
//! under the same root, written the same way (a unique temporary file, renamed).

use crate::digest::Digest;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Why the cache could not keep or give back an artifact.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("artifact cache {path}: {doing}: {source}")]
    Io {
        path: PathBuf,
        doing: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("artifact cache: refusing to keep bytes under the wrong name: {0}")]
    Mismatch(#[from] crate::digest::Mismatch),
}

/// An on-disk cache rooted at one folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskCache {
    dir: PathBuf,
}

impl DiskCache {
    /// A cache under `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// Where `digest` is kept.
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.dir.join("sha256").join(digest.hex())
    }

    /// The bytes of `digest`, if kept and still matching. A file that does not
    /// match (a disk error, someone's edit) is removed and reported as absent.
    pub fn get(&self, digest: &Digest) -> Result<Option<Vec<u8>>, CacheError> {
        let path = self.path(digest);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(CacheError::Io {
                    path,
                    doing: "reading",
                    source,
                })
            }
        };
        if let Err(mismatch) = digest.verify(&bytes) {
            tracing::warn!(path = %path.display(), %mismatch, "cached artifact does not match its name; removing it");
            let _ = std::fs::remove_file(&path);
            return Ok(None);
        }
        Ok(Some(bytes))
    }

    /// The path of `digest` when it is kept and still matches (read and checked
    /// now: an executable is run from this path right after).
    pub fn checked_path(&self, digest: &Digest) -> Result<Option<PathBuf>, CacheError> {
        Ok(self.get(digest)?.map(|_| self.path(digest)))
    }

    /// The note `name` in `folder` (e.g. `kind`, `oci`), if there is one.
    pub fn note(&self, folder: &str, name: &str) -> Option<String> {
        std::fs::read_to_string(self.dir.join(folder).join(name)).ok()
    }

    /// Write the note `name` in `folder`: atomically, through a temporary file
    /// of its own (concurrent writers never share one).
    pub fn put_note(&self, folder: &str, name: &str, text: &str) -> Result<(), CacheError> {
        let folder = self.dir.join(folder);
        let io = |path: &Path, doing: &'static str| {
            let path = path.to_path_buf();
            move |source| CacheError::Io {
                path,
                doing,
                source,
            }
        };
        std::fs::create_dir_all(&folder).map_err(io(&folder, "creating the folder"))?;
        let mut tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .tempfile_in(&folder)
            .map_err(io(&folder, "creating a temporary file"))?;
        tmp.write_all(text.as_bytes())
            .map_err(io(tmp.path(), "writing a temporary file"))?;
        let path = folder.join(name);
        tmp.persist(&path).map_err(|e| CacheError::Io {
            path: path.clone(),
            doing: "renaming into place",
            source: e.error,
        })?;
        Ok(())
    }

    /// Keep `bytes` under `digest`, checking they have it; `executable` sets mode
    /// 0755 (else 0644). Atomic: readers see the old state or the whole file.
    pub fn put(
        &self,
        digest: &Digest,
        bytes: &[u8],
        executable: bool,
    ) -> Result<PathBuf, CacheError> {
        digest.verify(bytes)?;
        let folder = self.dir.join("sha256");
        let io = |path: &Path, doing: &'static str| {
            let path = path.to_path_buf();
            move |source| CacheError::Io {
                path,
                doing,
                source,
            }
        };
        std::fs::create_dir_all(&folder).map_err(io(&folder, "creating the folder"))?;
        let mut tmp = tempfile::Builder::new()
            .prefix(&format!(".{}.", digest.hex()))
            .tempfile_in(&folder)
            .map_err(io(&folder, "creating a temporary file"))?;
        tmp.write_all(bytes)
            .map_err(io(tmp.path(), "writing a temporary file"))?;
        tmp.as_file()
            .sync_all()
            .map_err(io(tmp.path(), "syncing a temporary file"))?;
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = if executable { 0o755 } else { 0o644 };
            std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(mode))
                .map_err(io(tmp.path(), "setting the mode"))?;
        }
        let path = self.path(digest);
        tmp.persist(&path).map_err(|e| CacheError::Io {
            path: path.clone(),
            doing: "renaming into place",
            source: e.error,
        })?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn kept_by_digest_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::new(dir.path());
        let d = Digest::of(b"component bytes");
        assert!(cache.get(&d).unwrap().is_none());
        let path = cache.put(&d, b"component bytes", false).unwrap();
        assert_eq!(path, dir.path().join("sha256").join(d.hex()));
        assert_eq!(cache.get(&d).unwrap().unwrap(), b"component bytes");
        // Nothing but the file itself is left in the folder (no temporaries).
        let names: Vec<_> = std::fs::read_dir(dir.path().join("sha256"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(d.hex())]);
    }

    #[test]
    fn refuses_bytes_under_the_wrong_name() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::new(dir.path());
        let d = Digest::of(b"right");
        let err = cache.put(&d, b"wrong", false).unwrap_err();
        assert!(matches!(err, CacheError::Mismatch(_)), "{err}");
        assert!(!cache.path(&d).exists());
    }

    #[test]
    fn a_file_changed_on_disk_is_removed_not_served() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::new(dir.path());
        let d = Digest::of(b"original");
        cache.put(&d, b"original", false).unwrap();
        std::fs::write(cache.path(&d), b"tampered").unwrap();
        assert!(cache.get(&d).unwrap().is_none());
        assert!(!cache.path(&d).exists());
    }

    #[test]
    fn executables_are_0755() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::new(dir.path());
        let d = Digest::of(b"#!/bin/sh\n");
        let path = cache.put(&d, b"#!/bin/sh\n", true).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755);
        assert_eq!(cache.checked_path(&d).unwrap(), Some(path));
    }

    #[test]
    fn concurrent_note_writers_each_use_their_own_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::new(dir.path());
        assert_eq!(cache.note("oci", "abc"), None);
        std::thread::scope(|s| {
            for i in 0..8 {
                let cache = &cache;
                s.spawn(move || {
                    for _ in 0..50 {
                        cache
                            .put_note("oci", "abc", &format!("writer {i}"))
                            .unwrap();
                    }
                });
            }
        });
        assert!(cache.note("oci", "abc").unwrap().starts_with("writer "));
        let names: Vec<_> = std::fs::read_dir(dir.path().join("oci"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("abc")]);
    }

    #[test]
    fn concurrent_writers_of_one_digest_leave_one_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::new(dir.path());
        let bytes = vec![7u8; 1 << 20];
        let d = Digest::of(&bytes);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| cache.put(&d, &bytes, false).unwrap());
            }
        });
        assert_eq!(cache.get(&d).unwrap().unwrap(), bytes);
        assert_eq!(
            std::fs::read_dir(dir.path().join("sha256"))
                .unwrap()
                .count(),
            1
        );
    }
}
