//! `lattice app validate FILE...`: check manifests offline with the parser and
//! budgets `lattice app deploy` and the controller use, for editors and CI.
//!
//! Every problem the parser collects is printed with its path in the document
//! (`FILE: spec.components[0].name: ...`), one per line, so a CI log points at the
//! line to fix. Exit code: 0 when every file is valid, 1 when one is invalid, 2 when
//! one cannot be read (2 wins). No NATS is needed.

use crate::output::{print_json, Output};
use lattice_protocol::manifest::{self, Image, Manifest};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Manifest files (wadm-style OAM YAML).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// What was found in one file.
#[derive(Debug, Serialize)]
struct Report {
    file: String,
    /// `valid`, `invalid` or `unreadable`.
    result: &'static str,
    /// The app's name and version, when valid (the version is empty when the
    /// controller will assign one).
    #[serde(skip_serializing_if = "Option::is_none")]
    app: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    problems: Vec<ProblemOut>,
    /// Not errors of the document, but things deploy would also refuse (a
    /// `file://` image not built yet).
    warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
struct ProblemOut {
    path: String,
    message: String,
}

pub fn run(args: &ValidateArgs, output: Output) -> ExitCode {
    let reports: Vec<Report> = args.files.iter().map(|f| check(f)).collect();
    let code = exit_code(&reports);
    if output == Output::Json {
        if let Err(e) = print_json(&reports) {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
        return ExitCode::from(code);
    }
    for r in &reports {
        match r.result {
            "valid" => {
                let version = match r.version.as_deref() {
                    Some("") | None => "no version: the controller assigns one".to_string(),
                    Some(v) => format!("version {v}"),
                };
                outln!(
                    "{}: valid (app '{}', {version})",
                    r.file,
                    r.app.as_deref().unwrap_or_default()
                );
            }
            "invalid" => outln!("{}: invalid, {} problem(s):", r.file, r.problems.len()),
            _ => {}
        }
        for p in &r.problems {
            outln!("{}: {}: {}", r.file, p.path, p.message);
        }
        for w in &r.warnings {
            eprintln!("{}: warning: {w}", r.file);
        }
    }
    ExitCode::from(code)
}

fn exit_code(reports: &[Report]) -> u8 {
    reports
        .iter()
        .map(|r| match r.result {
            "valid" => 0,
            "invalid" => 1,
            _ => 2,
        })
        .max()
        .unwrap_or(0)
}

fn check(file: &Path) -> Report {
    let name = file.display().to_string();
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) => {
            return Report {
                file: name,
                result: "unreadable",
                app: None,
                version: None,
                problems: vec![ProblemOut {
                    path: "(file)".into(),
                    message: format!("cannot read the file: {e}"),
                }],
                warnings: vec![],
            }
        }
    };
    match manifest::parse(&text) {
        Ok(m) => Report {
            warnings: missing_images(&m, file),
            file: name,
            result: "valid",
            app: Some(m.name),
            version: Some(m.version),
            problems: vec![],
        },
        Err(e) => Report {
            file: name,
            result: "invalid",
            app: None,
            version: None,
            problems: e
                .problems
                .into_iter()
                .map(|p| ProblemOut {
                    path: p.path,
                    message: p.message,
                })
                .collect(),
            warnings: vec![],
        },
    }
}

/// `file://` images that do not exist (yet), relative to the manifest's folder as
/// deploy reads them.
fn missing_images(m: &Manifest, file: &Path) -> Vec<String> {
    let folder = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    m.components
        .iter()
        .filter_map(|c| {
            let Image::File(image) = &c.image else {
                return None;
            };
            let raw = image.strip_prefix("file://").unwrap_or(image);
            let path = folder.join(raw);
            (!path.is_file()).then(|| {
                format!(
                    "component '{}': image {image} not found (at {}); deploy needs it built",
                    c.name,
                    path.display()
                )
            })
        })
        .collect()
}
