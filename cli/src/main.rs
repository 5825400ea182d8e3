//! `lattice`: run and operate a lattice of WebAssembly hosts over NATS.

/// `println!` through [`output::write`]: a closed stdout ends the program quietly.
macro_rules! outln {
    () => {
        $crate::output::write("\n")
    };
    ($($arg:tt)*) => {
        $crate::output::write(&format!("{}\n", format_args!($($arg)*)))
    };
}

mod admin;
mod app;
mod artifact;
mod build;
mod call;
mod config;
mod dashboard;
mod dev;
mod dev_tls;
mod get;
mod keys;
mod nats_auth;
mod nats_server;
mod new;
mod output;
mod push;
mod run;
mod secret;
mod sign;
mod validate;

use clap::{CommandFactory, Parser, Subcommand};
use output::Output;

/// mimalloc, not glibc's malloc: a host's worker threads free what other threads
/// allocated (a call's buffers cross from the NATS connection's task to the
/// invocation's and back), and glibc then takes the owning arena's lock, which
/// under load turns into futex calls and context switches. With mimalloc a host
/// serves about 35% more small linked calls per CPU second (docs/benchmarks.md §21).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Run WebAssembly components across many machines as one lattice over NATS.
#[derive(Debug, Parser)]
#[command(name = "lattice", version, propagate_version = true)]
struct Cli {
    /// NATS server to talk to (for `up`: join this one instead of starting one).
    #[arg(long, global = true, env = "LATTICE_NATS_URL")]
    nats_url: Option<String>,
    /// NATS credentials file (`.creds`: a user JWT and its seed) to connect with,
    /// for a NATS with decentralized auth (`lattice nats-auth`). Without it and
    /// without --nats-url, `app`, `artifact`, `config`, `secret`, `call`, `get` and
    /// `dashboard` use the credentials `lattice up` wrote in the default state dir
    /// (~/.local/state/lattice/cli.creds) when that file exists; for `lattice up
    /// --state-dir DIR`, pass `--nats-creds DIR/cli.creds`.
    #[arg(long, global = true, env = "LATTICE_NATS_CREDS")]
    nats_creds: Option<std::path::PathBuf>,
    /// A CA certificate file (PEM) to trust for NATS's TLS certificate, instead
    /// of the system's roots. Given (or with a `tls://` URL), TLS is required. A
    /// host hands it to the providers it starts.
    #[arg(long, global = true, env = "LATTICE_NATS_TLS_CA")]
    nats_tls_ca: Option<std::path::PathBuf>,
    /// A client certificate (PEM) to present to NATS, for a server that verifies
    /// clients (`tls { verify: true }`); needs --nats-tls-key.
    #[arg(long, global = true, env = "LATTICE_NATS_TLS_CERT")]
    nats_tls_cert: Option<std::path::PathBuf>,
    /// The private key (PEM) of --nats-tls-cert.
    #[arg(long, global = true, env = "LATTICE_NATS_TLS_KEY")]
    nats_tls_key: Option<std::path::PathBuf>,
    /// Lattice name: many lattices can share one NATS without seeing each other.
    #[arg(long, global = true, env = "LATTICE", default_value = "default")]
    lattice: String,
    /// Output format of read commands.
    #[arg(long, short = 'o', global = true, value_enum, default_value = "text")]
    output: Output,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a whole dev lattice on this machine (nats-server, a host, the
    /// controller) in the foreground; Ctrl-C stops everything.
    Up(run::UpArgs),
    /// Make a component project from a template shipped in this binary (an HTTP
    /// component, a keyvalue counter, a custom WIT interface with a caller, a
    /// service), with its manifest; `--list` names them.
    New(new::NewArgs),
    /// Build the component project here for wasm32-wasip2 (adding the target when
    /// missing), copy each component to build/, show what it imports and exports,
    /// and refuse imports the lattice cannot satisfy.
    Build(build::BuildArgs),
    /// The inner loop: build the project here, deploy it to the local lattice
    /// (starting `lattice up` if none answers), follow its logs, and build and
    /// deploy again on every change to the sources, with no failed request;
    /// Ctrl-C undeploys.
    Dev(dev::DevArgs),
    /// Run a host that joins the lattice.
    Host(run::HostArgs),
    /// Run a controller for the lattice.
    Controller(run::ControllerArgs),
    /// Deploy and inspect applications.
    #[command(subcommand)]
    App(app::AppCommand),
    /// Serve a live web page of the lattice: hosts with labels and load, apps
    /// with versions and status, where components run, links with call rates,
    /// recent events. Updates itself (Server-Sent Events); no build step, nothing
    /// fetched from elsewhere.
    Dashboard(dashboard::DashboardArgs),
    /// The lattice's own artifact store: components and provider executables by
    /// SHA-256 digest, which hosts fetch over NATS (`app deploy` uploads
    /// `file://` images there).
    #[command(subcommand)]
    Artifact(artifact::ArtifactCommand),
    /// Named config stored in the lattice, referenced from manifests by name
    /// (`config: [{name: NAME}]`); a change reaches running components without a
    /// redeploy.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Secrets stored in the lattice, sealed at rest and in transit, given to
    /// components and providers that a manifest names them for
    /// (`properties.secrets`, wadm's form).
    #[command(subcommand)]
    Secret(secret::SecretCommand),
    /// Invoke an exported function of a running component, arguments and results
    /// in WAVE, e.g. `lattice call shop business example:shop/orders.place-order
    /// '{customer: "ann", items: [{sku: "tea", quantity: 1}]}'`; over the links'
    /// call path, as the CLI's user.
    Call(call::CallArgs),
    /// List hosts and what they run.
    #[command(subcommand)]
    Get(get::GetCommand),
    /// Make and read the keys a lattice runs on (lattice signing key, host keys,
    /// join tokens, accounts that sign components).
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Make a lattice's NATS operator, account and users, each role allowed only
    /// what it needs (host, controller, CLI, built-in messaging, providers).
    #[command(subcommand)]
    NatsAuth(nats_auth::NatsAuthCommand),
    /// Push a Wasm component (or a provider executable, --provider) to an OCI
    /// registry, as `wash push` does; prints its digest.
    Push(push::PushArgs),
    /// Sign a Wasm component as an issuer (an account key): embed claims, in
    /// wasmCloud's format, that bind its code, for hosts started with
    /// --trust-issuer; writes the signed copy.
    Sign(sign::SignArgs),
    /// Show who signed a Wasm component and whether the signature holds: issuer,
    /// subject, name, whether the hash matches the code, dates. Exits 1 unless it
    /// verifies.
    Inspect(sign::InspectArgs),
    /// Print a shell completion script, e.g.
    /// `lattice completions bash > ~/.local/share/bash-completion/completions/lattice`
    /// or `lattice completions zsh > "${fpath[1]}/_lattice"`.
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
}

const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:4222";

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_tracing();
    // Offline: no NATS, and its own exit codes (1 invalid, 2 unreadable).
    if let Command::App(app::AppCommand::Validate(args)) = &cli.command {
        return validate::run(args, cli.output);
    }
    // Offline too: files and cargo only.
    if let Command::New(args) = cli.command {
        return exit(new::run(args));
    }
    if let Command::Build(args) = &cli.command {
        return exit(build::run(args).map(drop));
    }
    if let Command::Completions { shell } = cli.command {
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "lattice", &mut script);
        output::write(&String::from_utf8_lossy(&script));
        return std::process::ExitCode::SUCCESS;
    }
    if !lattice_protocol::subjects::valid_lattice_name(&cli.lattice) {
        eprintln!(
            "error: lattice name '{}' is invalid: use 1-64 characters of letters, digits, '-' and '_'",
            cli.lattice
        );
        return std::process::ExitCode::from(2);
    }
    match dispatch(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn exit(result: anyhow::Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    // The operator's commands on the default URL find `lattice up`'s CLI creds.
    let dev_creds = match (&cli.nats_url, &cli.command) {
        (
            None,
            Command::App(_)
            | Command::Get(_)
            | Command::Artifact(_)
            | Command::Config(_)
            | Command::Secret(_)
            | Command::Call(_)
            | Command::Dashboard(_),
        ) => nats_auth::dev_cli_creds(),
        _ => None,
    };
    let creds = match cli.nats_creds.as_ref().or(dev_creds.as_ref()) {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("cannot read --nats-creds {}: {e}", path.display()))?,
        ),
        None => None,
    };
    let nats = Nats {
        url: cli
            .nats_url
            .clone()
            .unwrap_or_else(|| DEFAULT_NATS_URL.to_string()),
        creds,
        tls: lattice_protocol::nats_tls::NatsTls {
            ca_file: cli.nats_tls_ca.clone(),
            cert_file: cli.nats_tls_cert.clone(),
            key_file: cli.nats_tls_key.clone(),
        },
    };
    match cli.command {
        Command::Up(args) => {
            let join = cli.nats_url.is_some().then_some(nats);
            run::up(args, join, &cli.lattice).await
        }
        Command::Host(args) => run::host(args, &nats, &cli.lattice).await,
        Command::Controller(args) => run::controller(args, &nats, &cli.lattice).await,
        Command::App(cmd) => {
            let client = connect(&nats).await?;
            app::run(cmd, client, &cli.lattice, cli.output).await
        }
        Command::Artifact(cmd) => {
            let client = connect(&nats).await?;
            artifact::run(cmd, client, &cli.lattice, cli.output).await
        }
        Command::Config(cmd) => {
            let client = connect(&nats).await?;
            config::run(cmd, client, &cli.lattice, cli.output).await
        }
        Command::Secret(cmd) => {
            let client = connect(&nats).await?;
            secret::run(cmd, client, &cli.lattice, cli.output).await
        }
        Command::Dev(args) => {
            let explicit = cli.nats_url.is_some().then_some(nats);
            dev::run(args, explicit, &cli.lattice, cli.output).await
        }
        Command::Dashboard(args) => {
            let client = connect(&nats).await?;
            dashboard::run(args, client, &cli.lattice).await
        }
        Command::Call(args) => {
            let client = connect(&nats).await?;
            call::run(args, client, &cli.lattice, cli.output).await
        }
        Command::Keys(cmd) => keys::run(cmd),
        Command::NatsAuth(cmd) => nats_auth::run(cmd, &cli.lattice),
        Command::Push(args) => push::run(args).await,
        Command::Sign(args) => sign::sign(args),
        Command::Inspect(args) => sign::inspect(args, cli.output),
        Command::Get(cmd) => {
            let client = connect(&nats).await?;
            get::run(cmd, client, &cli.lattice, cli.output).await
        }
        // Answered by `main` before anything else.
        Command::Completions { .. } | Command::New(_) | Command::Build(_) => Ok(()),
    }
}

/// Where NATS is and how to authenticate to it.
#[derive(Debug, Clone)]
pub struct Nats {
    pub url: String,
    /// `.creds` text (from `--nats-creds`).
    pub creds: Option<String>,
    /// CA and client certificate files (`--nats-tls-*`).
    pub tls: lattice_protocol::nats_tls::NatsTls,
}

/// Connect to NATS with a deadline and an error that says what to do.
pub async fn connect(nats: &Nats) -> anyhow::Result<async_nats::Client> {
    let settings = lattice_bus::ConnectSettings {
        creds: nats.creds.clone(),
        tls: nats.tls.clone(),
        ..lattice_bus::ConnectSettings::new(nats.url.as_str(), "lattice")
    };
    match lattice_bus::connect(&settings).await {
        Ok(client) => Ok(client),
        Err(lattice_bus::ConnectError::Credentials { reason }) => {
            anyhow::bail!("the --nats-creds file is not NATS credentials: {reason}")
        }
        // Without a TLS hint, most likely nothing listens there.
        Err(e @ lattice_bus::ConnectError::Failed { .. }) if !has_hint(&e) => {
            anyhow::bail!("{e}. Is `lattice up` running? (or pass --nats-url)")
        }
        Err(e) => Err(e.into()),
    }
}

fn has_hint(e: &lattice_bus::ConnectError) -> bool {
    matches!(e, lattice_bus::ConnectError::Failed { hint, .. } if !hint.is_empty())
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("LATTICE_LOG").unwrap_or_else(|_| {
        EnvFilter::new("warn,lattice_host=info,lattice_controller=info,lattice=info,guest=info")
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
