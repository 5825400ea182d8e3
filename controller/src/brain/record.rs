//! An app's record: every stored version of its manifest and which one is deployed,
//! with the rules for changing it. Pure data; `runtime/store.rs` keeps it in KV as
//! JSON, one key per app.

use lattice_protocol::manifest::{assigned_version, Manifest};
use lattice_protocol::messages::VersionInfo;
use serde::{Deserialize, Serialize};

/// How many versions one app keeps; the oldest undeployed ones go first.
pub const MAX_VERSIONS: usize = 32;
/// One stored version of an app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredVersion {
    pub version: String,
    pub manifest: Manifest,
    pub stored_at_ms: u64,
}

/// Everything the controller keeps about one app.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppRecord {
    /// Stored versions, oldest first (insertion order, as wadm).
    pub versions: Vec<StoredVersion>,
    /// The version that is the desired state, if any.
    #[serde(default)]
    pub deployed: Option<String>,
}

/// Why a change to an app record was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error(
        "app '{app}' already has a version {version} with different content; \
         give the changed manifest a new version"
    )]
    VersionConflict { app: String, version: String },
    #[error(
        "app '{app}' has no version {version}; `lattice app history {app}` lists the stored ones"
    )]
    NoSuchVersion { app: String, version: String },
    #[error("app '{app}' not found; `lattice app list` shows the stored apps")]
    NoSuchApp { app: String },
}

impl AppRecord {
    /// The newest stored version.
    pub fn latest(&self) -> Option<&StoredVersion> {
        self.versions.last()
    }

    pub fn version(&self, version: &str) -> Option<&StoredVersion> {
        self.versions.iter().find(|v| v.version == version)
    }

    /// The manifest of the deployed version.
    pub fn deployed_manifest(&self) -> Option<&Manifest> {
        self.deployed
            .as_deref()
            .and_then(|v| self.version(v))
            .map(|v| &v.manifest)
    }

    /// Store `manifest` as a new version; returns its version. Storing a version
    /// again with identical content changes nothing; with different content it is
    /// refused. A manifest without a version is given one, as wadm does: a ULID
    /// ([`assigned_version`]); if the newest stored version has the same content
    /// (the same file deployed again), that version is reused instead.
    pub fn store(&mut self, mut manifest: Manifest, now_ms: u64) -> Result<String, RecordError> {
        if manifest.version.is_empty() {
            let same = self.latest().filter(|v| {
                let mut unversioned = v.manifest.clone();
                unversioned.version.clear();
                unversioned == manifest
            });
            manifest.version = match same {
                Some(v) => v.version.clone(),
                None => assigned_version(&manifest, now_ms),
            };
        }
        if let Some(existing) = self.version(&manifest.version) {
            if existing.manifest == manifest {
                return Ok(manifest.version);
            }
            return Err(RecordError::VersionConflict {
                app: manifest.name,
                version: manifest.version,
            });
        }
        let version = manifest.version.clone();
        self.versions.push(StoredVersion {
            version: version.clone(),
            manifest,
            stored_at_ms: now_ms,
        });
        while self.versions.len() > MAX_VERSIONS {
            let deployed = self.deployed.clone();
            match self
                .versions
                .iter()
                .position(|v| Some(&v.version) != deployed.as_ref())
            {
                Some(i) => {
                    self.versions.remove(i);
                }
                None => break,
            }
        }
        Ok(version)
    }

    /// Make `version` (the newest when `None`) the desired state; returns it.
    pub fn deploy(&mut self, app: &str, version: Option<&str>) -> Result<String, RecordError> {
        let found = match version {
            Some(v) => self.version(v),
            None => self.latest(),
        };
        let Some(found) = found else {
            return Err(RecordError::NoSuchVersion {
                app: app.to_string(),
                version: version.unwrap_or("(latest)").to_string(),
            });
        };
        let v = found.version.clone();
        self.deployed = Some(v.clone());
        Ok(v)
    }

    /// Every `artifact://` image of every stored version: (version, component,
    /// digest). An artifact any of them names must stay in the store, since
    /// any stored version can be deployed again.
    pub fn artifacts(&self) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        for v in &self.versions {
            for c in &v.manifest.components {
                if let lattice_protocol::manifest::Image::Artifact(digest) = &c.image {
                    out.push((v.version.clone(), c.name.clone(), digest.clone()));
                }
            }
        }
        out
    }

    /// Stored versions for `history`, oldest first.
    pub fn history(&self) -> Vec<VersionInfo> {
        self.versions
            .iter()
            .map(|v| VersionInfo {
                version: v.version.clone(),
                stored_at_ms: v.stored_at_ms,
                deployed: self.deployed.as_deref() == Some(v.version.as_str()),
            })
            .collect()
    }
}

/// Whether `name` can be an app name (and so a KV key token).
pub fn valid_app_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(version: &str, description: &str) -> Manifest {
        Manifest {
            name: "shop".into(),
            version: version.into(),
            description: Some(description.into()),
            components: vec![],
            rollout: None,
        }
    }

    #[test]
    fn versions_are_appended_idempotent_and_never_overwritten() {
        let mut r = AppRecord::default();
        r.store(manifest("1", "a"), 10).unwrap();
        r.store(manifest("2", "b"), 20).unwrap();
        r.store(manifest("1", "a"), 30).unwrap();
        assert_eq!(r.versions.len(), 2);
        assert_eq!(r.versions[0].stored_at_ms, 10);
        let err = r.store(manifest("1", "changed"), 40).unwrap_err();
        assert_eq!(
            err.to_string(),
            "app 'shop' already has a version 1 with different content; give the changed \
             manifest a new version"
        );
        assert_eq!(r.latest().unwrap().version, "2");
    }

    #[test]
    fn a_manifest_without_a_version_is_given_a_ulid_reused_for_the_same_content() {
        let mut r = AppRecord::default();
        let now = 1_700_000_000_000;
        let v1 = r.store(manifest("", "a"), now).unwrap();
        assert_eq!(v1.len(), 26, "{v1}");
        assert!(v1.starts_with("01HF"), "a ULID of its store time: {v1}");
        assert_eq!(
            r.versions[0].manifest.version, v1,
            "stored with its version"
        );
        // The same file again: the same version, nothing new stored.
        assert_eq!(r.store(manifest("", "a"), now + 5).unwrap(), v1);
        assert_eq!(r.versions.len(), 1);
        // Changed content: a new, later version, as wadm gives each put.
        let v2 = r.store(manifest("", "b"), now + 10).unwrap();
        assert!(v2 > v1, "{v2} sorts after {v1}");
        assert_eq!(r.deploy("shop", None).unwrap(), v2);
        // Back to the first content: newer than v2, not v1 again.
        let v3 = r.store(manifest("", "a"), now + 20).unwrap();
        assert!(v3 > v2 && r.versions.len() == 3);
    }

    #[test]
    fn deploy_latest_or_named_version_and_history() {
        let mut r = AppRecord::default();
        r.store(manifest("1", "a"), 10).unwrap();
        r.store(manifest("2", "b"), 20).unwrap();
        assert_eq!(r.deploy("shop", None).unwrap(), "2");
        assert_eq!(r.deploy("shop", Some("1")).unwrap(), "1");
        assert_eq!(
            r.deployed_manifest().unwrap().description.as_deref(),
            Some("a")
        );
        let h = r.history();
        assert!(h[0].deployed && !h[1].deployed);
        let err = r.deploy("shop", Some("9")).unwrap_err();
        assert!(
            err.to_string().contains("lattice app history shop"),
            "{err}"
        );
    }

    #[test]
    fn history_is_bounded_but_keeps_the_deployed_version() {
        let mut r = AppRecord::default();
        r.store(manifest("0", "x"), 0).unwrap();
        r.deploy("shop", Some("0")).unwrap();
        for i in 1..=MAX_VERSIONS + 5 {
            r.store(manifest(&i.to_string(), "x"), i as u64).unwrap();
        }
        assert_eq!(r.versions.len(), MAX_VERSIONS);
        assert_eq!(r.versions[0].version, "0");
        assert_eq!(r.latest().unwrap().version, (MAX_VERSIONS + 5).to_string());
    }

    #[test]
    fn app_names() {
        assert!(valid_app_name("shop-1_a"));
        assert!(!valid_app_name(""));
        assert!(!valid_app_name("a.b"));
        assert!(!valid_app_name("a b"));
        assert!(!valid_app_name(&"x".repeat(64)));
    }
}
