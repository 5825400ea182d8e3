//! Links between components: a component's import wired by the manifest to another
//! component's export, called in-process when the target runs on this host and over
//! NATS when it does not.
//!
//! - [`targets`]: where each of a component's links to another component goes
//!   (read from the manifest at apply time).
//! - [`imports`]: at apply time, every function of a linked import gets an
//!   implementation in a per-component copy of the host's linker: typed
//!   (`func_wrap_async`, see [`typed`]) when its signature passes byte strings,
//!   dynamic (`func_new_async`) otherwise; imports nothing provides get one that
//!   fails with a clear error.
//! - [`router::Router`] (one per host): routes each call to a local instance, or
//!   over NATS ([`remote`]) preferring hosts that share the caller's locality
//!   labels, and keeps the serving subscriptions up to date.
//! - [`directory`]: what both sides read: the local targets, what deployed links
//!   allow, the host's locality, the call counters.
//! - [`funcs`]: the imported and exported functions links route.
//! - [`serve`]: the callee side: one queue-group subscription per linked-to component,
//!   checking that a deployed link allows each call.
//! - The transport itself (subjects tried in order, chunks for payloads over the
//!   server's max payload, the serve loop, the call error) is `lattice_rpc`,
//!   shared with the provider SDK.
//! - [`types`]: wasmtime's `Type`/`Val` to and from the wire model.
//! - [`typed`]: the signatures called through wasmtime's typed API, whose
//!   `list<u8>` and `string` values are copied whole rather than a `Val` per
//!   byte. Between the host's parts every call is in the wire model
//!   (`WitValue`), whichever path its two ends take.
//!
//! Invariants: resources never cross a link (refused at apply time); every call has a
//! deadline (the link's `timeout`); every failure reaches the caller as an error
//! value where the function's result type has room for one, else as a trap naming
//! the cause, and is logged with the trace id.

pub mod directory;
pub mod failure;
pub mod funcs;
pub mod imports;
pub mod remote;
pub mod router;
pub mod serve;
pub mod settings;
pub mod targets;
pub mod typed;
pub mod types;

pub use directory::CallCounters;
pub use failure::{CallError, ErrorCase};
pub use router::Router;
pub use settings::LinkSettings;

/// `namespace:package/interface[@version]` split into its parts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InterfaceName {
    pub namespace: String,
    pub package: String,
    pub interface: String,
    pub version: Option<String>,
}

impl InterfaceName {
    /// Parse a component import or export name; `None` for anything that is not an
    /// interface of a package (e.g. a bare function import).
    pub fn parse(name: &str) -> Option<Self> {
        let (namespace, rest) = name.split_once(':')?;
        let (package, rest) = rest.split_once('/')?;
        let (interface, version) = match rest.split_once('@') {
            Some((i, v)) => (i, Some(v.to_owned())),
            None => (rest, None),
        };
        if namespace.is_empty() || package.is_empty() || interface.is_empty() {
            return None;
        }
        Some(Self {
            namespace: namespace.to_owned(),
            package: package.to_owned(),
            interface: interface.to_owned(),
            version,
        })
    }

    /// `namespace:package/interface`, without the version: how links name it.
    pub fn key(&self) -> String {
        format!("{}:{}/{}", self.namespace, self.package, self.interface)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_split() {
        let n = InterfaceName::parse("example:shop/orders@0.1.0").unwrap();
        assert_eq!(n.key(), "example:shop/orders");
        assert_eq!(n.version.as_deref(), Some("0.1.0"));
        assert_eq!(InterfaceName::parse("wasi:cli/run").unwrap().version, None);
        for bad in ["run", "a:b", ":b/c", "a:/c", "a:b/"] {
            assert_eq!(InterfaceName::parse(bad), None, "{bad}");
        }
    }
}
