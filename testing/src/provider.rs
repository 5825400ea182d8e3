//! A capability provider's real executable, run as a host runs it (the `init` line
//! on stdin, calls over NATS with the `lattice-call` header, health checks,
//! `shutdown`), for tests that call a provider directly, without a host.

use async_nats::HeaderMap;
use lattice_protocol::provider::{health_subject, ProviderInit, ProviderLink, ProviderMessage};
use lattice_protocol::wire::rpc::headers;
use lattice_protocol::wire::{self, CallHeader, CallTarget, WitType, WitValue};
use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, ChildStdin, Command};

use crate::nats::NatsServer;

/// The host id the test plays.
pub const HOST_ID: &str = "NHOST";

/// Who a provider process is and what it is told at start.
#[derive(Debug, Clone)]
pub struct ProviderSetup<'a> {
    /// The executable (`env!("CARGO_BIN_EXE_...")`).
    pub executable: &'a str,
    pub app: &'a str,
    pub name: &'a str,
    pub config: BTreeMap<String, String>,
    pub links: Vec<ProviderLink>,
}

/// A running provider process, killed on drop.
pub struct ProviderProcess {
    child: Child,
    stdin: ChildStdin,
    nats: async_nats::Client,
    app: String,
    name: String,
}

impl ProviderProcess {
    /// Start it, pass its stderr through to the test's, and wait (at most 20 s)
    /// until it answers its health check.
    pub async fn start(nats: &NatsServer, setup: ProviderSetup<'_>) -> Self {
        let (app, name) = (setup.app.to_owned(), setup.name.to_owned());
        let mut child = spawn(nats, setup).await;
        let stdin = child.stdin.take().expect("stdin is piped");
        if let Some(mut stderr) = child.stderr.take() {
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut stderr, &mut tokio::io::stderr()).await;
            });
        }
        let p = Self {
            child,
            stdin,
            nats: nats.connect().await.expect("the test connects to NATS"),
            app,
            name,
        };
        let subject = health_subject("default", &p.app, &p.name, HOST_ID);
        for _ in 0..100 {
            let asked = p.nats.request(subject.clone(), "".into());
            if let Ok(Ok(reply)) = tokio::time::timeout(Duration::from_millis(200), asked).await {
                assert_eq!(reply.payload.as_ref(), b"ok");
                return p;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("provider {} never answered its health check", p.name);
    }

    /// Call `interface.function` (`interface` as `namespace:package/name`) as
    /// `component` over its `default` link, with the caller's `timeout`: the one
    /// result, or the reply's error kind and message.
    #[allow(clippy::too_many_arguments)]
    pub async fn call(
        &self,
        component: &str,
        interface: &str,
        function: &str,
        params: &[WitType],
        results: &[WitType],
        args: &[WitValue],
        timeout: Duration,
    ) -> Result<WitValue, (String, String)> {
        let (package, interface) = interface.split_once('/').expect("ns:pkg/iface");
        let (namespace, package) = package.split_once(':').expect("ns:pkg/iface");
        let target = CallTarget {
            app: self.app.clone(),
            component: self.name.clone(),
            namespace: namespace.into(),
            package: package.into(),
            interface: interface.into(),
            function: function.into(),
        };
        let subject = wire::host_call_subject("default", HOST_ID, &target);
        let caller = CallHeader {
            host: HOST_ID.into(),
            app: self.app.clone(),
            component: component.into(),
            link: "default".into(),
            signature: wire::signature_fingerprint(params, results),
            timeout_ms: timeout.as_millis() as u64,
            trace: None,
        };
        let mut h = HeaderMap::new();
        h.insert(headers::CALL, caller.encode().as_str());
        let payload = wire::encode_args(params, args).expect("the arguments fit the types");
        let asked = self.nats.request_with_headers(subject, h, payload.into());
        let reply = tokio::time::timeout(timeout + Duration::from_secs(5), asked)
            .await
            .expect("no reply at all")
            .expect("the request reached the provider");
        if let Some(kind) = reply.headers.as_ref().and_then(|h| h.get(headers::ERROR)) {
            let message = String::from_utf8_lossy(&reply.payload).into_owned();
            return Err((kind.as_str().to_owned(), message));
        }
        let mut results =
            wire::decode_results(results, &reply.payload).expect("the results fit the types");
        assert_eq!(results.len(), 1);
        Ok(results.remove(0))
    }

    /// Ask it to stop and check it exits cleanly within 5 s.
    pub async fn shutdown(mut self) {
        let mut line = lattice_protocol::encode(&ProviderMessage::Shutdown);
        line.push(b'\n');
        self.stdin.write_all(&line).await.unwrap();
        let status = tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("{} did not exit within 5 s of shutdown", self.name))
            .unwrap();
        assert!(status.success(), "{status}");
    }
}

/// Start the process and write its `init` line; nothing else (for tests that
/// watch it fail).
pub async fn spawn(nats: &NatsServer, setup: ProviderSetup<'_>) -> Child {
    let init = ProviderMessage::Init(ProviderInit {
        lattice: "default".into(),
        nats_url: nats.url(),
        app: setup.app.into(),
        name: setup.name.into(),
        host_id: HOST_ID.into(),
        config: setup.config,
        links: setup.links,
        nats_credentials: None,
        inbox_prefix: None,
        nats_tls: nats.tls().map(|pki| pki.nats_tls()),
        locality: Vec::new(),
        secrets: Default::default(),
    });
    let mut child = Command::new(setup.executable)
        .env("LATTICE_LOG", "info")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", setup.executable));
    let stdin = child.stdin.as_mut().expect("stdin is piped");
    let mut line = lattice_protocol::encode(&init);
    line.push(b'\n');
    stdin.write_all(&line).await.unwrap();
    child
}
