//! `lattice keys`: the nkeys a lattice runs on, and key files readable by their
//! owner only.
//!
//! - a **lattice signing key** (`SC…`, public `C…`): controllers sign host commands
//!   with it; hosts obey only keys they trust (`lattice host --trust C…`);
//! - a **host key** (`SN…`, public `N…`): a host's identity, signing its reports;
//! - a **join token** (`SV…`, public `V…`): hosts holding it are admitted by a
//!   controller given its public key (`lattice controller --join-key V…`);
//! - an **account key** (`SA…`, public `A…`): an issuer of components, signing
//!   them with `lattice sign`; hosts run only what trusted issuers signed
//!   (`lattice host --trust-issuer A…`). wasmCloud's `wash` account keys are
//!   the same kind.

use anyhow::Context;
use clap::{Subcommand, ValueEnum};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a new key, write its seed to FILE (readable by you only) and print its
    /// public key.
    New {
        /// What the key is for.
        #[arg(value_enum)]
        kind: KeyKind,
        /// Where to write the seed; refused if the file exists.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the public key of the seed in FILE.
    Public { file: PathBuf },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KeyKind {
    /// The lattice signing key controllers sign host commands with.
    Lattice,
    /// A host's identity.
    Host,
    /// A join token that admits hosts.
    Join,
    /// An account that signs components (`lattice sign --issuer`), as wasmCloud's
    /// account keys do; hosts trust its public key with --trust-issuer.
    Account,
    /// The controllers' secrets key (a curve key, `SX...`): stored secrets are
    /// sealed to it (`lattice controller --secrets-key`).
    Secrets,
}

pub fn run(cmd: KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::New { kind, out } => {
            let (seed, public) = match kind {
                KeyKind::Join => {
                    let token = lattice_protocol::trust::JoinToken::generate();
                    (token.seed(), token.public_key())
                }
                KeyKind::Secrets => {
                    let key = lattice_protocol::secrets::new_key();
                    let seed = key.seed().map_err(|e| anyhow::anyhow!("{e}"))?;
                    (seed, key.public_key())
                }
                KeyKind::Lattice | KeyKind::Host | KeyKind::Account => {
                    let key = match kind {
                        KeyKind::Lattice => lattice_protocol::trust::new_lattice_key(),
                        KeyKind::Account => nkeys::KeyPair::new_account(),
                        _ => lattice_protocol::trust::new_host_key(),
                    };
                    let seed = key.seed().map_err(|e| anyhow::anyhow!("{e}"))?;
                    (seed, key.public_key())
                }
            };
            write_new(&out, &seed)?;
            outln!("{public}");
            Ok(())
        }
        KeysCommand::Public { file } => {
            let seed = read_seed(&file)?;
            let public = match nkeys::KeyPair::from_seed(&seed) {
                Ok(key) => key.public_key(),
                Err(_) if seed.starts_with("SX") => lattice_protocol::secrets::key_from_seed(&seed)
                    .map(|k| k.public_key())
                    .map_err(|e| anyhow::anyhow!("{} holds no curve seed: {e}", file.display()))?,
                Err(_) => lattice_protocol::trust::JoinToken::from_seed(&seed)
                    .map(|t| t.public_key())
                    .map_err(|e| anyhow::anyhow!("{} holds no nkey seed: {e}", file.display()))?,
            };
            outln!("{public}");
            Ok(())
        }
    }
}

/// The seed in `path`, trimmed.
pub fn read_seed(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the key file {}", path.display()))?;
    Ok(text.trim().to_owned())
}

/// Write `seed` to a new file `path` that only its owner may read.
pub fn write_new(path: &Path, seed: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create the key file {}", path.display()))?;
    file.write_all(seed.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .with_context(|| format!("writing {}", path.display()))
}

/// The secrets key's seed kept in `path`, made when the file does not exist yet.
pub fn load_or_create_secrets_key(path: &Path) -> anyhow::Result<String> {
    if path.exists() {
        return read_seed(path);
    }
    let seed = lattice_protocol::secrets::new_key()
        .seed()
        .map_err(|e| anyhow::anyhow!("cannot make a key: {e}"))?;
    write_new(path, &seed)?;
    Ok(seed)
}

/// The seed kept in `path`, made by `new` when the file does not exist yet.
pub fn load_or_create(path: &Path, new: impl FnOnce() -> nkeys::KeyPair) -> anyhow::Result<String> {
    if path.exists() {
        return read_seed(path);
    }
    let seed = new()
        .seed()
        .map_err(|e| anyhow::anyhow!("cannot make a key: {e}"))?;
    write_new(path, &seed)?;
    Ok(seed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn key_files_are_for_their_owner_only_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/lattice.nk");
        let seed = load_or_create(&path, lattice_protocol::trust::new_lattice_key).unwrap();
        assert!(seed.starts_with("SC"));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = load_or_create(&path, lattice_protocol::trust::new_lattice_key).unwrap();
        assert_eq!(seed, again);
        assert!(
            write_new(&path, "x").is_err(),
            "an existing key is never overwritten"
        );
    }
}
