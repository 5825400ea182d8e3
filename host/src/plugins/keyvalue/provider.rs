//! `wasi:keyvalue` served by a capability provider: each operation on the bucket
//! resource (which stays here) becomes a call of the resource-free `wrpc:keyvalue`
//! interfaces (`lattice_protocol::provider::keyvalue`) over NATS, through the same
//! transport as linked calls.

use super::KvError;
use crate::links::remote::WireCall;
use crate::links::router::Router;
use crate::telemetry::trace::TraceContext;
use lattice_protocol::provider::keyvalue::{KvFunction, NAMESPACE, PACKAGE};
use lattice_protocol::wire::{CallTarget, WitValue};
use std::sync::Arc;
use std::time::Duration;

/// A bucket of a provider, opened by one component through one link.
#[derive(Clone)]
pub struct Bucket {
    pub router: Arc<Router>,
    pub app: String,
    pub component: String,
    pub link: String,
    pub provider: String,
    pub identifier: String,
    pub timeout: Duration,
    /// The trace of the invocation that opened the bucket (a bucket lives in one
    /// `Store`, so in one invocation): its calls are spans of it.
    pub trace: TraceContext,
}

impl Bucket {
    /// Call `function` with the bucket name and `args`; the `ok` payload.
    async fn call(
        &self,
        function: KvFunction,
        args: Vec<WitValue>,
    ) -> Result<Option<WitValue>, KvError> {
        let params = function.params();
        let results = function.results();
        let fingerprint = function.fingerprint();
        let target = CallTarget {
            app: self.app.clone(),
            component: self.provider.clone(),
            namespace: NAMESPACE.to_owned(),
            package: PACKAGE.to_owned(),
            interface: function.interface().to_owned(),
            function: function.name().to_owned(),
        };
        let call = WireCall {
            target: &target,
            anywhere: None,
            caller: &self.component,
            link: &self.link,
            params: &params,
            results: &results,
            fingerprint: &fingerprint,
            timeout: self.timeout,
            trace: self.trace,
        };
        let mut all = vec![WitValue::String(self.identifier.clone())];
        all.extend(args);
        let out = self.router.call_remote(&call, &all).await.map_err(|f| {
            KvError(format!(
                "keyvalue provider '{}': {}",
                self.provider, f.message
            ))
        })?;
        match out.into_iter().next() {
            Some(WitValue::Result(Ok(value))) => Ok(value.map(|v| *v)),
            Some(WitValue::Result(Err(Some(error)))) => Err(KvError(describe(&error))),
            other => Err(KvError(format!(
                "keyvalue provider '{}' answered {}.{} with {other:?}",
                self.provider,
                function.interface(),
                function.name()
            ))),
        }
    }

    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        match self.call(KvFunction::Get, vec![s(key)]).await? {
            Some(WitValue::Option(Some(v))) => bytes(*v).map(Some),
            _ => Ok(None),
        }
    }

    pub async fn set(&self, key: &str, value: Vec<u8>) -> Result<(), KvError> {
        let value = WitValue::Bytes(value);
        self.call(KvFunction::Set, vec![s(key), value]).await?;
        Ok(())
    }

    pub async fn delete(&self, key: &str) -> Result<(), KvError> {
        self.call(KvFunction::Delete, vec![s(key)]).await?;
        Ok(())
    }

    pub async fn list_keys(&self, cursor: u64) -> Result<(Vec<String>, Option<u64>), KvError> {
        let cursor = WitValue::Option((cursor > 0).then(|| Box::new(WitValue::U64(cursor))));
        let Some(WitValue::Record(fields)) = self.call(KvFunction::ListKeys, vec![cursor]).await?
        else {
            return Err(KvError(
                "the provider's list-keys answer is not a record".into(),
            ));
        };
        let mut keys = Vec::new();
        let mut next = None;
        for (name, value) in fields {
            match (name.as_str(), value) {
                ("keys", WitValue::List(items)) => {
                    for item in items {
                        if let WitValue::String(k) = item {
                            keys.push(k);
                        }
                    }
                }
                ("cursor", WitValue::Option(Some(c))) => {
                    if let WitValue::U64(c) = *c {
                        next = Some(c);
                    }
                }
                _ => {}
            }
        }
        Ok((keys, next))
    }

    pub async fn increment(&self, key: &str, delta: u64) -> Result<u64, KvError> {
        match self
            .call(KvFunction::Increment, vec![s(key), WitValue::U64(delta)])
            .await?
        {
            Some(WitValue::U64(n)) => Ok(n),
            other => Err(KvError(format!(
                "the provider's increment answer is not a u64: {other:?}"
            ))),
        }
    }
}

impl Bucket {
    /// `batch.get-many` in one call: the provider answers for all keys at once.
    pub async fn get_many(
        &self,
        keys: Vec<String>,
    ) -> Result<Vec<Option<(String, Vec<u8>)>>, KvError> {
        let list = WitValue::List(keys.iter().map(|k| s(k)).collect());
        let Some(WitValue::List(items)) = self.call(KvFunction::GetMany, vec![list]).await? else {
            return Err(KvError(
                "the provider's get-many answer is not a list".into(),
            ));
        };
        if items.len() != keys.len() {
            return Err(KvError(format!(
                "the provider answered get-many of {} keys with {} entries",
                keys.len(),
                items.len()
            )));
        }
        items
            .into_iter()
            .map(|item| match item {
                WitValue::Option(None) => Ok(None),
                WitValue::Option(Some(pair)) => match *pair {
                    WitValue::Tuple(mut pair) if pair.len() == 2 => {
                        let value = bytes(pair.pop().unwrap_or(WitValue::Bool(false)))?;
                        match pair.pop() {
                            Some(WitValue::String(key)) => Ok(Some((key, value))),
                            other => Err(KvError(format!(
                                "the provider's get-many key is not a string: {other:?}"
                            ))),
                        }
                    }
                    other => Err(KvError(format!(
                        "the provider's get-many entry is not a (key, value): {other:?}"
                    ))),
                },
                other => Err(KvError(format!(
                    "the provider's get-many entry is not an option: {other:?}"
                ))),
            })
            .collect()
    }

    /// `batch.set-many` in one call.
    pub async fn set_many(&self, pairs: Vec<(String, Vec<u8>)>) -> Result<(), KvError> {
        let list = WitValue::List(
            pairs
                .into_iter()
                .map(|(k, v)| WitValue::Tuple(vec![WitValue::String(k), WitValue::Bytes(v)]))
                .collect(),
        );
        self.call(KvFunction::SetMany, vec![list]).await?;
        Ok(())
    }

    /// `batch.delete-many` in one call.
    pub async fn delete_many(&self, keys: Vec<String>) -> Result<(), KvError> {
        let list = WitValue::List(keys.iter().map(|k| s(k)).collect());
        self.call(KvFunction::DeleteMany, vec![list]).await?;
        Ok(())
    }
}

fn s(text: &str) -> WitValue {
    WitValue::String(text.to_owned())
}

fn bytes(value: WitValue) -> Result<Vec<u8>, KvError> {
    value
        .into_bytes()
        .ok_or_else(|| KvError("the provider's value is not a list<u8>".into()))
}

/// The provider's `error` variant in words.
fn describe(error: &WitValue) -> String {
    match error {
        WitValue::Variant(case, None) if case == "no-such-store" => "no such store".into(),
        WitValue::Variant(case, None) if case == "access-denied" => "access denied".into(),
        WitValue::Variant(_, Some(payload)) => match &**payload {
            WitValue::String(text) => text.clone(),
            other => format!("{other:?}"),
        },
        other => format!("{other:?}"),
    }
}
