//! `lattice nats-auth`: the NATS operator, account and users of a lattice, each
//! role allowed only what it needs (`lattice_protocol::creds::roles`), and the
//! credentials `lattice up` keeps for its own nats-server.

use crate::keys::write_new;
use anyhow::Context;
use clap::Subcommand;
use lattice_protocol::creds::{AuthSeeds, LatticeAuth, Role};
use std::path::{Path, PathBuf};

/// The seed files of a lattice's auth, in the folder `init` writes.
const SEED_FILES: [&str; 4] = ["operator.nk", "account.nk", "system.nk", "provider.nk"];
/// The lattice's name, in the same folder.
const LATTICE_FILE: &str = "lattice";
/// The nats-server config snippet.
pub const SERVER_CONFIG: &str = "nats-auth.conf";
/// Where `lattice up` keeps its NATS auth, under its state directory.
pub const DEV_AUTH_DIR: &str = "nats-auth";
/// The CLI's credentials `lattice up` writes in its state directory.
pub const DEV_CLI_CREDS: &str = "cli.creds";

#[derive(Debug, Subcommand)]
pub enum NatsAuthCommand {
    /// Make a NATS operator and an account for the lattice (`--lattice`), and
    /// write to DIR: the seeds (operator.nk, account.nk, system.nk, and
    /// provider.nk, the account's scoped signing key that can mint provider
    /// users only), the nats-server config snippet nats-auth.conf (include it in
    /// the server's config), and controller.creds, cli.creds and messaging.creds.
    /// Every file is readable by its owner only; none is overwritten. Hosts get
    /// theirs from `lattice nats-auth host`.
    Init {
        /// The folder to write to (created if missing; refused if it already
        /// holds any of these files).
        #[arg(long)]
        out: PathBuf,
    },
    /// Write the `.creds` of one host, bound to its id: it may receive only its
    /// own commands, serve and make calls, publish events and use apps' buckets,
    /// never another host's commands nor the controller's state bucket.
    Host {
        /// The folder `nats-auth init` wrote (its account.nk signs the user).
        #[arg(long)]
        dir: PathBuf,
        /// The host's id: its public key (`N...`, `lattice keys public HOST.nk`).
        #[arg(long)]
        key: String,
        /// Where to write the credentials (refused if the file exists).
        #[arg(long)]
        out: PathBuf,
    },
    /// Write the `.creds` an edge leaf node connects to the core with (the
    /// `credentials` of its `leafnodes.remotes` entry, deploy/nats/leaf.conf): a
    /// user of the lattice's account that may carry every subject of it; each
    /// client of the leaf node is still held to its own user's permissions there.
    Leaf {
        /// The folder `nats-auth init` wrote (its account.nk signs the user).
        #[arg(long)]
        dir: PathBuf,
        /// Where to write the credentials (refused if the file exists).
        #[arg(long)]
        out: PathBuf,
    },
    /// Write DIR/nats-auth.conf again from the seeds `init` kept there (replacing
    /// the old one), e.g. after an upgrade changed a role's permission template;
    /// reload the nats-servers afterwards. Users already minted stay valid.
    Config {
        /// The folder `nats-auth init` wrote.
        #[arg(long)]
        dir: PathBuf,
    },
}

pub fn run(cmd: NatsAuthCommand, lattice: &str) -> anyhow::Result<()> {
    match cmd {
        NatsAuthCommand::Init { out } => {
            let auth = LatticeAuth::generate(lattice);
            write_auth(&out, &auth)?;
            for (file, role) in [
                ("controller.creds", Role::Controller),
                ("cli.creds", Role::Cli),
                ("messaging.creds", Role::Messaging),
            ] {
                write_new(&out.join(file), &creds(&auth, role)?)?;
            }
            outln!(
                "lattice '{lattice}': NATS operator and account written to {}",
                out.display()
            );
            outln!("account: {}", auth.account());
            outln!(
                "provider signing key (scoped): {}",
                auth.provider_key().public_key()
            );
            outln!("server config: {}", out.join(SERVER_CONFIG).display());
            outln!("users: controller.creds, cli.creds, messaging.creds");
            outln!(
                "next: lattice nats-auth host --dir {} --key <host id> --out host.creds",
                out.display()
            );
            Ok(())
        }
        NatsAuthCommand::Config { dir } => {
            let auth = read_auth(&dir)?;
            let config = write_server_config(&dir, &auth)?;
            outln!(
                "lattice '{}': server config written to {}",
                auth.lattice(),
                config.display()
            );
            Ok(())
        }
        NatsAuthCommand::Leaf { dir, out } => {
            let auth = read_auth(&dir)?;
            write_new(&out, &creds(&auth, Role::Leaf)?)?;
            outln!(
                "leaf node of lattice '{}': credentials written to {}",
                auth.lattice(),
                out.display()
            );
            outln!("account: {}", auth.account());
            Ok(())
        }
        NatsAuthCommand::Host { dir, key, out } => {
            let host = nkeys::KeyPair::from_public_key(&key)
                .ok()
                .filter(|k| k.key_pair_type() == nkeys::KeyPairType::Server)
                .with_context(|| {
                    format!("--key '{key}' is not a host id (a public key starting with N)")
                })?;
            let auth = read_auth(&dir)?;
            write_new(&out, &creds(&auth, Role::Host(&host.public_key()))?)?;
            outln!(
                "host {} of lattice '{}': credentials written to {}",
                host.public_key(),
                auth.lattice(),
                out.display()
            );
            Ok(())
        }
    }
}

fn creds(auth: &LatticeAuth, role: Role<'_>) -> anyhow::Result<String> {
    auth.role_creds(role)
        .map_err(|e| anyhow::anyhow!("minting the {role:?} user: {e}"))
}

/// Write `auth`'s seeds, its lattice name and the server config to `dir`.
fn write_auth(dir: &Path, auth: &LatticeAuth) -> anyhow::Result<()> {
    let seeds = auth.seeds().map_err(anyhow::Error::msg)?;
    let [operator, account, system, provider] = SEED_FILES;
    write_new(&dir.join(operator), &seeds.operator)?;
    write_new(&dir.join(account), &seeds.account)?;
    write_new(&dir.join(system), &seeds.system)?;
    write_new(&dir.join(provider), &seeds.provider)?;
    write_new(&dir.join(LATTICE_FILE), auth.lattice())?;
    let config = auth.server_config().map_err(anyhow::Error::msg)?;
    write_new(&dir.join(SERVER_CONFIG), config.trim_end())
}

/// Replace `dir`'s server config with one made from `auth` now (written beside
/// it, readable by its owner only, then renamed over it); its path.
fn write_server_config(dir: &Path, auth: &LatticeAuth) -> anyhow::Result<PathBuf> {
    let config = dir.join(SERVER_CONFIG);
    let fresh = dir.join(format!("{SERVER_CONFIG}.new"));
    let _ = std::fs::remove_file(&fresh);
    write_new(
        &fresh,
        auth.server_config().map_err(anyhow::Error::msg)?.trim_end(),
    )?;
    std::fs::rename(&fresh, &config).with_context(|| format!("replacing {}", config.display()))?;
    Ok(config)
}

/// The auth `init` wrote to `dir`.
fn read_auth(dir: &Path) -> anyhow::Result<LatticeAuth> {
    let read = |name: &str| crate::keys::read_seed(&dir.join(name));
    let lattice = read(LATTICE_FILE).with_context(|| {
        format!(
            "{} is not a folder `lattice nats-auth init` wrote",
            dir.display()
        )
    })?;
    let [operator, account, system, provider] = SEED_FILES;
    let seeds = AuthSeeds {
        operator: read(operator)?,
        account: read(account)?,
        system: read(system)?,
        provider: read(provider)?,
    };
    LatticeAuth::from_seeds(&lattice, &seeds).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))
}

/// What `lattice up` runs its nats-server with: operator mode, keys kept in
/// `<state>/nats-auth/`, the CLI's credentials in `<state>/cli.creds`.
pub struct DevAuth {
    /// The nats-server config snippet (operator, accounts).
    pub server_config: PathBuf,
    /// Credentials of `lattice up`'s own connection (host and controller in one
    /// process), allowed everything in the lattice's account.
    pub creds: String,
    /// The account's scoped provider key (`provider.nk`) the dev host mints its
    /// providers' users with.
    pub provider_signing_key: PathBuf,
}

/// The dev lattice's auth in `state_dir`, made on first use; the server config is
/// written again from the kept seeds at every start, `cli.creds` when missing.
pub fn dev_auth(state_dir: &Path, lattice: &str) -> anyhow::Result<DevAuth> {
    let dir = state_dir.join(DEV_AUTH_DIR);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .with_context(|| format!("making {} private", dir.display()))?;
    let auth = if dir.join(LATTICE_FILE).exists() {
        read_auth(&dir)?
    } else {
        let auth = LatticeAuth::generate(lattice);
        write_auth(&dir, &auth)?;
        auth
    };
    if auth.lattice() != lattice {
        anyhow::bail!(
            "the dev NATS in {} was made for lattice '{}', not '{lattice}': use another --state-dir",
            state_dir.display(),
            auth.lattice()
        );
    }
    // Written again at every start from the kept seeds, so the account's
    // permission templates follow this version's role sets.
    let config = write_server_config(&dir, &auth)?;
    let cli = state_dir.join(DEV_CLI_CREDS);
    if !cli.exists() {
        write_new(&cli, &creds(&auth, Role::Cli)?)?;
    }
    let everything = lattice_protocol::creds::Permissions {
        publish: vec![">".into()],
        subscribe: vec![">".into()],
        ..Default::default()
    };
    let creds = auth
        .user_creds("lattice up", &everything)
        .map_err(anyhow::Error::msg)?;
    Ok(DevAuth {
        server_config: config,
        creds,
        provider_signing_key: dir.join(SEED_FILES[3]),
    })
}

/// The CLI's credentials a `lattice up` with the default state directory wrote,
/// if there are any: what the CLI connects with to the default URL when given no
/// `--nats-creds`.
pub fn dev_cli_creds() -> Option<PathBuf> {
    let state = crate::run::default_state_dir().ok()?;
    Some(state.join(DEV_CLI_CREDS)).filter(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn init_writes_owner_only_files_and_hosts_get_creds_bound_to_their_id() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("auth");
        run(NatsAuthCommand::Init { out: out.clone() }, "prod").unwrap();
        for name in SEED_FILES.iter().chain(&[
            LATTICE_FILE,
            SERVER_CONFIG,
            "controller.creds",
            "cli.creds",
            "messaging.creds",
        ]) {
            let mode = std::fs::metadata(out.join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
        assert!(
            run(NatsAuthCommand::Init { out: out.clone() }, "prod").is_err(),
            "init overwrote a lattice's keys"
        );

        let host = nkeys::KeyPair::new_server().public_key();
        let file = dir.path().join("host.creds");
        run(
            NatsAuthCommand::Host {
                dir: out.clone(),
                key: host.clone(),
                out: file.clone(),
            },
            "ignored",
        )
        .unwrap();
        let creds = std::fs::read_to_string(&file).unwrap();
        let claims =
            lattice_protocol::creds::claims(lattice_protocol::creds::creds_jwt(&creds).unwrap())
                .unwrap();
        assert_eq!(
            claims["nats"]["sub"]["allow"][0],
            format!("lattice.prod.ctl.host.{host}")
        );
        let not_a_host = run(
            NatsAuthCommand::Host {
                dir: out,
                key: nkeys::KeyPair::new_account().public_key(),
                out: dir.path().join("x.creds"),
            },
            "prod",
        );
        assert!(not_a_host
            .unwrap_err()
            .to_string()
            .contains("not a host id"));
    }

    #[test]
    fn leaf_creds_are_a_user_of_the_lattice_account_for_every_subject() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("auth");
        run(NatsAuthCommand::Init { out: out.clone() }, "prod").unwrap();
        let file = dir.path().join("leaf.creds");
        let leaf = || NatsAuthCommand::Leaf {
            dir: out.clone(),
            out: file.clone(),
        };
        run(leaf(), "ignored").unwrap();
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let creds = std::fs::read_to_string(&file).unwrap();
        let jwt = lattice_protocol::creds::creds_jwt(&creds).unwrap();
        let controller = std::fs::read_to_string(out.join("controller.creds")).unwrap();
        assert_eq!(
            lattice_protocol::creds::account_of(jwt),
            lattice_protocol::creds::account_of(
                lattice_protocol::creds::creds_jwt(&controller).unwrap()
            )
        );
        let claims = lattice_protocol::creds::claims(jwt).unwrap();
        for side in ["pub", "sub"] {
            assert_eq!(
                claims["nats"][side]["allow"],
                serde_json::json!([">"]),
                "{claims}"
            );
        }
        assert!(run(leaf(), "ignored").is_err(), "leaf overwrote its creds");
    }

    #[test]
    fn the_dev_auth_is_kept_across_runs() {
        let dir = tempfile::tempdir().unwrap();
        let first = dev_auth(dir.path(), "default").unwrap();
        let account = |creds: &str| {
            lattice_protocol::creds::account_of(lattice_protocol::creds::creds_jwt(creds).unwrap())
        };
        let second = dev_auth(dir.path(), "default").unwrap();
        assert_eq!(account(&first.creds), account(&second.creds));
        let cli = std::fs::read_to_string(dir.path().join(DEV_CLI_CREDS)).unwrap();
        assert_eq!(account(&cli), account(&first.creds));
        assert!(dev_auth(dir.path(), "other").is_err());
    }
}
