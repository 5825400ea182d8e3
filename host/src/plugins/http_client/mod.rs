//! `builtin://http-client`: `wasi:http/outgoing-handler`, allowed only to the hosts
//! listed in the config of the component's link to the builtin (`allowed_hosts`,
//! comma separated: `example.com`, `127.0.0.1:8080`, or `*`). A component with no
//! such link may not make outgoing requests at all. The interface itself is
//! wasmtime-wasi-http's (linked by `plugins::wasi`); each invocation's
//! [`policy::OutgoingPolicy`] decides.

pub mod policy;

use crate::capability::Capability;
use crate::env::Settings;
use lattice_protocol::manifest::{Builtin, Image, Manifest};
use policy::{parse_allowed_hosts, AllowedHosts};
use std::sync::Arc;

/// The capability.
pub struct HttpClient;

impl Capability for HttpClient {
    fn name(&self) -> &'static str {
        "http-client"
    }

    fn configure(
        &self,
        manifest: &Manifest,
        component: &str,
        settings: &mut Settings,
    ) -> Result<(), String> {
        let links = manifest.component(component).into_iter().flat_map(|c| &c.links);
        for link in links {
            let target = manifest.component(&link.target).map(|t| &t.image);
            if target == Some(&Image::Builtin(Builtin::HttpClient)) {
                let hosts = link
                    .target_config
                    .get("allowed_hosts")
                    .map(|v| parse_allowed_hosts(v))
                    .unwrap_or_default();
                settings.insert(AllowedHosts(Arc::new(hosts)));
            }
        }
        Ok(())
    }
}
