//! The outgoing-request policy of one invocation: wasmtime-wasi-http's hooks,
//! checking each request against the component's allow-list.

use bytes::Bytes;
use http_body_util::BodyExt;
use std::future::Future;
use std::sync::Arc;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// A component's allow-list: its `builtin://http-client` link's `allowed_hosts`.
pub struct AllowedHosts(pub Arc<Vec<String>>);

/// The outgoing-request policy of one invocation.
pub struct OutgoingPolicy {
    allowed: Option<Arc<Vec<String>>>,
}

impl OutgoingPolicy {
    /// `allowed`: the link's allow-list, or `None` when the component has no
    /// http-client link.
    pub fn new(allowed: Option<Arc<Vec<String>>>) -> Self {
        Self { allowed }
    }

    /// Whether a request to `host` (with optional `port`) may go out.
    pub fn allows(&self, host: &str, port: Option<u16>) -> bool {
        let Some(list) = &self.allowed else {
            return false;
        };
        list.iter().any(|entry| {
            entry == "*"
                || entry.eq_ignore_ascii_case(host)
                || port.is_some_and(|p| entry.eq_ignore_ascii_case(&format!("{host}:{p}")))
        })
    }
}

/// Parse the `allowed_hosts` config value.
pub fn parse_allowed_hosts(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

type Sent = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), Error>> + Send>,
                ),
                Error,
            >,
        > + Send,
>;

impl WasiHttpHooks for OutgoingPolicy {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Sent {
        let host = request.uri().host().unwrap_or_default().to_string();
        let port = request.uri().port_u16();
        if !self.allows(&host, port) {
            tracing::warn!(%host, "outgoing HTTP request denied: host not in the allow-list");
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        drop(fut);
        Box::new(async move {
            let (res, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            let res =
                res.map(|b| BodyExt::boxed_unsync(b.map_frame(|f: hyper::body::Frame<Bytes>| f)));
            Ok((res, Box::new(io) as Box<dyn Future<Output = _> + Send>))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_list() {
        let none = OutgoingPolicy::new(None);
        assert!(!none.allows("example.com", None));
        let list = OutgoingPolicy::new(Some(Arc::new(parse_allowed_hosts(
            "example.com, 127.0.0.1:8080",
        ))));
        assert!(list.allows("example.com", Some(443)));
        assert!(list.allows("EXAMPLE.com", None));
        assert!(list.allows("127.0.0.1", Some(8080)));
        assert!(!list.allows("127.0.0.1", Some(9090)));
        assert!(!list.allows("evil.com", None));
        let all = OutgoingPolicy::new(Some(Arc::new(vec!["*".into()])));
        assert!(all.allows("anything", None));
    }
}
