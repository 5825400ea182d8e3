//! Where a component's links to other Wasm components go, read from the manifest.

use super::settings::LinkSettings;
use crate::env::LinkTarget;
use lattice_protocol::manifest::{parse_timeout, Image, Manifest};
use std::collections::HashMap;

/// Interface key (`namespace:package/interface`), then link name, to the target.
pub type Targets = HashMap<String, HashMap<String, LinkTarget>>;

/// The link targets of component `name` of `manifest`: every link whose target is a
/// Wasm component of the app. An error names a link setting that makes no sense.
pub fn of(manifest: &Manifest, name: &str, settings: &LinkSettings) -> Result<Targets, String> {
    let mut targets = Targets::new();
    let links = manifest.component(name).into_iter().flat_map(|c| &c.links);
    for link in links {
        let image = manifest.component(&link.target).map(|t| &t.image);
        // A provider's keyvalue is served by the keyvalue capability, which keeps
        // the bucket resources here and forwards each operation.
        let provider_kv = manifest.is_provider(&link.target)
            && link.namespace == "wasi"
            && link.package == "keyvalue";
        if provider_kv || !image.is_some_and(Image::is_code) {
            continue;
        }
        let timeout = match link.source_config.get("timeout") {
            Some(t) => parse_timeout(t).map_err(|e| {
                format!(
                    "the link from '{name}' to '{}' of app '{}': {e}",
                    link.target, manifest.name
                )
            })?,
            None => settings.call_timeout,
        };
        for interface in &link.interfaces {
            let key = format!("{}:{}/{interface}", link.namespace, link.package);
            let target = LinkTarget {
                component: link.target.clone(),
                timeout,
            };
            targets
                .entry(key)
                .or_default()
                .insert(link.name.clone(), target);
        }
    }
    Ok(targets)
}
