//! `config` fields: a list of `{name, properties}` blocks merged in order, a single
//! such block, or a plain map of values; bounded by [`Limits`](crate::manifest::Limits).

use super::walk::{Node, Obj, Path, Walker};
use crate::manifest::Config;
use std::collections::BTreeMap;

/// Config values and where each one was set (the last place, when merged).
#[derive(Debug, Default)]
pub(super) struct Configs {
    pub values: Config,
    pub paths: BTreeMap<String, Path>,
}

/// A `config` field: a list of `{name, properties}` blocks merged in order, a single
/// such block, or a plain map of values.
pub(super) fn config(w: &mut Walker, node: &Node<'_>) -> Configs {
    let mut out = Configs::default();
    if let serde_yaml_ng::Value::Mapping(_) = node.value {
        let Some(obj) = w.map(node) else {
            return out;
        };
        match obj.get("properties") {
            Some(props) if props.value.is_mapping() => config_block(w, &obj, &mut out),
            _ => config_values(w, &obj, &mut out),
        }
        return out;
    }
    for item in w.list(node).unwrap_or_default() {
        if let Some(block) = w.map(&item) {
            config_block(w, &block, &mut out);
        }
    }
    // Merged blocks count together.
    let max = w.limits.max_config_entries;
    if !w.at_most(
        &node.path,
        out.values.len(),
        max,
        "config entries once merged",
    ) {
        out = Configs::default();
    }
    out
}

/// `{name, properties}`.
fn config_block(w: &mut Walker, block: &Obj<'_>, out: &mut Configs) {
    w.only(block, &["name", "properties"], &[]);
    w.required_str(block, "name");
    match block.get("properties") {
        Some(n) => {
            if let Some(values) = w.map(&n) {
                config_values(w, &values, out);
            }
        }
        None => w.problem(
            &block.path.key("properties"),
            "is required: references to config stored elsewhere are not supported yet",
        ),
    }
}

fn config_values(w: &mut Walker, values: &Obj<'_>, out: &mut Configs) {
    let max = w.limits.max_config_entries;
    if !w.at_most(&values.path, values.map.len(), max, "config entries") {
        return;
    }
    for (key, value) in values.map {
        let key_node = Node {
            value: key,
            path: values.path.clone(),
        };
        let Some(key) = w.scalar(&key_node) else {
            continue;
        };
        let node = Node {
            value,
            path: values.path.key(&key),
        };
        if !w.short_name(&node.path, &key) {
            continue;
        }
        if let Some(value) = w.scalar(&node).filter(|v| w.short_value(&node.path, v)) {
            out.values.insert(key.clone(), value);
            out.paths.insert(key, node.path);
        }
    }
}
