//! The import graph between the files of one crate's `src/`, and its circles.
//!
//! A file's imports are the `crate::…` and `super::…` paths in its code (comments
//! and its `#[cfg(test)]` module left out), each resolved to the longest module
//! path that is a file. A folder's `mod.rs` declaring its children (`mod x;`,
//! `pub use x::Y`) is not an import; a child naming its parent through `super::`
//! is. A circle is a set of files that all reach each other.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module path (`["links", "router"]`; `[]` for `lib.rs`) of each `.rs` file.
type Modules = BTreeMap<Vec<String>, PathBuf>;

/// Every circle among the files under `src`, each as its files' module paths
/// (`links/router`), sorted; empty when the graph has none.
pub fn circles(src: &Path) -> std::io::Result<Vec<Vec<String>>> {
    let mut modules = Modules::new();
    collect(src, src, &mut modules)?;
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (module, file) in &modules {
        let code = code_of(&std::fs::read_to_string(file)?);
        let deps = imports(&code, module)
            .into_iter()
            .filter_map(|path| resolve(&modules, &path))
            .filter(|m| m != module)
            .collect();
        edges.insert(module.clone(), deps);
    }
    let mut out: Vec<Vec<String>> = strongly_connected(&edges)
        .into_iter()
        .filter(|c| c.len() > 1)
        .map(|c| {
            let mut names: Vec<String> = c.iter().map(|m| display(m)).collect();
            names.sort();
            names
        })
        .collect();
    out.sort();
    Ok(out)
}

fn display(module: &[String]) -> String {
    if module.is_empty() {
        "lib".to_owned()
    } else {
        module.join("/")
    }
}

fn collect(root: &Path, dir: &Path, out: &mut Modules) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(root, &path, out)?;
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let rel = path.strip_prefix(root).unwrap_or(&path).with_extension("");
        let mut parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if matches!(
            parts.last().map(String::as_str),
            Some("mod" | "lib" | "main")
        ) {
            parts.pop();
        }
        out.insert(parts, path);
    }
    Ok(())
}

/// The file's code without comments and without its test module.
fn code_of(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        if line.trim() == "#[cfg(test)]" {
            break;
        }
        let code = line.split("//").next().unwrap_or("");
        out.push_str(code);
        out.push('\n');
    }
    out
}

/// Absolute module paths (`["links", "router", "Router"]`) the code names.
fn imports(code: &str, module: &[String]) -> Vec<Vec<String>> {
    // `super` in module `a::b` (file `a/b.rs` or `a/b/mod.rs`) is `a`.
    let parent: Vec<String> = module[..module.len().saturating_sub(1)].to_vec();
    let mut out = Vec::new();
    let bytes: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let starts_word = i == 0 || !(bytes[i - 1].is_alphanumeric() || bytes[i - 1] == '_');
        let rest: String = bytes[i..bytes.len().min(i + 7)].iter().collect();
        let (base, skip) = if starts_word && rest.starts_with("crate::") {
            (Vec::new(), 7)
        } else if starts_word && rest.starts_with("super::") {
            (parent.clone(), 7)
        } else {
            i += 1;
            continue;
        };
        i += skip;
        let mut base = base;
        // More `super::`s climb further.
        while bytes[i..].iter().collect::<String>().starts_with("super::") {
            base.pop();
            i += 7;
        }
        if bytes.get(i) == Some(&'{') {
            let end = matching_brace(&bytes, i);
            let group: String = bytes[i + 1..end].iter().collect();
            for item in split_top_level(&group) {
                let mut path = base.clone();
                path.extend(segments(&item));
                out.push(path);
            }
            i = end;
            continue;
        }
        let start = i;
        while i < bytes.len() && (bytes[i].is_alphanumeric() || bytes[i] == '_' || bytes[i] == ':')
        {
            i += 1;
        }
        let text: String = bytes[start..i].iter().collect();
        let mut path = base;
        path.extend(segments(&text));
        out.push(path);
    }
    out
}

fn segments(text: &str) -> Vec<String> {
    text.split("::")
        .map(|s| s.trim().trim_start_matches('{').to_owned())
        .take_while(|s| !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || c == '_'))
        .collect()
}

fn matching_brace(chars: &[char], open: usize) -> usize {
    let mut depth = 0;
    for (i, c) in chars.iter().enumerate().skip(open) {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    chars.len()
}

/// `a, b::{c, d}, e` split at the commas outside braces; nested groups keep their
/// first segment only (enough to find the module).
fn split_top_level(group: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut depth, mut current) = (0, String::new());
    for c in group.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    out.push(current);
    out.into_iter().filter(|s| !s.trim().is_empty()).collect()
}

/// The longest prefix of `path` that is a file's module.
fn resolve(modules: &Modules, path: &[String]) -> Option<Vec<String>> {
    (0..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|p| modules.contains_key(p))
}

/// Tarjan's strongly connected components.
fn strongly_connected(
    edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
) -> Vec<Vec<Vec<String>>> {
    struct Walk<'a> {
        edges: &'a BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        index: BTreeMap<&'a Vec<String>, usize>,
        low: BTreeMap<&'a Vec<String>, usize>,
        stack: Vec<&'a Vec<String>>,
        on_stack: BTreeSet<&'a Vec<String>>,
        out: Vec<Vec<Vec<String>>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, v: &'a Vec<String>) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.edges.get(v).into_iter().flatten() {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w.clone());
                    if w == v {
                        break;
                    }
                }
                self.out.push(component);
            }
        }
    }
    let mut walk = Walk {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !walk.index.contains_key(v) {
            walk.visit(v);
        }
    }
    walk.out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    }

    #[test]
    fn finds_a_circle_through_use_groups_and_super() {
        let dir = tree(&[
            ("lib.rs", "mod a; mod b; mod c;"),
            ("a.rs", "use crate::{b::B, c};"),
            ("b.rs", "pub struct B; use super::c::C;"),
            ("c/mod.rs", "pub struct C; fn f() { crate::a::g() }"),
        ]);
        assert_eq!(circles(dir.path()).unwrap(), vec![vec!["a", "b", "c"]]);
    }

    #[test]
    fn a_child_naming_its_parent_closes_a_circle_only_with_another_edge() {
        let ok = tree(&[
            ("lib.rs", ""),
            ("p/mod.rs", "pub mod k; pub use k::K; pub struct P;"),
            ("p/k.rs", "use super::P; pub struct K;"),
        ]);
        assert!(circles(ok.path()).unwrap().is_empty());
        let bad = tree(&[
            ("lib.rs", ""),
            ("p/mod.rs", "pub mod k; use crate::q::Q;"),
            ("p/k.rs", "use super::P;"),
            ("q.rs", "use crate::p::k::K;"),
        ]);
        assert_eq!(circles(bad.path()).unwrap(), vec![vec!["p", "p/k", "q"]]);
    }

    #[test]
    fn comments_and_tests_do_not_count() {
        let dir = tree(&[
            ("lib.rs", ""),
            ("a.rs", "//! see [`crate::b`]\nuse crate::b::B;"),
            (
                "b.rs",
                "pub struct B; // crate::a\n#[cfg(test)]\nmod tests { use crate::a; }",
            ),
        ]);
        assert!(circles(dir.path()).unwrap().is_empty());
    }
}
