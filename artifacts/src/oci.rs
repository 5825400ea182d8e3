//! OCI registries: resolve a tag to its manifest digest, pull a Wasm component or a
//! provider executable by digest (every byte checked), push them, all through the
//! `oci-client` crate (no hand-written registry protocol).
//!
//! Layouts (docs/protocol.md, "OCI artifacts"):
//! - a **component** is one image manifest with the config media type
//!   [`WASM_CONFIG_MEDIA_TYPE`] and one layer [`WASM_LAYER_MEDIA_TYPE`], as `wash
//!   push`, `wkg` and `oci-wasm` write it (pulls also accept wasmCloud's older
//!   layer media types);
//! - a **provider** is an image index whose entries carry `platform.os` and
//!   `platform.architecture` (Rust's `std::env::consts` names), each a manifest
//!   with the config [`PROVIDER_CONFIG_MEDIA_TYPE`] (`{"os","architecture"}`) and
//!   one layer [`PROVIDER_LAYER_MEDIA_TYPE`], the executable.
//!
//! Every request has a deadline ([`RegistrySettings::timeout`]); a layer larger
//! than [`RegistrySettings::max_layer_bytes`] is refused before and while it is
//! read, and no more than 1 MiB is set aside for it before its bytes arrive (the
//! size a manifest announces is the registry's word); a manifest over 4 MiB is
//! refused once read (oci-client reads manifests whole); plain HTTP is spoken
//! only to the registries in [`RegistrySettings::insecure`].

use crate::credentials::Credentials;
use crate::digest::{Digest, Mismatch};
use futures::StreamExt as _;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use std::time::Duration;

/// The config media type of a Wasm component artifact (CNCF wasm-oci, `oci-wasm`).
pub const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// The layer media type of a Wasm component.
pub const WASM_LAYER_MEDIA_TYPE: &str = "application/wasm";
/// Layer media types older `wash push` versions wrote; accepted on pull.
const WASM_LAYER_LEGACY: [&str; 2] = [
    "application/vnd.wasm.content.layer.v1+wasm",
    "application/vnd.module.wasm.content.layer.v1+wasm",
];
/// The config media type of a provider executable for one OS and architecture.
pub const PROVIDER_CONFIG_MEDIA_TYPE: &str = "application/vnd.lattice.provider.config.v1+json";
/// The layer media type of a provider executable.
pub const PROVIDER_LAYER_MEDIA_TYPE: &str = "application/vnd.lattice.provider.executable.v1";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// The largest manifest or config accepted. `oci-client` reads a manifest body
/// whole (`pull_manifest_raw` has no streaming form), so this is checked once the
/// body is read; until then the read is bounded by [`RegistrySettings::timeout`].
const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;
/// The most memory set aside for a layer before its bytes arrive.
const LAYER_INITIAL_CAPACITY: u64 = 1024 * 1024;

/// The capacity a layer's buffer starts with, given the size a manifest announces.
fn layer_capacity(announced: u64) -> usize {
    announced.min(LAYER_INITIAL_CAPACITY) as usize
}

/// What an artifact holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A Wasm component.
    Component,
    /// A provider executable for one OS and architecture.
    Provider(Platform),
}

/// An OS and CPU architecture, in Rust's `std::env::consts` names (`linux`,
/// `x86_64`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Platform {
    /// `std::env::consts::OS`.
    pub os: String,
    /// `std::env::consts::ARCH`.
    pub architecture: String,
}

impl Platform {
    /// The platform this program runs on.
    pub fn current() -> Self {
        Self {
            os: std::env::consts::OS.into(),
            architecture: std::env::consts::ARCH.into(),
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)
    }
}

/// How to talk to registries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrySettings {
    /// Registries (`host[:port]`, as written in references) spoken to over plain
    /// HTTP (`--allow-insecure-registry`); every other one over HTTPS only.
    pub insecure: Vec<String>,
    /// Where logins come from.
    pub credentials: Credentials,
    /// The largest layer pulled.
    pub max_layer_bytes: u64,
    /// The deadline of one operation (a resolve, a manifest, a layer's download).
    pub timeout: Duration,
}

impl Default for RegistrySettings {
    fn default() -> Self {
        Self {
            insecure: Vec::new(),
            credentials: Credentials::none(),
            max_layer_bytes: 256 * 1024 * 1024,
            timeout: Duration::from_secs(120),
        }
    }
}

/// Why a registry operation failed. Every message names the reference or the
/// registry.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// Not an OCI reference.
    #[error("'{reference}' is not an OCI reference: {reason}")]
    Reference {
        /// As given.
        reference: String,
        /// Why.
        reason: String,
    },
    /// A pull needs `name@sha256:…`.
    #[error("'{0}' is not pinned to a digest (name@sha256:…): hosts run only pinned images, which the controller writes when it stores a version")]
    Unpinned(String),
    /// The registry wants (other) credentials.
    #[error("registry {registry}: unauthorized ({detail}); give credentials with LATTICE_REGISTRY_USER/LATTICE_REGISTRY_PASSWORD and LATTICE_REGISTRY_HOST={registry}, or in Docker's config.json (--registry-config)")]
    Unauthorized {
        /// `host[:port]`.
        registry: String,
        /// What the registry said.
        detail: String,
    },
    /// The bytes are not the ones named.
    #[error("{reference}: {mismatch}")]
    Mismatch {
        /// The reference pulled.
        reference: String,
        /// Expected and actual digests.
        mismatch: Mismatch,
    },
    /// Larger than allowed.
    #[error("{reference}: the {what} is {size} bytes, more than the limit of {limit} bytes")]
    TooLarge {
        /// The reference pulled.
        reference: String,
        /// `layer`, `manifest`.
        what: &'static str,
        /// Its size (as announced or as read so far).
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Not the layout of a lattice artifact of that kind.
    #[error("{reference}: {reason}")]
    Layout {
        /// The reference pulled.
        reference: String,
        /// What is wrong.
        reason: String,
    },
    /// No answer within the deadline.
    #[error("registry {registry}: no answer for {reference} within {secs}s")]
    Timeout {
        /// `host[:port]`.
        registry: String,
        /// The reference.
        reference: String,
        /// The deadline.
        secs: u64,
    },
    /// Anything else the registry or the connection said.
    #[error("registry {registry}: {reference}: {reason}")]
    Registry {
        /// `host[:port]`.
        registry: String,
        /// The reference.
        reference: String,
        /// What went wrong.
        reason: String,
    },
    /// Credentials could not be read.
    #[error("registry {registry}: {reason}")]
    Credentials {
        /// `host[:port]`.
        registry: String,
        /// What went wrong.
        reason: String,
    },
}

/// What a pull returns: the verified bytes and the digests that name them.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The layer's bytes (checked against `layer`).
    pub bytes: Vec<u8>,
    /// The layer's digest.
    pub layer: Digest,
    /// The digest of the reference pulled (an index's, for providers).
    pub manifest: Digest,
}

/// A client for OCI registries with the lattice's settings.
#[derive(Clone)]
pub struct Registry {
    client: Client,
    settings: RegistrySettings,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("settings", &self.settings)
            .finish()
    }
}

/// Parse `reference` (with or without `oci://`) as the OCI client does, after the
/// lattice's own syntax check.
pub fn parse_reference(reference: &str) -> Result<Reference, OciError> {
    let bare = reference.strip_prefix("oci://").unwrap_or(reference);
    let invalid = |reason: String| OciError::Reference {
        reference: reference.into(),
        reason,
    };
    lattice_protocol::manifest::OciReference::parse(bare).map_err(invalid)?;
    bare.parse::<Reference>()
        .map_err(|e| invalid(e.to_string()))
}

impl Registry {
    /// A client with `settings`.
    pub fn new(settings: RegistrySettings) -> Result<Self, OciError> {
        // The workspace's rustls runs on ring; reqwest is built without a provider
        // of its own and uses the process default.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = ClientConfig {
            protocol: ClientProtocol::HttpsExcept(settings.insecure.clone()),
            read_timeout: Some(settings.timeout),
            connect_timeout: Some(settings.timeout.min(Duration::from_secs(10))),
            // An index is resolved by this module, per kind, never by the client.
            platform_resolver: None,
            ..ClientConfig::default()
        };
        let client = Client::try_from(config).map_err(|e| OciError::Registry {
            registry: "-".into(),
            reference: "-".into(),
            reason: format!("cannot make an HTTP client: {e}"),
        })?;
        Ok(Self { client, settings })
    }

    /// The settings this client was made with.
    pub fn settings(&self) -> &RegistrySettings {
        &self.settings
    }

    async fn auth(&self, reference: &Reference) -> Result<RegistryAuth, OciError> {
        let registry = reference.registry();
        match self.settings.credentials.for_registry(registry).await {
            Ok(Some(login)) => Ok(RegistryAuth::Basic(login.username, login.password)),
            Ok(None) => Ok(RegistryAuth::Anonymous),
            Err(reason) => Err(OciError::Credentials {
                registry: registry.into(),
                reason,
            }),
        }
    }

    /// Run `op` within the deadline, turning the client's errors into ours.
    async fn timed<T>(
        &self,
        reference: &Reference,
        op: impl std::future::Future<Output = Result<T, OciDistributionError>>,
    ) -> Result<T, OciError> {
        match tokio::time::timeout(self.settings.timeout, op).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.error(reference, e)),
            Err(_) => Err(OciError::Timeout {
                registry: reference.registry().into(),
                reference: reference.whole(),
                secs: self.settings.timeout.as_secs(),
            }),
        }
    }

    fn error(&self, reference: &Reference, e: OciDistributionError) -> OciError {
        let registry = reference.registry().to_string();
        let unauthorized = |detail: String| OciError::Unauthorized {
            registry: registry.clone(),
            detail,
        };
        match e {
            OciDistributionError::UnauthorizedError { url } => {
                unauthorized(format!("401 for {url}"))
            }
            OciDistributionError::AuthenticationFailure(reason) => unauthorized(reason),
            OciDistributionError::ServerError {
                code: code @ (401 | 403),
                url,
                ..
            } => unauthorized(format!("{code} for {url}")),
            OciDistributionError::RegistryError { envelope, .. }
                if envelope.errors.iter().any(|e| {
                    let code = format!("{:?}", e.code).to_ascii_lowercase();
                    code.contains("unauthorized") || code.contains("denied")
                }) =>
            {
                unauthorized(format!("{envelope:?}"))
            }
            other => {
                let mut reason = format!("{other}");
                let mut source = std::error::Error::source(&other);
                while let Some(s) = source {
                    reason.push_str(&format!(": {s}"));
                    source = s.source();
                }
                if !self.settings.insecure.iter().any(|h| h == &registry)
                    && (reason.contains("InvalidContentType")
                        || reason.contains("invalid HTTP version")
                        || reason.contains("record overflow")
                        || reason.contains("tls")
                        || reason.contains("TLS"))
                {
                    reason.push_str(&format!(
                        " (HTTPS to {registry} failed; if it is a plain-HTTP registry, allow it with --allow-insecure-registry {registry})"
                    ));
                }
                OciError::Registry {
                    registry,
                    reference: reference.whole(),
                    reason,
                }
            }
        }
    }

    /// The manifest digest `reference` names now (a tag's current target; a
    /// pinned reference's own digest, after checking the registry has it).
    pub async fn resolve(&self, reference: &str) -> Result<Digest, OciError> {
        let parsed = parse_reference(reference)?;
        let auth = self.auth(&parsed).await?;
        let digest = self
            .timed(&parsed, self.client.fetch_manifest_digest(&parsed, &auth))
            .await?;
        digest.parse::<Digest>().map_err(|reason| OciError::Layout {
            reference: reference.into(),
            reason: format!("the registry names the manifest by '{digest}': {reason}"),
        })
    }

    /// `reference` pinned: `name[:tag]@sha256:…` with the digest its tag names now.
    /// An already pinned reference is checked to exist and returned as written.
    pub async fn pin(&self, reference: &str) -> Result<String, OciError> {
        let bare = reference.strip_prefix("oci://").unwrap_or(reference);
        let digest = self.resolve(bare).await?;
        Ok(match bare.split_once('@') {
            Some(_) => bare.to_string(),
            None => format!("{bare}@{digest}"),
        })
    }

    async fn manifest_raw(
        &self,
        reference: &Reference,
        auth: &RegistryAuth,
        expected: &Digest,
    ) -> Result<serde_json::Value, OciError> {
        // Read whole by oci-client (no streaming form for manifests): the size
        // limit applies after the read, which the deadline bounds.
        let (body, _) = self
            .timed(
                reference,
                self.client.pull_manifest_raw(
                    reference,
                    auth,
                    &[OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST],
                ),
            )
            .await?;
        if body.len() > MAX_MANIFEST_BYTES {
            return Err(OciError::TooLarge {
                reference: reference.whole(),
                what: "manifest",
                size: body.len() as u64,
                limit: MAX_MANIFEST_BYTES as u64,
            });
        }
        expected
            .verify(&body)
            .map_err(|mismatch| OciError::Mismatch {
                reference: reference.whole(),
                mismatch,
            })?;
        serde_json::from_slice(&body).map_err(|e| OciError::Layout {
            reference: reference.whole(),
            reason: format!("the manifest is not JSON: {e}"),
        })
    }

    /// Pull the artifact `reference` (which must be pinned, `name@sha256:…`) of
    /// `kind`: the manifest is checked against the pinned digest, its layout
    /// against `kind`, and the layer against the manifest's digest and the size
    /// limit.
    pub async fn pull(&self, reference: &str, kind: &Kind) -> Result<Pulled, OciError> {
        let parsed = parse_reference(reference)?;
        let Some(pinned) = parsed.digest() else {
            return Err(OciError::Unpinned(reference.into()));
        };
        let layout = |reason: String| OciError::Layout {
            reference: reference.into(),
            reason,
        };
        let manifest_digest: Digest = pinned.parse().map_err(layout)?;
        let auth = self.auth(&parsed).await?;
        let mut manifest = self.manifest_raw(&parsed, &auth, &manifest_digest).await?;
        let is_index = manifest.get("manifests").is_some();
        match (kind, is_index) {
            (Kind::Component, true) => {
                return Err(layout(
                    "is an image index, not a Wasm component (one manifest with an application/wasm layer)".into(),
                ))
            }
            (Kind::Provider(platform), true) => {
                let entries = manifest["manifests"].as_array().cloned().unwrap_or_default();
                let mut offered = Vec::new();
                let mut chosen = None;
                for entry in &entries {
                    let os = entry["platform"]["os"].as_str().unwrap_or("?");
                    let arch = entry["platform"]["architecture"].as_str().unwrap_or("?");
                    offered.push(format!("{os}/{arch}"));
                    if os == platform.os && arch == platform.architecture {
                        chosen = entry["digest"].as_str().map(str::to_string);
                    }
                }
                let Some(digest) = chosen else {
                    return Err(layout(format!(
                        "has no provider for {platform} (it has: {})",
                        if offered.is_empty() { "none".into() } else { offered.join(", ") }
                    )));
                };
                let entry_digest: Digest = digest.parse().map_err(layout)?;
                let entry_ref = Reference::with_digest(
                    parsed.registry().into(),
                    parsed.repository().into(),
                    digest.clone(),
                );
                manifest = self.manifest_raw(&entry_ref, &auth, &entry_digest).await?;
            }
            (Kind::Provider(_), false) => {
                return Err(layout(
                    "is a single manifest; a provider is an image index with an entry per OS and architecture (lattice push --provider)".into(),
                ))
            }
            (Kind::Component, false) => {}
        }
        let config_type = manifest["config"]["mediaType"].as_str().unwrap_or("");
        let layers = manifest["layers"].as_array().cloned().unwrap_or_default();
        let [layer] = layers.as_slice() else {
            return Err(layout(format!(
                "has {} layers; a lattice artifact has exactly one",
                layers.len()
            )));
        };
        let layer_type = layer["mediaType"].as_str().unwrap_or("");
        match kind {
            Kind::Component => {
                if layer_type != WASM_LAYER_MEDIA_TYPE && !WASM_LAYER_LEGACY.contains(&layer_type) {
                    return Err(layout(format!(
                        "its layer is '{layer_type}', not a Wasm component ({WASM_LAYER_MEDIA_TYPE}; config {WASM_CONFIG_MEDIA_TYPE})"
                    )));
                }
            }
            Kind::Provider(platform) => {
                if config_type != PROVIDER_CONFIG_MEDIA_TYPE
                    || layer_type != PROVIDER_LAYER_MEDIA_TYPE
                {
                    return Err(layout(format!(
                        "the {platform} entry is config '{config_type}' with layer '{layer_type}', not a provider executable ({PROVIDER_CONFIG_MEDIA_TYPE}, {PROVIDER_LAYER_MEDIA_TYPE})"
                    )));
                }
            }
        }
        let layer_digest_text = layer["digest"].as_str().unwrap_or("");
        let layer_digest: Digest = layer_digest_text.parse().map_err(layout)?;
        let size = layer["size"].as_u64().unwrap_or(0);
        let limit = self.settings.max_layer_bytes;
        if size > limit {
            return Err(OciError::TooLarge {
                reference: reference.into(),
                what: "layer",
                size,
                limit,
            });
        }
        let descriptor = oci_client::manifest::OciDescriptor {
            media_type: layer_type.into(),
            digest: layer_digest_text.into(),
            size: size as i64,
            ..Default::default()
        };
        let bytes = self
            .timed(&parsed, async {
                let mut stream = self.client.pull_blob_stream(&parsed, &descriptor).await?;
                // The announced size is the registry's word: grow past 1 MiB only
                // as bytes arrive (the limit is checked per chunk).
                let mut bytes = Vec::with_capacity(layer_capacity(size));
                while let Some(chunk) = stream.next().await {
                    match chunk {
                        Ok(chunk) => {
                            if (bytes.len() + chunk.len()) as u64 > limit {
                                return Ok(Err(OciError::TooLarge {
                                    reference: reference.into(),
                                    what: "layer",
                                    size: (bytes.len() + chunk.len()) as u64,
                                    limit,
                                }));
                            }
                            bytes.extend_from_slice(&chunk);
                        }
                        // The client's own digest check fails at the end of the
                        // stream: ours below names both digests.
                        Err(_) if bytes.len() as u64 == size => break,
                        Err(e) => return Err(OciDistributionError::IoError(e)),
                    }
                }
                Ok(Ok(bytes))
            })
            .await??;
        layer_digest
            .verify(&bytes)
            .map_err(|mismatch| OciError::Mismatch {
                reference: reference.into(),
                mismatch,
            })?;
        Ok(Pulled {
            bytes,
            layer: layer_digest,
            manifest: manifest_digest,
        })
    }

    async fn push_blob(
        &self,
        reference: &Reference,
        bytes: Vec<u8>,
    ) -> Result<(String, u64), OciError> {
        let digest = Digest::of(&bytes).to_string();
        let size = bytes.len() as u64;
        self.timed(reference, self.client.push_blob(reference, bytes, &digest))
            .await?;
        Ok((digest, size))
    }

    async fn push_manifest(
        &self,
        reference: &Reference,
        manifest: &serde_json::Value,
        media_type: &'static str,
    ) -> Result<Digest, OciError> {
        let body = serde_json::to_vec(manifest).map_err(|e| OciError::Layout {
            reference: reference.whole(),
            reason: e.to_string(),
        })?;
        let digest = Digest::of(&body);
        self.timed(
            reference,
            self.client.push_manifest_raw(
                reference,
                body,
                http::HeaderValue::from_static(media_type),
            ),
        )
        .await?;
        Ok(digest)
    }

    /// Push `bytes` as an artifact of `kind` to `reference` (a tag). Returns the
    /// digest of what the tag names now (the manifest; for a provider, the index,
    /// whose entry for the platform is added or replaced).
    pub async fn push(
        &self,
        reference: &str,
        bytes: Vec<u8>,
        kind: &Kind,
    ) -> Result<Digest, OciError> {
        let parsed = parse_reference(reference)?;
        if parsed.digest().is_some() {
            return Err(OciError::Reference {
                reference: reference.into(),
                reason: "push to a tag (name:tag), not a digest".into(),
            });
        }
        let auth = self.auth(&parsed).await?;
        // Log in for pushing (a bearer token with push scope, or basic auth).
        self.timed(
            &parsed,
            self.client.auth(&parsed, &auth, RegistryOperation::Push),
        )
        .await?;
        let (layer_digest, layer_size) = self.push_blob(&parsed, bytes).await?;
        let (config, config_type, layer_type) = match kind {
            Kind::Component => (
                serde_json::json!({
                    "architecture": "wasm",
                    "os": "wasip2",
                    "layerDigests": [layer_digest],
                }),
                WASM_CONFIG_MEDIA_TYPE,
                WASM_LAYER_MEDIA_TYPE,
            ),
            Kind::Provider(platform) => (
                serde_json::to_value(platform).unwrap_or_default(),
                PROVIDER_CONFIG_MEDIA_TYPE,
                PROVIDER_LAYER_MEDIA_TYPE,
            ),
        };
        let config_bytes = serde_json::to_vec(&config).unwrap_or_default();
        let (config_digest, config_size) = self.push_blob(&parsed, config_bytes).await?;
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": config_type, "digest": config_digest, "size": config_size},
            "layers": [{"mediaType": layer_type, "digest": layer_digest, "size": layer_size}],
        });
        let Kind::Provider(platform) = kind else {
            return self.push_manifest(&parsed, &manifest, OCI_MANIFEST).await;
        };
        let body_len = serde_json::to_vec(&manifest).map(|b| b.len()).unwrap_or(0);
        let by_digest = |d: &Digest| {
            Reference::with_digest(
                parsed.registry().into(),
                parsed.repository().into(),
                d.to_string(),
            )
        };
        let manifest_digest = Digest::of(&serde_json::to_vec(&manifest).unwrap_or_default());
        self.push_manifest(&by_digest(&manifest_digest), &manifest, OCI_MANIFEST)
            .await?;
        // The index the tag names now, if it is one, keeps its other platforms.
        let mut entries = Vec::new();
        if let Ok(current) = self.resolve(reference).await {
            if let Ok(index) = self.manifest_raw(&parsed, &auth, &current).await {
                if index.get("manifests").is_some() {
                    entries = index["manifests"].as_array().cloned().unwrap_or_default();
                }
            }
        }
        entries.retain(|e| {
            e["platform"]["os"].as_str() != Some(&platform.os)
                || e["platform"]["architecture"].as_str() != Some(&platform.architecture)
        });
        entries.push(serde_json::json!({
            "mediaType": OCI_MANIFEST,
            "digest": manifest_digest.to_string(),
            "size": body_len,
            "platform": {"os": platform.os, "architecture": platform.architecture},
        }));
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": entries,
        });
        self.push_manifest(&parsed, &index, OCI_INDEX).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn references_are_checked_then_parsed() {
        let r = parse_reference("oci://localhost:5000/hello:v1").unwrap();
        assert_eq!(r.registry(), "localhost:5000");
        assert_eq!(r.repository(), "hello");
        assert!(parse_reference("Not A Ref").is_err());
    }

    #[test]
    fn an_announced_layer_size_sets_aside_at_most_one_mib() {
        assert_eq!(layer_capacity(10), 10);
        assert_eq!(layer_capacity(200 * 1024 * 1024), 1024 * 1024);
        assert_eq!(layer_capacity(u64::MAX), 1024 * 1024);
    }

    #[tokio::test]
    async fn pulls_need_a_pinned_reference() {
        let registry = Registry::new(RegistrySettings::default()).unwrap();
        let err = registry
            .pull("localhost:5000/hello:v1", &Kind::Component)
            .await
            .unwrap_err();
        assert!(matches!(err, OciError::Unpinned(_)), "{err}");
    }
}
