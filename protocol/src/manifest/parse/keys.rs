//! The config keys each builtin and bundled provider reads. A key one of them does
//! not read is refused with its name, never ignored; wasmCloud's keys that lattice
//! knows but does not support (http-server's CORS, keyvalue-nats's `bucket`, ...)
//! are refused with the reason. Keys of other providers (`file://`, OCI) are theirs
//! to read and pass as written.

use super::config::Configs;
use super::draft::{Draft, LinkDraft};
use super::walk::{Path, Walker};
use crate::manifest::{Builtin, Bundled, ComponentKind, Image};
use std::collections::BTreeMap;

/// What one side of a capability reads, and wasmCloud's keys it refuses.
struct Keys {
    what: &'static str,
    reads: &'static [&'static str],
    refused: &'static [(&'static str, &'static str)],
}

const OWN_NATS: &str = "lattice's NATS capabilities use the lattice's own NATS connection";
const NATS_CONNECTION: &[(&str, &str)] = &[
    ("cluster_uri", OWN_NATS),
    ("cluster_uris", OWN_NATS),
    ("js_domain", OWN_NATS),
    ("client_jwt", OWN_NATS),
    ("client_seed", OWN_NATS),
    ("tls_ca", OWN_NATS),
    ("tls_ca_file", OWN_NATS),
    ("custom_inbox_prefix", OWN_NATS),
    ("auth_jwt", OWN_NATS),
    ("auth_seed", OWN_NATS),
];
const STORE_SETTINGS: &str =
    "the lattice sets up the JetStream stores of its built-in capabilities";
const CORS: &str = "the built-in HTTP server sets no CORS headers: answer them from the component";
const ROUTING: &str = "the built-in HTTP server routes by address only (routing_mode: address): \
                       give each link its own `address`";

const HTTP_SERVER_LINK: Keys = Keys {
    what: "a link from http-server (its source config)",
    reads: &[
        "address",
        "tls_cert_file",
        "tls_priv_key_file",
        "header_read_timeout",
        "max_connections",
        "max_body_bytes",
    ],
    refused: &[
        ("port", "give `address: IP:PORT`, e.g. 0.0.0.0:8000"),
        ("path", ROUTING),
        ("host", ROUTING),
        ("cors_allowed_origins", CORS),
        ("cors_allowed_headers", CORS),
        ("cors_allowed_methods", CORS),
        ("cors_exposed_headers", CORS),
        ("cors_max_age_secs", CORS),
        (
            "cache_control",
            "set Cache-Control in the component's responses",
        ),
        (
            "readonly_mode",
            "answer 405 from the component for the methods it refuses",
        ),
        (
            "timeout_ms",
            "the component's call timeout is the host's (--call-timeout)",
        ),
        (
            "disable_keepalive",
            "the built-in HTTP server always keeps connections alive",
        ),
        ("config_b64", "give the settings as plain keys"),
        ("config_json", "give the settings as plain keys"),
    ],
};
const HTTP_SERVER_CONFIG: Keys = Keys {
    what: "http-server (its own config)",
    reads: &["routing_mode"],
    refused: &[
        (
            "default_address",
            "give each link from http-server its own `address`",
        ),
        ("header", ROUTING),
    ],
};
const HTTP_CLIENT_LINK: Keys = Keys {
    what: "a link to http-client (its target config)",
    reads: &["allowed_hosts"],
    refused: &[],
};
const KEYVALUE_LINK: Keys = Keys {
    what: "a link to a built-in keyvalue (its target config)",
    reads: &[],
    refused: &[
        (
            "bucket",
            "each app's keyvalue buckets are its own, named by the component's store.open",
        ),
        (
            "enable_bucket_auto_create",
            "buckets are created on first use",
        ),
        ("auth_jwt", OWN_NATS),
        ("auth_seed", OWN_NATS),
        ("cluster_uri", OWN_NATS),
        ("js_domain", OWN_NATS),
        ("client_jwt", OWN_NATS),
        ("client_seed", OWN_NATS),
        ("tls_ca", OWN_NATS),
        ("tls_ca_file", OWN_NATS),
    ],
};
const MESSAGING_HANDLER_LINK: Keys = Keys {
    what: "a link from messaging-nats (its source config)",
    reads: &["subscriptions", "allowed_prefix"],
    refused: NATS_CONNECTION,
};
const MESSAGING_CONSUMER_LINK: Keys = Keys {
    what: "a link to messaging-nats (its target config)",
    reads: &["allowed_prefix"],
    refused: NATS_CONNECTION,
};
const BLOBSTORE_LINK: Keys = Keys {
    what: "a link to a built-in blobstore (its target config)",
    reads: &[],
    refused: &[
        (
            "root",
            "blobstore-fs keeps each app's containers in its own folder under the host's \
             --blobstore-dir, never where a manifest says",
        ),
        (
            "bucket",
            "each container of each app is its own object store",
        ),
        ("max_write_wait", STORE_SETTINGS),
        ("max_age", STORE_SETTINGS),
        ("storage_type", STORE_SETTINGS),
        ("num_replicas", STORE_SETTINGS),
        ("compression", STORE_SETTINGS),
        ("auth_jwt", OWN_NATS),
        ("auth_seed", OWN_NATS),
        ("cluster_uri", OWN_NATS),
        ("js_domain", OWN_NATS),
        ("client_jwt", OWN_NATS),
        ("client_seed", OWN_NATS),
        ("tls_ca", OWN_NATS),
        ("tls_ca_file", OWN_NATS),
    ],
};
const WASM_LINK: Keys = Keys {
    what: "a link between Wasm components (its source config)",
    reads: &["timeout"],
    refused: &[],
};
const NOTHING: Keys = Keys {
    what: "this builtin",
    reads: &[],
    refused: &[],
};
const KEYVALUE_REDIS: Keys = Keys {
    what: "keyvalue-redis",
    reads: &["url"],
    refused: &[("URL", "write `url` in lowercase")],
};
const SQLDB_POSTGRES: Keys = Keys {
    what: "sqldb-postgres",
    reads: &[
        "url",
        "pool_size",
        "POSTGRES_HOST",
        "POSTGRES_PORT",
        "POSTGRES_USERNAME",
        "POSTGRES_PASSWORD",
        "POSTGRES_DATABASE",
        "POSTGRES_TLS_REQUIRED",
        "POSTGRES_POOL_SIZE",
    ],
    refused: &[],
};

/// Check `properties.config` of a capability with `image`.
pub(super) fn capability_config(w: &mut Walker, image: &Image, config: &Configs) {
    let keys = match image {
        Image::Builtin(Builtin::HttpServer) => {
            if let Some(mode) = config
                .values
                .get("routing_mode")
                .filter(|m| *m != "address")
            {
                let message = format!("routing_mode '{mode}' is not supported: {ROUTING}");
                w.problem(&config.paths["routing_mode"], message);
            }
            &HTTP_SERVER_CONFIG
        }
        Image::Builtin(_) => &NOTHING,
        Image::Bundled(Bundled::KeyvalueRedis) => &KEYVALUE_REDIS,
        Image::Bundled(Bundled::SqldbPostgres) => &SQLDB_POSTGRES,
        _ => return,
    };
    check(w, keys, &config.values, &config.paths, "its config");
}

/// Check the config a link carries to the builtin or bundled provider at either end.
pub(super) fn link(w: &mut Walker, source: &Draft, target: &Draft, draft: &LinkDraft) {
    let link = &draft.link;
    let (source_config, target_config) = (
        (&link.source_config, &draft.source_paths),
        (&link.target_config, &draft.target_paths),
    );
    if let Some(Image::Builtin(b)) = &source.image {
        let keys = match b {
            Builtin::HttpServer => &HTTP_SERVER_LINK,
            Builtin::MessagingNats => &MESSAGING_HANDLER_LINK,
            _ => &NOTHING,
        };
        check(w, keys, source_config.0, source_config.1, "source config");
        unread(w, target_config, b.name(), "target");
    }
    let is_wasm = |d: &Draft| {
        matches!(
            d.kind,
            Some(ComponentKind::Component | ComponentKind::Service)
        )
    };
    if is_wasm(source) && is_wasm(target) {
        // A call between Wasm components: the calling host reads `timeout`.
        check(
            w,
            &WASM_LINK,
            source_config.0,
            source_config.1,
            "source config",
        );
        let name = target.name.as_deref().unwrap_or("the target");
        for key in target_config.0.keys() {
            w.problem(
                &target_config.1[key],
                format!(
                    "`{key}` is not read: nothing reads the target config of a link to \
                     the Wasm component '{name}'; give it `config` of its own"
                ),
            );
        }
        return;
    }
    let keys = match &target.image {
        Some(Image::Builtin(b)) => {
            unread(w, source_config, b.name(), "source");
            match b {
                Builtin::HttpClient => &HTTP_CLIENT_LINK,
                Builtin::KeyvalueNats | Builtin::KeyvalueMemory => &KEYVALUE_LINK,
                Builtin::MessagingNats => &MESSAGING_CONSUMER_LINK,
                Builtin::BlobstoreFs | Builtin::BlobstoreNats => &BLOBSTORE_LINK,
                Builtin::HttpServer => &NOTHING,
            }
        }
        Some(Image::Bundled(Bundled::KeyvalueRedis)) => &KEYVALUE_REDIS,
        Some(Image::Bundled(Bundled::SqldbPostgres)) => &SQLDB_POSTGRES,
        _ => return,
    };
    check(w, keys, target_config.0, target_config.1, "target config");
}

type Side<'a> = (&'a BTreeMap<String, String>, &'a BTreeMap<String, Path>);

/// The side of a link that touches a builtin but is not its config: nothing reads it.
fn unread(w: &mut Walker, (values, paths): Side<'_>, builtin: &str, side: &str) {
    for key in values.keys() {
        w.problem(
            &paths[key],
            format!(
                "`{key}` is not read: nothing reads the {side} config of a link \
                 with builtin {builtin} at the other end"
            ),
        );
    }
}

fn check(
    w: &mut Walker,
    keys: &Keys,
    values: &BTreeMap<String, String>,
    paths: &BTreeMap<String, Path>,
    side: &str,
) {
    for key in values.keys() {
        if keys.reads.contains(&key.as_str()) {
            continue;
        }
        let path = &paths[key];
        let what = keys.what;
        match keys.refused.iter().find(|(k, _)| k == key) {
            Some((_, why)) => w.problem(path, format!("`{key}` is not supported by {what}: {why}")),
            None if keys.reads.is_empty() => w.problem(
                path,
                format!("`{key}` is not read: {what} reads no keys in its {side}"),
            ),
            None => {
                let reads = keys.reads.join(", ");
                w.problem(
                    path,
                    format!("`{key}` is not read by {what}: it reads {reads}"),
                );
            }
        }
    }
}
