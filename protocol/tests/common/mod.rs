//! The manifest cases shared by the table test and the schema test.

use std::fs;
use std::path::{Path, PathBuf};

/// One manifest and where its expected result lives.
#[derive(Debug)]
pub struct Case {
    pub name: String,
    pub yaml: PathBuf,
    /// `NAME.json` (a valid manifest) or `NAME.err` (the error text) sits here.
    pub expect_dir: PathBuf,
}

impl Case {
    pub fn text(&self) -> String {
        fs::read_to_string(&self.yaml).unwrap_or_else(|e| panic!("{}: {e}", self.yaml.display()))
    }

    /// The expected-file path for `ext` (`json` or `err`).
    pub fn expect_path(&self, ext: &str) -> PathBuf {
        self.expect_dir.join(format!("{}.{ext}", self.name))
    }

    /// Whether the case is expected to parse.
    pub fn is_good(&self) -> bool {
        self.expect_path("json").exists()
    }
}

/// `protocol/tests/manifests/*.yaml`, then the samples in `manifests/*.yaml`, sorted.
pub fn cases() -> Vec<Case> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let table = root.join("tests/manifests");
    let mut out = yaml_in(&table, &table);
    out.extend(yaml_in(&root.join("../manifests"), &table.join("samples")));
    assert!(
        out.len() > 2,
        "no manifest cases found under {}",
        table.display()
    );
    out
}

fn yaml_in(dir: &Path, expect_dir: &Path) -> Vec<Case> {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut out: Vec<Case> = entries
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|yaml| Case {
            name: yaml.file_stem().unwrap().to_string_lossy().into_owned(),
            yaml,
            expect_dir: expect_dir.to_owned(),
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}
