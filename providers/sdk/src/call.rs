//! One call: the functions a provider serves, and the checks a call passes before
//! its handler runs, in the order a host checks a linked call (`host/src/links/
//! serve.rs`): subject and caller (`wire::read_call`, shared with hosts), link,
//! function, signature, then the arguments. Pure: the NATS side is `serve.rs`.

use crate::links::{self, Aliases};
use futures::future::BoxFuture;
use lattice_protocol::provider::ProviderLink;
use lattice_protocol::wire::{
    self, BodySender, CallErrorKind, CallHeader, CallTarget, SubjectCaller, WitType, WitValue,
};
use lattice_rpc::CallError;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// A call a handler serves.
#[derive(Debug, Clone)]
pub struct Call {
    /// The arguments, decoded with the function's parameter types.
    pub args: Vec<WitValue>,
    /// Who calls: host, app, component, link name, signature and timeout.
    pub caller: CallHeader,
    /// The link the call came through; its `config` is the link's target config
    /// (e.g. `url`).
    pub link: Arc<ProviderLink>,
    /// The function called.
    pub target: CallTarget,
    /// The caller's W3C `traceparent`, when it sent one.
    pub traceparent: Option<String>,
}

impl Call {
    /// How long the caller waits; the handler is stopped after it.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.caller.timeout_ms)
    }
}

pub(crate) type Handler =
    Arc<dyn Fn(Call) -> BoxFuture<'static, Result<Vec<WitValue>, String>> + Send + Sync>;

/// A served function: its types, their fingerprint and its handler.
pub(crate) struct Function {
    pub params: Vec<WitType>,
    pub results: Vec<WitType>,
    pub fingerprint: String,
    pub handler: Handler,
}

impl Function {
    pub(crate) fn new(params: Vec<WitType>, results: Vec<WitType>, handler: Handler) -> Self {
        Self {
            fingerprint: wire::signature_fingerprint(&params, &results),
            params,
            results,
            handler,
        }
    }
}

/// Served functions by interface (`ns:pkg/iface`) and name.
#[derive(Default)]
pub(crate) struct Functions(HashMap<String, HashMap<String, Arc<Function>>>);

impl Functions {
    /// `false` when the function was already there.
    pub(crate) fn insert(&mut self, interface: String, name: &str, f: Function) -> bool {
        self.0
            .entry(interface)
            .or_default()
            .insert(name.to_owned(), Arc::new(f))
            .is_none()
    }

    pub(crate) fn len(&self) -> usize {
        self.0.values().map(HashMap::len).sum()
    }

    fn get(&self, interface: &str, name: &str) -> Option<&Arc<Function>> {
        self.0.get(interface)?.get(name)
    }
}

/// A call that passed every check but its arguments: they are fetched (when
/// offered in chunks) and decoded after the call holds a slot.
pub(crate) struct Admitted {
    pub caller: CallHeader,
    pub link: Arc<ProviderLink>,
    pub target: CallTarget,
    pub function: Arc<Function>,
    /// `ns:pkg/iface.fn`, for messages.
    pub name: String,
    /// Whether another provider of the app makes the call (on its own subject),
    /// not a component on a host.
    pub from_provider: bool,
}

impl Admitted {
    /// Where large arguments are offered from: the calling provider's inbox, or
    /// that of the host the header names.
    pub(crate) fn sender(&self) -> BodySender<'_> {
        if self.from_provider {
            BodySender::Provider {
                app: &self.caller.app,
                name: &self.caller.component,
            }
        } else {
            BodySender::Host(&self.caller.host)
        }
    }

    /// The call for the handler, its arguments decoded from `payload` into at most
    /// `max_decoded` bytes of values.
    pub(crate) fn call(
        self,
        payload: &[u8],
        max_decoded: usize,
        traceparent: Option<&str>,
    ) -> Result<Call, CallError> {
        let args =
            wire::decode_args_within(&self.function.params, payload, max_decoded).map_err(|e| {
                CallError::undecodable(
                    CallErrorKind::BadArguments,
                    format!("the arguments of {}", self.name),
                    &e,
                )
            })?;
        Ok(Call {
            args,
            caller: self.caller,
            link: self.link,
            target: self.target,
            traceparent: traceparent.map(str::to_owned),
        })
    }
}

/// What the provider serves and to whom: the checks of every call.
pub(crate) struct Routes {
    pub app: String,
    pub provider: String,
    pub functions: Functions,
    pub aliases: Aliases,
}

impl Routes {
    /// Check a call that came on `subject` with `header` (its `lattice-call`), in
    /// the order a host checks one: subject and header agree
    /// (`wire::read_call`), a link allows it, the function is served, the
    /// signatures match.
    pub(crate) fn admit(
        &self,
        links: &[Arc<ProviderLink>],
        subject: &str,
        header: Option<&str>,
    ) -> Result<Admitted, CallError> {
        let provider = &self.provider;
        let refused = |why: String| CallError::new(CallErrorKind::Refused, why);
        // On another provider's subject the header must name that provider, on a
        // host's subject that host. (A provider does not know which of its app's
        // components are providers, so a header naming one on a host's subject is
        // left to the links below.)
        let (route, caller) = wire::read_call(
            subject,
            header,
            &self.app,
            provider,
            || format!("provider '{provider}'"),
            |_| false,
        )
        .map_err(refused)?;
        let from_provider = matches!(route.caller, SubjectCaller::Provider(_));
        let target = route.target;
        let interface = format!(
            "{}:{}/{}",
            target.namespace, target.package, target.interface
        );
        let name = format!("{interface}.{}", target.function);
        let link = (caller.app == self.app)
            .then(|| links::find(links, &self.aliases, &caller, &target))
            .flatten()
            .ok_or_else(|| {
                refused(format!(
                    "no link of app '{}' lets component '{}' of app '{}' call {name} on provider '{provider}' (link name '{}')",
                    self.app, caller.component, caller.app, caller.link
                ))
            })?
            .clone();
        let function = self
            .functions
            .get(&interface, &target.function)
            .ok_or_else(|| refused(format!("provider '{provider}' does not serve {name}")))?
            .clone();
        if caller.signature != function.fingerprint {
            return Err(CallError::new(
                CallErrorKind::Signature,
                format!(
                    "the caller and provider '{provider}' disagree on {name}: the provider has {} (fingerprint {}), the caller was built against fingerprint {}; deploy matching versions of the interface",
                    wire::signature(&function.params, &function.results),
                    function.fingerprint,
                    caller.signature
                ),
            ));
        }
        Ok(Admitted {
            caller,
            link,
            target,
            function,
            name,
            from_provider,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lattice_protocol::wire::rpc::CallTarget;

    fn routes() -> Routes {
        let mut functions = Functions::default();
        let handler: Handler = Arc::new(|_| Box::pin(async { Ok(vec![]) }));
        functions.insert(
            "wrpc:keyvalue/store".into(),
            "get",
            Function::new(
                vec![WitType::String, WitType::String],
                vec![WitType::option(WitType::list(WitType::U8))],
                handler,
            ),
        );
        Routes {
            app: "shop".into(),
            provider: "kv".into(),
            functions,
            aliases: Aliases::default(),
        }
    }

    fn links() -> Vec<Arc<ProviderLink>> {
        vec![Arc::new(ProviderLink {
            component: "cart".into(),
            to_provider: true,
            name: "default".into(),
            namespace: "wrpc".into(),
            package: "keyvalue".into(),
            interfaces: vec!["store".into(), "batch".into()],
            config: [("url".to_owned(), "redis://x".to_owned())].into(),
            secrets: Default::default(),
        })]
    }

    fn subject(app: &str, function: &str) -> String {
        let target = CallTarget {
            app: app.into(),
            component: "kv".into(),
            namespace: "wrpc".into(),
            package: "keyvalue".into(),
            interface: if function == "get-many" {
                "batch"
            } else {
                "store"
            }
            .into(),
            function: function.into(),
        };
        wire::host_call_subject("default", "NH", &target)
    }

    fn header(app: &str, component: &str, signature: &str) -> String {
        header_from("NH", app, component, signature)
    }

    fn header_from(host: &str, app: &str, component: &str, signature: &str) -> String {
        CallHeader {
            host: host.into(),
            app: app.into(),
            component: component.into(),
            link: "default".into(),
            signature: signature.into(),
            timeout_ms: 1500,
            trace: None,
        }
        .encode()
    }

    fn args() -> Vec<u8> {
        let s = |v: &str| WitValue::String(v.into());
        wire::encode_args(&[WitType::String, WitType::String], &[s("b"), s("k")]).unwrap()
    }

    #[test]
    fn a_linked_call_is_admitted_with_its_link_and_arguments() {
        let routes = routes();
        let fp = routes
            .functions
            .get("wrpc:keyvalue/store", "get")
            .unwrap()
            .fingerprint
            .clone();
        let (subject, caller, payload) =
            (subject("shop", "get"), header("shop", "cart", &fp), args());
        let ok = routes
            .admit(&links(), &subject, Some(&caller))
            .map_err(|f| f.message)
            .unwrap();
        assert_eq!(ok.name, "wrpc:keyvalue/store.get");
        assert_eq!(ok.sender(), BodySender::Host("NH"));
        let call = ok.call(&payload, 1 << 20, Some("00-x")).unwrap();
        assert_eq!(call.link.config["url"], "redis://x");
        assert_eq!(
            call.args,
            vec![WitValue::String("b".into()), WitValue::String("k".into())]
        );
        assert_eq!(call.timeout(), Duration::from_millis(1500));
        assert_eq!(call.traceparent.as_deref(), Some("00-x"));
        // The same call sent to instances near the caller's host.
        let target = wire::parse_call_subject(&subject).unwrap().target;
        let near = wire::locality_subject("default", "NH", "zone", "eu-1", &target);
        let ok = routes.admit(&links(), &near, Some(&caller)).unwrap();
        assert_eq!(ok.sender(), BodySender::Host("NH"));
    }

    #[test]
    fn every_check_fails_with_its_kind_and_a_message() {
        use CallErrorKind::*;
        let routes = routes();
        let fp = routes
            .functions
            .get("wrpc:keyvalue/store", "get")
            .unwrap()
            .fingerprint
            .clone();
        let good = header("shop", "cart", &fp);
        struct Case {
            what: &'static str,
            subject: String,
            caller: Option<String>,
            payload: Vec<u8>,
            kind: CallErrorKind,
            message: &'static str,
        }
        let case = |what, subject, caller: Option<&str>, kind, message| Case {
            what,
            subject,
            caller: caller.map(str::to_owned),
            payload: args(),
            kind,
            message,
        };
        // Two strings of 60 KiB each: more than the 100 KiB the decode may hold.
        let long = "x".repeat(60 << 10);
        let huge = wire::encode_args(
            &[WitType::String, WitType::String],
            &[WitValue::String(long.clone()), WitValue::String(long)],
        )
        .unwrap();
        let (mall, stranger) = (header("mall", "cart", &fp), header("shop", "stranger", &fp));
        let wrong_fp = header("shop", "cart", "0123");
        let other_host = header_from("NOTHER", "shop", "cart", &fp);
        let get = subject("shop", "get");
        let cases = [
            case("other app's subject", subject("mall", "get"), Some(&good), Refused,
                "is not a call subject of provider 'kv'"),
            case("no header", get.clone(), None, Refused,
                "the call does not say who makes it: it has no lattice-call header, and no call header line starts its payload"),
            case("bad header", get.clone(), Some("a b"), Refused, "has 2 parts"),
            case("another host's name", get.clone(), Some(&other_host), Refused,
                "came on host 'NH's subject but says it is from host 'NOTHER'"),
            case("other app", get.clone(), Some(&mall), Refused,
                "no link of app 'shop' lets component 'cart' of app 'mall' call wrpc:keyvalue/store.get on provider 'kv' (link name 'default')"),
            case("unlinked", get.clone(), Some(&stranger), Refused,
                "component 'stranger' of app 'shop'"),
            case("not served", subject("shop", "get-many"), Some(&good), Refused,
                "provider 'kv' does not serve wrpc:keyvalue/batch.get-many"),
            case("fingerprint", get.clone(), Some(&wrong_fp), Signature,
                "the provider has func(string, string) -> option<list<u8>>"),
            Case {
                payload: huge,
                ..case("decodes too large", get.clone(), Some(&good), TooLarge,
                    "the arguments of wrpc:keyvalue/store.get did not decode")
            },
            Case {
                payload: vec![0xc1],
                ..case("garbage", get.clone(), Some(&good), BadArguments,
                    "the arguments of wrpc:keyvalue/store.get did not decode")
            },
        ];
        for Case {
            what,
            subject,
            caller,
            payload,
            kind,
            message,
        } in cases
        {
            let admitted = routes.admit(&links(), &subject, caller.as_deref());
            let failure = match admitted.and_then(|a| a.call(&payload, 100 << 10, None)) {
                Ok(_) => panic!("{what}: admitted"),
                Err(f) => f,
            };
            assert_eq!(failure.kind, kind, "{what}: {}", failure.message);
            assert!(
                failure.message.contains(message),
                "{what}: {}",
                failure.message
            );
        }
    }
}
