//! Checks across components: every link names another component of the app, no two
//! links of one source are ambiguous, links touching builtins fit them, and each
//! component is given one secret per name.

use super::draft::{Draft, LinkDraft};
use super::walk::{Path, Walker};
use crate::manifest::{Builtin, ComponentKind, Image};
use std::collections::BTreeMap;

pub(super) fn check(w: &mut Walker, drafts: &[Draft]) {
    for source in drafts {
        for draft in &source.links {
            target(w, drafts, source, draft);
        }
        unambiguous(w, &source.links);
    }
    one_secret_per_name(w, drafts);
}

/// A component asks `wasmcloud:secrets` (or a provider its link) for a secret by
/// name: the names its `properties.secrets` and its sides of links give must not
/// name two different stored secrets.
fn one_secret_per_name(w: &mut Walker, drafts: &[Draft]) {
    for draft in drafts {
        let Some(name) = draft.name.as_deref() else {
            continue;
        };
        let mut given: BTreeMap<&str, (&str, Path)> = BTreeMap::new();
        let own = draft.path.key("properties").key("secrets");
        for (i, r) in draft.secrets.iter().enumerate() {
            given.insert(r.name.as_str(), (r.key.as_str(), own.at(i)));
        }
        let sides = drafts.iter().flat_map(|source| {
            source.links.iter().flat_map(move |l| {
                let target = (l.link.target == name).then(|| {
                    let at = l.path.key("target").key("secrets");
                    let secrets = l.link.target_secrets.iter().enumerate();
                    secrets.map(move |(i, r)| (r, at.at(i)))
                });
                let source = (source.name.as_deref() == Some(name)).then(|| {
                    let at = l.path.key("source").key("secrets");
                    let secrets = l.link.source_secrets.iter().enumerate();
                    secrets.map(move |(i, r)| (r, at.at(i)))
                });
                target
                    .into_iter()
                    .flatten()
                    .chain(source.into_iter().flatten())
            })
        });
        for (r, at) in sides {
            match given.get(r.name.as_str()) {
                Some((key, first)) if *key != r.key => {
                    let message = format!(
                        "component '{name}' is already given secret '{}' as stored secret \
                         '{key}' at {first}: give this one another name",
                        r.name
                    );
                    w.problem(&at, message);
                }
                Some(_) => {}
                None => {
                    given.insert(r.name.as_str(), (r.key.as_str(), at));
                }
            }
        }
    }
}

fn target(w: &mut Walker, drafts: &[Draft], source: &Draft, draft: &LinkDraft) {
    let name = draft.link.target.as_str();
    if source.name.as_deref() == Some(name) {
        w.problem(&draft.target_path, "a component cannot link to itself");
        return;
    }
    let Some(target) = drafts.iter().find(|d| d.name.as_deref() == Some(name)) else {
        w.problem(&draft.target_path, format!("no component named '{name}'"));
        return;
    };
    if target.kind == Some(ComponentKind::Service) {
        let message = format!(
            "'{name}' is a service: components reach it over TCP on 127.0.0.1, not through a link"
        );
        w.problem(&draft.target_path, message);
        return;
    }
    if source.builtin() == Some(Builtin::HttpServer)
        && target.kind == Some(ComponentKind::Capability)
    {
        let message = format!(
            "a link from http-server must target a component, and '{name}' is a capability"
        );
        w.problem(&draft.target_path, message);
    }
    if let (Some(true), Some(timeout)) = (
        target.image.as_ref().map(Image::is_code),
        draft.link.source_config.get("timeout"),
    ) {
        if let Err(e) = crate::manifest::parse_timeout(timeout) {
            w.problem(&draft.path, format!("source config: {e}"));
        }
    }
    super::keys::link(w, source, target, draft);
    for (side, builtin, secrets) in [
        ("source", source.builtin(), &draft.link.source_secrets),
        ("target", target.builtin(), &draft.link.target_secrets),
    ] {
        if let Some(builtin) = builtin.filter(|_| !secrets.is_empty()) {
            let message = format!(
                "builtin://{} reads no secrets: give secrets to a component or provider",
                builtin.name()
            );
            w.problem(&draft.path.key(side).key("secrets"), message);
        }
    }
    if let Some(Image::Builtin(builtin)) = target.image {
        let link = &draft.link;
        let found = format!("{}:{}", link.namespace, link.package);
        if let Some(served) = builtin.serves().filter(|served| *served != found) {
            let (namespace, package) = served.split_once(':').unwrap_or((served, ""));
            let key = if link.namespace != namespace {
                "namespace"
            } else {
                "package"
            };
            let name_of = builtin.name();
            let message = format!(
                "'{name}' is {name_of}, which serves {served}, not {found}: \
                 set namespace: {namespace} and package: {package}"
            );
            w.problem(&draft.path.key(key), message);
        }
    }
}

/// No two links of one source share (namespace, package, interface, link name): the
/// host could not tell which target an import goes to.
fn unambiguous(w: &mut Walker, links: &[LinkDraft]) {
    let mut first: BTreeMap<(&str, &str, &str, &str), Path> = BTreeMap::new();
    for draft in links {
        let link = &draft.link;
        for (i, interface) in link.interfaces.iter().enumerate() {
            let key = (
                link.namespace.as_str(),
                link.package.as_str(),
                interface.as_str(),
                link.name.as_str(),
            );
            let path = draft.path.key("interfaces").at(i);
            match first.get(&key) {
                Some(at) => {
                    let (ns, pkg, name) = (key.0, key.1, key.3);
                    let message = format!(
                        "ambiguous link: {at} already links {ns}:{pkg}/{interface} \
                         under the name '{name}'; give one of the links another `name`"
                    );
                    w.problem(&path, message);
                }
                None => {
                    first.insert(key, path);
                }
            }
        }
    }
}
