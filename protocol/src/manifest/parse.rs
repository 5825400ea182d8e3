//! The manifest parser: wadm-style OAM YAML in, a validated [`Manifest`] or every
//! problem out.
//!
//! The text is read into a `serde_yaml_ng::Value` and walked by hand, so each problem
//! carries its path in the document (`spec.components[1].traits[0].properties.target`)
//! and no bare serde message reaches the user. Walking goes on after a problem: one
//! run reports all of them. A field this parser does not know is refused with its
//! name (wadm's fields lattice does not support, such as `secrets` or `policies`,
//! with the reason), never ignored; only `metadata.labels` and annotations other
//! than `version` and `description` are accepted as information, as wadm does.
//!
//! - [`wasmcloud`]: wasmCloud's first-party capability images read as lattice's.
//! - [`keys`]: the config keys each builtin and bundled provider reads.
//!
//! - [`walk`]: paths and typed reads that record problems, and the [`Limits`] in force.
//! - [`draft`]: what is known of a component and its links while reading (data only).
//! - [`config`]: `config` fields.
//! - [`component`]: one entry of `spec.components` (image, config).
//! - [`traits`]: scaler and link traits of one component.
//! - [`links`]: checks across components (link targets, ambiguous links).
//! - [`rollout`]: `spec.rollout`, how a new version moves across hosts.

mod component;
mod config;
mod draft;
mod keys;
mod links;
mod rollout;
mod secrets;
mod traits;
mod walk;
pub use walk::is_dns_label;
mod wasmcloud;

use super::{Limits, Manifest};
use std::fmt;
use walk::{Node, Obj, Path, Walker};

/// The only accepted `apiVersion`.
const API_VERSION: &str = "core.oam.dev/v1beta1";
/// The only accepted `kind`.
const KIND: &str = "Application";

/// One problem in a manifest, with its path in the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where, e.g. `spec.components[0].name`, or `(document)` for the whole text.
    pub path: String,
    /// What is wrong and, where possible, how to fix it.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every problem found in a manifest, in document order. Displays one per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    /// The problems, in document order.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ManifestError {}

/// Parse and validate a manifest within the default [`Limits`].
///
/// Relative `file://` paths stay relative: the caller resolves them against the
/// manifest's folder.
pub fn parse(text: &str) -> Result<Manifest, ManifestError> {
    parse_with_limits(text, &Limits::default())
}

/// Parse and validate a manifest within `limits`.
pub fn parse_with_limits(text: &str, limits: &Limits) -> Result<Manifest, ManifestError> {
    if let Some(message) = over_budget(text, limits) {
        return Err(ManifestError {
            problems: vec![Problem {
                path: Path::default().to_string(),
                message,
            }],
        });
    }
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).map_err(|e| ManifestError {
        problems: vec![Problem {
            path: Path::default().to_string(),
            message: syntax_message(&e),
        }],
    })?;
    parse_value(&doc, limits)
}

/// Validate a manifest document already read as YAML values.
pub(crate) fn parse_value(
    doc: &serde_yaml_ng::Value,
    limits: &Limits,
) -> Result<Manifest, ManifestError> {
    let mut w = Walker::new(*limits);
    let manifest = manifest(&mut w, &Node::root(doc));
    let mut problems = w.finish();
    match manifest {
        Some(m) if problems.is_empty() => Ok(m),
        _ => {
            if problems.is_empty() {
                // Every read that gives up records why, so this is a parser bug.
                problems.push(Problem {
                    path: Path::default().to_string(),
                    message: "invalid manifest".into(),
                });
            }
            Err(ManifestError { problems })
        }
    }
}

fn over_budget(text: &str, limits: &Limits) -> Option<String> {
    let max = limits.max_document_bytes;
    if text.len() > max {
        let len = text.len();
        return Some(format!(
            "the manifest is {len} bytes, over the limit of {max} bytes"
        ));
    }
    let max = limits.max_brackets;
    let brackets = text.bytes().filter(|b| matches!(b, b'[' | b'{')).count();
    if brackets > max {
        return Some(format!(
            "the manifest has {brackets} '[' and '{{', over the limit of {max}: \
             write deeply nested lists and maps in block style, one item per line"
        ));
    }
    None
}

fn syntax_message(e: &serde_yaml_ng::Error) -> String {
    let text = e.to_string();
    match e.location() {
        Some(at) if !text.contains(" at line ") => format!(
            "invalid YAML: {text} at line {} column {}",
            at.line(),
            at.column()
        ),
        _ => format!("invalid YAML: {text}"),
    }
}

fn manifest(w: &mut Walker, root: &Node<'_>) -> Option<Manifest> {
    if root.value.is_null() {
        w.problem(
            &root.path,
            format!("the manifest is empty: expected an {KIND} with apiVersion, kind, metadata and spec"),
        );
        return None;
    }
    let doc = w.map(root)?;
    w.only(&doc, &["apiVersion", "kind", "metadata", "spec"], &[]);
    exact(w, &doc, "apiVersion", API_VERSION);
    exact(w, &doc, "kind", KIND);
    let metadata = w.required(&doc, "metadata").and_then(|n| w.map(&n));
    let (name, version, description) = match metadata {
        Some(m) => metadata_fields(w, &m),
        None => (None, None, None),
    };
    let spec = w.required(&doc, "spec").and_then(|n| w.map(&n));
    if let Some(spec) = &spec {
        w.only(spec, &["components", "rollout", "policies"], &[]);
    }
    let policies = spec
        .as_ref()
        .and_then(|s| s.get("policies"))
        .map(|n| secrets::policies(w, &n))
        .unwrap_or_default();
    let rollout = spec
        .as_ref()
        .and_then(|s| s.get("rollout"))
        .and_then(|n| rollout::rollout(w, &n));
    let components = spec
        .and_then(|s| w.required(&s, "components"))
        .and_then(|n| component::all(w, &n, &policies));
    Some(Manifest {
        name: name?,
        version: version.unwrap_or_default(),
        description,
        components: components?,
        rollout,
    })
}

/// A string field that must be exactly `expected`.
fn exact(w: &mut Walker, doc: &Obj<'_>, key: &str, expected: &str) {
    let path = doc.path.key(key);
    match doc.get(key) {
        None => w.problem(&path, format!("is required: set it to {expected}")),
        Some(node) => {
            if let Some(found) = w.str(&node) {
                if found != expected {
                    w.problem(&path, format!("expected {expected}, found '{found}'"));
                }
            }
        }
    }
}

/// The `name`, the `version` (`Some("")` when not given: the controller assigns
/// one) and the `description` of `metadata`; `None` for one with a problem.
type MetadataFields = (Option<String>, Option<String>, Option<String>);

/// The wadm annotation that makes an app shared.
const SHARED: &str = "experimental.wasmcloud.dev/shared";

fn metadata_fields(w: &mut Walker, meta: &Obj<'_>) -> MetadataFields {
    w.only(meta, &["name", "annotations", "labels"], &[]);
    if let Some(labels) = meta.get("labels").and_then(|n| w.map(&n)) {
        string_map(w, &labels);
    }
    let name = w.required_str(meta, "name").filter(|name| {
        let ok = walk::is_dns_label(name);
        if !ok {
            let path = meta.path.key("name");
            let rule = walk::DNS_LABEL_RULE;
            w.problem(&path, format!("'{name}' is not a valid app name: {rule}"));
        }
        ok
    });
    let empty = serde_yaml_ng::Mapping::new();
    let annotations = match meta.get("annotations") {
        Some(node) => w.map(&node),
        None => Some(Obj {
            map: &empty,
            path: meta.path.key("annotations"),
        }),
    };
    let Some(annotations) = annotations else {
        return (name.map(str::to_owned), None, None);
    };
    string_map(w, &annotations);
    if annotations.has(SHARED) {
        w.problem(
            &annotations.path.key(SHARED),
            format!(
                "`{SHARED}` is not supported: lattice has no shared applications; \
                     give each app its own copy of the components it uses"
            ),
        );
    }
    let Some(version) = annotations.get("version") else {
        let description = w.optional_str(&annotations, "description");
        return (
            name.map(str::to_owned),
            Some(String::new()),
            description.map(str::to_owned),
        );
    };
    let version = w.str(&version).filter(|version| {
        let ok = walk::is_version(version);
        let path = annotations.path.key("version");
        if version.is_empty() {
            w.problem(
                &path,
                "must not be empty: give the app's version, e.g. v0.1.0",
            );
        } else if !ok {
            w.problem(
                &path,
                format!(
                    "'{version}' is not a valid version: use 1 to 64 letters, digits, \
                     '.', '_', '+' or '-', e.g. v0.1.0"
                ),
            );
        }
        ok
    });
    let description = w.optional_str(&annotations, "description");
    (
        name.map(str::to_owned),
        version.map(str::to_owned),
        description.map(str::to_owned),
    )
}

/// A map of strings to strings (`labels`, `annotations`): informational, checked
/// for shape and budgets only.
fn string_map(w: &mut Walker, obj: &Obj<'_>) {
    let max = w.limits.max_config_entries;
    if !w.at_most(&obj.path, obj.map.len(), max, "entries") {
        return;
    }
    for (key, value) in obj.map {
        let key_node = Node {
            value: key,
            path: obj.path.clone(),
        };
        let Some(key) = w.str(&key_node) else {
            continue;
        };
        if matches!(key, "version" | "description") {
            continue; // read, with their own messages, by the caller
        }
        let node = Node {
            value,
            path: obj.path.key(key),
        };
        if w.short_name(&node.path, key) {
            if let Some(v) = w.scalar(&node) {
                w.short_value(&node.path, &v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Builtin, ComponentKind, Image, Scaler, DEFAULT_LINK_NAME};

    const COUNTER: &str = r#"
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: {name: counter, annotations: {version: v1}}
spec:
  components:
    - name: counter
      type: component
      properties: {image: "file:///w/counter.wasm"}
      traits:
        - {type: spreadscaler, properties: {replicas: 5}}
        - type: link
          properties: {target: kv, namespace: wasi, package: keyvalue, interfaces: [store]}
    - name: kv
      type: capability
      properties: {image: "builtin://keyvalue-nats"}
"#;

    #[test]
    fn parses_a_small_app() {
        let m = parse(COUNTER).unwrap();
        assert_eq!((m.name.as_str(), m.version.as_str()), ("counter", "v1"));
        let counter = m.component("counter").unwrap();
        assert_eq!(counter.image, Image::File("/w/counter.wasm".into()));
        assert_eq!(counter.scaler.as_ref().map(Scaler::instances), Some(5));
        assert_eq!(counter.links[0].name, DEFAULT_LINK_NAME);
        assert!(counter.links[0].carries("wasi", "keyvalue", "store"));
        let kv = m.component("kv").unwrap();
        assert_eq!(kv.kind, ComponentKind::Capability);
        assert_eq!(kv.image, Image::Builtin(Builtin::KeyvalueNats));
    }

    #[test]
    fn reports_every_problem_with_its_path_one_per_line() {
        let text = COUNTER
            .replace("target: kv", "target: {name: kvredis}")
            .replace("version: v1", "version: ''");
        let err = parse(&text).unwrap_err();
        assert_eq!(
            err.to_string(),
            "metadata.annotations.version: must not be empty: give the app's version, e.g. v0.1.0\n\
             spec.components[0].traits[1].properties.target.name: no component named 'kvredis'"
        );
    }

    #[test]
    fn budgets_refuse_big_documents_and_values() {
        let limits = crate::manifest::Limits {
            max_document_bytes: COUNTER.len() - 1,
            ..Default::default()
        };
        let err = parse_with_limits(COUNTER, &limits).unwrap_err();
        assert_eq!(err.problems[0].path, "(document)");
        assert!(err.problems[0].message.contains("over the limit"), "{err}");
        let big = COUNTER.replace(
            "image: \"file:///w/counter.wasm\"}",
            &format!(
                "image: \"file:///w/counter.wasm\", config: {{k: {}}}}}",
                "v".repeat(65 * 1024)
            ),
        );
        let err = parse(&big).unwrap_err();
        assert_eq!(
            err.to_string(),
            "spec.components[0].properties.config.k: is 66560 bytes long, over the limit of 65536 bytes"
        );
    }

    #[test]
    fn syntax_errors_are_one_problem_at_the_document() {
        let err = parse("kind: [Application\n").unwrap_err();
        assert_eq!(err.problems.len(), 1);
        assert_eq!(err.problems[0].path, "(document)");
        assert!(err.problems[0].message.contains("line 2"), "{err}");
    }
}
