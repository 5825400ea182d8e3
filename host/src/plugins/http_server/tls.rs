//! HTTPS for a listener: a certificate chain and its private key (PEM files on the
//! host) named in the http-server link's source config, with the keys wasmCloud's
//! http-server provider takes: `tls_cert_file` and `tls_priv_key_file`. Both are
//! read when the app is applied, so a missing or bad file fails the apply with a
//! message naming the file and the link, before any listener is bound.

use lattice_protocol::manifest::Config;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

/// The source-config key of the certificate chain (PEM).
pub const CERT_KEY: &str = "tls_cert_file";
/// The source-config key of the certificate's private key (PEM).
pub const PRIVATE_KEY_KEY: &str = "tls_priv_key_file";

/// The acceptor for a link that asks for HTTPS; `None` for plain HTTP. `Err` names
/// the key and file (the caller prefixes the link).
pub fn acceptor(config: &Config) -> Result<Option<TlsAcceptor>, String> {
    let (cert, key) = match (config.get(CERT_KEY), config.get(PRIVATE_KEY_KEY)) {
        (None, None) => return Ok(None),
        (Some(cert), Some(key)) => (cert, key),
        (Some(_), None) => {
            return Err(format!(
                "`{CERT_KEY}` is set but `{PRIVATE_KEY_KEY}` is not: HTTPS needs both"
            ))
        }
        (None, Some(_)) => {
            return Err(format!(
                "`{PRIVATE_KEY_KEY}` is set but `{CERT_KEY}` is not: HTTPS needs both"
            ))
        }
    };
    let read = |key: &str, path: &str| {
        std::fs::read(path).map_err(|e| format!("`{key}` {path}: cannot read it: {e}"))
    };
    let cert_pem = read(CERT_KEY, cert)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("`{CERT_KEY}` {cert}: not a PEM certificate chain: {e}"))?;
    if chain.is_empty() {
        return Err(format!(
            "`{CERT_KEY}` {cert}: no PEM `CERTIFICATE` block in it"
        ));
    }
    let key_pem = read(PRIVATE_KEY_KEY, key)?;
    let private = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| format!("`{PRIVATE_KEY_KEY}` {key}: no PEM private key in it: {e}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| {
            format!("`{CERT_KEY}` {cert} and `{PRIVATE_KEY_KEY}` {key} do not make a usable certificate: {e}")
        })?;
    // The listener speaks HTTP/1.1 only.
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(TlsAcceptor::from(Arc::new(server))))
}
