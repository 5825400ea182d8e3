//! `builtin://http-client`: `wasi:http/outgoing-handler`, allowed only to the hosts
//! listed in the config of the component's link to the builtin (`allowed_hosts`,
//! comma separated: `example.com`, `api.example.com:8443`, `127.0.0.1:8080`,
//! `10.0.0.0/8`, or `*`). A component with no such link may not make outgoing
//! requests at all. Loopback, link-local, private, unspecified and multicast
//! addresses are reachable only through an entry naming the IP or its range, even
//! by a name that resolves to them ([`allow`]). The interface itself is
//! wasmtime-wasi-http's (linked by `plugins::wasi`); each invocation's
//! [`policy::OutgoingPolicy`] decides, and [`send`] connects to the checked address.

pub mod allow;
pub mod policy;
pub mod send;

use crate::capability::{links_of, Capability};
use crate::env::Settings;
use allow::AllowList;
use lattice_protocol::manifest::{Builtin, Image, Manifest};
use policy::AllowedHosts;
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
        for (link, image) in links_of(manifest, component) {
            if image == Some(&Image::Builtin(Builtin::HttpClient)) {
                let hosts = match link.target_config.get("allowed_hosts") {
                    Some(value) => AllowList::parse(value).map_err(|e| {
                        format!("the http-client link of component '{component}': {e}")
                    })?,
                    // As wasmCloud: a link with no list reaches anywhere public
                    // (its own dog-fetcher example links http-client so); the
                    // address checks still keep the host's own networks out.
                    None => AllowList::parse("*").map_err(|e| {
                        format!("the http-client link of component '{component}': {e}")
                    })?,
                };
                settings.insert(AllowedHosts(Arc::new(hosts)));
            }
        }
        Ok(())
    }
}
