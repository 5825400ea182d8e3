//! wadm's secrets: `spec.policies` (secret policies, `policy.secret.wasmcloud.dev/v1alpha1`)
//! and a component's `properties.secrets`, each `{name, properties: {policy, key}}`:
//! `name` is what the component (or provider) asks for, `key` the secret stored in
//! the lattice (`lattice secret put KEY`). Every policy's backend is served by the
//! lattice's own secret store.

use super::walk::{Node, Path, Walker};
use crate::manifest::{valid_config_name, SecretRef, CONFIG_NAME_RULE};
use std::collections::BTreeMap;

/// The only policy type wadm defines.
pub(super) const SECRET_POLICY: &str = "policy.secret.wasmcloud.dev/v1alpha1";

/// A policy's name, backend and where it was written.
pub(super) type Policies = BTreeMap<String, (String, Path)>;

/// `spec.policies`: name to backend.
pub(super) fn policies(w: &mut Walker, node: &Node<'_>) -> Policies {
    let mut out = Policies::new();
    for item in w.list(node).unwrap_or_default() {
        let Some(obj) = w.map(&item) else { continue };
        w.only(&obj, &["name", "type", "properties"], &[]);
        let name = w.required_str(&obj, "name");
        let kind = w.required_str(&obj, "type");
        if let Some(kind) = kind.filter(|k| *k != SECRET_POLICY) {
            w.problem(
                &obj.path.key("type"),
                format!("unknown policy type '{kind}': lattice knows `{SECRET_POLICY}`"),
            );
        }
        let backend = match w.required(&obj, "properties").and_then(|n| w.map(&n)) {
            Some(props) => {
                // wadm's secret policies may carry backend-specific settings;
                // lattice's own store needs none of them.
                w.required_str(&props, "backend").map(str::to_owned)
            }
            None => None,
        };
        if let (Some(name), Some(backend)) = (name, backend) {
            if let Some((_, at)) = out.get(name) {
                let message = format!("duplicate policy name '{name}' (first used at {at})");
                w.problem(&obj.path.key("name"), message);
                continue;
            }
            out.insert(name.to_owned(), (backend, obj.path.clone()));
        }
    }
    out
}

/// A component's `properties.secrets`.
pub(super) fn secrets(w: &mut Walker, node: &Node<'_>, policies: &Policies) -> Vec<SecretRef> {
    let mut out: Vec<SecretRef> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let items = w.list(node).unwrap_or_default();
    if !w.at_most(
        &node.path,
        items.len(),
        w.limits.max_config_entries,
        "secrets",
    ) {
        return out;
    }
    for item in items {
        let Some(obj) = w.map(&item) else { continue };
        w.only(&obj, &["name", "properties"], &[]);
        let name = w.required_str(&obj, "name");
        if let Some(name) = name {
            w.short_name(&obj.path.key("name"), name);
            if !seen.insert(name) {
                w.problem(
                    &obj.path.key("name"),
                    format!("duplicate secret name '{name}'"),
                );
            }
        }
        let Some(props) = w.required(&obj, "properties").and_then(|n| w.map(&n)) else {
            continue;
        };
        let unsupported = "lattice keeps one value per secret: remove it";
        w.only(
            &props,
            &["policy", "key"],
            &[("field", unsupported), ("version", unsupported)],
        );
        let policy = w.required_str(&props, "policy");
        let backend = policy.and_then(|p| match policies.get(p) {
            Some((backend, _)) => Some(backend.clone()),
            None => {
                let known: Vec<&str> = policies.keys().map(String::as_str).collect();
                let known = if known.is_empty() {
                    "spec.policies names none".to_string()
                } else {
                    format!("expected one of {}", known.join(", "))
                };
                w.problem(
                    &props.path.key("policy"),
                    format!("unknown policy '{p}': {known}"),
                );
                None
            }
        });
        let key = w.required_str(&props, "key");
        if let Some(key) = key.filter(|k| !valid_config_name(k)) {
            w.problem(
                &props.path.key("key"),
                format!("'{key}' is not a valid secret name: {CONFIG_NAME_RULE}"),
            );
        }
        if let (Some(name), Some(policy), Some(backend), Some(key)) = (name, policy, backend, key) {
            out.push(SecretRef {
                name: name.to_owned(),
                key: key.to_owned(),
                policy: policy.to_owned(),
                backend,
            });
        }
    }
    out
}
