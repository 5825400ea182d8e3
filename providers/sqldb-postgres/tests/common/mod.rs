//! The real `sqldb-postgres` binary run as a host runs it (init on stdin, calls
//! over NATS), for the tests that call it directly.
#![allow(dead_code)]
#![allow(clippy::unwrap_used)] // test support: an unwrap that fails is a failed test

use lattice_protocol::provider::ProviderLink;
use lattice_protocol::wire::WitValue;
use lattice_testing::nats::NatsServer;
use lattice_testing::provider::{ProviderProcess, ProviderSetup};
use std::time::Duration;
use tokio::process::Child;

pub mod sql;
/// The provider's WIT types, from its own source.
#[path = "../../src/wit.rs"]
pub mod wit;

pub const APP: &str = "shop";
pub const NAME: &str = "db";
pub const BIN: &str = env!("CARGO_BIN_EXE_sqldb-postgres");

/// A `to_provider` link of `component` carrying `namespace:package/{interfaces}`.
pub fn link(
    component: &str,
    namespace: &str,
    package: &str,
    interfaces: &[&str],
    config: &[(&str, &str)],
) -> ProviderLink {
    ProviderLink {
        component: component.into(),
        to_provider: true,
        name: "default".into(),
        namespace: namespace.into(),
        package: package.into(),
        interfaces: interfaces.iter().map(|i| i.to_string()).collect(),
        config: config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        secrets: Default::default(),
    }
}

/// A `wasmcloud:postgres/{query,prepared}` link.
pub fn sql_link(component: &str, config: &[(&str, &str)]) -> ProviderLink {
    link(
        component,
        "wasmcloud",
        "postgres",
        &["query", "prepared"],
        config,
    )
}

pub struct Provider(ProviderProcess);

impl Provider {
    pub async fn start(
        nats: &NatsServer,
        config: &[(&str, &str)],
        links: Vec<ProviderLink>,
    ) -> Self {
        Self(ProviderProcess::start(nats, setup(config, links)).await)
    }

    /// The process itself, for callers that speak one interface
    /// (`lattice_testing::keyvalue`).
    pub fn process(&self) -> &ProviderProcess {
        &self.0
    }

    /// Call one of the four `wasmcloud:postgres` functions as `component`.
    pub async fn sql(
        &self,
        component: &str,
        function: &str,
        args: &[WitValue],
        timeout: Duration,
    ) -> Result<WitValue, (String, String)> {
        let f = wit::functions()
            .into_iter()
            .find(|f| f.name == function)
            .unwrap();
        self.0
            .call(
                component,
                f.interface,
                function,
                &f.params,
                &f.results,
                args,
                timeout,
            )
            .await
    }

    pub async fn shutdown(self) {
        self.0.shutdown().await;
    }
}

fn setup(config: &[(&str, &str)], links: Vec<ProviderLink>) -> ProviderSetup<'static> {
    ProviderSetup {
        executable: BIN,
        app: APP,
        name: NAME,
        config: config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        links,
    }
}

pub async fn spawn(nats: &NatsServer, config: &[(&str, &str)], links: Vec<ProviderLink>) -> Child {
    lattice_testing::provider::spawn(nats, setup(config, links)).await
}

/// A direct client of the test database, to check what the provider did.
pub async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

pub fn s(text: &str) -> WitValue {
    WitValue::String(text.into())
}

/// `case(payload)` of a variant.
pub fn case(name: &str, payload: WitValue) -> WitValue {
    WitValue::Variant(name.into(), Some(Box::new(payload)))
}

pub fn ok(value: Option<WitValue>) -> WitValue {
    WitValue::Result(Ok(value.map(Box::new)))
}

/// The `err` payload of a result, or a panic naming what came instead.
pub fn err_of(result: WitValue) -> WitValue {
    match result {
        WitValue::Result(Err(Some(e))) => *e,
        other => panic!("expected an err, got {other:?}"),
    }
}

/// `(case, message)` of an error variant carrying a string.
pub fn error_case(e: &WitValue) -> (String, String) {
    match e {
        WitValue::Variant(case, Some(payload)) => match &**payload {
            WitValue::String(m) => (case.clone(), m.clone()),
            WitValue::Variant(inner, Some(m)) => match &**m {
                WitValue::String(m) => (format!("{case}/{inner}"), m.clone()),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        },
        WitValue::Variant(case, None) => (case.clone(), String::new()),
        other => panic!("{other:?}"),
    }
}
