//! Image references as wasmCloud users write them: OCI references
//! (`ghcr.io/org/name:tag`, `localhost:5000/name@sha256:…`, with or without
//! `oci://`) and digests of the lattice's artifact store (`sha256:<64 hex>`).
//! Syntax only; pulling is the `lattice-artifacts` crate's job.

/// Why a reference is not one.
pub type Invalid = String;

/// Check a digest: `sha256:` and 64 lowercase hex digits.
///
/// ```
/// use lattice_protocol::manifest::check_digest;
/// assert!(check_digest(&format!("sha256:{}", "a".repeat(64))).is_ok());
/// assert!(check_digest("sha256:XYZ").is_err());
/// ```
pub fn check_digest(digest: &str) -> Result<(), Invalid> {
    let Some(hex) = digest.strip_prefix("sha256:") else {
        return Err(format!(
            "'{digest}' is not a digest: expected sha256:<64 hex digits>"
        ));
    };
    if hex.len() != 64
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(format!(
            "'{digest}' is not a digest: expected sha256: and 64 lowercase hex digits"
        ));
    }
    Ok(())
}

/// An OCI reference split into its parts (`oci://` already removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciReference<'a> {
    /// `registry[:port]`, when the first path part names one (has a `.` or a
    /// `:`, or is `localhost`).
    pub registry: Option<&'a str>,
    /// The repository path (`org/name`).
    pub repository: &'a str,
    /// The tag, if written.
    pub tag: Option<&'a str>,
    /// The digest, if written.
    pub digest: Option<&'a str>,
}

impl<'a> OciReference<'a> {
    /// Parse and check `text` (with or without `oci://`).
    ///
    /// ```
    /// use lattice_protocol::manifest::OciReference;
    /// let r = OciReference::parse("ghcr.io/wasmcloud/components/http-hello-world-rust:0.1.0").unwrap();
    /// assert_eq!(r.registry, Some("ghcr.io"));
    /// assert_eq!(r.repository, "wasmcloud/components/http-hello-world-rust");
    /// assert_eq!(r.tag, Some("0.1.0"));
    /// let r = OciReference::parse("oci://localhost:5000/hello@sha256:0000000000000000000000000000000000000000000000000000000000000000").unwrap();
    /// assert_eq!(r.registry, Some("localhost:5000"));
    /// assert!(r.digest.is_some() && r.tag.is_none());
    /// assert!(OciReference::parse("Hello World").is_err());
    /// ```
    pub fn parse(text: &'a str) -> Result<Self, Invalid> {
        let bare = text.strip_prefix("oci://").unwrap_or(text);
        if bare.is_empty() {
            return Err("an OCI reference needs a repository, e.g. ghcr.io/org/name:1.0.0".into());
        }
        let (name_tag, digest) = match bare.split_once('@') {
            Some((n, d)) => {
                check_digest(d)?;
                (n, Some(d))
            }
            None => (bare, None),
        };
        let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_tag[last_slash..].rfind(':') {
            Some(i) => (
                &name_tag[..last_slash + i],
                Some(&name_tag[last_slash + i + 1..]),
            ),
            None => (name_tag, None),
        };
        if let Some(tag) = tag {
            let ok = !tag.is_empty()
                && tag.len() <= 128
                && tag.bytes().enumerate().all(|(i, b)| {
                    b.is_ascii_alphanumeric() || b == b'_' || (i > 0 && (b == b'.' || b == b'-'))
                });
            if !ok {
                return Err(format!(
                    "'{tag}' is not an OCI tag (letters, digits, '_', '.', '-'; at most 128)"
                ));
            }
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (Some(first), rest)
            }
            _ => (None, name),
        };
        if let Some(registry) = registry {
            let ok = registry
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
            if !ok {
                return Err(format!("'{registry}' is not a registry host[:port]"));
            }
        }
        let part_ok = |p: &str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
                && p.as_bytes()[0].is_ascii_alphanumeric()
                && p.as_bytes()[p.len() - 1].is_ascii_alphanumeric()
        };
        if repository.is_empty() || !repository.split('/').all(part_ok) {
            return Err(format!(
                "'{repository}' is not an OCI repository: lowercase letters, digits and \
                 '.', '_', '-' between '/'"
            ));
        }
        Ok(Self {
            registry,
            repository,
            tag,
            digest,
        })
    }
}
