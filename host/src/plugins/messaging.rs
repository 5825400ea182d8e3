//! `builtin://messaging-nats`: `wasmcloud:messaging@0.2.0` on the lattice's NATS,
//! or on the connection the host was given for guests' messages
//! (`HostConfig::messaging_nats`, e.g. a user in another NATS account).
//!
//! - `consumer` (a component's link to the builtin): `publish` and `request`.
//! - `handler` (a link from the builtin to a component, with `subscriptions` in its
//!   source config, comma-separated, wildcards allowed): every host running the
//!   component subscribes those subjects in one queue group per app and component,
//!   so each message is handled once, by a fresh instance on one of them.
//!
//! Guests never drive the host's connection: every subject a guest names (publish,
//! request, reply-to) and every subscription a manifest asks for is checked with
//! `trust::guest_subject_allowed`, which refuses the lattice's own subjects
//! (`lattice.>`), NATS's (`$JS.>`, `$KV.>`, `$SYS.>`, ...) and inboxes. The one
//! inbox a guest may publish to is the reply subject of a message this host is
//! handing it right now ([`Replies`]). A link's `allowed_prefix` (the consumer
//! link's target config, the handler link's source config) narrows it further.
//! A subscription refused is an apply refused; a publish refused is an error
//! naming the subject and the rule.
//!
//! Isolation: an app's subscriptions only ever invoke that app's components, and a
//! component can only publish through a link of its own app.

use crate::capability::{links_of, AppGuard, AppStart, Capability, HostServices};
use crate::component::{invoke, ComponentRuntime};
use crate::ctx::Ctx;
use crate::env::Settings;
use crate::links::typed::{self, Leaf};
use crate::telemetry::trace::{self, KeyValue, Kind, Span};
use bindings::wasmcloud::messaging::{consumer, types::BrokerMessage};
use futures::future::BoxFuture;
use futures::StreamExt;
use lattice_protocol::manifest::{Builtin, Image, Link, Manifest};
use lattice_protocol::trust::{guest_subject_allowed, SubjectUse};
use lattice_protocol::wire::WitValue;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime::component::{HasSelf, Linker};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "lattice:host/messaging-imports",
        imports: { default: async | trappable },
    });
}

/// The key of a link's config that narrows its subjects to one prefix.
pub const ALLOWED_PREFIX: &str = "allowed_prefix";

/// The capability: the NATS connection guests' messages travel on.
pub struct Messaging {
    nats: Option<async_nats::Client>,
}

impl Messaging {
    pub fn new(host: &HostServices) -> Self {
        Self {
            nats: host.messaging_nats.clone().or_else(|| host.nats.clone()),
        }
    }
}

/// A component's `wasmcloud:messaging` links to the builtin.
struct ConsumerLinks {
    /// Link name -> the prefix its config allows (`None`: any guest subject).
    prefixes: BTreeMap<String, Option<String>>,
    nats: Option<async_nats::Client>,
    /// Reply subjects of the messages being handed to this component now.
    replies: Arc<Replies>,
}

/// The reply subjects of messages this host is handing a component right now: the
/// handler may answer on them, inbox or not (`SubjectUse::Reply`).
#[derive(Default)]
struct Replies(Mutex<HashMap<String, usize>>);

impl Replies {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Vouch for `subject` until the returned value is dropped.
    fn hold(self: &Arc<Self>, subject: String) -> ReplyHold {
        *self.map().entry(subject.clone()).or_default() += 1;
        ReplyHold {
            replies: self.clone(),
            subject,
        }
    }

    fn contains(&self, subject: &str) -> bool {
        self.map().contains_key(subject)
    }
}

struct ReplyHold {
    replies: Arc<Replies>,
    subject: String,
}

impl Drop for ReplyHold {
    fn drop(&mut self) {
        let mut map = self.replies.map();
        if let Some(n) = map.get_mut(&self.subject) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.subject);
            }
        }
    }
}

/// The `allowed_prefix` of a link's config, checked: a literal subject a guest
/// could use.
fn allowed_prefix(config: &BTreeMap<String, String>, what: &str) -> Result<Option<String>, String> {
    let Some(prefix) = config.get(ALLOWED_PREFIX) else {
        return Ok(None);
    };
    let prefix = prefix.trim();
    let literal = prefix.strip_suffix(".>").unwrap_or(prefix);
    guest_subject_allowed(literal, SubjectUse::Publish, Some(prefix))
        .map_err(|e| format!("{what}: {ALLOWED_PREFIX} '{prefix}' cannot be used: {e}"))?;
    Ok(Some(prefix.to_owned()))
}

/// The subjects a link from the builtin to a component subscribes, each one a
/// subject guests may subscribe to, and the link's allowed prefix.
fn subscriptions(app: &str, link: &Link) -> Result<Vec<String>, String> {
    let what = format!(
        "app '{app}': the link from builtin://messaging-nats to '{}'",
        link.target
    );
    let prefix = allowed_prefix(&link.source_config, &what)?;
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
    for subject in &subjects {
        guest_subject_allowed(subject, SubjectUse::Subscribe, prefix.as_deref())
            .map_err(|e| format!("{what} cannot subscribe to '{subject}': {e}"))?;
    }
    Ok(subjects)
}

/// The links from the builtin to `component`.
fn handler_links<'m>(manifest: &'m Manifest, component: &'m str) -> impl Iterator<Item = &'m Link> {
    manifest
        .links()
        .filter(move |(source, link)| {
            link.target == component && source.image == Image::Builtin(Builtin::MessagingNats)
        })
        .map(|(_, link)| link)
}

impl Capability for Messaging {
    fn name(&self) -> &'static str {
        "messaging-nats"
    }

    fn add_to_linker(&self, linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
        consumer::add_to_linker::<Ctx, HasSelf<Ctx>>(linker, |c| c)
    }

    /// Read the component's consumer links, and refuse subscriptions to subjects
    /// guests may not use before anything starts.
    fn configure(
        &self,
        manifest: &Manifest,
        component: &str,
        settings: &mut Settings,
    ) -> Result<(), String> {
        for link in handler_links(manifest, component) {
            subscriptions(&manifest.name, link)?;
        }
        let mut prefixes = BTreeMap::new();
        for (link, image) in links_of(manifest, component) {
            let to_builtin = image == Some(&Image::Builtin(Builtin::MessagingNats));
            if to_builtin {
                let what = format!(
                    "app '{}': the link '{}' from '{component}' to builtin://messaging-nats",
                    manifest.name, link.name
                );
                prefixes.insert(
                    link.name.clone(),
                    allowed_prefix(&link.target_config, &what)?,
                );
            }
        }
        if !prefixes.is_empty() {
            settings.insert(ConsumerLinks {
                prefixes,
                nats: self.nats.clone(),
                replies: Arc::default(),
            });
        }
        Ok(())
    }

    /// Subscribe, for every link from the builtin to a component placed here, the
    /// subjects in its `subscriptions`.
    fn start<'a>(
        &'a self,
        app: &'a AppStart<'a>,
    ) -> BoxFuture<'a, Result<Option<AppGuard>, String>> {
        Box::pin(async move {
            let mut out = Vec::new();
            for (name, rt) in app.placed {
                for link in handler_links(app.manifest, name) {
                    let subjects = subscriptions(&app.manifest.name, link)?;
                    if subjects.is_empty() {
                        continue;
                    }
                    let Some(nats) = &self.nats else {
                        return Err(
                            "this host has no NATS connection for builtin://messaging-nats".into(),
                        );
                    };
                    out.push(deliver(nats, rt.clone(), &subjects).await?);
                }
            }
            Ok((!out.is_empty()).then(|| Box::new(out) as AppGuard))
        })
    }
}

/// What a guest's publish or request goes through: the connection, and the check
/// of each subject it names.
struct Sender {
    nats: async_nats::Client,
    prefix: Option<String>,
    replies: Arc<Replies>,
}

impl Sender {
    /// Whether the guest may use `subject` for `kind`; a publish to the reply
    /// subject of a message it is handling counts as a reply, and so does naming
    /// it as the reply subject of a message it publishes (handing the request on
    /// to another service, which then answers the requester, as wasmCloud allows).
    fn check(&self, subject: &str, kind: SubjectUse) -> Result<(), String> {
        let kind = match kind {
            SubjectUse::Publish | SubjectUse::ReplyTo if self.replies.contains(subject) => {
                SubjectUse::Reply
            }
            other => other,
        };
        guest_subject_allowed(subject, kind, self.prefix.as_deref()).map_err(|e| e.to_string())
    }
}

impl Ctx {
    /// The span of a guest's `publish` or `request` on `subject`, with the
    /// messaging conventions' attributes.
    fn messaging_span(&self, kind: Kind, op: &'static str, subject: &str, size: usize) -> Span {
        trace::operation(kind, self.trace.as_ref(), op, subject, || {
            vec![
                KeyValue::new("messaging.system", "nats"),
                KeyValue::new("messaging.operation.name", op),
                KeyValue::new("messaging.destination.name", subject.to_owned()),
                KeyValue::new("messaging.message.body.size", size as i64),
            ]
        })
    }

    /// The connection and rules of this component's consumer link in force, if it
    /// goes to the builtin.
    fn messaging(&self) -> Result<Sender, String> {
        let name = self.link_name("wasmcloud", "messaging", "consumer");
        let links = self.env.settings.get::<ConsumerLinks>();
        let Some((links, prefix)) = links.and_then(|l| Some((l, l.prefixes.get(name)?))) else {
            return Err(format!(
                "component '{}' of app '{}' has no wasmcloud:messaging link named '{name}': add a link trait to builtin://messaging-nats or a messaging provider",
                self.env.component, self.env.app
            ));
        };
        let nats = links.nats.clone().ok_or_else(|| {
            "this host has no NATS connection for builtin://messaging-nats".to_owned()
        })?;
        Ok(Sender {
            nats,
            prefix: prefix.clone(),
            replies: links.replies.clone(),
        })
    }
}

impl consumer::Host for Ctx {
    async fn request(
        &mut self,
        subject: String,
        body: Vec<u8>,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<BrokerMessage, String>> {
        let sender = match self.messaging() {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        if let Err(e) = sender.check(&subject, SubjectUse::Publish) {
            return Ok(Err(e));
        }
        // The reply comes back on an inbox of the connection's own making.
        let nats = sender.nats;
        let span = self.messaging_span(Kind::Client, "request", &subject, body.len());
        let timeout = Duration::from_millis(u64::from(timeout_ms.max(1)));
        let reply = tokio::time::timeout(timeout, nats.request(subject.clone(), body.into())).await;
        Ok(span.ended(match reply {
            Ok(Ok(m)) => Ok(BrokerMessage {
                subject: m.subject.to_string(),
                body: m.payload.to_vec(),
                reply_to: m.reply.map(|r| r.to_string()),
            }),
            Ok(Err(e)) => Err(format!("request on '{subject}' failed: {e}")),
            Err(_) => Err(format!("no reply on '{subject}' within {timeout:?}")),
        }))
    }

    async fn publish(&mut self, msg: BrokerMessage) -> wasmtime::Result<Result<(), String>> {
        let sender = match self.messaging() {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        let checked = sender
            .check(&msg.subject, SubjectUse::Publish)
            .and_then(|()| {
                msg.reply_to
                    .as_deref()
                    .map_or(Ok(()), |r| sender.check(r, SubjectUse::ReplyTo))
            });
        if let Err(e) = checked {
            return Ok(Err(e));
        }
        let nats = sender.nats;
        let span = self.messaging_span(Kind::Producer, "publish", &msg.subject, msg.body.len());
        let sent = match msg.reply_to {
            Some(reply) => {
                nats.publish_with_reply(msg.subject.clone(), reply, msg.body.into())
                    .await
            }
            None => nats.publish(msg.subject.clone(), msg.body.into()).await,
        };
        Ok(span.ended(sent.map_err(|e| format!("publish on '{}' failed: {e}", msg.subject))))
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
    let replies = rt
        .env
        .settings
        .get::<ConsumerLinks>()
        .map(|l| l.replies.clone());
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
            // The handler may answer on the message's reply subject while it runs.
            let hold = replies
                .as_ref()
                .zip(msg.reply.as_ref())
                .map(|(r, subject)| r.hold(subject.to_string()));
            tokio::spawn(async move {
                let _permit = permit;
                let _hold = hold;
                // What `handle-message` takes, as the typed path reads it.
                let value = typed::BrokerMessage {
                    subject: msg.subject.to_string(),
                    body: msg.payload.to_vec(),
                    reply_to: msg.reply.map(|r| r.to_string()),
                }
                .into_wire();
                let result = invoke(&rt, &export, vec![value], None).await;
                let failed = match &result {
                    Err(f) => Some(f.to_string()),
                    Ok(v) => match v.first() {
                        Some(WitValue::Result(Err(Some(e)))) => match &**e {
                            WitValue::String(why) => Some(why.clone()),
                            other => Some(format!("{other:?}")),
                        },
                        Some(WitValue::Result(Err(None))) => Some("an error".to_owned()),
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
