//! The contract of a built-in capability: how the host drives each one through its
//! life, so that adding one is a folder under `plugins/` plus one line in
//! [`crate::plugins::builtins`].
//!
//! The phases, in order:
//! 1. **Host**: the capability is built once per host from [`HostServices`] and
//!    [`Capability::add_to_linker`] fills the host's one `Linker`.
//! 2. **Component**: when a workload is applied, [`Capability::configure`] reads the
//!    capability's settings for each component from the manifest (its links) into
//!    the component's [`Settings`](crate::env::Settings); host functions find them
//!    there through `Ctx::env`.
//! 3. **App**: [`Capability::start`] starts what the app needs on this host (a
//!    listener, subscriptions) and hands back a guard the workload keeps; dropping
//!    the guard stops it. [`Capability::forget_app`] drops the app's state when the
//!    app leaves the host.
//! 4. **Invocation**: per-invocation state lives in the `Store`'s resource table
//!    (resources the guest holds) and in `Ctx`.

use crate::component::ComponentRuntime;
use crate::ctx::Ctx;
use crate::env::Settings;
use crate::links::Router;
use futures::future::BoxFuture;
use lattice_protocol::manifest::Manifest;
use lattice_protocol::subjects::Subjects;
use std::any::Any;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use wasmtime::component::Linker;

/// The links of component `component` of `manifest`, each with its target's image
/// (`None` when the target is not in the manifest): what a capability's
/// `configure` reads to find the links that are its own.
pub fn links_of<'a>(
    manifest: &'a Manifest,
    component: &str,
) -> impl Iterator<
    Item = (
        &'a lattice_protocol::manifest::Link,
        Option<&'a lattice_protocol::manifest::Image>,
    ),
> + 'a {
    manifest
        .component(component)
        .into_iter()
        .flat_map(|c| &c.links)
        .map(move |link| (link, manifest.component(&link.target).map(|t| &t.image)))
}

/// What a capability started for one app on this host; dropping it stops that.
pub type AppGuard = Box<dyn Any + Send + Sync>;

/// What the host offers capabilities when it builds them.
#[derive(Clone)]
pub struct HostServices {
    pub host_id: String,
    pub subjects: Subjects,
    /// The lattice's NATS (`None`: a host without NATS, as in some tests).
    pub nats: Option<async_nats::Client>,
    /// The connection `builtin://messaging-nats` publishes and subscribes guests'
    /// messages on (`None`: `nats`, the host's own).
    pub messaging_nats: Option<async_nats::Client>,
    /// Default bounds of the HTTP server's listeners.
    pub http_server: crate::config::HttpServerLimits,
    /// Routes calls to capability providers and linked components.
    pub router: Arc<Router>,
    /// Where `builtin://blobstore-fs` keeps its files (`None`: not on this host).
    pub blobstore_dir: Option<PathBuf>,
    /// JetStream replicas of the app buckets this host creates.
    pub bucket_replicas: usize,
}

/// The app being started on this host: its manifest and its Wasm components
/// placed here.
pub struct AppStart<'a> {
    pub manifest: &'a Manifest,
    pub placed: &'a BTreeMap<String, Arc<ComponentRuntime>>,
}

/// A built-in capability. See the module docs for the phases.
pub trait Capability: Send + Sync {
    /// A short name for logs.
    fn name(&self) -> &'static str;

    /// Add its interfaces to the host's linker. Called once per host.
    fn add_to_linker(&self, _linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
        Ok(())
    }

    /// Read its settings for component `component` of `manifest` into `settings`.
    /// An error names the setting that makes no sense; the apply is refused.
    fn configure(
        &self,
        _manifest: &Manifest,
        _component: &str,
        _settings: &mut Settings,
    ) -> Result<(), String> {
        Ok(())
    }

    /// Start what the app needs from this capability on this host. Called after
    /// every component is prepared, in registry order; when one fails, the guards
    /// of the others are dropped and the apply changes nothing.
    fn start<'a>(
        &'a self,
        _app: &'a AppStart<'a>,
    ) -> BoxFuture<'a, Result<Option<AppGuard>, String>> {
        Box::pin(async { Ok(None) })
    }

    /// The app left this host: drop what the capability keeps for it.
    fn forget_app(&self, _app: &str) {}

    /// The host is draining: stop taking new work from outside the lattice (e.g.
    /// close listeners); what runs finishes.
    fn drain(&self) {}
}
