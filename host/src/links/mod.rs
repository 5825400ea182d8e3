//! Links between components: a component's import wired by the manifest to another
//! component's export, called in-process when the target runs on this host and over
//! NATS when it does not.
//!
//! - [`imports`]: at apply time, every function of a linked import gets a dynamic
//!   implementation (`func_new_async`) in a per-component copy of the host's linker;
//!   imports nothing provides get one that fails with a clear error.
//! - [`router::Router`] (one per host): routes each call to a local instance, or
//!   over NATS preferring hosts that share the caller's locality labels; keeps the
//!   directory of local targets and the call counters.
//! - [`serve`]: the callee side: one queue-group subscription per linked-to component,
//!   checking that a deployed link allows each call.
//! - [`chunks`]: arguments and results larger than the server's max payload travel
//!   as a pulled sequence of chunks.
//! - [`types`]: wasmtime's `Type`/`Val` to and from the wire model.
//!
//! Invariants: resources never cross a link (refused at apply time); every call has a
//! deadline (the link's `timeout`); every failure reaches the caller as an error
//! value where the function's result type has room for one, else as a trap naming
//! the cause, and is logged with the trace id.

pub mod chunks;
mod failure;
pub mod imports;
pub mod remote;
pub mod router;
pub mod serve;
pub mod trace;
pub mod types;

pub use failure::{CallFailure, ErrorCase};
pub use router::{CallCounters, Router};

use std::time::Duration;

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

/// Link settings of a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkSettings {
    /// Label keys whose values a caller's host prefers to share with the callee's,
    /// most specific first (default `zone`, then `region`).
    pub locality_keys: Vec<String>,
    /// Deadline of one call when its link sets no `timeout`.
    pub call_timeout: Duration,
    /// The largest arguments or results one call may carry.
    pub max_call_bytes: usize,
}

impl Default for LinkSettings {
    fn default() -> Self {
        Self {
            locality_keys: vec!["zone".to_owned(), "region".to_owned()],
            call_timeout: Duration::from_secs(10),
            max_call_bytes: 64 << 20,
        }
    }
}

pub use lattice_protocol::manifest::parse_timeout;

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
