//! A workload: the part of one app this host runs: its Wasm components, its
//! service, its providers, and what each built-in capability started for it.

pub use crate::component::ComponentRuntime;

use crate::capability::AppGuard;
use crate::loopback::Loopback;
use crate::provider::Provider;
use crate::service::Service;
use lattice_protocol::manifest::Manifest;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The part of one app running on this host.
pub struct Workload {
    pub version: String,
    pub manifest: Manifest,
    pub components: BTreeMap<String, Arc<ComponentRuntime>>,
    /// What `127.0.0.1` means to this workload's guests.
    pub loopback: Arc<Loopback>,
    /// The app's service, running beside the components.
    pub service: Option<Arc<Service>>,
    /// What the built-in capabilities started for it (subscriptions and the like),
    /// stopped when dropped.
    pub guards: Vec<AppGuard>,
    /// The app's providers placed here: instances and the process.
    pub providers: BTreeMap<String, (u32, Arc<Provider>)>,
}
