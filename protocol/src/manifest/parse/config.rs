//! `config` fields: a list of `{name, properties}` blocks merged in order, a single
//! such block, or a plain map of values; bounded by [`Limits`](crate::manifest::Limits).
//! A block with a `name` and no `properties` names config stored in the lattice
//! (`lattice config put`), as wadm reads a reference to `wash config put`.

use super::walk::{Node, Obj, Path, Walker};
use crate::manifest::{valid_config_name, Config, ConfigLayer, CONFIG_NAME_RULE};
use std::collections::BTreeMap;

/// Config values and where each one was set (the last place, when merged).
#[derive(Debug, Default)]
pub(super) struct Configs {
    /// The values written in the manifest, merged.
    pub values: Config,
    pub paths: BTreeMap<String, Path>,
    /// Block by block, when one names stored config; else empty.
    pub layers: Vec<ConfigLayer>,
    /// Where each named config was referenced.
    pub named: Vec<(String, Path)>,
}

impl Configs {
    /// The blocks in order, kept only when one of them names stored config.
    fn finish(mut self) -> Self {
        if self.named.is_empty() {
            self.layers.clear();
        }
        self
    }
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
            _ => {
                let mut values = Configs::default();
                config_values(w, &obj, &mut values);
                out.values = values.values;
                out.paths = values.paths;
            }
        }
        return out.finish();
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
    out.finish()
}

/// `{name, properties}`.
fn config_block(w: &mut Walker, block: &Obj<'_>, out: &mut Configs) {
    w.only(block, &["name", "properties"], &[]);
    let name = w.required_str(block, "name").map(str::to_owned);
    match block.get("properties") {
        Some(n) => {
            if let Some(values) = w.map(&n) {
                let mut layer = Configs::default();
                config_values(w, &values, &mut layer);
                out.layers.push(ConfigLayer::Values(layer.values.clone()));
                out.values.extend(layer.values);
                out.paths.extend(layer.paths);
            }
        }
        // A reference to config stored in the lattice.
        None => {
            let Some(name) = name else { return };
            let path = block.path.key("name");
            if valid_config_name(&name) {
                out.layers.push(ConfigLayer::Named(name.clone()));
                out.named.push((name, path));
            } else {
                w.problem(
                    &path,
                    format!("'{name}' is not a valid config name: {CONFIG_NAME_RULE}"),
                );
            }
        }
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
