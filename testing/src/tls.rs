//! A throwaway public-key infrastructure for TLS tests: a CA made at test time
//! (rcgen), a server certificate for `127.0.0.1` and `localhost`, and a client
//! certificate, each written as PEM into a private folder removed on drop.

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use std::path::{Path, PathBuf};

/// A certificate and its key, as PEM files.
#[derive(Debug, Clone)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A test CA with one server and one client certificate it signed.
#[derive(Debug)]
pub struct TestPki {
    dir: tempfile::TempDir,
    ca: PathBuf,
    ca_pem: String,
    /// For `127.0.0.1` and `localhost`.
    pub server: CertFiles,
    /// A client certificate (common name `lattice-test-client`).
    pub client: CertFiles,
}

impl TestPki {
    /// A new CA, server and client certificate.
    pub fn new() -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("lattice-pki-")
            .tempdir()
            .context("creating a folder for test certificates")?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "lattice test CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate()?)?;
        let ca_pem = ca.pem();
        let ca_path = dir.path().join("ca.pem");
        write(&ca_path, &ca_pem)?;

        let leaf = |name: &str, sans: Vec<String>, usage| -> anyhow::Result<CertFiles> {
            let key = KeyPair::generate()?;
            let mut params = CertificateParams::new(sans)?;
            params.distinguished_name.push(DnType::CommonName, name);
            params.extended_key_usages = vec![usage];
            let cert = params.signed_by(&key, &ca)?;
            let files = CertFiles {
                cert: dir.path().join(format!("{name}.pem")),
                key: dir.path().join(format!("{name}-key.pem")),
            };
            write(&files.cert, &cert.pem())?;
            write(&files.key, &key.serialize_pem())?;
            Ok(files)
        };
        let server = leaf(
            "server",
            vec!["127.0.0.1".into(), "localhost".into()],
            ExtendedKeyUsagePurpose::ServerAuth,
        )?;
        let client = leaf(
            "lattice-test-client",
            Vec::new(),
            ExtendedKeyUsagePurpose::ClientAuth,
        )?;
        Ok(Self {
            dir,
            ca: ca_path,
            ca_pem,
            server,
            client,
        })
    }

    /// The CA certificate's PEM file.
    pub fn ca_file(&self) -> &Path {
        &self.ca
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The folder the files are in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Trust this CA and present the client certificate, as every lattice role takes
    /// it.
    pub fn nats_tls(&self) -> lattice_protocol::nats_tls::NatsTls {
        lattice_protocol::nats_tls::NatsTls {
            ca_file: Some(self.ca.clone()),
            cert_file: Some(self.client.cert.clone()),
            key_file: Some(self.client.key.clone()),
        }
    }
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}
