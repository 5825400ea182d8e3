//! wasmCloud's first-party capability images read as lattice's own capabilities, so
//! a wadm manifest deploys as written: `ghcr.io/wasmcloud/http-server:0.27.0` (any
//! tag or digest) is `builtin://http-server`, `ghcr.io/wasmcloud/keyvalue-redis` is
//! the bundled `keyvalue-redis` provider, and a first-party image lattice has no
//! counterpart for is refused by name. `wasmcloud+builtin://NAME` (wasmCloud 1.5's
//! in-host capabilities) reads the same way.

use crate::manifest::{Builtin, Bundled, Image, OciReference};

/// The registry wasmCloud publishes its capability providers to.
const REGISTRY: &str = "ghcr.io";
/// The scheme of wasmCloud's in-host capabilities.
pub(super) const BUILTIN_SCHEME: &str = "wasmcloud+builtin://";

/// Each first-party provider name (the last part of `ghcr.io/wasmcloud/NAME`) and
/// what lattice runs for it.
pub(super) const MAPPING: &[(&str, Image)] = &[
    ("http-server", Image::Builtin(Builtin::HttpServer)),
    ("http-client", Image::Builtin(Builtin::HttpClient)),
    ("keyvalue-nats", Image::Builtin(Builtin::KeyvalueNats)),
    ("messaging-nats", Image::Builtin(Builtin::MessagingNats)),
    ("blobstore-fs", Image::Builtin(Builtin::BlobstoreFs)),
    ("blobstore-nats", Image::Builtin(Builtin::BlobstoreNats)),
    ("keyvalue-redis", Image::Bundled(Bundled::KeyvalueRedis)),
    ("sqldb-postgres", Image::Bundled(Bundled::SqldbPostgres)),
];

/// What lattice runs for a capability image: `None` when the image is not one of
/// wasmCloud's first-party providers (an OCI provider artifact like any other),
/// an error naming the image when it is one lattice has no counterpart for.
pub(super) fn capability(
    reference: &OciReference<'_>,
    text: &str,
) -> Option<Result<Image, String>> {
    if reference.registry != Some(REGISTRY) {
        return None;
    }
    let name = reference.repository.strip_prefix("wasmcloud/")?;
    if name.contains('/') {
        return None; // ghcr.io/wasmcloud/components/...: not a provider
    }
    Some(match MAPPING.iter().find(|(n, _)| *n == name) {
        Some((_, image)) => Ok(image.clone()),
        None => Err(format!(
            "'{text}' is wasmCloud's {name} provider, which lattice has no counterpart for: \
             lattice runs {} in its place; use one of those, or a provider of your own \
             (file://PATH to an executable)",
            names()
        )),
    })
}

/// The builtin for `wasmcloud+builtin://NAME`.
pub(super) fn builtin(name: &str) -> Result<Builtin, String> {
    match MAPPING.iter().find(|(n, _)| *n == name) {
        Some((_, Image::Builtin(b))) => Ok(*b),
        _ => Err(format!(
            "unknown wasmCloud builtin '{BUILTIN_SCHEME}{name}': lattice runs {} in its place",
            names()
        )),
    }
}

fn names() -> String {
    let names: Vec<String> = MAPPING
        .iter()
        .map(|(n, _)| format!("ghcr.io/wasmcloud/{n}"))
        .collect();
    names.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Option<Result<Image, String>> {
        capability(&OciReference::parse(text).unwrap(), text)
    }

    #[test]
    fn first_party_images_map_at_any_tag_or_digest() {
        let digest = format!("sha256:{}", "0".repeat(64));
        for text in [
            "ghcr.io/wasmcloud/http-server:0.27.0".to_string(),
            "ghcr.io/wasmcloud/http-server".to_string(),
            format!("ghcr.io/wasmcloud/http-server@{digest}"),
            format!("oci://ghcr.io/wasmcloud/http-server:0.23.0@{digest}"),
        ] {
            assert_eq!(
                read(text.strip_prefix("oci://").unwrap_or(&text)),
                Some(Ok(Image::Builtin(Builtin::HttpServer))),
                "{text}"
            );
        }
        assert_eq!(
            read("ghcr.io/wasmcloud/keyvalue-redis:0.30.0"),
            Some(Ok(Image::Bundled(Bundled::KeyvalueRedis)))
        );
        let refused = read("ghcr.io/wasmcloud/blobstore-s3:0.12.1")
            .unwrap()
            .unwrap_err();
        assert!(
            refused.contains("'ghcr.io/wasmcloud/blobstore-s3:0.12.1'"),
            "{refused}"
        );
        assert_eq!(
            read("ghcr.io/wasmcloud/components/http-hello-world-rust:0.1.0"),
            None
        );
        assert_eq!(read("ghcr.io/acme/http-server:1"), None);
        assert_eq!(read("localhost:5000/wasmcloud/http-server:1"), None);
        assert_eq!(builtin("messaging-nats"), Ok(Builtin::MessagingNats));
        assert!(builtin("keyvalue-redis").is_err());
    }
}
