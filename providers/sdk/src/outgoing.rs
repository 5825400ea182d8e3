//! Calls from a provider to a component of its app (message delivery, HTTP
//! forwarding), made like any linked call but on a subject naming the provider
//! (`wire::provider_call_subject`, the only call subjects its NATS user may
//! publish to): the component's host checks that the header agrees with the
//! subject and that a link from this provider allows the call.

use lattice_protocol::provider::{ProviderInit, ProviderLink};
use lattice_protocol::wire::{
    self, rpc::headers, CallErrorKind, CallHeader, CallTarget, WitType, WitValue,
};
use std::time::Duration;

/// Calls components on behalf of one provider ([`crate::Provider::component_caller`]).
#[derive(Debug, Clone)]
pub struct ComponentCaller {
    pub(crate) nats: async_nats::Client,
    pub(crate) lattice: String,
    pub(crate) app: String,
    pub(crate) name: String,
    pub(crate) host: String,
}

/// Why a call to a component failed: the kind (as the lattice names it) and a
/// message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallError {
    pub kind: CallErrorKind,
    pub message: String,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.kind.as_str())
    }
}

impl ComponentCaller {
    pub(crate) fn new(init: &ProviderInit, nats: async_nats::Client) -> Self {
        Self {
            nats,
            lattice: init.lattice.clone(),
            app: init.app.clone(),
            name: init.name.clone(),
            host: init.host_id.clone(),
        }
    }

    /// Call `function` of `interface` (`namespace:package/interface`) exported by
    /// `link.component`, through `link` (a link from this provider), with `args`
    /// of `params` types; the values of `results` types.
    #[allow(clippy::too_many_arguments)]
    pub async fn call(
        &self,
        link: &ProviderLink,
        interface: &str,
        function: &str,
        params: &[WitType],
        results: &[WitType],
        args: &[WitValue],
        timeout: Duration,
    ) -> Result<Vec<WitValue>, CallError> {
        let fail = |kind, message: String| CallError { kind, message };
        let (namespace, rest) = interface.split_once(':').ok_or_else(|| {
            fail(
                CallErrorKind::BadArguments,
                format!("'{interface}' is not ns:pkg/iface"),
            )
        })?;
        let (package, iface) = rest.split_once('/').ok_or_else(|| {
            fail(
                CallErrorKind::BadArguments,
                format!("'{interface}' is not ns:pkg/iface"),
            )
        })?;
        let target = CallTarget {
            app: self.app.clone(),
            component: link.component.clone(),
            namespace: namespace.to_owned(),
            package: package.to_owned(),
            interface: iface.split('@').next().unwrap_or(iface).to_owned(),
            function: function.to_owned(),
        };
        let payload = wire::encode_args(params, args)
            .map_err(|e| fail(CallErrorKind::BadArguments, e.to_string()))?;
        let caller = CallHeader {
            host: self.host.clone(),
            app: self.app.clone(),
            component: self.name.clone(),
            link: link.name.clone(),
            signature: wire::signature_fingerprint(params, results),
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        };
        let mut h = async_nats::HeaderMap::new();
        h.insert(headers::CALL, caller.encode().as_str());
        let request = async_nats::Request::new()
            .payload(payload.into())
            .headers(h)
            .timeout(Some(timeout));
        let reply = self
            .nats
            .send_request(
                wire::provider_call_subject(&self.lattice, &self.name, &target),
                request,
            )
            .await
            .map_err(|e| match e.kind() {
                async_nats::RequestErrorKind::NoResponders => fail(
                    CallErrorKind::Unavailable,
                    format!(
                        "no instance of '{}' (app '{}') runs anywhere in the lattice",
                        link.component, self.app
                    ),
                ),
                async_nats::RequestErrorKind::TimedOut => fail(
                    CallErrorKind::Timeout,
                    format!("'{}' did not answer within {timeout:?}", link.component),
                ),
                _ => fail(
                    CallErrorKind::Unavailable,
                    format!("cannot reach '{}': {e}", link.component),
                ),
            })?;
        if let Some(kind) = reply.headers.as_ref().and_then(|h| h.get(headers::ERROR)) {
            let kind = CallErrorKind::parse(kind.as_str()).unwrap_or(CallErrorKind::Internal);
            return Err(fail(
                kind,
                String::from_utf8_lossy(&reply.payload).into_owned(),
            ));
        }
        wire::decode_results(results, &reply.payload).map_err(|e| {
            fail(
                CallErrorKind::Internal,
                format!("the results did not decode: {e}"),
            )
        })
    }
}
