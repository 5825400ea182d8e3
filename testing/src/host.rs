//! The in-process host harness (feature `host`): a real `lattice_host::Host` in the
//! test's own process, configured for tests, and the HTTP helpers that talk to
//! what it serves. Used by the host's integration tests, the providers' tests (a
//! provider run as a host runs it) and the cross-crate benches.

use crate::nats::NatsServer;
use std::time::{Duration, Instant};

pub use lattice_host::provider::ProviderSigner;
pub use lattice_host::{ApplyError, Host, HostConfig, Limits};

/// Limits small enough that a test running into them finishes quickly: 64 MiB,
/// 2 s per invocation, 4 queued for at most 1 s.
pub fn quick_limits() -> Limits {
    Limits {
        max_memory_bytes: 64 << 20,
        execution_timeout: Duration::from_secs(2),
        max_queued: 4,
        queue_timeout: Duration::from_secs(1),
    }
}

/// A host with `limits`, on `nats` when given (else without NATS at all).
pub fn host(limits: Limits, nats: Option<async_nats::Client>) -> Host {
    let config = HostConfig {
        limits,
        allow_file_load: true,
        ..HostConfig::default()
    };
    Host::new(config, nats).expect("the host starts")
}

/// A host on `nats` that starts providers on it too (`provider_nats_url`), with
/// default limits, loading `file://` images: as `lattice up` runs its host.
pub async fn provider_host(nats: &NatsServer) -> Host {
    provider_host_with(nats, HostConfig::default()).await
}

/// [`provider_host`] with the rest of its settings from `config`.
pub async fn provider_host_with(nats: &NatsServer, config: HostConfig) -> Host {
    let config = HostConfig {
        provider_nats_url: Some(nats.url()),
        // On a TLS server, providers get the test CA and client certificate.
        provider_nats_tls: nats.tls().map(|pki| pki.nats_tls()).unwrap_or_default(),
        allow_file_load: true,
        ..config
    };
    let client = nats.connect().await.expect("the host connects to NATS");
    Host::new(config, Some(client)).expect("the host starts")
}

/// An HTTP client that gives up after 20 s.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("an HTTP client")
}

/// `method path` on `127.0.0.1:port`: (status, body).
pub async fn send(method: reqwest::Method, port: u16, path: &str) -> (u16, String) {
    let resp = client()
        .request(method.clone(), format!("http://127.0.0.1:{port}{path}"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let status = resp.status().as_u16();
    let body = resp
        .text()
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: reading the body: {e}"));
    (status, body)
}

/// GET `path` on `127.0.0.1:port`: (status, body).
pub async fn get(port: u16, path: &str) -> (u16, String) {
    send(reqwest::Method::GET, port, path).await
}

/// GET `path` until it answers 200 (a provider or service takes a moment to
/// start), for at most 15 s: the body.
pub async fn get_ok(port: u16, path: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = get(port, path).await;
        if status == 200 {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{path} kept failing: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Poll `check` every 10 ms until it gives a value, for at most 15 s.
pub async fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
