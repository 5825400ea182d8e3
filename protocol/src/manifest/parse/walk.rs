//! Walking a `serde_yaml_ng::Value` by hand: document paths, typed reads that record a
//! problem instead of failing, and the name rules shared by the rest of the parser.

use super::Problem;
use crate::manifest::Limits;
use serde_yaml_ng::{Mapping, Value};
use std::fmt;

/// A place in the document, such as `spec.components[1].traits[0].properties`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Path {
    text: String,
    /// The list indexes along the path (`[1, 0]` above), to sort problems by.
    indexes: Vec<usize>,
}

impl Path {
    /// The child `key` of the map at this path.
    pub fn key(&self, key: &str) -> Path {
        let simple = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        let text = match (self.text.is_empty(), simple) {
            (true, true) => key.to_owned(),
            (false, true) => format!("{}.{key}", self.text),
            (_, false) => format!("{}[{key:?}]", self.text),
        };
        let indexes = self.indexes.clone();
        Path { text, indexes }
    }

    /// Item `index` of the list at this path.
    pub fn at(&self, index: usize) -> Path {
        let text = format!("{}[{index}]", self.text);
        let mut indexes = self.indexes.clone();
        indexes.push(index);
        Path { text, indexes }
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.text.is_empty() {
            f.write_str("(document)")
        } else {
            f.write_str(&self.text)
        }
    }
}

/// A value and where it sits.
#[derive(Debug, Clone)]
pub(super) struct Node<'v> {
    pub value: &'v Value,
    pub path: Path,
}

impl<'v> Node<'v> {
    pub fn root(value: &'v Value) -> Self {
        Node {
            value,
            path: Path::default(),
        }
    }
}

/// A map and where it sits.
#[derive(Debug, Clone)]
pub(super) struct Obj<'v> {
    pub map: &'v Mapping,
    pub path: Path,
}

impl<'v> Obj<'v> {
    /// The field `key`; absent and `null` (`key:` with nothing after it) read the same.
    pub fn get(&self, key: &str) -> Option<Node<'v>> {
        self.map
            .get(key)
            .filter(|v| !v.is_null())
            .map(|value| Node {
                value,
                path: self.path.key(key),
            })
    }

    /// Whether the field `key` is present and not `null`.
    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }
}

/// Collects problems while reading values; every read goes on after a problem.
#[derive(Debug, Default)]
pub(super) struct Walker {
    found: Vec<(Vec<usize>, Problem)>,
    /// The budgets in force.
    pub limits: Limits,
}

impl Walker {
    pub fn new(limits: Limits) -> Self {
        Self {
            found: Vec::new(),
            limits,
        }
    }

    /// Whether `text` (a name or key) fits the name budget; a problem if not.
    pub fn short_name(&mut self, path: &Path, text: &str) -> bool {
        let max = self.limits.max_name_bytes;
        let ok = text.len() <= max;
        if !ok {
            let message = format!(
                "is {} bytes long, over the limit of {max} bytes",
                text.len()
            );
            self.problem(path, message);
        }
        ok
    }

    /// Whether `text` (a config or label value) fits the value budget.
    pub fn short_value(&mut self, path: &Path, text: &str) -> bool {
        let max = self.limits.max_value_bytes;
        let ok = text.len() <= max;
        if !ok {
            let message = format!(
                "is {} bytes long, over the limit of {max} bytes",
                text.len()
            );
            self.problem(path, message);
        }
        ok
    }

    /// Whether a list or map of `len` entries fits `max`; a problem if not.
    pub fn at_most(&mut self, path: &Path, len: usize, max: usize, what: &str) -> bool {
        let ok = len <= max;
        if !ok {
            self.problem(path, format!("has {len} {what}, over the limit of {max}"));
        }
        ok
    }

    pub fn problem(&mut self, path: &Path, message: impl Into<String>) {
        let problem = Problem {
            path: path.to_string(),
            message: message.into(),
        };
        self.found.push((path.indexes.clone(), problem));
    }

    /// Every problem in document order. Checks across components run last, so
    /// problems are sorted (stably) by the list indexes along their paths; fields of
    /// one map are already reported in the order they are read.
    pub fn finish(mut self) -> Vec<Problem> {
        self.found.sort_by(|a, b| a.0.cmp(&b.0));
        self.found.into_iter().map(|(_, p)| p).collect()
    }

    /// Refuse every field of `obj` that is not in `known`: one problem per field,
    /// naming it, with the reason from `refused` for the wadm fields lattice knows
    /// of but does not support.
    pub fn only(&mut self, obj: &Obj<'_>, known: &[&str], refused: &[(&str, &str)]) {
        for key in obj.map.keys() {
            let Value::String(key) = key else {
                let found = describe(key);
                self.problem(
                    &obj.path,
                    format!("has a field named {found}: field names are strings"),
                );
                continue;
            };
            if known.contains(&key.as_str()) {
                continue;
            }
            let path = obj.path.key(key);
            match refused.iter().find(|(name, _)| name == key) {
                Some((_, why)) => self.problem(&path, format!("`{key}` is not supported: {why}")),
                None => {
                    let known = known.join(", ");
                    self.problem(&path, format!("unknown field `{key}`: expected {known}"));
                }
            }
        }
    }

    /// The field `key` of `obj`, or a "required" problem.
    pub fn required<'v>(&mut self, obj: &Obj<'v>, key: &str) -> Option<Node<'v>> {
        let node = obj.get(key);
        if node.is_none() {
            self.problem(&obj.path.key(key), "is required");
        }
        node
    }

    /// The string field `key` of `obj`, or a problem.
    pub fn required_str<'v>(&mut self, obj: &Obj<'v>, key: &str) -> Option<&'v str> {
        let node = self.required(obj, key)?;
        self.str(&node)
    }

    /// The string field `key` of `obj` if present; a problem if it is not a string.
    pub fn optional_str<'v>(&mut self, obj: &Obj<'v>, key: &str) -> Option<&'v str> {
        let node = obj.get(key)?;
        self.str(&node)
    }

    pub fn str<'v>(&mut self, node: &Node<'v>) -> Option<&'v str> {
        match node.value {
            Value::String(s) => Some(s),
            Value::Number(_) | Value::Bool(_) => {
                let found = describe(node.value);
                self.problem(
                    &node.path,
                    format!("expected a string, found {found}: put it in quotes"),
                );
                None
            }
            other => self.mismatch(&node.path, "a string", other),
        }
    }

    pub fn map<'v>(&mut self, node: &Node<'v>) -> Option<Obj<'v>> {
        match node.value {
            Value::Mapping(map) => Some(Obj {
                map,
                path: node.path.clone(),
            }),
            other => self.mismatch(&node.path, "a map", other),
        }
    }

    /// The items of a list, each with its path.
    pub fn list<'v>(&mut self, node: &Node<'v>) -> Option<Vec<Node<'v>>> {
        match node.value {
            Value::Sequence(items) => Some(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, value)| Node {
                        value,
                        path: node.path.at(i),
                    })
                    .collect(),
            ),
            other => self.mismatch(&node.path, "a list", other),
        }
    }

    /// A whole number in `0..=max`.
    pub fn count(&mut self, node: &Node<'_>, max: u32) -> Option<u32> {
        let found = node.value.as_u64().filter(|n| *n <= u64::from(max));
        if found.is_none() {
            let what = describe(node.value);
            self.problem(
                &node.path,
                format!("expected a whole number from 0 to {max}, found {what}"),
            );
        }
        found.and_then(|n| u32::try_from(n).ok())
    }

    /// A string, number or boolean as text (`8080`, `true`), for config values.
    pub fn scalar(&mut self, node: &Node<'_>) -> Option<String> {
        match node.value {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            other => self.mismatch(&node.path, "a string, number or boolean", other),
        }
    }

    fn mismatch<T>(&mut self, path: &Path, expected: &str, found: &Value) -> Option<T> {
        let found = describe(found);
        self.problem(path, format!("expected {expected}, found {found}"));
        None
    }
}

/// How a value reads in a message: `a list`, `the number 3`, `'text'`.
pub(super) fn describe(value: &Value) -> String {
    match value {
        Value::Null => "nothing".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string '{s}'"),
        Value::Sequence(_) => "a list".into(),
        Value::Mapping(_) => "a map".into(),
        Value::Tagged(t) => format!("a value tagged {}", t.tag),
    }
}

/// `[a-z0-9]([a-z0-9-]*[a-z0-9])?`, at most 63 characters: app and component names.
pub fn is_dns_label(s: &str) -> bool {
    let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    (1..=63).contains(&s.len())
        && s.chars().all(|c| ok(c) || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// The rule text for [`is_dns_label`], for messages.
pub(super) const DNS_LABEL_RULE: &str =
    "use lowercase letters, digits and '-', starting and ending with a letter or digit, \
     at most 63 characters";

/// `[A-Za-z0-9._+-]`, 1 to 64 characters.
pub(super) fn is_version(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-'))
}

/// A WIT identifier: lowercase words of letters and digits, each starting with a
/// letter, joined by '-' (`keyvalue`, `incoming-handler`).
pub(super) fn is_wit_ident(s: &str) -> bool {
    s.split('-').all(|word| {
        word.starts_with(|c: char| c.is_ascii_lowercase())
            && word
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_join_keys_and_indexes() {
        let p = Path::default().key("spec").key("components").at(1);
        let p = p.key("traits").at(0).key("type");
        assert_eq!(p.to_string(), "spec.components[1].traits[0].type");
        assert_eq!(p.indexes, [1, 0]);
        assert_eq!(Path::default().to_string(), "(document)");
        assert_eq!(
            Path::default().key("config").key("a.b").to_string(),
            r#"config["a.b"]"#
        );
    }

    #[test]
    fn name_rules() {
        for good in ["a", "counter", "my-app-2", "0x", &"a".repeat(63)] {
            assert!(is_dns_label(good), "{good}");
        }
        for bad in ["", "-a", "a-", "My", "a_b", "a.b", &"a".repeat(64)] {
            assert!(!is_dns_label(bad), "{bad}");
        }
        assert!(is_version("v0.1.0+build_7-rc"));
        assert!(!is_version("v 1") && !is_version("") && !is_version(&"1".repeat(65)));
        assert!(is_wit_ident("incoming-handler") && is_wit_ident("http2"));
        for bad in ["", "Wasi", "a--b", "-a", "2http", "key_value"] {
            assert!(!is_wit_ident(bad), "{bad}");
        }
    }
}
