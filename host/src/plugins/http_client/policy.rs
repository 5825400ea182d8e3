//! The outgoing-request policy of one invocation: wasmtime-wasi-http's hooks,
//! checking each request's host name against the component's allow-list, then
//! every address the name resolves to, and connecting only to a checked address
//! ([`super::send`]).

use super::allow::AllowList;
use super::send::{self, Resolved};
use std::future::Future;
use std::sync::Arc;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// A component's allow-list: its `builtin://http-client` link's `allowed_hosts`.
pub struct AllowedHosts(pub Arc<AllowList>);

/// The outgoing-request policy of one invocation.
pub struct OutgoingPolicy {
    allowed: Option<Arc<AllowList>>,
}

impl OutgoingPolicy {
    /// `allowed`: the link's allow-list, or `None` when the component has no
    /// http-client link.
    pub fn new(allowed: Option<Arc<AllowList>>) -> Self {
        Self { allowed }
    }
}

type Sent = Box<dyn Future<Output = Result<send::Sent, Error>> + Send>;

impl WasiHttpHooks for OutgoingPolicy {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Sent {
        drop(fut);
        let allowed = self.allowed.clone();
        Box::new(async move {
            let uri = request.uri();
            let host = uri.host().unwrap_or_default().to_string();
            let https = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
            let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
            let Some(allowed) = allowed.filter(|a| a.allows_name(&host, port)) else {
                tracing::warn!(%host, port, rule = "host not in allowed_hosts", "outgoing HTTP request denied");
                return Err(Error::HttpRequestDenied);
            };
            match send::resolve(&allowed, &host, port).await? {
                Resolved::Allowed(addrs) => send::send(request, options, &host, addrs).await,
                Resolved::Refused(refused) => {
                    tracing::warn!(%host, addr = %refused.addr, rule = %refused.rule, "outgoing HTTP request denied: {refused}");
                    Err(Error::DestinationIpProhibited)
                }
            }
        })
    }
}
