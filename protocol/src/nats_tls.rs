//! TLS to NATS: which files a process trusts and presents. Every role (host,
//! controller, CLI, built-in messaging's own connection, providers) takes the same
//! settings; a host hands its own to the providers it starts in their `init`
//! ([`crate::provider::ProviderInit::nats_tls`]). The connection itself is made by
//! `lattice_bus::connect`, the one place that turns these into client options.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// PEM files on the machine of the process that connects. All optional: none and a
/// `nats://` URL is a plain connection, as before.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NatsTls {
    /// CA certificate(s) the server's certificate must chain to (instead of the
    /// system's roots). Setting it makes TLS required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// The client certificate to present, for servers that verify clients
    /// (`tls { verify: true }`). Needs [`NatsTls::key_file`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<PathBuf>,
    /// The client certificate's private key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
}

/// Settings that cannot work, found before connecting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NatsTlsError {
    /// A certificate without its key or a key without its certificate.
    #[error("a NATS TLS client certificate needs both --nats-tls-cert and --nats-tls-key (only {given} was given)")]
    HalfClientCertificate {
        /// The flag that was given.
        given: &'static str,
    },
}

impl NatsTls {
    /// No file given: the connection uses TLS only if the URL or server asks.
    pub fn is_empty(&self) -> bool {
        self.ca_file.is_none() && self.cert_file.is_none() && self.key_file.is_none()
    }

    /// Whether a connection to `url` with these settings must be TLS: a CA or a
    /// client certificate was given, or the URL is `tls://`. (A server that
    /// requires TLS upgrades a `nats://` connection anyway.)
    pub fn required_for(&self, url: &str) -> bool {
        !self.is_empty()
            || url
                .split(',')
                .any(|u| u.trim().to_ascii_lowercase().starts_with("tls://"))
    }

    /// The client certificate and key, when both are given; an error when only
    /// one is.
    pub fn client_certificate(&self) -> Result<Option<(&Path, &Path)>, NatsTlsError> {
        match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => Ok(Some((cert, key))),
            (None, None) => Ok(None),
            (Some(_), None) => Err(NatsTlsError::HalfClientCertificate {
                given: "--nats-tls-cert",
            }),
            (None, Some(_)) => Err(NatsTlsError::HalfClientCertificate {
                given: "--nats-tls-key",
            }),
        }
    }

    /// The same settings with every path made absolute against `base`, for a
    /// process started in another directory (a provider).
    pub fn absolute(&self, base: &Path) -> Self {
        let abs = |p: &Option<PathBuf>| p.as_ref().map(|p| base.join(p));
        Self {
            ca_file: abs(&self.ca_file),
            cert_file: abs(&self.cert_file),
            key_file: abs(&self.key_file),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_is_required_by_a_ca_a_certificate_or_the_url() {
        let none = NatsTls::default();
        assert!(!none.required_for("nats://127.0.0.1:4222"));
        assert!(none.required_for("tls://127.0.0.1:4222"));
        assert!(none.required_for("nats://a:4222, TLS://b:4222"));
        let ca = NatsTls {
            ca_file: Some("ca.pem".into()),
            ..Default::default()
        };
        assert!(ca.required_for("nats://127.0.0.1:4222"));
    }

    #[test]
    fn a_client_certificate_needs_its_key() {
        let cert_only = NatsTls {
            cert_file: Some("c.pem".into()),
            ..Default::default()
        };
        let e = cert_only.client_certificate().unwrap_err();
        assert!(e.to_string().contains("--nats-tls-key"), "{e}");
        let both = NatsTls {
            cert_file: Some("c.pem".into()),
            key_file: Some("k.pem".into()),
            ..Default::default()
        };
        assert!(both.client_certificate().unwrap().is_some());
        assert_eq!(NatsTls::default().client_certificate().unwrap(), None);
    }

    #[test]
    fn paths_are_made_absolute_and_absent_fields_stay_out_of_json() {
        let tls = NatsTls {
            ca_file: Some("certs/ca.pem".into()),
            cert_file: Some("/etc/c.pem".into()),
            key_file: None,
        }
        .absolute(Path::new("/srv"));
        assert_eq!(tls.ca_file.as_deref(), Some(Path::new("/srv/certs/ca.pem")));
        assert_eq!(tls.cert_file.as_deref(), Some(Path::new("/etc/c.pem")));
        let json = serde_json::to_string(&tls).unwrap();
        assert!(!json.contains("key_file"), "{json}");
        assert_eq!(serde_json::from_str::<NatsTls>(&json).unwrap(), tls);
    }
}
