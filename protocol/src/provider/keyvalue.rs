//! `wasi:keyvalue@0.2.0-draft` as a provider serves it. The WIT interfaces pass a
//! `bucket` resource, which cannot cross processes; the host keeps the resource and
//! calls the provider with the bucket's name as a plain first argument, as
//! wasmCloud's `wrpc:keyvalue` did. Package `wrpc:keyvalue`, interfaces `store`,
//! `atomics`, `batch`:
//!
//! ```wit
//! variant error { no-such-store, access-denied, other(string) }
//! record key-response { keys: list<string>, cursor: option<u64> }
//! // store
//! get: func(bucket: string, key: string) -> result<option<list<u8>>, error>;
//! set: func(bucket: string, key: string, value: list<u8>) -> result<_, error>;
//! delete: func(bucket: string, key: string) -> result<_, error>;
//! exists: func(bucket: string, key: string) -> result<bool, error>;
//! list-keys: func(bucket: string, cursor: option<u64>) -> result<key-response, error>;
//! // atomics
//! increment: func(bucket: string, key: string, delta: u64) -> result<u64, error>;
//! // batch
//! get-many: func(bucket: string, keys: list<string>) -> result<list<option<tuple<string, list<u8>>>>, error>;
//! set-many: func(bucket: string, key-values: list<tuple<string, list<u8>>>) -> result<_, error>;
//! delete-many: func(bucket: string, keys: list<string>) -> result<_, error>;
//! ```
//!
//! [`FUNCTIONS`] is the same as data: both the host and the provider SDK build
//! their signatures (and so their fingerprints) from it.

use crate::wire::WitType;

/// The provider-facing interfaces' WIT namespace.
pub const NAMESPACE: &str = "wrpc";
/// The provider-facing interfaces' WIT package.
pub const PACKAGE: &str = "keyvalue";
/// What components link (`namespace:package`): a link carrying `wasi:keyvalue/I`
/// to a provider allows the host's calls to `wrpc:keyvalue/I`.
pub const LINKED_AS: &str = "wasi:keyvalue";
/// What the provider serves (`namespace:package`).
pub const SERVED_AS: &str = "wrpc:keyvalue";

/// `variant error { no-such-store, access-denied, other(string) }`.
pub fn error() -> WitType {
    WitType::variant([
        ("no-such-store", None),
        ("access-denied", None),
        ("other", Some(WitType::String)),
    ])
}

fn bytes() -> WitType {
    WitType::list(WitType::U8)
}

fn ok_or_error(ok: Option<WitType>) -> Vec<WitType> {
    vec![WitType::result(ok, Some(error()))]
}

/// One function of the provider-facing keyvalue interfaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvFunction {
    /// `store.get`.
    Get,
    /// `store.set`.
    Set,
    /// `store.delete`.
    Delete,
    /// `store.exists`.
    Exists,
    /// `store.list-keys`.
    ListKeys,
    /// `atomics.increment`.
    Increment,
    /// `batch.get-many`.
    GetMany,
    /// `batch.set-many`.
    SetMany,
    /// `batch.delete-many`.
    DeleteMany,
}

/// Every function, for providers that serve them all.
pub const FUNCTIONS: [KvFunction; 9] = [
    KvFunction::Get,
    KvFunction::Set,
    KvFunction::Delete,
    KvFunction::Exists,
    KvFunction::ListKeys,
    KvFunction::Increment,
    KvFunction::GetMany,
    KvFunction::SetMany,
    KvFunction::DeleteMany,
];

impl KvFunction {
    /// The interface it belongs to: `store`, `atomics` or `batch`.
    pub fn interface(self) -> &'static str {
        match self {
            KvFunction::Increment => "atomics",
            KvFunction::GetMany | KvFunction::SetMany | KvFunction::DeleteMany => "batch",
            _ => "store",
        }
    }

    /// Its WIT name.
    pub fn name(self) -> &'static str {
        match self {
            KvFunction::Get => "get",
            KvFunction::Set => "set",
            KvFunction::Delete => "delete",
            KvFunction::Exists => "exists",
            KvFunction::ListKeys => "list-keys",
            KvFunction::Increment => "increment",
            KvFunction::GetMany => "get-many",
            KvFunction::SetMany => "set-many",
            KvFunction::DeleteMany => "delete-many",
        }
    }

    /// Find a function by interface and name.
    pub fn find(interface: &str, name: &str) -> Option<Self> {
        FUNCTIONS
            .into_iter()
            .find(|f| f.interface() == interface && f.name() == name)
    }

    /// Parameter types.
    pub fn params(self) -> Vec<WitType> {
        let s = WitType::String;
        match self {
            KvFunction::Get | KvFunction::Delete | KvFunction::Exists => vec![s.clone(), s],
            KvFunction::Set => vec![s.clone(), s, bytes()],
            KvFunction::ListKeys => vec![s, WitType::option(WitType::U64)],
            KvFunction::Increment => vec![s.clone(), s, WitType::U64],
            KvFunction::GetMany | KvFunction::DeleteMany => {
                vec![s.clone(), WitType::list(s)]
            }
            KvFunction::SetMany => vec![s.clone(), WitType::list(WitType::Tuple(vec![s, bytes()]))],
        }
    }

    /// Result types.
    pub fn results(self) -> Vec<WitType> {
        match self {
            KvFunction::Get => ok_or_error(Some(WitType::option(bytes()))),
            KvFunction::Set | KvFunction::Delete | KvFunction::SetMany | KvFunction::DeleteMany => {
                ok_or_error(None)
            }
            KvFunction::Exists => ok_or_error(Some(WitType::Bool)),
            KvFunction::ListKeys => ok_or_error(Some(WitType::record([
                ("keys", WitType::list(WitType::String)),
                ("cursor", WitType::option(WitType::U64)),
            ]))),
            KvFunction::Increment => ok_or_error(Some(WitType::U64)),
            KvFunction::GetMany => {
                ok_or_error(Some(WitType::list(WitType::option(WitType::Tuple(vec![
                    WitType::String,
                    bytes(),
                ])))))
            }
        }
    }

    /// The signature fingerprint both sides check.
    pub fn fingerprint(self) -> String {
        crate::wire::signature_fingerprint(&self.params(), &self.results())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn functions_are_found_and_typed() {
        for f in FUNCTIONS {
            assert_eq!(KvFunction::find(f.interface(), f.name()), Some(f));
            assert_eq!(f.results().len(), 1);
        }
        assert_eq!(KvFunction::find("store", "increment"), None);
        assert_eq!(
            crate::wire::signature(&KvFunction::Get.params(), &KvFunction::Get.results()),
            "func(string, string) -> result<option<list<u8>>, variant { no-such-store, access-denied, other(string) }>"
        );
    }
}
