//! `lattice sign` and `lattice inspect`: the claims an issuer embeds in a
//! component, in wasmCloud's format (`lattice_artifacts::claims`), so hosts
//! started with `--trust-issuer` run it, and so `wash` reads ours and we read
//! `wash claims sign`'s.

use crate::output::Output;
use anyhow::Context;
use clap::Args;
use lattice_artifacts::claims::{self, human_time, Claims, ClaimsError, NewClaims};
use serde::Serialize;
use std::path::{Path, PathBuf};

const SECONDS_PER_DAY: u64 = 86_400;

#[derive(Debug, Args)]
pub struct SignArgs {
    /// The component to sign (a `.wasm` file). Claims it already carries are
    /// replaced.
    file: PathBuf,
    /// The issuer: an account seed file (`SA...`, from `lattice keys new
    /// account`; a wasmCloud account seed works too). Hosts trust its public key
    /// with `--trust-issuer`.
    #[arg(long, value_name = "SEEDFILE")]
    issuer: PathBuf,
    /// The component's own key: a module seed file (`SM...`), to keep its
    /// identity across signings. Default: a new module key each time.
    #[arg(long, value_name = "SEEDFILE")]
    subject: Option<PathBuf>,
    /// A descriptive name in the claims; default: the file's name without
    /// `.wasm`.
    #[arg(long)]
    name: Option<String>,
    /// Where to write the signed component; default: FILE with `_s` before
    /// `.wasm` (as `wash claims sign` names it).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Days until the signature expires, after which hosts refuse the component;
    /// default: never.
    #[arg(long, value_name = "DAYS")]
    expires_in: Option<u64>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The component (a `.wasm` file).
    file: PathBuf,
}

fn now() -> u64 {
    crate::output::now_ms() / 1000
}

pub fn sign(args: SignArgs) -> anyhow::Result<()> {
    let wasm = read(&args.file)?;
    let issuer = key_from_seed_file(&args.issuer, "--issuer")?;
    let subject = match &args.subject {
        Some(path) => key_from_seed_file(path, "--subject")?,
        None => nkeys::KeyPair::new_module(),
    };
    if subject.key_pair_type() != nkeys::KeyPairType::Module {
        anyhow::bail!(
            "--subject must be a module seed (SM...), not a {:?} key",
            subject.key_pair_type()
        );
    }
    let issued_at = now();
    let name = args.name.clone().or_else(|| {
        let stem = args.file.file_stem()?.to_string_lossy();
        Some(stem.into_owned())
    });
    let new = NewClaims {
        subject: subject.public_key(),
        name,
        issued_at,
        expires: args
            .expires_in
            .map(|days| issued_at.saturating_add(days.saturating_mul(SECONDS_PER_DAY))),
        not_before: None,
    };
    let signed = claims::sign(&wasm, &new, &issuer)
        .with_context(|| format!("cannot sign {}", args.file.display()))?;
    let out = args.out.unwrap_or_else(|| signed_path(&args.file));
    std::fs::write(&out, signed).with_context(|| format!("cannot write {}", out.display()))?;
    outln!(
        "{}: signed by issuer {} for subject {}",
        out.display(),
        issuer.public_key(),
        new.subject
    );
    Ok(())
}

/// `dir/name.wasm` -> `dir/name_s.wasm`.
fn signed_path(file: &Path) -> PathBuf {
    let stem = file.file_stem().unwrap_or_default().to_string_lossy();
    let name = match file.extension() {
        Some(ext) => format!("{stem}_s.{}", ext.to_string_lossy()),
        None => format!("{stem}_s"),
    };
    file.with_file_name(name)
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

fn key_from_seed_file(path: &Path, flag: &str) -> anyhow::Result<nkeys::KeyPair> {
    let seed = crate::keys::read_seed(path)?;
    nkeys::KeyPair::from_seed(&seed)
        .map_err(|e| anyhow::anyhow!("{flag} {} holds no nkey seed: {e}", path.display()))
}

/// What `lattice inspect` says about a component.
#[derive(Debug, Serialize)]
struct Inspection {
    file: String,
    /// Whether the component carries claims at all.
    signed: bool,
    /// Signed, the claims bind this code, and they are within their dates: what
    /// a host trusting the issuer runs.
    verified: bool,
    /// Why not, when not.
    problem: Option<String>,
    issuer: Option<String>,
    subject: Option<String>,
    name: Option<String>,
    /// The code hash the claims vouch for.
    hash: Option<String>,
    /// Whether it is the hash of this code.
    hash_ok: Option<bool>,
    issued_at: Option<String>,
    expires: Option<String>,
    not_before: Option<String>,
}

impl Inspection {
    fn of(file: &Path, wasm: &[u8], now: u64) -> Result<Self, ClaimsError> {
        let file = file.display().to_string();
        let Some(claims) = claims::signed_claims(wasm)? else {
            return Ok(Self::unsigned(file));
        };
        let problem = claims::check_code(&claims, wasm)
            .err()
            .or_else(|| claims.check_time(now).err());
        let actual = claims::section::code_hash(wasm)?;
        let Claims {
            issuer,
            subject,
            issued_at,
            expires,
            not_before,
            ..
        } = claims.clone();
        Ok(Self {
            file,
            signed: true,
            verified: problem.is_none(),
            problem: problem.map(|p| p.to_string()),
            name: claims.name().map(str::to_owned),
            hash: claims.hash().map(str::to_owned),
            hash_ok: Some(claims.hash() == Some(actual.as_str())),
            issuer: Some(issuer),
            subject: Some(subject),
            issued_at: Some(human_time(issued_at)),
            expires: expires.map(human_time),
            not_before: not_before.map(human_time),
        })
    }

    fn unsigned(file: String) -> Self {
        Self {
            file,
            signed: false,
            verified: false,
            problem: Some(ClaimsError::Unsigned.to_string()),
            issuer: None,
            subject: None,
            name: None,
            hash: None,
            hash_ok: None,
            issued_at: None,
            expires: None,
            not_before: None,
        }
    }

    fn text(&self) -> String {
        let or = |v: &Option<String>, none: &str| v.clone().unwrap_or_else(|| none.to_owned());
        let mut lines = vec![("file", self.file.clone())];
        if self.signed {
            let hash = match self.hash_ok {
                Some(true) => format!("{} (matches the code)", or(&self.hash, "-")),
                _ => format!(
                    "{} (MISMATCH: not the hash of this code)",
                    or(&self.hash, "none")
                ),
            };
            lines.extend([
                ("issuer", or(&self.issuer, "-")),
                ("subject", or(&self.subject, "-")),
                ("name", or(&self.name, "-")),
                ("hash", hash),
                ("issued", or(&self.issued_at, "-")),
                ("expires", or(&self.expires, "never")),
                ("not before", or(&self.not_before, "-")),
            ]);
        }
        let verdict = match &self.problem {
            None => "yes".to_owned(),
            Some(problem) => format!("no: {problem}"),
        };
        lines.push(("verified", verdict));
        lines.iter().map(|(k, v)| format!("{k:<12}{v}\n")).collect()
    }
}

/// Print what `args.file`'s claims say; an error (exit status 1) unless they
/// verify, so scripts can rely on the status.
pub fn inspect(args: InspectArgs, output: Output) -> anyhow::Result<()> {
    let wasm = read(&args.file)?;
    let inspection = Inspection::of(&args.file, &wasm, now())
        .with_context(|| format!("{}: its claims cannot be read", args.file.display()))?;
    match output {
        Output::Json => crate::output::print_json(&inspection)?,
        Output::Text => crate::output::write(&inspection.text()),
    }
    match &inspection.problem {
        Some(problem) => anyhow::bail!("{} does not verify: {problem}", args.file.display()),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_files_are_named_as_wash_names_them() {
        assert_eq!(
            signed_path(Path::new("build/hello.wasm")),
            Path::new("build/hello_s.wasm")
        );
        assert_eq!(signed_path(Path::new("hello")), Path::new("hello_s"));
    }
}
