//! A keyvalue provider as one component sees it: its `wrpc:keyvalue` functions
//! called over NATS as a host forwards that component's `wasi:keyvalue` calls, and
//! the WIT values those calls take. Shared by the tests of every keyvalue provider.

use crate::provider::ProviderProcess;
use lattice_protocol::provider::keyvalue::KvFunction;
use lattice_protocol::wire::WitValue;
use std::time::Duration;

/// `provider` called as `component`, with a deadline for each call.
#[derive(Clone, Copy)]
pub struct Keyvalue<'a> {
    provider: &'a ProviderProcess,
    component: &'a str,
    timeout: Duration,
}

impl<'a> Keyvalue<'a> {
    /// Calls with a deadline of 10 s.
    pub fn new(provider: &'a ProviderProcess, component: &'a str) -> Self {
        Self {
            provider,
            component,
            timeout: Duration::from_secs(10),
        }
    }

    /// The same caller with another deadline (the provider answers by it).
    pub fn timeout(self, timeout: Duration) -> Self {
        Self { timeout, ..self }
    }

    /// Call `function`: its one result, or the reply's error kind and message.
    pub async fn call(
        &self,
        function: KvFunction,
        args: &[WitValue],
    ) -> Result<WitValue, (String, String)> {
        let interface = format!("wrpc:keyvalue/{}", function.interface());
        let (params, results) = (function.params(), function.results());
        self.provider
            .call(
                self.component,
                &interface,
                function.name(),
                &params,
                &results,
                args,
                self.timeout,
            )
            .await
    }

    /// The `ok` payload of `function`'s result; a panic on anything else.
    pub async fn ok(&self, function: KvFunction, args: &[WitValue]) -> Option<WitValue> {
        match self.call(function, args).await {
            Ok(WitValue::Result(Ok(value))) => value.map(|v| *v),
            other => panic!("{function:?} {args:?}: {other:?}"),
        }
    }

    /// The message of an `err(other(message))` result; a panic on anything else.
    pub async fn other_error(&self, function: KvFunction, args: &[WitValue]) -> String {
        match self.call(function, args).await {
            Ok(WitValue::Result(Err(Some(error)))) => match *error {
                WitValue::Variant(case, Some(message)) if case == "other" => match *message {
                    WitValue::String(message) => message,
                    other => panic!("{other:?}"),
                },
                other => panic!("{other:?}"),
            },
            other => panic!("{function:?} {args:?}: expected err(other), got {other:?}"),
        }
    }

    /// Every key of `bucket`, in the order `list-keys` gives them, following its
    /// cursor.
    pub async fn keys(&self, bucket: &str) -> Vec<String> {
        let mut keys = Vec::new();
        let mut cursor = none();
        for _ in 0..1_000 {
            let Some(WitValue::Record(fields)) =
                self.ok(KvFunction::ListKeys, &[s(bucket), cursor]).await
            else {
                panic!("list-keys answered no record")
            };
            let [(_, WitValue::List(found)), (_, next)] = &fields[..] else {
                panic!("{fields:?}")
            };
            keys.extend(found.iter().map(|k| match k {
                WitValue::String(k) => k.clone(),
                other => panic!("{other:?}"),
            }));
            match next {
                WitValue::Option(None) => return keys,
                next => cursor = next.clone(),
            }
        }
        panic!("list-keys never finished")
    }
}

pub fn s(text: &str) -> WitValue {
    WitValue::String(text.into())
}

/// A `list<u8>`.
pub fn bytes(b: &[u8]) -> WitValue {
    WitValue::Bytes(b.to_vec())
}

pub fn some(v: WitValue) -> WitValue {
    WitValue::Option(Some(Box::new(v)))
}

pub fn none() -> WitValue {
    WitValue::Option(None)
}

pub fn list(items: Vec<WitValue>) -> WitValue {
    WitValue::List(items)
}

/// A `(key, value)` tuple of `set-many` and `get-many`.
pub fn pair(key: &str, value: &[u8]) -> WitValue {
    WitValue::Tuple(vec![s(key), bytes(value)])
}
