//! Which calls the provider's links allow: a call is served only when a link of the
//! provider's app lets exactly that component, under that link name, call that
//! interface of the provider.

use lattice_protocol::provider::ProviderLink;
use lattice_protocol::wire::{CallHeader, CallTarget};
use std::sync::Arc;

/// The current links, shared with calls in flight.
pub(crate) type LinkSet = Arc<[Arc<ProviderLink>]>;

pub(crate) fn link_set(links: Vec<ProviderLink>) -> LinkSet {
    links.into_iter().map(Arc::new).collect()
}

/// `namespace:package/interface` (a version suffix dropped), or `None` when the text
/// is not shaped like that.
pub(crate) fn interface_key(text: &str) -> Option<String> {
    let text = text.split_once('@').map_or(text, |(name, _)| name);
    let (package, interface) = text.split_once('/')?;
    let (namespace, package) = parse_package(package)?;
    (!interface.is_empty() && !interface.contains([':', '/']))
        .then(|| format!("{namespace}:{package}/{interface}"))
}

/// `namespace:package` → its two parts.
fn parse_package(text: &str) -> Option<(&str, &str)> {
    let (namespace, package) = text.split_once(':')?;
    let ok = |s: &str| !s.is_empty() && !s.contains([':', '/', '@']);
    (ok(namespace) && ok(package)).then_some((namespace, package))
}

/// Packages whose links also allow calls to another package's interfaces of the same
/// names (`wasi:keyvalue` links allow `wrpc:keyvalue` calls).
#[derive(Debug, Default)]
pub(crate) struct Aliases(Vec<(String, String, String, String)>);

impl Aliases {
    pub(crate) fn add(&mut self, linked: &str, served: &str) -> Result<(), String> {
        let parse = |text| {
            parse_package(text)
                .ok_or_else(|| format!("'{text}' is not a package name like 'namespace:package'"))
        };
        let ((ln, lp), (sn, sp)) = (parse(linked)?, parse(served)?);
        self.0.push((ln.into(), lp.into(), sn.into(), sp.into()));
        Ok(())
    }

    /// Whether a link naming package `link` allows calls to package `target`.
    fn covers(&self, link: &ProviderLink, target: &CallTarget) -> bool {
        (link.namespace == target.namespace && link.package == target.package)
            || self.0.iter().any(|(ln, lp, sn, sp)| {
                *ln == link.namespace
                    && *lp == link.package
                    && *sn == target.namespace
                    && *sp == target.package
            })
    }
}

/// The link this call travels, if the provider has one that allows it.
pub(crate) fn find<'a>(
    links: &'a [Arc<ProviderLink>],
    aliases: &Aliases,
    caller: &CallHeader,
    target: &CallTarget,
) -> Option<&'a Arc<ProviderLink>> {
    links.iter().find(|link| {
        link.to_provider
            && link.component == caller.component
            && link.name == caller.link
            && link.interfaces.contains(&target.interface)
            && aliases.covers(link, target)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(component: &str, name: &str, package: &str, interfaces: &[&str]) -> ProviderLink {
        let (namespace, package) = package.split_once(':').unwrap();
        ProviderLink {
            component: component.into(),
            to_provider: true,
            name: name.into(),
            namespace: namespace.into(),
            package: package.into(),
            interfaces: interfaces.iter().map(|s| s.to_string()).collect(),
            config: Default::default(),
            secrets: Default::default(),
        }
    }

    fn caller(component: &str, link: &str) -> CallHeader {
        CallHeader {
            host: "NH".into(),
            app: "shop".into(),
            component: component.into(),
            link: link.into(),
            signature: "0".into(),
            timeout_ms: 1000,
            trace: None,
        }
    }

    fn target(package: &str, interface: &str) -> CallTarget {
        let (namespace, package) = package.split_once(':').unwrap();
        CallTarget {
            app: "shop".into(),
            component: "kv".into(),
            namespace: namespace.into(),
            package: package.into(),
            interface: interface.into(),
            function: "get".into(),
        }
    }

    #[test]
    fn interface_names_are_checked() {
        assert_eq!(
            interface_key("wrpc:keyvalue/store").as_deref(),
            Some("wrpc:keyvalue/store")
        );
        assert_eq!(
            interface_key("wasi:keyvalue/store@0.2.0-draft").as_deref(),
            Some("wasi:keyvalue/store")
        );
        for bad in [
            "store",
            "wrpc/store",
            ":kv/store",
            "a:b/",
            "a:b/c/d",
            "a:b:c/d",
            "",
        ] {
            assert_eq!(interface_key(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_call_needs_a_link_for_exactly_it() {
        let mut from_provider = link("api", "default", "wrpc:keyvalue", &["store"]);
        from_provider.to_provider = false;
        let links = link_set(vec![
            link("counter", "default", "wrpc:keyvalue", &["store", "atomics"]),
            link("cache", "sessions", "wasi:keyvalue", &["store"]),
            from_provider,
        ]);
        let mut aliases = Aliases::default();
        let store = target("wrpc:keyvalue", "store");
        let batch = target("wrpc:keyvalue", "batch");
        let found = |aliases: &Aliases, c: &CallHeader, t: &CallTarget| {
            find(&links, aliases, c, t).map(|l| l.component.clone())
        };
        let counter = caller("counter", "default");
        assert_eq!(
            found(&aliases, &counter, &store).as_deref(),
            Some("counter")
        );
        assert_eq!(
            found(&aliases, &counter, &batch),
            None,
            "interface not linked"
        );
        assert_eq!(
            found(&aliases, &caller("counter", "other"), &store),
            None,
            "link name"
        );
        assert_eq!(
            found(&aliases, &caller("api", "default"), &store),
            None,
            "direction"
        );
        assert_eq!(
            found(&aliases, &caller("stranger", "default"), &store),
            None
        );
        // `cache` linked `wasi:keyvalue`: only with the alias.
        let cache = caller("cache", "sessions");
        assert_eq!(found(&aliases, &cache, &store), None);
        aliases.add("wasi:keyvalue", "wrpc:keyvalue").unwrap();
        assert_eq!(found(&aliases, &cache, &store).as_deref(), Some("cache"));
        assert_eq!(
            found(&aliases, &cache, &target("wasi:keyvalue", "store")),
            Some("cache".into())
        );
        assert_eq!(
            found(&aliases, &cache, &target("other:keyvalue", "store")),
            None
        );
        assert!(aliases
            .add("wasi", "wrpc:keyvalue")
            .unwrap_err()
            .contains("'wasi'"));
    }
}
