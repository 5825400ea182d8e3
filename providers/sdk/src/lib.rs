//! The SDK of lattice capability providers: separate processes a host starts for a
//! manifest capability whose image is `file://PATH` to an executable.
//!
//! A provider reads its `init` from stdin ([`Provider::from_stdin`]), registers the
//! functions it serves ([`Provider::serve`]) and runs until the host says `shutdown`
//! or its stdin closes ([`Provider::run`]). The SDK does the rest, as a host serves
//! a linked component, over the same transport (`lattice-rpc`): it subscribes
//! `lattice.<L>.rpch.*.<app>.<provider>.>` (calls from components, on subjects
//! naming the calling host), `lattice.<L>.rpchl.*.<key>.<value>.<app>.<provider>.>`
//! for each locality label of its host (calls sent to instances near the caller)
//! and `lattice.<L>.rpcp.<app>.*.<provider>.>` (calls from the app's other
//! providers) in queue group `rpc`, checks each call's header against its subject
//! and against the provider's current links and the function's signature, fetches
//! the arguments (in chunks when they passed the server's `max_payload`) and
//! decodes them within a bound, runs the handler under the caller's timeout,
//! encodes the results and replies (offering them in chunks when large, or with a
//! `lattice-error` kind); it answers health checks, and keeps the links up to date
//! from the `links` messages on stdin.
//!
//! ```no_run
//! use lattice_provider::{Call, Provider, WitType, WitValue};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), lattice_provider::ProviderError> {
//!     lattice_provider::init_tracing();
//!     let mut provider = Provider::from_stdin().await?;
//!     provider.serve(
//!         "example:greeter/greet",
//!         "hello",
//!         vec![WitType::String],
//!         vec![WitType::String],
//!         |call: Call| async move {
//!             let Some(WitValue::String(name)) = call.args.first() else {
//!                 return Err("expected a name".to_owned());
//!             };
//!             Ok(vec![WitValue::String(format!("hello, {name}"))])
//!         },
//!     );
//!     provider.run().await
//! }
//! ```
//!
//! The wire protocol is `docs/protocol.md`, "Capability providers".

mod call;
mod error;
mod input;
mod links;
mod logging;
mod outgoing;
mod serve;

pub use call::Call;
pub use error::ProviderError;
pub use lattice_protocol::manifest::Config;
pub use lattice_protocol::provider::{ProviderInit, ProviderLink};
pub use lattice_protocol::secrets::SecretValue;
pub use lattice_protocol::wire::CallErrorKind;
pub use lattice_protocol::wire::{CallHeader, CallTarget, WitType, WitValue};
pub use lattice_rpc::CallError;
pub use logging::{init_tracing, redact_url};
pub use outgoing::ComponentCaller;

use call::{Function, Functions};
use links::{Aliases, LinkSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncRead;

/// The links of a provider as they change ([`Provider::watch_links`]).
#[derive(Debug)]
pub struct LinkWatch(tokio::sync::watch::Receiver<LinkSet>);

impl LinkWatch {
    /// The links now, marking them seen.
    pub fn current(&mut self) -> Vec<ProviderLink> {
        self.0
            .borrow_and_update()
            .iter()
            .map(|l| (**l).clone())
            .collect()
    }

    /// Wait until the links change; `false` once the provider is gone.
    pub async fn changed(&mut self) -> bool {
        self.0.changed().await.is_ok()
    }
}

/// Calls served at once by default; one more is answered `overloaded`.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 256;

/// The largest arguments or results of one call by default, as a host's
/// `--max-call-mb` default.
pub const DEFAULT_MAX_CALL_BYTES: usize = 64 << 20;

/// How long the provider waits for NATS when it starts.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A provider: who it is (its `init`), its NATS connection, the functions it serves
/// and its current links.
pub struct Provider {
    init: ProviderInit,
    nats: async_nats::Client,
    control: input::Lines,
    links: tokio::sync::watch::Sender<LinkSet>,
    functions: Functions,
    aliases: Aliases,
    max_in_flight: usize,
    max_call_bytes: usize,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("app", &self.init.app)
            .field("name", &self.init.name)
            .field("functions", &self.functions.len())
            .finish_non_exhaustive()
    }
}

impl Provider {
    /// Read the `init` line the host writes first on stdin, then connect to NATS.
    /// Later lines (`links`, `shutdown`) are read by [`Provider::run`].
    pub async fn from_stdin() -> Result<Self, ProviderError> {
        let mut control = input::stdin()?;
        let init = input::read_init(&mut control).await?;
        Self::start(init, control).await
    }

    /// A provider told `init` directly, reading its later control lines (`links`,
    /// `shutdown`; end of input means the host is gone) from `control`: for tests
    /// and embedding.
    pub async fn new(
        init: ProviderInit,
        control: impl AsyncRead + Send + Unpin + 'static,
    ) -> Result<Self, ProviderError> {
        Self::start(init, input::reader(control)).await
    }

    async fn start(init: ProviderInit, control: input::Lines) -> Result<Self, ProviderError> {
        // Its own NATS user, when the host minted one (never the host's), and the
        // TLS files its host connects with.
        let settings = lattice_bus::ConnectSettings {
            creds: init.nats_credentials.as_ref().map(|c| c.0.clone()),
            inbox_prefix: init.inbox_prefix.clone(),
            tls: init.nats_tls.clone().unwrap_or_default(),
            timeout: CONNECT_TIMEOUT,
            ..lattice_bus::ConnectSettings::new(
                init.nats_url.as_str(),
                format!("provider {}/{}", init.app, init.name),
            )
        };
        let nats = lattice_bus::connect(&settings).await.map_err(|e| {
            let reason = match e {
                // The URL is said once, redacted, by `Connect`.
                lattice_bus::ConnectError::Failed { reason, hint, .. } => format!("{reason}{hint}"),
                lattice_bus::ConnectError::TimedOut { after, .. } => {
                    format!("no answer within {after:?}")
                }
                other => other.to_string(),
            };
            ProviderError::Connect {
                url: redact_url(&init.nats_url),
                reason,
            }
        })?;
        let (links, _) = tokio::sync::watch::channel(links::link_set(init.links.clone()));
        Ok(Self {
            init,
            nats,
            control,
            links,
            functions: Functions::default(),
            aliases: Aliases::default(),
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            max_call_bytes: DEFAULT_MAX_CALL_BYTES,
        })
    }

    /// What the host said at start: lattice, app, name, host, config, first links.
    pub fn init(&self) -> &ProviderInit {
        &self.init
    }

    /// The provider's own `config` from the manifest.
    pub fn config(&self) -> &Config {
        &self.init.config
    }

    /// The secrets the manifest gives the provider (`properties.secrets`), by the
    /// name it asks for. Never log them.
    pub fn secrets(&self) -> &std::collections::BTreeMap<String, SecretValue> {
        &self.init.secrets
    }

    /// The secret `name` as text, when given and UTF-8.
    pub fn secret_text(&self, name: &str) -> Option<String> {
        match self.init.secrets.get(name)? {
            SecretValue::String(s) => Some(s.clone()),
            SecretValue::Bytes(_) => None,
        }
    }

    /// The links touching the provider now (the last `links` message, or `init`'s).
    pub fn links(&self) -> Vec<ProviderLink> {
        self.links.borrow().iter().map(|l| (**l).clone()).collect()
    }

    /// The links touching the provider, now and as they change: for providers that
    /// act on links themselves (e.g. subscribing for each component they deliver
    /// to).
    pub fn watch_links(&self) -> LinkWatch {
        LinkWatch(self.links.subscribe())
    }

    /// Calls to components of the provider's app through its links to them.
    pub fn component_caller(&self) -> ComponentCaller {
        ComponentCaller::new(&self.init, self.nats.clone(), self.max_call_bytes)
    }

    /// The provider's NATS connection.
    pub fn nats(&self) -> &async_nats::Client {
        &self.nats
    }

    /// Serve `function` of `interface` (`namespace:package/interface`; a version
    /// suffix `@x.y.z` is ignored, subjects carry none) with these parameter and
    /// result types. The types give the signature fingerprint callers must match
    /// and decode the arguments; `handler` gets them in [`Call::args`] and returns
    /// one value per result type, or an error replied to the caller as `internal`
    /// with that message. A WIT-level error (an `err(...)` case) is a normal result
    /// value.
    ///
    /// # Panics
    /// When `interface` is not `namespace:package/interface`, when a type holds a
    /// resource (handles never cross processes), or when the function is already
    /// served: these are mistakes in the provider's code, found at its first start.
    pub fn serve<F, Fut>(
        &mut self,
        interface: &str,
        function: &str,
        params: Vec<WitType>,
        results: Vec<WitType>,
        handler: F,
    ) -> &mut Self
    where
        F: Fn(Call) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<WitValue>, String>> + Send + 'static,
    {
        let key = links::interface_key(interface).unwrap_or_else(|| {
            panic!(
                "serve: '{interface}' is not an interface name like 'namespace:package/interface'"
            )
        });
        if let Some((iface, name)) = params
            .iter()
            .chain(&results)
            .find_map(WitType::find_resource)
        {
            panic!(
                "serve: {key}.{function} passes resource {iface}.{name}; providers serve resource-free interfaces only"
            );
        }
        let handler: call::Handler = Arc::new(move |call| Box::pin(handler(call)));
        if !self.functions.insert(
            key.clone(),
            function,
            Function::new(params, results, handler),
        ) {
            panic!("serve: {key}.{function} is served twice");
        }
        self
    }

    /// Let a link that names interface `I` of package `linked` (`namespace:package`)
    /// allow calls to interface `I` of package `served`. For interfaces offered in a
    /// resource-free form: components link `wasi:keyvalue`, the host calls
    /// `wrpc:keyvalue`, so a keyvalue provider says
    /// `provider.link_alias("wasi:keyvalue", "wrpc:keyvalue")`.
    ///
    /// # Panics
    /// When either is not `namespace:package`.
    pub fn link_alias(&mut self, linked: &str, served: &str) -> &mut Self {
        self.aliases
            .add(linked, served)
            .unwrap_or_else(|e| panic!("link_alias: {e}"));
        self
    }

    /// How many calls run at once (default [`DEFAULT_MAX_IN_FLIGHT`]); a call over
    /// it is answered `overloaded` at once.
    pub fn max_in_flight(&mut self, calls: usize) -> &mut Self {
        self.max_in_flight = calls.max(1);
        self
    }

    /// The largest arguments or results of one call (default
    /// [`DEFAULT_MAX_CALL_BYTES`]); larger ones are answered `too-large`. Bodies
    /// over the NATS server's `max_payload` travel in chunks either way.
    pub fn max_call_bytes(&mut self, bytes: usize) -> &mut Self {
        self.max_call_bytes = bytes.max(1);
        self
    }

    /// Serve calls and health checks until the host says `shutdown` or stdin
    /// closes; then stop taking calls, let those in flight finish (up to 5 s) and
    /// return `Ok`. Fails when NATS cannot be subscribed or closes for good.
    pub async fn run(self) -> Result<(), ProviderError> {
        serve::run(self).await
    }
}
