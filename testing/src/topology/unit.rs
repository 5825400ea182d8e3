//! The systemd units of `deploy/systemd` as systemd would start them, so the
//! harness runs their command lines and environment exactly, not a copy of them.
//! What the units use of systemd is done here the way systemd does it:
//!
//! - `Environment=NAME=VALUE` and `EnvironmentFile=PATH` (`NAME=VALUE` lines,
//!   `#` comments, optional quotes) make the process's whole environment (plus
//!   `PATH`);
//! - `LoadCredential=NAME:PATH` copies the file into the process's credentials
//!   folder, which `%d` names;
//! - in `ExecStart=`, `$NAME` is the variable's value split at whitespace and
//!   `${NAME}` the value as one word.
//!
//! The harness maps the absolute paths a unit names (`/usr/local/bin/lattice`,
//! `/etc/lattice/...`, `/var/lib/lattice`) to its own files; any other path is
//! an error, so a unit that starts naming a new file fails the harness until the
//! harness gives it one.

use anyhow::{bail, Context};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// systemd's `PATH` for services.
const SYSTEMD_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What systemd would run: the program, its arguments and its whole environment.
#[derive(Debug, PartialEq, Eq)]
pub struct Exec {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
}

impl Exec {
    /// `cmd` (made for [`Exec::program`] by the caller, e.g. inside a network
    /// namespace) with the arguments and nothing but the environment.
    pub fn apply(&self, mut cmd: Command) -> Command {
        cmd.env_clear().envs(&self.env).args(&self.args);
        cmd
    }
}

/// One unit's `[Service]` settings, in order.
#[derive(Debug)]
pub struct Unit {
    name: String,
    settings: Vec<(String, String)>,
}

impl Unit {
    /// `deploy/systemd/NAME`.
    pub fn deployed(name: &str) -> anyhow::Result<Self> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../deploy/systemd")
            .join(name);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        Ok(Self::parse(name, &text))
    }

    fn parse(name: &str, text: &str) -> Self {
        let mut section = "";
        let mut settings = Vec::new();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = s;
                continue;
            }
            if section != "Service" {
                continue;
            }
            if let Some((key, value)) = line.split_once('=') {
                settings.push((key.trim().to_string(), value.trim().to_string()));
            }
        }
        Self {
            name: name.to_string(),
            settings,
        }
    }

    fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> {
        self.settings
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The command systemd would run, with `paths` giving the harness's file for
    /// each absolute path the unit names, and `credentials` the folder the
    /// unit's credentials are copied into (its `%d`).
    pub fn command(
        &self,
        paths: &BTreeMap<&str, PathBuf>,
        credentials: &Path,
    ) -> anyhow::Result<Exec> {
        let unit = &self.name;
        let map = |path: &str| -> anyhow::Result<PathBuf> {
            paths
                .get(path)
                .cloned()
                .with_context(|| format!("{unit} names {path}, which the harness does not provide"))
        };
        std::fs::create_dir_all(credentials)?;
        for spec in self.all("LoadCredential") {
            let (name, path) = spec
                .split_once(':')
                .with_context(|| format!("{unit}: LoadCredential={spec} has no ':'"))?;
            std::fs::copy(map(path)?, credentials.join(name))
                .with_context(|| format!("{unit}: loading credential {name} from {path}"))?;
        }
        let d = credentials.display().to_string();
        let mut env = BTreeMap::from([("PATH".to_string(), SYSTEMD_PATH.to_string())]);
        for (key, value) in &self.settings {
            match key.as_str() {
                "Environment" => {
                    let (k, v) = assignment(&unquote(value))
                        .with_context(|| format!("{unit}: Environment={value}"))?;
                    env.insert(k, v.replace("%d", &d));
                }
                "EnvironmentFile" => {
                    let file = map(value)?;
                    let text = std::fs::read_to_string(&file)
                        .with_context(|| format!("reading {}", file.display()))?;
                    for line in text.lines().map(str::trim) {
                        if line.is_empty() || line.starts_with('#') {
                            continue;
                        }
                        let (k, v) = assignment(line)
                            .with_context(|| format!("{}: {line}", file.display()))?;
                        env.insert(k, unquote(&v));
                    }
                }
                _ => {}
            }
        }
        let exec = self
            .all("ExecStart")
            .last()
            .with_context(|| format!("{unit} has no ExecStart"))?;
        let mut words = Vec::new();
        for word in exec.split_whitespace() {
            let word = word.replace("%d", &d);
            if let Some(name) = word.strip_prefix("${").and_then(|w| w.strip_suffix('}')) {
                words.push(env.get(name).cloned().unwrap_or_default());
            } else if let Some(name) = word.strip_prefix('$') {
                let value = env.get(name).map(String::as_str).unwrap_or_default();
                words.extend(value.split_whitespace().map(str::to_string));
            } else if word.starts_with('/') {
                words.push(map(&word)?.display().to_string());
            } else {
                words.push(word);
            }
        }
        if words.is_empty() {
            bail!("{unit}: ExecStart is empty");
        }
        Ok(Exec {
            program: PathBuf::from(words.remove(0)),
            args: words,
            env,
        })
    }
}

/// `NAME=VALUE`.
fn assignment(text: &str) -> anyhow::Result<(String, String)> {
    let (k, v) = text.split_once('=').context("expected NAME=VALUE")?;
    Ok((k.trim().to_string(), v.to_string()))
}

/// A value without the double or single quotes around it.
fn unquote(value: &str) -> String {
    let v = value.trim();
    for q in ['"', '\''] {
        if let Some(inner) = v.strip_prefix(q).and_then(|v| v.strip_suffix(q)) {
            return inner.to_string();
        }
    }
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_start_gets_systemds_expansions() {
        let unit = Unit::parse(
            "x.service",
            "[Unit]\nExecStart=/bin/false\n[Service]\nEnvironmentFile=/etc/x.env\n\
             # a comment\nLoadCredential=k:/etc/k\nEnvironment=KEY=%d/k\n\
             Environment=\"QUOTED=a b\"\nExecStart=/usr/bin/x run $FLAGS ${ONE} --dir /var/lib/x\n",
        );
        let dir = tempfile::tempdir().unwrap();
        let env_file = dir.path().join("x.env");
        std::fs::write(&env_file, "FLAGS=\"--a 1 --b\"\n# no\nONE=two words\n").unwrap();
        std::fs::write(dir.path().join("k"), "secret").unwrap();
        let paths = BTreeMap::from([
            ("/etc/x.env", env_file),
            ("/etc/k", dir.path().join("k")),
            ("/usr/bin/x", PathBuf::from("/opt/x")),
            ("/var/lib/x", PathBuf::from("/tmp/state")),
        ]);
        let creds = dir.path().join("creds");
        let exec = unit.command(&paths, &creds).unwrap();
        assert_eq!(exec.program, PathBuf::from("/opt/x"));
        let d = creds.display();
        let env = BTreeMap::from([
            ("PATH".to_string(), SYSTEMD_PATH.to_string()),
            ("FLAGS".into(), "--a 1 --b".into()),
            ("KEY".into(), format!("{d}/k")),
            ("ONE".into(), "two words".into()),
            ("QUOTED".into(), "a b".into()),
        ]);
        assert_eq!(exec.env, env);
        assert_eq!(
            exec.args,
            [
                "run".to_string(),
                "--a".into(),
                "1".into(),
                "--b".into(),
                "two words".into(),
                "--dir".into(),
                "/tmp/state".into(),
            ]
        );
        assert_eq!(std::fs::read_to_string(creds.join("k")).unwrap(), "secret");
        let missing = Unit::parse("y", "[Service]\nExecStart=/usr/bin/y --c /etc/unknown\n");
        let err = missing.command(&paths, &creds).unwrap_err().to_string();
        assert!(err.contains("/usr/bin/y"), "{err}");
    }
}
