//! Calls from a provider to a component of its app (message delivery, HTTP
//! forwarding), made like any linked call, by the same transport
//! (`lattice_rpc::Caller`: chunked bodies, retries while nobody subscribes), but
//! on a subject naming the provider (`wire::provider_call_subject`, the only call
//! subjects its NATS user may publish to): the component's host checks that the
//! header agrees with the subject and that a link from this provider allows the
//! call.

use lattice_protocol::creds::provider_inbox_prefix;
use lattice_protocol::provider::{ProviderInit, ProviderLink};
use lattice_protocol::wire::{
    self, BodySender, CallErrorKind, CallHeader, CallTarget, WitType, WitValue,
};
use lattice_rpc::chunks::Limit;
use lattice_rpc::{CallError, Caller, Outgoing};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a call keeps trying while no instance of the component subscribes
/// (a host reconnecting, the component being placed), as a host's
/// `--call-responder-wait` default; never past the call's timeout.
const RESPONDER_WAIT: Duration = Duration::from_secs(2);

/// Calls components on behalf of one provider ([`crate::Provider::component_caller`]).
#[derive(Clone)]
pub struct ComponentCaller {
    caller: Arc<Caller>,
    lattice: String,
    app: String,
    name: String,
    host: String,
}

impl std::fmt::Debug for ComponentCaller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentCaller")
            .field("app", &self.app)
            .field("provider", &self.name)
            .finish_non_exhaustive()
    }
}

impl ComponentCaller {
    pub(crate) fn new(
        init: &ProviderInit,
        nats: async_nats::Client,
        max_call_bytes: usize,
    ) -> Self {
        let limit = Limit {
            bytes: max_call_bytes,
            owner: "the provider",
            setting: "Provider::max_call_bytes",
        };
        let inbox = provider_inbox_prefix(&init.lattice, &init.app, &init.name);
        Self {
            caller: Arc::new(Caller::new(
                nats,
                &init.lattice,
                inbox,
                limit,
                RESPONDER_WAIT,
            )),
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
        let not_an_interface = || {
            CallError::new(
                CallErrorKind::BadArguments,
                format!("'{interface}' is not ns:pkg/iface"),
            )
        };
        let (namespace, rest) = interface.split_once(':').ok_or_else(not_an_interface)?;
        let (package, iface) = rest.split_once('/').ok_or_else(not_an_interface)?;
        let target = CallTarget {
            app: self.app.clone(),
            component: link.component.clone(),
            namespace: namespace.to_owned(),
            package: package.to_owned(),
            interface: iface.split('@').next().unwrap_or(iface).to_owned(),
            function: function.to_owned(),
        };
        let payload = wire::encode_args(params, args)
            .map_err(|e| CallError::new(CallErrorKind::BadArguments, e.to_string()))?;
        let header = CallHeader {
            host: self.host.clone(),
            app: self.app.clone(),
            component: self.name.clone(),
            link: link.name.clone(),
            signature: wire::signature_fingerprint(params, results),
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            trace: None,
        };
        // The subjects near a caller name its host, which a provider may not
        // speak for: only the lattice-wide subject in its own name.
        let encoded = self
            .caller
            .call(Outgoing {
                target: &target,
                nearby: Vec::new(),
                anywhere: wire::provider_call_subject(&self.lattice, &self.name, &target).into(),
                header: header.encode(),
                payload,
                deadline: Instant::now() + timeout,
                reply_from: BodySender::AnyHost,
            })
            .await?;
        let bound = wire::decoded_limit(self.caller.limit().bytes);
        wire::decode_results_within(results, &encoded, bound).map_err(|e| {
            CallError::undecodable(
                CallErrorKind::Internal,
                format!("the results of {}", target.function_name()),
                &e,
            )
        })
    }
}
