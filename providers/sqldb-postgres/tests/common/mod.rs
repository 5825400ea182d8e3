//! The real `sqldb-postgres` binary run as a host runs it (init on stdin, calls
//! over NATS), for the tests that call it directly.
#![allow(dead_code)]

use async_nats::HeaderMap;
use lattice_protocol::provider::{health_subject, ProviderInit, ProviderLink, ProviderMessage};
use lattice_protocol::wire::rpc::headers;
use lattice_protocol::wire::{self, CallHeader, CallTarget, WitType, WitValue};
use lattice_testing::nats::NatsServer;
use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, ChildStdin, Command};

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

pub struct Provider {
    child: Child,
    stdin: ChildStdin,
    nats: async_nats::Client,
}

impl Provider {
    pub async fn start(
        nats: &NatsServer,
        config: &[(&str, &str)],
        links: Vec<ProviderLink>,
    ) -> Self {
        let mut child = spawn(nats, config, links).await;
        let stdin = child.stdin.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        tokio::spawn(async move {
            let _ = tokio::io::copy(&mut stderr, &mut tokio::io::stderr()).await;
        });
        let p = Self {
            child,
            stdin,
            nats: nats.connect().await.unwrap(),
        };
        let subject = health_subject("default", APP, NAME, "NHOST");
        for _ in 0..200 {
            let asked = p.nats.request(subject.clone(), bytes::Bytes::new());
            if let Ok(Ok(reply)) = tokio::time::timeout(Duration::from_millis(200), asked).await {
                assert_eq!(reply.payload.as_ref(), b"ok");
                return p;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("sqldb-postgres never answered its health check");
    }

    /// Call `interface.function` (`namespace:package/interface`) as `component`
    /// with the caller's `timeout`: the one result, or the reply's error kind and
    /// message.
    #[allow(clippy::too_many_arguments)]
    pub async fn call_with_timeout(
        &self,
        component: &str,
        interface: &str,
        function: &str,
        params: &[WitType],
        results: &[WitType],
        args: &[WitValue],
        timeout: Duration,
    ) -> Result<WitValue, (String, String)> {
        let (package, interface) = interface.split_once('/').unwrap();
        let (namespace, package) = package.split_once(':').unwrap();
        let subject = CallTarget {
            app: APP.into(),
            component: NAME.into(),
            namespace: namespace.into(),
            package: package.into(),
            interface: interface.into(),
            function: function.into(),
        }
        .subject("default");
        let caller = CallHeader {
            host: "NHOST".into(),
            app: APP.into(),
            component: component.into(),
            link: "default".into(),
            signature: wire::signature_fingerprint(params, results),
            timeout_ms: timeout.as_millis() as u64,
        };
        let mut h = HeaderMap::new();
        h.insert(headers::CALL, caller.encode().as_str());
        let payload = wire::encode_args(params, args).unwrap();
        let asked = self.nats.request_with_headers(subject, h, payload.into());
        let reply = tokio::time::timeout(timeout + Duration::from_secs(5), asked)
            .await
            .expect("no reply at all")
            .unwrap();
        if let Some(kind) = reply.headers.as_ref().and_then(|h| h.get(headers::ERROR)) {
            let message = String::from_utf8_lossy(&reply.payload).into_owned();
            return Err((kind.as_str().to_owned(), message));
        }
        let mut results = wire::decode_results(results, &reply.payload).unwrap();
        assert_eq!(results.len(), 1);
        Ok(results.remove(0))
    }

    pub async fn call(
        &self,
        component: &str,
        interface: &str,
        function: &str,
        params: &[WitType],
        results: &[WitType],
        args: &[WitValue],
    ) -> Result<WitValue, (String, String)> {
        let timeout = Duration::from_secs(10);
        self.call_with_timeout(
            component, interface, function, params, results, args, timeout,
        )
        .await
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
        self.call_with_timeout(
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

    pub async fn shutdown(mut self) {
        let line = lattice_protocol::encode(&ProviderMessage::Shutdown);
        self.stdin.write_all(&line).await.unwrap();
        self.stdin.write_all(b"\n").await.unwrap();
        let status = tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .expect("sqldb-postgres did not exit within 5 s of shutdown")
            .unwrap();
        assert!(status.success(), "{status}");
    }
}

pub async fn spawn(nats: &NatsServer, config: &[(&str, &str)], links: Vec<ProviderLink>) -> Child {
    let config: BTreeMap<String, String> = config
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let init = ProviderMessage::Init(ProviderInit {
        lattice: "default".into(),
        nats_url: nats.url(),
        app: APP.into(),
        name: NAME.into(),
        host_id: "NHOST".into(),
        config: config.into_iter().collect(),
        links,
        nats_credentials: None,
        inbox_prefix: None,
    });
    let mut child = Command::new(BIN)
        .env("LATTICE_LOG", "info")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdin = child.stdin.as_mut().unwrap();
    let mut line = lattice_protocol::encode(&init);
    line.push(b'\n');
    stdin.write_all(&line).await.unwrap();
    child
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
