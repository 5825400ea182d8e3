//! Capability providers: separate processes a host starts for a capability whose
//! manifest `image` is `file://PATH` to an executable.
//!
//! - What the host tells a provider: [`ProviderMessage`]s, one JSON object per line
//!   on the provider's stdin (`{"v":1,...}` like every lattice message): first
//!   `init` (where NATS is, who it is, its config and links), then `links` whenever
//!   the app's links to or from it change, and `shutdown` before the host stops it.
//! - How components call it: like a linked component ([`crate::wire::rpc`]), on
//!   `lattice.<L>.rpch.<host>.<app>.<provider>.<ns>.<pkg>.<iface>.<fn>` with the
//!   `lattice-call` header, arguments and results in the wire encoding. Interfaces
//!   whose WIT passes resources are offered in a resource-free form: [`keyvalue`].
//! - Health: the host sends a request to [`health_subject`] every few seconds; a
//!   provider that stops answering is restarted.

pub mod http;
pub mod keyvalue;

use crate::manifest::Config;
use crate::secrets::SecretValue;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One line on a provider's stdin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "message", rename_all = "snake_case")]
// One `Init` per process: its size does not matter, boxing it would only add noise.
#[allow(clippy::large_enum_variant)]
pub enum ProviderMessage {
    /// The first line: everything the provider needs to start.
    Init(ProviderInit),
    /// The app's links to and from the provider changed; this is the whole new set.
    Links {
        /// The whole new set of links.
        links: Vec<ProviderLink>,
    },
    /// The host's locality labels changed (`lattice host label`); this is the
    /// whole new list, most specific first, as `init`'s `locality`.
    Locality {
        /// `(key, value)` of each locality label the host has now.
        locality: Vec<(String, String)>,
    },
    /// Stop: finish what is in flight and exit; the host kills it after a grace
    /// period.
    Shutdown,
}

/// What a provider is told when it starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderInit {
    /// The lattice name.
    pub lattice: String,
    /// The NATS server to use, with the provider's own credentials when the host
    /// has them (never the host's).
    pub nats_url: String,
    /// The app and the manifest component name of this provider.
    pub app: String,
    /// The provider's component name in the manifest.
    pub name: String,
    /// The host that started it.
    pub host_id: String,
    /// The provider component's `config`.
    #[serde(default)]
    pub config: Config,
    /// The app's links to and from the provider.
    #[serde(default)]
    pub links: Vec<ProviderLink>,
    /// The provider's own NATS user when the lattice's NATS uses decentralized
    /// auth: minted by the host for this process (see `creds`), never the host's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nats_credentials: Option<NatsCredentials>,
    /// The inbox prefix its connection must use: its user may subscribe to
    /// replies only below it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbox_prefix: Option<String>,
    /// TLS to NATS: the CA file to trust and the client certificate and key to
    /// present, as paths on the host's machine (the host's own `--nats-tls-*`
    /// files, made absolute). Absent: no TLS settings (a `tls://` URL still
    /// requires TLS, trusting the system's roots).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nats_tls: Option<crate::nats_tls::NatsTls>,
    /// The host's locality labels, `(key, value)`, most specific first: the
    /// provider also serves calls sent to instances near callers with these
    /// labels (`wire::locality_component_wildcard`), as a host serves them for its
    /// components.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locality: Vec<(String, String)>,
    /// The provider's `properties.secrets`: the name it asks for to the value, in
    /// clear (stdin is the host's pipe to this process alone).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, crate::secrets::SecretValue>,
}

/// `.creds` text (a user JWT and its seed); never printed by `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NatsCredentials(pub String);

impl std::fmt::Debug for NatsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NatsCredentials(<redacted>)")
    }
}

/// A link that touches the provider.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProviderLink {
    /// The component on the other end.
    pub component: String,
    /// `true`: the component calls the provider (its import goes to the provider);
    /// `false`: the provider calls the component (e.g. message delivery).
    pub to_provider: bool,
    /// The link name (`default` unless named).
    pub name: String,
    /// `example` in `example:shop/orders`.
    pub namespace: String,
    /// `shop` in `example:shop/orders`.
    pub package: String,
    /// The interfaces the link carries.
    pub interfaces: Vec<String>,
    /// The link's config for the provider's side: `target` config when the
    /// component calls the provider, `source` config when the provider calls it.
    #[serde(default)]
    pub config: Config,
    /// The link's secrets for the provider's side (`target.secrets` or
    /// `source.secrets`), opened, under the names the manifest gives them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, SecretValue>,
}

impl ProviderLink {
    /// The link's secret `name` as text, when given and UTF-8.
    pub fn secret_text(&self, name: &str) -> Option<&str> {
        match self.secrets.get(name)? {
            SecretValue::String(s) => Some(s),
            SecretValue::Bytes(_) => None,
        }
    }
}

/// Where the process of provider `name` that host `host_id` started answers health
/// checks: a request with an empty payload, answered with `ok`. Per host, so one
/// host's check is never answered by another host's process.
pub fn health_subject(lattice: &str, app: &str, name: &str, host_id: &str) -> String {
    let t = crate::wire::rpc::escape_token;
    format!(
        "lattice.{lattice}.prov.{}.{}.{}.health",
        t(app),
        t(name),
        t(host_id)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_back() {
        let init = ProviderMessage::Init(ProviderInit {
            lattice: "default".into(),
            nats_url: "nats://127.0.0.1:4222".into(),
            app: "counter".into(),
            name: "redis".into(),
            host_id: "NABC".into(),
            config: Default::default(),
            links: vec![ProviderLink {
                component: "counter".into(),
                to_provider: true,
                name: "default".into(),
                namespace: "wasi".into(),
                package: "keyvalue".into(),
                interfaces: vec!["store".into(), "atomics".into()],
                config: [("url".to_string(), "redis://127.0.0.1:6379".to_string())].into(),
                secrets: Default::default(),
            }],
            nats_credentials: Some(NatsCredentials("-----BEGIN NATS USER JWT-----".into())),
            inbox_prefix: Some("_INBOX_default.counter.redis".into()),
            nats_tls: Some(crate::nats_tls::NatsTls {
                ca_file: Some("/etc/lattice/ca.pem".into()),
                ..Default::default()
            }),
            locality: vec![("zone".into(), "eu-1a".into())],
            secrets: Default::default(),
        });
        assert!(
            !format!("{init:?}").contains("BEGIN"),
            "credentials in Debug"
        );
        let line = crate::encode(&init);
        assert!(!line.contains(&b'\n'));
        assert_eq!(crate::decode::<ProviderMessage>(&line).unwrap(), init);
        assert_eq!(
            crate::decode::<ProviderMessage>(br#"{"v":1,"message":"shutdown"}"#).unwrap(),
            ProviderMessage::Shutdown
        );
        assert_eq!(
            health_subject("default", "counter", "redis", "NABC"),
            "lattice.default.prov.counter.redis.NABC.health"
        );
    }
}
