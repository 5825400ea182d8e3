//! The host's command fence on disk: the highest lease term it obeyed and the
//! issue time of the latest command it obeyed ([`Fence`]), kept in its state
//! directory so a restart does not reopen the door to a deposed leader's late
//! commands or to replays of commands obeyed before the restart.
//!
//! One JSON file per host id (`command-fence-<id>.json`), replaced atomically: the
//! new content goes to a temporary file in the same folder, which is synced,
//! renamed over the old one, and the folder synced, so a crash leaves either the
//! old fence or the new one, never a torn file.
//!
//! Architecture invariant: the fence is saved before a command is obeyed.

use lattice_protocol::trust::Fence;
use std::io::Write;
use std::path::{Path, PathBuf};

/// What the file holds: whose fence it is, and the fence.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Stored {
    lattice: String,
    host: String,
    #[serde(flatten)]
    fence: Fence,
}

/// Why the fence could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FenceError {
    #[error("cannot {action} the command fence {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the command fence {} is not valid ({problem}); it keeps this host from obeying a deposed controller after a restart: restore it, or delete it knowingly", path.display())]
    Invalid { path: PathBuf, problem: String },
}

/// The fence file of one host.
#[derive(Debug, Clone)]
pub struct FenceFile {
    path: PathBuf,
    lattice: String,
    host: String,
}

impl FenceFile {
    /// The fence of host `host` of lattice `lattice`, in folder `dir`.
    pub fn new(dir: &Path, lattice: &str, host: &str) -> Self {
        Self {
            path: dir.join(format!("command-fence-{host}.json")),
            lattice: lattice.to_owned(),
            host: host.to_owned(),
        }
    }

    /// Where it lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved fence; the zero fence when there is no file yet.
    pub fn load(&self) -> Result<Fence, FenceError> {
        let text = match std::fs::read(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Fence::default()),
            Err(source) => return Err(self.io("read", source)),
        };
        let invalid = |problem: String| FenceError::Invalid {
            path: self.path.clone(),
            problem,
        };
        let stored: Stored = serde_json::from_slice(&text).map_err(|e| invalid(e.to_string()))?;
        if stored.lattice != self.lattice || stored.host != self.host {
            return Err(invalid(format!(
                "it is the fence of host {} of lattice '{}'",
                stored.host, stored.lattice
            )));
        }
        Ok(stored.fence)
    }

    /// Replace the saved fence with `fence`, atomically and durably.
    pub fn store(&self, fence: Fence) -> Result<(), FenceError> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| self.io("create the folder of", e))?;
        let stored = Stored {
            lattice: self.lattice.clone(),
            host: self.host.clone(),
            fence,
        };
        let mut text = serde_json::to_vec(&stored).map_err(|e| FenceError::Invalid {
            path: self.path.clone(),
            problem: e.to_string(),
        })?;
        text.push(b'\n');
        let temp = self.path.with_extension("json.tmp");
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(&temp)?;
            file.write_all(&text)?;
            file.sync_all()?;
            std::fs::rename(&temp, &self.path)?;
            // The rename itself must reach the disk too.
            std::fs::File::open(dir)?.sync_all()
        };
        write().map_err(|e| self.io("write", e))
    }

    fn io(&self, action: &'static str, source: std::io::Error) -> FenceError {
        FenceError::Io {
            action,
            path: self.path.clone(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fence_survives_a_round_trip_and_belongs_to_one_host() {
        let dir = tempfile::tempdir().unwrap();
        let file = FenceFile::new(dir.path(), "default", "NHOST");
        assert_eq!(file.load().unwrap(), Fence::default());
        let fence = Fence {
            highest_term: 9,
            last_issued_ms: 1_700_000_000_000,
        };
        file.store(fence).unwrap();
        file.store(fence).unwrap();
        assert_eq!(file.load().unwrap(), fence);
        assert!(!file.path().with_extension("json.tmp").exists());

        // Another lattice's host of the same id reads a file that is not its own.
        let other = FenceFile::new(dir.path(), "other", "NHOST");
        let err = other.load().unwrap_err().to_string();
        assert!(err.contains("lattice 'default'"), "{err}");
        // A torn or edited file stops the host rather than dropping the fence.
        std::fs::write(file.path(), "{\"lattice\":").unwrap();
        let err = file.load().unwrap_err().to_string();
        assert!(err.contains("is not valid"), "{err}");
    }
}
