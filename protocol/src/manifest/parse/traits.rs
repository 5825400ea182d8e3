//! The `traits` of one component: at most one scaler (`spreadscaler`, `daemonscaler`)
//! and any number of `link`s.

use super::config::{config, Configs};
use super::draft::LinkDraft;
use super::secrets::{self, Policies};
use super::walk::{self, Node, Obj, Path, Walker};
use crate::manifest::{Builtin, Link, Scaler, SecretRef, Spread, DEFAULT_LINK_NAME};
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// A spread's weight when none is given.
const DEFAULT_WEIGHT: u32 = 100;

/// Reads `traits`; `source` is the component's builtin, if its image is one; a
/// link's secrets name `policies`.
pub(super) fn all(
    w: &mut Walker,
    node: &Node<'_>,
    source: Option<Builtin>,
    policies: &Policies,
) -> (Option<Scaler>, Vec<LinkDraft>) {
    let mut scaler = None;
    let mut scaler_at: Option<Path> = None;
    let mut links = Vec::new();
    let items = w.list(node).unwrap_or_default();
    // At most one scaler besides the links.
    let max_links = w.limits.max_links;
    if items.len() > max_links.saturating_add(1) {
        let message = format!(
            "has {} traits, over the limit of {max_links} links and one scaler",
            items.len()
        );
        w.problem(&node.path, message);
        return (None, links);
    }
    for item in items {
        let Some(obj) = w.map(&item) else { continue };
        w.only(&obj, &["type", "properties"], &[]);
        let Some(kind) = w.required_str(&obj, "type") else {
            continue;
        };
        let is_scaler = matches!(kind, "spreadscaler" | "daemonscaler");
        if !is_scaler && kind != "link" {
            w.problem(
                &obj.path.key("type"),
                format!("unknown trait type '{kind}': expected spreadscaler, daemonscaler or link"),
            );
            continue;
        }
        if let Some(first) = scaler_at.as_ref().filter(|_| is_scaler) {
            w.problem(
                &obj.path.key("type"),
                format!("a component has at most one scaler, and {first} is one already"),
            );
            continue;
        }
        let Some(props) = w.required(&obj, "properties").and_then(|n| w.map(&n)) else {
            continue;
        };
        if is_scaler {
            scaler_at = Some(obj.path.clone());
            scaler = scaler_props(w, kind, &props);
        } else {
            links.extend(link(w, &props, source, policies));
        }
    }
    (scaler, links)
}

fn scaler_props(w: &mut Walker, kind: &str, props: &Obj<'_>) -> Option<Scaler> {
    w.only(props, &["instances", "replicas", "spread"], &[]);
    let instances = match (props.get("instances"), props.get("replicas")) {
        (Some(_), Some(old)) => {
            let message = "`replicas` is the old name of `instances`: give only `instances`";
            w.problem(&old.path, message);
            None
        }
        (Some(n), None) | (None, Some(n)) => w.count(&n, w.limits.max_instances),
        (None, None) => {
            let max = w.limits.max_instances;
            let message = format!("is required: how many instances to run, 0 to {max}");
            w.problem(&props.path.key("instances"), message);
            None
        }
    };
    let spread = match props.get("spread") {
        Some(n) => spread(w, &n),
        None => Vec::new(),
    };
    let instances = instances?;
    Some(match kind {
        "daemonscaler" => Scaler::Daemonscaler { instances, spread },
        _ => Scaler::Spreadscaler { instances, spread },
    })
}

fn spread(w: &mut Walker, node: &Node<'_>) -> Vec<Spread> {
    let mut out = Vec::new();
    let mut first: BTreeMap<String, Path> = BTreeMap::new();
    let items = w.list(node).unwrap_or_default();
    let max = w.limits.max_spreads;
    if !w.at_most(&node.path, items.len(), max, "spread entries") {
        return out;
    }
    for item in items {
        let Some(obj) = w.map(&item) else { continue };
        w.only(&obj, &["name", "requirements", "weight"], &[]);
        let name = w.required_str(&obj, "name");
        if let Some(name) = name {
            let path = obj.path.key("name");
            if name.is_empty() {
                w.problem(&path, "must not be empty");
            } else if let Some(at) = first.get(name) {
                w.problem(
                    &path,
                    format!("duplicate spread name '{name}' (first used at {at})"),
                );
            } else if w.short_name(&path, name) {
                first.insert(name.to_owned(), obj.path.clone());
            }
        }
        let requirements = match obj.get("requirements") {
            Some(n) => requirements(w, &n),
            None => BTreeMap::new(),
        };
        let weight = match obj.get("weight") {
            Some(n) => w.count(&n, w.limits.max_weight),
            None => Some(DEFAULT_WEIGHT),
        };
        if let (Some(name), Some(weight)) = (name, weight) {
            let name = name.to_owned();
            out.push(Spread {
                name,
                requirements,
                weight,
            });
        }
    }
    out
}

/// A map of host label to required value.
fn requirements(w: &mut Walker, node: &Node<'_>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Some(obj) = w.map(node) else { return out };
    let max = w.limits.max_config_entries;
    if !w.at_most(&obj.path, obj.map.len(), max, "requirements") {
        return out;
    }
    for (key, value) in obj.map {
        let key_node = Node {
            value: key,
            path: obj.path.clone(),
        };
        let Some(key) = w.str(&key_node) else {
            continue;
        };
        let node = Node {
            value,
            path: obj.path.key(key),
        };
        if !w.short_name(&node.path, key) {
            continue;
        }
        if let Some(value) = w.scalar(&node).filter(|v| w.short_value(&node.path, v)) {
            out.insert(key.to_owned(), value);
        }
    }
    out
}

/// A `link` trait's properties, both the current and the legacy (wadm < 0.13) forms.
fn link(
    w: &mut Walker,
    props: &Obj<'_>,
    source: Option<Builtin>,
    policies: &Policies,
) -> Option<LinkDraft> {
    let known = [
        "target",
        "source",
        "namespace",
        "package",
        "interfaces",
        "name",
        "source_config",
        "target_config",
    ];
    w.only(props, &known, &[]);
    let target = target(w, props);
    let target_secrets = side_secrets(w, props, "target", policies);
    let source_secrets = side_secrets(w, props, "source", policies);
    let target_config = side_config(w, props, "target", "target_config");
    let source_config = side_config(w, props, "source", "source_config");
    let namespace = wit_name(w, props, "namespace");
    let package = wit_name(w, props, "package");
    let interfaces = interfaces(w, props);
    let name = match w.optional_str(props, "name") {
        Some("") => {
            w.problem(&props.path.key("name"), "must not be empty");
            None
        }
        Some(name) if !w.short_name(&props.path.key("name"), name) => None,
        Some(name) => Some(name),
        None => Some(DEFAULT_LINK_NAME),
    };
    if source == Some(Builtin::HttpServer) {
        listen_address(w, props, &source_config);
    }
    let (target, target_path) = target?;
    Some(LinkDraft {
        link: Link {
            target,
            namespace: namespace?,
            package: package?,
            interfaces: interfaces?,
            name: name?.to_owned(),
            target_config: target_config.values,
            source_config: source_config.values,
            target_secrets,
            source_secrets,
        },
        path: props.path.clone(),
        target_path,
        source_paths: source_config.paths,
        target_paths: target_config.paths,
    })
}

/// `target: NAME` (legacy) or `target: {name, config}`: the name and its path.
fn target(w: &mut Walker, props: &Obj<'_>) -> Option<(String, Path)> {
    let node = w.required(props, "target")?;
    if let serde_yaml_ng::Value::Mapping(_) = node.value {
        let obj = w.map(&node)?;
        w.only(&obj, &["name", "config", "secrets"], &[]);
        let name = w.required_str(&obj, "name")?;
        return Some((name.to_owned(), obj.path.key("name")));
    }
    if let serde_yaml_ng::Value::String(name) = node.value {
        return Some((name.clone(), node.path));
    }
    let found = walk::describe(node.value);
    let message = format!("expected a component name or a map with `name`, found {found}");
    w.problem(&node.path, message);
    None
}

/// The secrets of one side of a link: `SIDE.secrets`, wadm's form of a
/// component's `properties.secrets`.
fn side_secrets(
    w: &mut Walker,
    props: &Obj<'_>,
    side: &str,
    policies: &Policies,
) -> Vec<SecretRef> {
    // A side that is not a map is reported by `target` or `side_config`.
    let Some(serde_yaml_ng::Value::Mapping(map)) = props.get(side).map(|n| n.value) else {
        return Vec::new();
    };
    let obj = Obj {
        map,
        path: props.path.key(side),
    };
    match obj.get("secrets") {
        Some(node) => secrets::secrets(w, &node, policies),
        None => Vec::new(),
    }
}

/// The config of one side of a link: `SIDE.config`, or the legacy `LEGACY` list.
fn side_config(w: &mut Walker, props: &Obj<'_>, side: &str, legacy: &str) -> Configs {
    let current = match props.get(side) {
        Some(node) if node.value.is_mapping() => {
            let obj = w.map(&node);
            if let Some(obj) = obj.as_ref().filter(|_| side == "source") {
                w.only(obj, &["config", "secrets"], &[]);
            }
            obj.and_then(|o| o.get("config"))
        }
        // Records "expected a map"; a non-map `target` is the legacy name, read by `target`.
        Some(node) if side == "source" => w.map(&node).and(None),
        _ => None,
    };
    let old = props.get(legacy);
    match (current, old) {
        (Some(_), Some(old)) => {
            w.problem(
                &old.path,
                format!("`{legacy}` is the old form of `{side}.config`: give only one of them"),
            );
            Configs::default()
        }
        (Some(n), None) | (None, Some(n)) => {
            let configs = config(w, &n);
            for (name, path) in &configs.named {
                w.problem(
                    path,
                    format!(
                        "a link's config is read when the link is made, so it must be written \
                         out: give `properties` here (config stored in the lattice, such as \
                         '{name}', is read by a component's `properties.config`)"
                    ),
                );
            }
            configs
        }
        (None, None) => Configs::default(),
    }
}

/// A required WIT name: `namespace` or `package`.
fn wit_name(w: &mut Walker, props: &Obj<'_>, key: &str) -> Option<String> {
    let name = w.required_str(props, key)?;
    if !w.short_name(&props.path.key(key), name) {
        return None;
    }
    if !walk::is_wit_ident(name) {
        w.problem(&props.path.key(key), not_wit(name));
        return None;
    }
    Some(name.to_owned())
}

fn interfaces(w: &mut Walker, props: &Obj<'_>) -> Option<Vec<String>> {
    let node = w.required(props, "interfaces")?;
    let items = w.list(&node)?;
    if items.is_empty() {
        let message = "must list at least one interface, e.g. [store, atomics]";
        w.problem(&node.path, message);
        return None;
    }
    let mut out = Vec::new();
    for item in &items {
        let Some(name) = w.str(item) else { continue };
        if !w.short_name(&item.path, name) {
            continue;
        }
        if walk::is_wit_ident(name) {
            out.push(name.to_owned());
        } else {
            w.problem(&item.path, not_wit(name));
        }
    }
    (out.len() == items.len()).then_some(out)
}

fn not_wit(name: &str) -> String {
    format!(
        "'{name}' is not a valid WIT name: use lowercase words of letters and digits \
         joined by '-', e.g. incoming-handler"
    )
}

/// A link from the http-server capability needs `address` in its source config.
fn listen_address(w: &mut Walker, props: &Obj<'_>, source: &Configs) {
    let example = "e.g. 127.0.0.1:8080";
    match source.values.get("address") {
        None => {
            let path = if props.has("source_config") {
                props.path.key("source_config")
            } else {
                props.path.key("source").key("config")
            };
            let message = format!(
                "a link from http-server needs the source config `address` to listen on, {example}"
            );
            w.problem(&path, message);
        }
        Some(address) if address.parse::<SocketAddr>().is_err() => {
            let path = &source.paths["address"];
            let message =
                format!("'{address}' is not a valid address: expected IP:PORT, {example}");
            w.problem(path, message);
        }
        Some(_) => {}
    }
}
