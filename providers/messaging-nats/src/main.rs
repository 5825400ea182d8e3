//! `messaging-nats`: `wasmcloud:messaging@0.2.0` on NATS, as a capability provider.
//!
//! - **Consumer** (components call it): `publish` and `request` on the NATS server
//!   named by the calling link's `url` config, else the provider's `url` config,
//!   else the lattice's own NATS.
//! - **Handler** (it calls components): for every link from this provider to a
//!   component, it subscribes the subjects in the link's `subscriptions` config
//!   (comma-separated, wildcards allowed; optional `queue` group) and delivers each
//!   message to the component's `wasmcloud:messaging/handler.handle-message`, over
//!   the lattice like any linked call. A reply subject travels in the message; the
//!   component answers with `consumer.publish`.
//!
//! One provider process serves one app, so two apps' subscriptions never mix.

mod deliver;
mod wit;

use lattice_provider::{Call, Provider, ProviderLink, WitValue};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    lattice_provider::init_tracing();
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("messaging-nats: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// NATS connections by URL, shared by every link that names the same server.
#[derive(Clone, Default)]
struct Brokers {
    default_url: String,
    lattice: Option<async_nats::Client>,
    by_url: Arc<tokio::sync::Mutex<HashMap<String, async_nats::Client>>>,
}

impl Brokers {
    /// The broker for `link` (its `url`, else the default).
    async fn for_link(&self, link: &ProviderLink) -> Result<async_nats::Client, String> {
        let url = link.config.get("url").unwrap_or(&self.default_url).clone();
        if url == self.default_url {
            if let Some(c) = &self.lattice {
                return Ok(c.clone());
            }
        }
        let mut map = self.by_url.lock().await;
        if let Some(c) = map.get(&url) {
            return Ok(c.clone());
        }
        let client =
            tokio::time::timeout(Duration::from_secs(5), async_nats::connect(url.as_str()))
                .await
                .map_err(|_| format!("NATS at {url} did not answer within 5s"))?
                .map_err(|e| format!("cannot connect to NATS at {url}: {e}"))?;
        map.insert(url, client.clone());
        Ok(client)
    }
}

async fn run() -> Result<(), lattice_provider::ProviderError> {
    let mut provider = Provider::from_stdin().await?;
    let init = provider.init().clone();
    let default_url = init
        .config
        .get("url")
        .cloned()
        .unwrap_or(init.nats_url.clone());
    let brokers = Brokers {
        lattice: (default_url == init.nats_url).then(|| provider.nats().clone()),
        default_url,
        by_url: Arc::default(),
    };

    let b = brokers.clone();
    provider.serve(
        "wasmcloud:messaging/consumer",
        "publish",
        vec![wit::broker_message()],
        vec![wit::unit_or_string()],
        move |call: Call| {
            let b = b.clone();
            async move { Ok(vec![wit::outcome(publish(&b, &call).await.map(|()| None))]) }
        },
    );
    let b = brokers.clone();
    provider.serve(
        "wasmcloud:messaging/consumer",
        "request",
        vec![
            lattice_provider::WitType::String,
            lattice_provider::WitType::list(lattice_provider::WitType::U8),
            lattice_provider::WitType::U32,
        ],
        vec![lattice_provider::WitType::result(
            Some(wit::broker_message()),
            Some(lattice_provider::WitType::String),
        )],
        move |call: Call| {
            let b = b.clone();
            async move { Ok(vec![wit::outcome(request(&b, &call).await.map(Some))]) }
        },
    );

    // Deliveries follow the links: one subscription task per link to a component,
    // replaced whenever the links change.
    let subscriptions = Arc::new(Mutex::new(deliver::Subscriptions::default()));
    let deliverer = deliver::Deliverer::new(provider.component_caller());
    let mut links = provider.watch_links();
    let (subs, brokers2) = (subscriptions.clone(), brokers.clone());
    tokio::spawn(async move {
        loop {
            let wanted: Vec<ProviderLink> = links
                .current()
                .into_iter()
                .filter(|l| !l.to_provider)
                .collect();
            deliver::sync(&subs, &wanted, &brokers2, &deliverer).await;
            if !links.changed().await {
                break;
            }
        }
    });
    let result = provider.run().await;
    subscriptions
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clear();
    result
}

async fn publish(brokers: &Brokers, call: &Call) -> Result<(), String> {
    let msg = wit::read_message(call.args.first())?;
    let nats = brokers.for_link(&call.link).await?;
    let result = match msg.reply_to {
        Some(reply) => {
            nats.publish_with_reply(msg.subject, reply, msg.body.into())
                .await
        }
        None => nats.publish(msg.subject, msg.body.into()).await,
    };
    result.map_err(|e| format!("publish failed: {e}"))?;
    nats.flush()
        .await
        .map_err(|e| format!("publish failed: {e}"))
}

async fn request(brokers: &Brokers, call: &Call) -> Result<WitValue, String> {
    let [WitValue::String(subject), body, WitValue::U32(timeout_ms)] = &call.args[..] else {
        return Err("request takes (subject, body, timeout-ms)".into());
    };
    let body = body
        .as_bytes()
        .ok_or("request takes (subject, body, timeout-ms): the body is not a list<u8>")?
        .into_owned();
    let nats = brokers.for_link(&call.link).await?;
    let timeout = Duration::from_millis(u64::from(*timeout_ms)).min(call.timeout());
    let reply = tokio::time::timeout(timeout, nats.request(subject.clone(), body.into()))
        .await
        .map_err(|_| format!("no reply on '{subject}' within {timeout:?}"))?
        .map_err(|e| format!("request on '{subject}' failed: {e}"))?;
    Ok(wit::message_value(
        reply.subject.to_string(),
        reply.payload.to_vec(),
        reply.reply.map(|r| r.to_string()),
    ))
}
