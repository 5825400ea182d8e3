//! Delivering messages to components: one subscription task per link from this
//! provider to a component, calling its `wasmcloud:messaging/handler.handle-message`
//! over the lattice, as any linked call.

use crate::wit;
use crate::Brokers;
use futures::StreamExt;
use lattice_provider::{ComponentCaller, ProviderLink, WitType, WitValue};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a component has to handle one message.
const HANDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The running subscription tasks, by link; dropping one stops it.
#[derive(Default)]
pub struct Subscriptions(HashMap<ProviderLink, tokio::task::JoinHandle<()>>);

impl Subscriptions {
    pub fn clear(&mut self) {
        for (_, task) in self.0.drain() {
            task.abort();
        }
    }
}

/// Makes the delivery calls, as linked calls from this provider.
#[derive(Clone)]
pub struct Deliverer {
    caller: ComponentCaller,
    params: Arc<Vec<WitType>>,
    results: Arc<Vec<WitType>>,
}

impl Deliverer {
    pub fn new(caller: ComponentCaller) -> Self {
        Self {
            caller,
            params: Arc::new(vec![wit::broker_message()]),
            results: Arc::new(vec![wit::unit_or_string()]),
        }
    }

    /// Hand `msg` to the component at the other end of `link`.
    async fn deliver(&self, link: &ProviderLink, msg: async_nats::Message) -> Result<(), String> {
        let value = wit::message_value(
            msg.subject.to_string(),
            msg.payload.to_vec(),
            msg.reply.map(|r| r.to_string()),
        );
        let results = self
            .caller
            .call(
                link,
                "wasmcloud:messaging/handler",
                "handle-message",
                &self.params,
                &self.results,
                &[value],
                HANDLE_TIMEOUT,
            )
            .await
            .map_err(|e| {
                format!(
                    "component '{}' did not take the message: {e}",
                    link.component
                )
            })?;
        match &results[..] {
            [WitValue::Result(Err(Some(e)))] => Err(format!(
                "component '{}' answered the message with an error: {e:?}",
                link.component
            )),
            _ => Ok(()),
        }
    }
}

/// Run exactly one subscription task per link in `wanted`.
pub async fn sync(
    subs: &Mutex<Subscriptions>,
    wanted: &[ProviderLink],
    brokers: &Brokers,
    deliverer: &Deliverer,
) {
    let stale: Vec<ProviderLink> = {
        let subs = subs.lock().unwrap_or_else(|p| p.into_inner());
        subs.0
            .keys()
            .filter(|l| !wanted.contains(l))
            .cloned()
            .collect()
    };
    for link in stale {
        if let Some(task) = subs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .remove(&link)
        {
            task.abort();
        }
    }
    for link in wanted {
        if subs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .contains_key(link)
        {
            continue;
        }
        match subscribe(link, brokers, deliverer).await {
            Ok(task) => {
                subs.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .0
                    .insert(link.clone(), task);
            }
            Err(e) => tracing::error!(component = %link.component, "cannot subscribe: {e}"),
        }
    }
}

async fn subscribe(
    link: &ProviderLink,
    brokers: &Brokers,
    deliverer: &Deliverer,
) -> Result<tokio::task::JoinHandle<()>, String> {
    let nats = brokers.for_link(link).await?;
    let subjects: Vec<String> = link
        .config
        .get("subscriptions")
        .map(|s| {
            s.split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if subjects.is_empty() {
        return Err(format!(
            "the link to '{}' has no `subscriptions` in its source config",
            link.component
        ));
    }
    let queue = link.config.get("queue").cloned();
    let mut streams = Vec::new();
    for subject in &subjects {
        let sub = match &queue {
            Some(q) => nats.queue_subscribe(subject.clone(), q.clone()).await,
            None => nats.subscribe(subject.clone()).await,
        }
        .map_err(|e| format!("cannot subscribe to '{subject}': {e}"))?;
        streams.push(sub);
    }
    nats.flush().await.map_err(|e| e.to_string())?;
    tracing::info!(component = %link.component, ?subjects, "delivering messages");
    let (link, deliverer) = (link.clone(), deliverer.clone());
    Ok(tokio::spawn(async move {
        let mut all = futures::stream::select_all(streams);
        // Deliveries run concurrently, a bounded number at a time.
        let limit = Arc::new(tokio::sync::Semaphore::new(64));
        while let Some(msg) = all.next().await {
            let Ok(permit) = limit.clone().acquire_owned().await else {
                break;
            };
            let (link, deliverer) = (link.clone(), deliverer.clone());
            tokio::spawn(async move {
                if let Err(e) = deliverer.deliver(&link, msg).await {
                    tracing::warn!(component = %link.component, "delivery failed: {e}");
                }
                drop(permit);
            });
        }
    }))
}
