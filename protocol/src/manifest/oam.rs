//! A normalized [`Manifest`] written back as an OAM document, so a manifest that
//! arrives as JSON (a `DeployRequest` sent straight to the controller's API, a
//! `WorkloadSpec` a host is told to apply) goes through exactly the parser and the
//! [`Limits`] a YAML manifest goes through, with the same path-located messages.

use super::parse::{parse_value, ManifestError};
use super::{Component, Config, ConfigLayer, Limits, Link, Manifest, Scaler, SecretRef};
use serde_yaml_ng::{Mapping, Value};

/// The manifest as the OAM document it stands for (`apiVersion`, `kind`,
/// `metadata`, `spec.components` with their traits).
pub fn to_oam(manifest: &Manifest) -> Value {
    let mut annotations = Mapping::new();
    // No version yet (the controller assigns one when it stores the manifest).
    if !manifest.version.is_empty() {
        annotations.insert(s("version"), s(&manifest.version));
    }
    if let Some(description) = &manifest.description {
        annotations.insert(s("description"), s(description));
    }
    let metadata = map([
        ("name", s(&manifest.name)),
        ("annotations", Value::Mapping(annotations)),
    ]);
    let components = manifest.components.iter().map(component).collect();
    let mut spec = map([("components", Value::Sequence(components))]);
    // Secret policies, from the secrets that name them.
    let policies: std::collections::BTreeMap<&str, &str> = manifest
        .components
        .iter()
        .flat_map(|c| manifest.secrets_of(&c.name))
        .map(|r| (r.policy.as_str(), r.backend.as_str()))
        .collect();
    if !policies.is_empty() {
        let policies = policies.into_iter().map(|(name, backend)| {
            Value::Mapping(map([
                ("name", s(name)),
                ("type", s("policy.secret.wasmcloud.dev/v1alpha1")),
                ("properties", Value::Mapping(map([("backend", s(backend))]))),
            ]))
        });
        spec.insert(s("policies"), Value::Sequence(policies.collect()));
    }
    if let Some(r) = &manifest.rollout {
        let text = r.max_unavailable.to_text();
        let value = match r.max_unavailable {
            super::MaxUnavailable::Hosts(n) => Value::from(n),
            super::MaxUnavailable::Percent(_) => s(&text),
        };
        spec.insert(
            s("rollout"),
            Value::Mapping(map([("maxUnavailable", value)])),
        );
    }
    Value::Mapping(map([
        ("apiVersion", s("core.oam.dev/v1beta1")),
        ("kind", s("Application")),
        ("metadata", Value::Mapping(metadata)),
        ("spec", Value::Mapping(spec)),
    ]))
}

/// Check a manifest that did not come from YAML text with the parser and `limits`;
/// the result is the manifest as the parser normalizes it.
///
/// ```
/// use lattice_protocol::manifest::{parse, revalidate, Limits, Scaler};
///
/// let yaml = r#"
/// apiVersion: core.oam.dev/v1beta1
/// kind: Application
/// metadata: {name: a, annotations: {version: v1}}
/// spec:
///   components:
///     - name: x
///       type: component
///       properties: {image: file://x.wasm}
///       traits: [{type: spreadscaler, properties: {instances: 2}}]
/// "#;
/// let mut manifest = parse(yaml).unwrap();
/// assert_eq!(revalidate(&manifest, &Limits::default()).unwrap(), manifest);
/// // As if sent as JSON straight to the API:
/// manifest.components[0].scaler = Some(Scaler::Spreadscaler { instances: u32::MAX, spread: vec![] });
/// let err = revalidate(&manifest, &Limits::default()).unwrap_err();
/// assert_eq!(err.problems[0].path, "spec.components[0].traits[0].properties.instances");
/// ```
pub fn revalidate(manifest: &Manifest, limits: &Limits) -> Result<Manifest, ManifestError> {
    parse_value(&to_oam(manifest), limits)
}

fn s(text: &str) -> Value {
    Value::String(text.to_owned())
}

fn map<const N: usize>(entries: [(&str, Value); N]) -> Mapping {
    entries.into_iter().map(|(k, v)| (s(k), v)).collect()
}

fn config(values: &Config) -> Value {
    Value::Mapping(values.iter().map(|(k, v)| (s(k), s(v))).collect())
}

/// Blocks in order: `{name, properties}` for values (named after their place),
/// `{name}` for stored config.
fn config_layers(layers: &[ConfigLayer]) -> Value {
    let blocks = layers.iter().enumerate().map(|(i, layer)| match layer {
        ConfigLayer::Values(v) => Value::Mapping(map([
            ("name", s(&format!("values-{i}"))),
            ("properties", config(v)),
        ])),
        ConfigLayer::Named(name) => Value::Mapping(map([("name", s(name))])),
    });
    Value::Sequence(blocks.collect())
}

fn component(c: &Component) -> Value {
    let image = c.image.to_uri();
    let kind = serde_yaml_ng::to_value(c.kind).unwrap_or(Value::Null);
    let mut properties = map([("image", s(&image))]);
    if !c.config_layers.is_empty() {
        properties.insert(s("config"), config_layers(&c.config_layers));
    } else if !c.config.is_empty() {
        properties.insert(s("config"), config(&c.config));
    }
    if !c.secrets.is_empty() {
        properties.insert(s("secrets"), secret_refs(&c.secrets));
    }
    if let Some(r) = &c.restart {
        let restart = map([
            ("max_restarts", Value::from(r.max_restarts)),
            ("backoff", s(&format!("{}ms", r.backoff_ms))),
            ("max_backoff", s(&format!("{}ms", r.max_backoff_ms))),
        ]);
        properties.insert(s("restart"), Value::Mapping(restart));
    }
    if let Some(warm) = &c.warm {
        let warm = map([
            ("pool", Value::from(warm.pool)),
            ("max_invocations", Value::from(warm.max_invocations)),
            ("idle", s(&format!("{}ms", warm.idle_ms))),
        ]);
        properties.insert(s("warm"), Value::Mapping(warm));
    }
    let mut traits: Vec<Value> = c.scaler.iter().map(scaler).collect();
    traits.extend(c.links.iter().map(link));
    let mut out = map([
        ("name", s(&c.name)),
        ("type", kind),
        ("properties", Value::Mapping(properties)),
    ]);
    if !traits.is_empty() {
        out.insert(s("traits"), Value::Sequence(traits));
    }
    Value::Mapping(out)
}

fn scaler(scaler: &Scaler) -> Value {
    let kind = match scaler {
        Scaler::Spreadscaler { .. } => "spreadscaler",
        Scaler::Daemonscaler { .. } => "daemonscaler",
    };
    let spread = scaler
        .spread()
        .iter()
        .map(|sp| {
            let requirements = sp.requirements.iter().map(|(k, v)| (s(k), s(v))).collect();
            Value::Mapping(map([
                ("name", s(&sp.name)),
                ("requirements", Value::Mapping(requirements)),
                ("weight", Value::from(sp.weight)),
            ]))
        })
        .collect();
    let properties = map([
        ("instances", Value::from(scaler.instances())),
        ("spread", Value::Sequence(spread)),
    ]);
    Value::Mapping(map([
        ("type", s(kind)),
        ("properties", Value::Mapping(properties)),
    ]))
}

/// wadm's form of a list of secrets: `{name, properties: {policy, key}}` each.
fn secret_refs(secrets: &[SecretRef]) -> Value {
    let secrets = secrets.iter().map(|r| {
        let props = map([("policy", s(&r.policy)), ("key", s(&r.key))]);
        Value::Mapping(map([
            ("name", s(&r.name)),
            ("properties", Value::Mapping(props)),
        ]))
    });
    Value::Sequence(secrets.collect())
}

fn link(l: &Link) -> Value {
    let mut target = map([("name", s(&l.target)), ("config", config(&l.target_config))]);
    let mut source = map([("config", config(&l.source_config))]);
    for (side, secrets) in [
        (&mut target, &l.target_secrets),
        (&mut source, &l.source_secrets),
    ] {
        if !secrets.is_empty() {
            side.insert(s("secrets"), secret_refs(secrets));
        }
    }
    let interfaces = l.interfaces.iter().map(|i| s(i)).collect();
    let properties = map([
        ("target", Value::Mapping(target)),
        ("source", Value::Mapping(source)),
        ("namespace", s(&l.namespace)),
        ("package", s(&l.package)),
        ("interfaces", Value::Sequence(interfaces)),
        ("name", s(&l.name)),
    ]);
    Value::Mapping(map([
        ("type", s("link")),
        ("properties", Value::Mapping(properties)),
    ]))
}
