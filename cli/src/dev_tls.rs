//! `lattice up --tls`: a private CA for the dev lattice, made once in its state
//! directory (`tls/`, mode 0700, keys 0600), with a certificate for its
//! nats-server (`127.0.0.1`, `localhost`) and one client certificate that every
//! process of the dev lattice presents (`verify: true`).

use anyhow::Context;
use lattice_protocol::nats_tls::NatsTls;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use std::path::{Path, PathBuf};

/// The folder in the state directory.
pub const DIR: &str = "tls";
const FILES: [&str; 5] = [
    "ca.pem",
    "server.pem",
    "server-key.pem",
    "client.pem",
    "client-key.pem",
];

/// The dev lattice's TLS files.
#[derive(Debug, Clone)]
pub struct DevTls {
    dir: PathBuf,
}

impl DevTls {
    /// The `tls { ... }` block of the nats-server config.
    pub fn server_config(&self) -> String {
        let f = |name: &str| self.dir.join(name).display().to_string();
        format!(
            "tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n  ca_file: \"{}\"\n  verify: true\n  timeout: 2\n}}\n",
            f("server.pem"),
            f("server-key.pem"),
            f("ca.pem")
        )
    }

    /// The nats-server config: `auth_config` (the dev operator setup) and the
    /// `tls` block, written beside the certificates (0600); its path.
    pub fn server_config_file(&self, auth_config: &Path) -> anyhow::Result<PathBuf> {
        let auth = std::fs::read_to_string(auth_config)
            .with_context(|| format!("reading {}", auth_config.display()))?;
        let path = self.dir.join("nats-server.conf");
        write_private(
            &path,
            &format!("{}\n{}", auth.trim_end(), self.server_config()),
        )?;
        Ok(path)
    }

    /// What every client of the dev lattice connects with.
    pub fn client(&self) -> NatsTls {
        NatsTls {
            ca_file: Some(self.dir.join("ca.pem")),
            cert_file: Some(self.dir.join("client.pem")),
            key_file: Some(self.dir.join("client-key.pem")),
        }
    }
}

/// The dev lattice's TLS files in `state_dir`, made when any is missing.
pub fn dev_tls(state_dir: &Path) -> anyhow::Result<DevTls> {
    let dir = state_dir.join(DIR);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .with_context(|| format!("making {} private", dir.display()))?;
    if !FILES.iter().all(|f| dir.join(f).is_file()) {
        make(&dir).with_context(|| format!("making the dev CA in {}", dir.display()))?;
    }
    Ok(DevTls { dir })
}

fn make(dir: &Path) -> anyhow::Result<()> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "lattice up dev CA");
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate()?)?;
    // The CA's key is not kept: a new CA is made if any file goes missing.
    let leaf = |name: &str, sans: Vec<String>, usage| -> anyhow::Result<(String, String)> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(sans)?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![usage];
        Ok((params.signed_by(&key, &ca)?.pem(), key.serialize_pem()))
    };
    let (server, server_key) = leaf(
        "lattice up nats-server",
        vec!["127.0.0.1".into(), "localhost".into()],
        ExtendedKeyUsagePurpose::ServerAuth,
    )?;
    let (client, client_key) = leaf(
        "lattice up",
        Vec::new(),
        ExtendedKeyUsagePurpose::ClientAuth,
    )?;
    for (name, text) in FILES
        .iter()
        .zip([ca.pem(), server, server_key, client, client_key])
    {
        write_private(&dir.join(name), &text)?;
    }
    Ok(())
}

/// Write `text` to `path` readable by its owner only, replacing what was there.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn made_once_private_and_kept() {
        let state = tempfile::tempdir().unwrap();
        let tls = dev_tls(state.path()).unwrap();
        let ca = std::fs::read_to_string(state.path().join("tls/ca.pem")).unwrap();
        for f in FILES {
            let mode = std::fs::metadata(state.path().join(DIR).join(f))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }
        assert!(tls.server_config().contains("verify: true"));
        // A second start keeps the same CA.
        dev_tls(state.path()).unwrap();
        let again = std::fs::read_to_string(state.path().join("tls/ca.pem")).unwrap();
        assert_eq!(ca, again);
        assert!(tls.client().cert_file.unwrap().ends_with("client.pem"));
    }
}
