//! Bundled providers: the provider executables shipped with lattice
//! (`providers/keyvalue-redis`, `providers/sqldb-postgres`), named by
//! `bundled://NAME` or by the wasmCloud image that reads as one
//! (`ghcr.io/wasmcloud/keyvalue-redis:…`). A host runs its own copy: the
//! executable named NAME in its `--provider-dir` when it has one (it runs
//! providers only from there), else next to the running `lattice` binary, where
//! `cargo build --release` and the release archives put them. A host without it
//! refuses the workload, naming the provider, where it looked and how to fix it.

use lattice_protocol::manifest::Bundled;
use std::path::{Path, PathBuf};

/// The executable of `bundled` on this host.
pub fn locate(bundled: Bundled, provider_dir: Option<&Path>) -> Result<PathBuf, String> {
    let file = format!("{}{}", bundled.name(), std::env::consts::EXE_SUFFIX);
    let dir = match provider_dir {
        Some(dir) => dir.to_path_buf(),
        None => std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(Path::to_path_buf))
            .ok_or_else(|| {
                format!(
                    "cannot find the bundled provider {}: this host does not know where its \
                     own binary is; start it with --provider-dir",
                    bundled.name()
                )
            })?,
    };
    let path = dir.join(&file);
    if path.is_file() {
        return Ok(path);
    }
    let place = match provider_dir {
        Some(_) => "its provider folder (--provider-dir)",
        None => "the folder of the lattice binary",
    };
    Err(format!(
        "this host has no bundled provider {name}: {path} is not a file. Build it \
         (`cargo build --release -p {name}`) and put it in {place}",
        name = bundled.name(),
        path = path.display(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn found_in_the_provider_dir_or_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = locate(Bundled::KeyvalueRedis, Some(dir.path())).unwrap_err();
        assert!(err.contains("no bundled provider keyvalue-redis"), "{err}");
        assert!(err.contains(&dir.path().display().to_string()), "{err}");
        assert!(err.contains("--provider-dir"), "{err}");
        let exe = dir.path().join("keyvalue-redis");
        std::fs::write(&exe, b"#!/bin/sh\n").unwrap();
        assert_eq!(
            locate(Bundled::KeyvalueRedis, Some(dir.path())).unwrap(),
            exe
        );
        let err = locate(Bundled::SqldbPostgres, Some(dir.path())).unwrap_err();
        assert!(err.contains("sqldb-postgres"), "{err}");
    }
}
