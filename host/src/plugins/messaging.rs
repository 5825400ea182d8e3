//! `builtin://messaging-nats`: `wasmcloud:messaging@0.2.0` on the lattice's own NATS.
//!
//! - `consumer` (a component's link to the builtin): `publish` and `request` on the
//!   subject as given.
//! - `handler` (a link from the builtin to a component, with `subscriptions` in its
//!   source config, comma-separated, wildcards allowed): every host running the
//!   component subscribes those subjects in one queue group per app and component,
//!   so each message is handled once, by a fresh instance on one of them.
//!
//! Isolation: an app's subscriptions only ever invoke that app's components, and a
//! component can only publish through a link of its own app. Subjects themselves
//! are the lattice NATS's, shared (use the `messaging-nats` provider to reach
//! another NATS).

use crate::capability::{AppGuard, AppStart, Capability, HostServices};
use crate::component::{invoke, ComponentRuntime};
use crate::ctx::Ctx;
use crate::env::Settings;
use crate::telemetry::trace::TraceContext;
use bindings::wasmcloud::messaging::{consumer, types::BrokerMessage};
use futures::future::BoxFuture;
use futures::StreamExt;
use lattice_protocol::manifest::{Builtin, Image, Manifest};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{HasSelf, Linker, Val};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "lattice:host/messaging-imports",
        imports: { default: async | trappable },
    });
}

/// The capability: the lattice's NATS connection.
pub struct Messaging {
    nats: Option<async_nats::Client>,
}

impl Messaging {
    pub fn new(host: &HostServices) -> Self {
        Self {
            nats: host.nats.clone(),
        }
    }
}

/// A component's `wasmcloud:messaging` links to the builtin, by name.
struct ConsumerLinks {
    names: BTreeSet<String>,
    nats: Option<async_nats::Client>,
}

impl Capability for Messaging {
    fn name(&self) -> &'static str {
        "messaging-nats"
    }

    fn add_to_linker(&self, linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
        consumer::add_to_linker::<Ctx, HasSelf<Ctx>>(linker, |c| c)
    }

    fn configure(
        &self,
        manifest: &Manifest,
        component: &str,
        settings: &mut Settings,
    ) -> Result<(), String> {
        let names: BTreeSet<String> = manifest
            .component(component)
            .into_iter()
            .flat_map(|c| &c.links)
            .filter(|l| {
                manifest
                    .component(&l.target)
                    .is_some_and(|t| t.image == Image::Builtin(Builtin::MessagingNats))
            })
            .map(|l| l.name.clone())
            .collect();
        if !names.is_empty() {
            settings.insert(ConsumerLinks {
                names,
                nats: self.nats.clone(),
            });
        }
        Ok(())
    }

    /// Subscribe, for every link from the builtin to a component placed here, the
    /// subjects in its `subscriptions`.
    fn start<'a>(&'a self, app: &'a AppStart<'a>) -> BoxFuture<'a, Result<Option<AppGuard>, String>> {
        Box::pin(async move {
            let mut out = Vec::new();
            for (source, link) in app.manifest.links() {
                let Some(rt) = app.placed.get(&link.target) else {
                    continue;
                };
                if source.image != Image::Builtin(Builtin::MessagingNats) {
                    continue;
                }
                let subjects: Vec<String> = link
                    .source_config
                    .get("subscriptions")
                    .map(|s| {
                        s.split(',')
                            .map(|s| s.trim().to_owned())
                            .filter(|s| !s.is_empty())
                            .collect()
                    })
                    .unwrap_or_default();
                if subjects.is_empty() {
                    continue;
                }
                let Some(nats) = &self.nats else {
                    return Err("this host has no NATS connection for builtin://messaging-nats".into());
                };
                out.push(deliver(nats, rt.clone(), &subjects).await?);
            }
            Ok((!out.is_empty()).then(|| Box::new(out) as AppGuard))
        })
    }
}

impl Ctx {
    /// The lattice NATS, if this component's consumer link goes to the builtin.
    fn messaging_nats(&self) -> Result<async_nats::Client, String> {
        let name = self.link_name("wasmcloud", "messaging", "consumer");
        let links = self.env.settings.get::<ConsumerLinks>();
        if !links.is_some_and(|l| l.names.contains(name)) {
            return Err(format!(
                "component '{}' of app '{}' has no wasmcloud:messaging link named '{name}': add a link trait to builtin://messaging-nats or a messaging provider",
                self.env.component, self.env.app
            ));
        }
        links
            .and_then(|l| l.nats.clone())
            .ok_or_else(|| "this host has no NATS connection for builtin://messaging-nats".into())
    }
}

impl consumer::Host for Ctx {
    async fn request(
        &mut self,
        subject: String,
        body: Vec<u8>,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<BrokerMessage, String>> {
        let nats = match self.messaging_nats() {
            Ok(n) => n,
            Err(e) => return Ok(Err(e)),
        };
        let timeout = Duration::from_millis(u64::from(timeout_ms.max(1)));
        let reply = tokio::time::timeout(timeout, nats.request(subject.clone(), body.into())).await;
        Ok(match reply {
            Ok(Ok(m)) => Ok(BrokerMessage {
                subject: m.subject.to_string(),
                body: m.payload.to_vec(),
                reply_to: m.reply.map(|r| r.to_string()),
            }),
            Ok(Err(e)) => Err(format!("request on '{subject}' failed: {e}")),
            Err(_) => Err(format!("no reply on '{subject}' within {timeout:?}")),
        })
    }

    async fn publish(&mut self, msg: BrokerMessage) -> wasmtime::Result<Result<(), String>> {
        let nats = match self.messaging_nats() {
            Ok(n) => n,
            Err(e) => return Ok(Err(e)),
        };
        let sent = match msg.reply_to {
            Some(reply) => {
                nats.publish_with_reply(msg.subject.clone(), reply, msg.body.into())
                    .await
            }
            None => nats.publish(msg.subject.clone(), msg.body.into()).await,
        };
        Ok(sent.map_err(|e| format!("publish on '{}' failed: {e}", msg.subject)))
    }
}

impl bindings::wasmcloud::messaging::types::Host for Ctx {}

/// Messages one component's subscriptions hand to instances at once.
const MAX_IN_HAND: usize = 256;

/// One component's subscriptions; dropping it unsubscribes.
pub struct Delivery {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Delivery {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Subscribe `subjects` for `rt` (queue group per app and component) and hand each
/// message to its `wasmcloud:messaging/handler.handle-message` in a fresh instance.
async fn deliver(
    nats: &async_nats::Client,
    rt: Arc<ComponentRuntime>,
    subjects: &[String],
) -> Result<Delivery, String> {
    let (app, component) = (rt.env.app.clone(), rt.env.component.clone());
    let export = rt
        .exports
        .get("wasmcloud:messaging/handler", "handle-message")
        .map_err(|_| {
            format!(
                "component '{component}' of app '{app}' is linked from builtin://messaging-nats but does not export wasmcloud:messaging/handler"
            )
        })?
        .clone();
    let queue = format!("{app}.{component}");
    let mut streams = Vec::new();
    for subject in subjects {
        let sub = nats
            .queue_subscribe(subject.clone(), queue.clone())
            .await
            .map_err(|e| format!("cannot subscribe to '{subject}': {e}"))?;
        streams.push(sub);
    }
    nats.flush().await.map_err(|e| e.to_string())?;
    let task = tokio::spawn(async move {
        let mut all = futures::stream::select_all(streams);
        // A bounded number of messages in hand: past it, reading waits, and NATS
        // applies its slow-consumer limit to the subscription.
        let room = Arc::new(tokio::sync::Semaphore::new(MAX_IN_HAND));
        while let Some(msg) = all.next().await {
            let Ok(permit) = room.clone().acquire_owned().await else {
                break;
            };
            let (rt, export) = (rt.clone(), export.clone());
            tokio::spawn(async move {
                let _permit = permit;
                let value = Val::Record(vec![
                    ("subject".into(), Val::String(msg.subject.to_string())),
                    (
                        "body".into(),
                        Val::List(msg.payload.iter().map(|b| Val::U8(*b)).collect()),
                    ),
                    (
                        "reply-to".into(),
                        Val::Option(msg.reply.map(|r| Box::new(Val::String(r.to_string())))),
                    ),
                ]);
                let result =
                    invoke(&rt, &export, &[value], TraceContext::new()).await;
                let failed = match &result {
                    Err(f) => Some(f.to_string()),
                    Ok(v) => match v.first() {
                        Some(Val::Result(Err(e))) => Some(format!("{e:?}")),
                        _ => None,
                    },
                };
                if let Some(why) = failed {
                    tracing::warn!(app = %rt.env.app, component = %rt.env.component, subject = %msg.subject, "message not handled: {why}");
                }
            });
        }
    });
    Ok(Delivery { task })
}
