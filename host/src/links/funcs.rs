//! The functions links route: what a component imports through a link and what it
//! exports to links, worked out once when a workload is applied.

use super::failure::{CallError, ErrorCase};
use super::typed::{shape_of, Shape};
use super::types::Signature;
use super::InterfaceName;
use async_nats::Subject;
use lattice_protocol::wire::{CallErrorKind, CallTarget};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, ComponentExportIndex};
use wasmtime::Engine;

/// One function of an import that links route.
#[derive(Debug)]
pub struct ImportedFunc {
    pub interface: InterfaceName,
    /// `interface.key()`, computed once.
    pub interface_key: String,
    pub function: String,
    /// `None` when the function's types cannot cross hosts and no link routes the
    /// import (so it is never called through one): calls fail with `unlinked`.
    pub signature: Option<Signature>,
    pub error_case: ErrorCase,
    /// Where its calls went, kept for the next ones.
    pub sites: CallSites,
}

impl ImportedFunc {
    /// `example:shop/orders.place-order`, for messages.
    pub fn display(&self) -> String {
        format!("{}.{}", self.interface_key, self.function)
    }
}

/// Where one import's calls to one component go: the target and its
/// lattice-wide subject, made on the first call and kept for the next.
#[derive(Debug)]
pub struct CallSite {
    pub target: CallTarget,
    pub anywhere: Subject,
}

/// An import's [`CallSite`]s, one per component its links have sent calls to.
#[derive(Debug, Default)]
pub struct CallSites(Mutex<Vec<Arc<CallSite>>>);

impl CallSites {
    /// Links name a handful of components; past this many the sites are made
    /// again rather than kept.
    const MAX: usize = 16;

    /// The site of calls to `component` of `app`, made by `make` the first time.
    pub fn get(
        &self,
        app: &str,
        component: &str,
        make: impl FnOnce() -> CallSite,
    ) -> Arc<CallSite> {
        let mut sites = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(site) = sites
            .iter()
            .find(|s| s.target.app == app && s.target.component == component)
        {
            return site.clone();
        }
        if sites.len() >= Self::MAX {
            sites.clear();
        }
        let site = Arc::new(make());
        sites.push(site.clone());
        site
    }
}

/// A function another component may call: its index in the component and its
/// signature.
#[derive(Debug, Clone)]
pub struct ExportedFunc {
    /// `ns:pkg/iface.function`.
    pub name: String,
    pub index: ComponentExportIndex,
    pub signature: Signature,
    /// Its typed path, when its signature has one.
    pub shape: Option<&'static dyn Shape>,
}

/// The functions a component exports from interfaces, by `ns:pkg/iface` then name.
/// A function whose types cannot cross hosts is kept as the reason why.
#[derive(Debug, Default)]
pub struct Exports(HashMap<String, HashMap<String, Result<ExportedFunc, String>>>);

impl Exports {
    pub fn of(engine: &Engine, component: &Component) -> Self {
        let mut out: HashMap<String, HashMap<String, Result<ExportedFunc, String>>> =
            HashMap::new();
        let ty = component.component_type();
        for (export, item) in ty.exports(engine) {
            let ComponentItem::ComponentInstance(instance) = item.ty else {
                continue;
            };
            let Some(name) = InterfaceName::parse(export) else {
                continue;
            };
            let Some(instance_index) = component.get_export_index(None, export) else {
                continue;
            };
            let key = name.key();
            let funcs = out.entry(key.clone()).or_default();
            for (function, item) in instance.exports(engine) {
                let ComponentItem::ComponentFunc(func) = item.ty else {
                    continue;
                };
                let Some(index) = component.get_export_index(Some(&instance_index), function)
                else {
                    continue;
                };
                let entry =
                    Signature::of(engine, &key, &instance, function, &func).map(|signature| {
                        ExportedFunc {
                            name: format!("{key}.{function}"),
                            index,
                            shape: shape_of(&signature.params, &signature.results),
                            signature,
                        }
                    });
                funcs.insert(function.to_owned(), entry);
            }
        }
        Self(out)
    }

    /// Function `function` of interface `key`, or why it cannot be called.
    pub fn get(&self, key: &str, function: &str) -> Result<&ExportedFunc, CallError> {
        let missing = || {
            let names = self.names();
            let exported = if names.is_empty() {
                "it exports no functions of interfaces".to_owned()
            } else {
                format!("it exports {}", names.join(", "))
            };
            CallError::new(
                CallErrorKind::Refused,
                format!("the target does not export {key}.{function}; {exported}"),
            )
        };
        match self.0.get(key).and_then(|f| f.get(function)) {
            Some(Ok(f)) => Ok(f),
            Some(Err(why)) => Err(CallError::new(CallErrorKind::Refused, why.clone())),
            None => Err(missing()),
        }
    }

    /// Every exported function, `ns:pkg/iface.function`, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .0
            .iter()
            .flat_map(|(key, funcs)| funcs.keys().map(move |f| format!("{key}.{f}")))
            .collect();
        names.sort();
        names
    }

    /// Whether the component exports interface `key` at all.
    pub fn has_interface(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }
}

/// The failure when caller and callee were built against different signatures.
pub fn mismatch(call: &str, caller: &str, export: &ExportedFunc) -> CallError {
    CallError::new(
        CallErrorKind::Signature,
        format!(
            "the caller and the target disagree on {call}: the target has {} (fingerprint {}), the caller was built against fingerprint {caller}; deploy matching versions of the interface",
            lattice_protocol::wire::signature(
                &export.signature.params,
                &export.signature.results
            ),
            export.signature.fingerprint
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(component: &str) -> CallSite {
        CallSite {
            target: CallTarget {
                app: "shop".into(),
                component: component.into(),
                namespace: "example".into(),
                package: "orders".into(),
                interface: "api".into(),
                function: "place".into(),
            },
            anywhere: format!("lattice.l.rpch.NH.shop.{component}.example.orders.api.place").into(),
        }
    }

    #[test]
    fn a_call_site_is_made_once_per_component_and_the_cache_stays_bounded() {
        let sites = CallSites::default();
        let made = std::cell::Cell::new(0);
        let get = |component: &str| {
            sites.get("shop", component, || {
                made.set(made.get() + 1);
                site(component)
            })
        };
        let first = get("orders");
        assert!(Arc::ptr_eq(&first, &get("orders")));
        assert_eq!(made.get(), 1);
        let other = get("billing");
        assert_eq!(other.target.component, "billing");
        assert_eq!(
            &*other.anywhere,
            "lattice.l.rpch.NH.shop.billing.example.orders.api.place"
        );
        assert_eq!(made.get(), 2);
        // Past the bound the kept sites are dropped, and each is made anew.
        for i in 0..CallSites::MAX {
            get(&format!("c{i}"));
        }
        assert!(sites.0.lock().unwrap().len() <= CallSites::MAX);
        let again = get("orders");
        assert!(!Arc::ptr_eq(&first, &again));
        assert_eq!(again.target.component, "orders");
    }
}
