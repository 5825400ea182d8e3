//! `lattice new NAME --template T`: a component project from a template shipped in
//! the binary (`cli/templates/`): Rust sources, the manifest (`wadm.yaml`, its
//! images in `build/` where `lattice build` puts them) and a `Cargo.lock` pinning
//! the versions lattice's own components are tested with.

use anyhow::{bail, Context};
use clap::Args;
use std::path::{Path, PathBuf};

/// One template: its name, what it is, and its files (path, text with
/// `{{name}}`, `{{crate}}` and `{{port}}` placeholders).
struct Template {
    name: &'static str,
    about: &'static str,
    answer: &'static str,
    files: &'static [(&'static str, &'static str)],
}

macro_rules! file {
    ($template:literal, $path:literal) => {
        (
            $path,
            include_str!(concat!("../templates/", $template, "/", $path)),
        )
    };
    ($template:literal, $path:literal as $to:literal) => {
        (
            $to,
            include_str!(concat!("../templates/", $template, "/", $path)),
        )
    };
}

const TEMPLATES: &[Template] = &[
    Template {
        name: "http",
        about: "an HTTP component in Rust (wasi:http, built with wasmcloud-component)",
        answer: "GET / answers `Hello from NAME! You asked for /`",
        files: &[
            file!("http", "Cargo.toml.tmpl" as "Cargo.toml"),
            file!("http", "src/lib.rs"),
            file!("http", "wadm.yaml"),
        ],
    },
    Template {
        name: "kv-counter",
        about: "an HTTP counter on wasi:keyvalue, linked to the built-in JetStream key-value store",
        answer: "GET /KEY answers `KEY -> COUNT`, one more each time",
        files: &[
            file!("kv-counter", "Cargo.toml.tmpl" as "Cargo.toml"),
            file!("kv-counter", "src/lib.rs"),
            file!("kv-counter", "wadm.yaml"),
        ],
    },
    Template {
        name: "custom-wit",
        about: "a component exporting your own WIT interface, and an HTTP component calling it through a link",
        answer: "GET /?name=N answers `Hello, N, from the greeter!`",
        files: &[
            file!("custom-wit", "Cargo.toml.tmpl" as "Cargo.toml"),
            file!("custom-wit", "wit/greeter.wit"),
            file!("custom-wit", "greeter/Cargo.toml.tmpl" as "greeter/Cargo.toml"),
            file!("custom-wit", "greeter/src/lib.rs"),
            file!("custom-wit", "api/Cargo.toml.tmpl" as "api/Cargo.toml"),
            file!("custom-wit", "api/src/lib.rs"),
            file!("custom-wit", "wadm.yaml"),
        ],
    },
    Template {
        name: "service",
        about: "a long-running service on the app's private loopback, and an HTTP component using it",
        answer: "GET / answers `visit number N (counted by the service)`",
        files: &[
            file!("service", "Cargo.toml.tmpl" as "Cargo.toml"),
            file!("service", "service/Cargo.toml.tmpl" as "service/Cargo.toml"),
            file!("service", "service/src/main.rs"),
            file!("service", "api/Cargo.toml.tmpl" as "api/Cargo.toml"),
            file!("service", "api/src/lib.rs"),
            file!("service", "wadm.yaml"),
        ],
    },
];

/// The versions lattice's own guest components are built and tested with; cargo
/// keeps those a project uses and drops the rest.
const LOCK: &str = include_str!("../../components/Cargo.lock");

const GITIGNORE: &str = "/target\n/build\n";

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The project's name: a folder of that name is made, and it names the app.
    /// Lowercase letters, digits and '-'.
    #[arg(required_unless_present = "list")]
    name: Option<String>,
    /// The template (see --list).
    #[arg(long, short, default_value = "http")]
    template: String,
    /// The port the app's HTTP server listens on (127.0.0.1).
    #[arg(long, default_value_t = 8000)]
    port: u16,
    /// Where to make the project folder (default: here).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// List the templates and exit.
    #[arg(long)]
    list: bool,
}

pub fn run(args: NewArgs) -> anyhow::Result<()> {
    if args.list {
        let width = TEMPLATES.iter().map(|t| t.name.len()).max().unwrap_or(0);
        for t in TEMPLATES {
            outln!("{:width$}  {}", t.name, t.about);
        }
        return Ok(());
    }
    let Some(name) = args.name else {
        bail!("give the project a name: `lattice new NAME --template T`");
    };
    // It names the app, the crate and (custom-wit) the WIT package: each
    // '-'-separated word starts with a letter.
    let words_ok = name
        .split('-')
        .all(|w| w.chars().next().is_some_and(|c| c.is_ascii_lowercase()));
    if !lattice_protocol::manifest::is_dns_label(&name) || !words_ok {
        bail!(
            "'{name}' is not a valid project name: it names the app, the crate and its WIT \
             package, so use lowercase letters, digits and '-', each word starting with a \
             letter (e.g. my-app)"
        );
    }
    let Some(template) = TEMPLATES.iter().find(|t| t.name == args.template) else {
        let known: Vec<&str> = TEMPLATES.iter().map(|t| t.name).collect();
        bail!(
            "no template named '{}': choose one of {} (`lattice new --list` says what each is)",
            args.template,
            known.join(", ")
        );
    };
    let root = args.dir.join(&name);
    if root.exists() {
        bail!(
            "{} exists already: choose another name or folder",
            root.display()
        );
    }
    let crate_name = name.replace('-', "_");
    let fill = |text: &str| {
        text.replace("{{name}}", &name)
            .replace("{{crate}}", &crate_name)
            .replace("{{port}}", &args.port.to_string())
    };
    for (path, text) in template.files {
        write(&root.join(path), &fill(text))?;
    }
    write(&root.join("Cargo.lock"), LOCK)?;
    write(&root.join(".gitignore"), GITIGNORE)?;
    outln!(
        "made {} from template '{}': {}",
        root.display(),
        template.name,
        template.about
    );
    outln!(
        "next: cd {} && lattice dev   (or: lattice build && lattice app deploy wadm.yaml)",
        root.display()
    );
    outln!(
        "  (with a lattice running: `lattice up`); then {} on http://127.0.0.1:{}",
        template.answer,
        args.port
    );
    Ok(())
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_names_its_files_and_fills_every_placeholder() {
        for t in TEMPLATES {
            assert!(t.files.iter().any(|(p, _)| *p == "wadm.yaml"), "{}", t.name);
            assert!(
                t.files.iter().any(|(p, _)| *p == "Cargo.toml"),
                "{}",
                t.name
            );
            for (path, text) in t.files {
                let filled = text
                    .replace("{{name}}", "my-app")
                    .replace("{{crate}}", "my_app")
                    .replace("{{port}}", "8000");
                assert!(
                    !filled.contains("{{"),
                    "{}/{path} keeps a placeholder",
                    t.name
                );
            }
        }
    }

    #[test]
    fn every_template_manifest_parses() {
        for t in TEMPLATES {
            let (_, text) = t.files.iter().find(|(p, _)| *p == "wadm.yaml").unwrap();
            let text = text
                .replace("{{name}}", "my-app")
                .replace("{{crate}}", "my_app")
                .replace("{{port}}", "8000");
            if let Err(e) = lattice_protocol::manifest::parse(&text) {
                panic!("{}: {e}", t.name);
            }
        }
    }
}
