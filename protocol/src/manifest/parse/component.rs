//! One entry of `spec.components`: name, type, image and config. Traits are read by
//! [`super::traits`].

use super::config::{config, Configs};
use super::draft::Draft;
use super::walk::{self, Node, Path, Walker};
use super::{keys, links, secrets, traits, wasmcloud};
use crate::manifest::{
    check_digest, parse_timeout, Builtin, Bundled, Component, ComponentKind, Image, OciReference,
    Restart, Scaler, Warm,
};
use std::collections::BTreeMap;

/// `spec.components`: every component, then the checks across them.
pub(super) fn all(
    w: &mut Walker,
    node: &Node<'_>,
    policies: &secrets::Policies,
) -> Option<Vec<Component>> {
    let items = w.list(node)?;
    if items.is_empty() {
        w.problem(&node.path, "must list at least one component");
        return None;
    }
    let max = w.limits.max_components;
    if !w.at_most(&node.path, items.len(), max, "components") {
        return None;
    }
    let drafts: Vec<Draft> = items
        .iter()
        .filter_map(|n| component(w, n, policies))
        .collect();
    unique_names(w, &drafts);
    one_service(w, &drafts);
    links::check(w, &drafts);
    let complete = drafts.len() == items.len();
    let components: Option<Vec<Component>> = drafts.into_iter().map(Draft::build).collect();
    components.filter(|_| complete)
}

/// At most one service per app.
fn one_service(w: &mut Walker, drafts: &[Draft]) {
    let mut services = drafts
        .iter()
        .filter(|d| d.kind == Some(ComponentKind::Service));
    let Some(first) = services.next() else {
        return;
    };
    for extra in services {
        w.problem(
            &extra.path.key("type"),
            format!(
                "an app has at most one service, and {} is one already",
                first.path
            ),
        );
    }
}

fn unique_names(w: &mut Walker, drafts: &[Draft]) {
    let mut first: BTreeMap<&str, &Path> = BTreeMap::new();
    for d in drafts {
        let Some(name) = d.name.as_deref() else {
            continue;
        };
        match first.get(name) {
            Some(at) => w.problem(
                &d.path.key("name"),
                format!("duplicate component name '{name}' (first used at {at})"),
            ),
            None => {
                first.insert(name, &d.path);
            }
        }
    }
}

fn component(w: &mut Walker, node: &Node<'_>, policies: &secrets::Policies) -> Option<Draft> {
    let obj = w.map(node)?;
    w.only(&obj, &["name", "type", "properties", "traits"], &[]);
    let name = w.required_str(&obj, "name");
    if let Some(name) = name.filter(|n| !walk::is_dns_label(n)) {
        let rule = walk::DNS_LABEL_RULE;
        let message = format!("'{name}' is not a valid component name: {rule}");
        w.problem(&obj.path.key("name"), message);
    }
    let kind = w
        .required_str(&obj, "type")
        .and_then(|t| kind(w, &obj.path.key("type"), t));
    let properties = w.required(&obj, "properties").and_then(|n| w.map(&n));
    if let Some(p) = &properties {
        w.only(
            p,
            &["image", "config", "secrets", "restart", "warm"],
            UNSUPPORTED_PROPERTIES,
        );
    }
    let image = properties
        .as_ref()
        .and_then(|p| w.required(p, "image"))
        .and_then(|n| image(w, &n, kind));
    let config = match properties.as_ref().and_then(|p| p.get("config")) {
        Some(n) => config(w, &n),
        None => Configs::default(),
    };
    if kind == Some(ComponentKind::Capability) {
        if let Some(image) = &image {
            keys::capability_config(w, image, &config);
        }
    }
    let (config_layers, config) = (config.layers, config.values);
    let secrets = match properties.as_ref().and_then(|p| p.get("secrets")) {
        Some(n) if kind == Some(ComponentKind::Service) => {
            w.problem(
                &n.path,
                "a service is not given secrets yet: give them to a component",
            );
            Vec::new()
        }
        Some(n) => secrets::secrets(w, &n, policies),
        None => Vec::new(),
    };
    let restart = match properties.as_ref().and_then(|p| p.get("restart")) {
        Some(n) if kind == Some(ComponentKind::Service) => restart(w, &n),
        Some(n) => {
            w.problem(&n.path, "only a service has a restart policy");
            None
        }
        None => (kind == Some(ComponentKind::Service)).then(Restart::default),
    };
    let warm = match properties.as_ref().and_then(|p| p.get("warm")) {
        Some(n) if kind == Some(ComponentKind::Component) => warm(w, &n),
        Some(n) => {
            let message = "only a component (type: component) keeps warm instances";
            w.problem(&n.path, message);
            None
        }
        None => None,
    };
    let mut draft = Draft {
        path: obj.path.clone(),
        name: name.map(str::to_owned),
        kind,
        image,
        config,
        config_layers,
        secrets,
        scaler: None,
        links: Vec::new(),
        restart,
        warm,
    };
    if let Some(n) = obj.get("traits") {
        (draft.scaler, draft.links) = traits::all(w, &n, draft.builtin(), policies);
    }
    // A provider (a capability run as a process) without a scaler runs once.
    if draft.kind == Some(ComponentKind::Capability)
        && draft.image.as_ref().is_some_and(Image::is_code)
        && draft.scaler.is_none()
    {
        draft.scaler = Some(Scaler::Spreadscaler {
            instances: 1,
            spread: Vec::new(),
        });
    }
    if draft.kind == Some(ComponentKind::Service) && draft.scaler.is_some() {
        w.problem(
            &obj.path.key("traits"),
            "a service runs once with every workload of its app and takes no spreadscaler or daemonscaler",
        );
    }
    Some(draft)
}

/// `properties.restart` of a service: `max_restarts`, `backoff`, `max_backoff`.
fn restart(w: &mut Walker, node: &Node<'_>) -> Option<Restart> {
    let obj = w.map(node)?;
    w.only(&obj, &["max_restarts", "backoff", "max_backoff"], &[]);
    let mut policy = Restart::default();
    if let Some(n) = obj.get("max_restarts") {
        if let Some(max) = w.count(&n, 1_000_000) {
            policy.max_restarts = max;
        }
    }
    let mut duration = |key: &str, into: &mut u64| {
        let n = obj.get(key)?;
        let text = w.scalar(&n)?;
        match parse_timeout(&text) {
            Ok(d) => *into = u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
            Err(e) => w.problem(&n.path, e.replace("timeout", key)),
        }
        Some(())
    };
    duration("backoff", &mut policy.backoff_ms);
    duration("max_backoff", &mut policy.max_backoff_ms);
    if policy.max_backoff_ms < policy.backoff_ms {
        w.problem(&obj.path, "max_backoff must not be shorter than backoff");
    }
    Some(policy)
}

/// `properties.warm` of a component: `pool` (required), `max_invocations`,
/// `idle`.
fn warm(w: &mut Walker, node: &Node<'_>) -> Option<Warm> {
    let obj = w.map(node)?;
    w.only(&obj, &["pool", "max_invocations", "idle"], &[]);
    let idle_ms = match obj.get("idle") {
        Some(n) => {
            let text = w.scalar(&n)?;
            match parse_timeout(&text) {
                Ok(d) if d.is_zero() || d.as_millis() > u128::from(Warm::MAX_IDLE_MS) => {
                    let message =
                        "idle must be from 1ms to 24h (how long an unused instance is kept)";
                    w.problem(&n.path, message);
                    None
                }
                Ok(d) => u64::try_from(d.as_millis()).ok(),
                Err(e) => {
                    w.problem(&n.path, e.replace("timeout", "idle"));
                    None
                }
            }
        }
        None => Some(Warm::DEFAULT_IDLE_MS),
    };
    let pool = w.required(&obj, "pool");
    let mut at_least_one = |n: Node<'_>, max: u32| {
        let value = w.count(&n, max)?;
        if value == 0 {
            w.problem(&n.path, "must be at least 1");
        }
        (value > 0).then_some(value)
    };
    let max_invocations = match obj.get("max_invocations") {
        Some(n) => at_least_one(n, u32::MAX),
        None => Some(Warm::DEFAULT_MAX_INVOCATIONS),
    };
    let pool = pool.and_then(|n| at_least_one(n, Warm::MAX_POOL));
    Some(Warm {
        pool: pool?,
        max_invocations: max_invocations?,
        idle_ms: idle_ms?,
    })
}

/// wadm's component properties lattice does not support, and why.
const UNSUPPORTED_PROPERTIES: &[(&str, &str)] = &[
    (
        "id",
        "lattice names a component by its app and `name`; remove `id`",
    ),
    (
        "application",
        "lattice has no shared applications; give the component an `image` in this app",
    ),
];

fn kind(w: &mut Walker, path: &Path, text: &str) -> Option<ComponentKind> {
    match text {
        // `actor` is wadm's old name of `component`, still accepted by wadm.
        "component" | "actor" => return Some(ComponentKind::Component),
        "capability" => return Some(ComponentKind::Capability),
        "service" => return Some(ComponentKind::Service),
        other => w.problem(
            path,
            format!("unknown type '{other}': expected component, capability or service"),
        ),
    }
    None
}

/// `properties.image`: `file://PATH`, `builtin://NAME` (capabilities only), an OCI
/// reference (`[oci://]registry/name:tag` or `@sha256:…`) or `artifact://sha256:…`.
fn image(w: &mut Walker, node: &Node<'_>, kind: Option<ComponentKind>) -> Option<Image> {
    let text = w.str(node)?;
    let path = &node.path;
    if let Some(file) = text.strip_prefix("file://") {
        if file.is_empty() {
            let message = "file:// needs a path to a .wasm file, e.g. file://./build/app.wasm";
            w.problem(path, message);
            return None;
        }
        match kind {
            Some(ComponentKind::Component | ComponentKind::Service) if !file.ends_with(".wasm") => {
                w.problem(
                    path,
                    format!(
                        "'{file}' is not a .wasm file: a component's image is file://PATH.wasm"
                    ),
                )
            }
            _ => {}
        }
        return Some(Image::File(file.to_owned()));
    }
    if let Some(name) = text.strip_prefix("builtin://") {
        let Some(builtin) = Builtin::from_name(name) else {
            let known = builtin_names();
            w.problem(
                path,
                format!("unknown builtin '{name}': expected one of {known}"),
            );
            return None;
        };
        if matches!(
            kind,
            Some(ComponentKind::Component | ComponentKind::Service)
        ) {
            let message = "builtin:// images are capabilities: set `type: capability`";
            w.problem(path, message);
        }
        return Some(Image::Builtin(builtin));
    }
    if let Some(name) = text.strip_prefix("bundled://") {
        let Some(bundled) = Bundled::from_name(name) else {
            let known: Vec<&str> = Bundled::ALL.iter().map(|b| b.name()).collect();
            let known = known.join(", ");
            w.problem(
                path,
                format!("unknown bundled provider '{name}': expected one of {known}"),
            );
            return None;
        };
        if kind != Some(ComponentKind::Capability) {
            let message = "bundled:// images are capability providers: set `type: capability`";
            w.problem(path, message);
        }
        return Some(Image::Bundled(bundled));
    }
    if let Some(name) = text.strip_prefix(wasmcloud::BUILTIN_SCHEME) {
        return match wasmcloud::builtin(name) {
            Ok(builtin) if kind == Some(ComponentKind::Capability) => Some(Image::Builtin(builtin)),
            Ok(_) => {
                let message =
                    "wasmcloud+builtin:// images are capabilities: set `type: capability`";
                w.problem(path, message);
                None
            }
            Err(e) => {
                w.problem(path, e);
                None
            }
        };
    }
    if let Some(digest) = text.strip_prefix("artifact://") {
        return match check_digest(digest) {
            Ok(()) => Some(Image::Artifact(digest.to_owned())),
            Err(e) => {
                w.problem(
                    path,
                    format!("{e} (an artifact:// image names the store's digest)"),
                );
                None
            }
        };
    }
    if let Some((scheme, _)) = text.split_once("://").filter(|(s, _)| *s != "oci") {
        w.problem(
            path,
            format!(
                "unknown image scheme '{scheme}://': expected an OCI reference \
                 (registry/name:tag), file://PATH, builtin://NAME or artifact://sha256:DIGEST"
            ),
        );
        return None;
    }
    let reference = match OciReference::parse(text) {
        Ok(r) => r,
        Err(e) => {
            w.problem(path, e);
            return None;
        }
    };
    if reference.tag.is_none() && reference.digest.is_none() && text.ends_with(".wasm") {
        w.problem(
            path,
            format!("'{text}' looks like a file: write file://{text}"),
        );
        return None;
    }
    if kind == Some(ComponentKind::Capability) {
        match wasmcloud::capability(&reference, text) {
            Some(Ok(image)) => return Some(image),
            Some(Err(e)) => {
                w.problem(path, e);
                return None;
            }
            None => {}
        }
    }
    let bare = text.strip_prefix("oci://").unwrap_or(text);
    Some(Image::Oci(bare.to_owned()))
}

fn builtin_names() -> String {
    let names: Vec<&str> = Builtin::ALL.iter().map(|b| b.name()).collect();
    names.join(", ")
}
