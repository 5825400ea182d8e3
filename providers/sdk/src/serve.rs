//! The NATS side of a provider: calls in queue group `rpc` served by the
//! lattice's one transport (`lattice_rpc::serve`, with chunked bodies both ways),
//! health checks, the control lines from the host, and a clean stop.

use crate::call::Routes;
use crate::links::{self, LinkSet};
use crate::{input, Provider, ProviderError};
use async_nats::Message;
use futures::StreamExt;
use lattice_protocol::creds::provider_inbox_prefix;
use lattice_protocol::provider::{health_subject, ProviderInit, ProviderMessage};
use lattice_protocol::wire::rpc::{host_call_wildcard, RPC_QUEUE};
use lattice_protocol::wire::{self, CallErrorKind};
use lattice_rpc::chunks::Limit;
use lattice_rpc::{Answer, CallError, ServeLimits};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// After `shutdown` or the end of stdin, calls the server routed here before it
/// saw the unsubscribe are answered `unavailable` (their callers try another
/// instance) for up to 2 s, and calls running get 3 s more to finish: within the
/// 5 s a host waits before it kills the process.
const DRAIN_FOR: Duration = Duration::from_secs(2);
const FINISH_FOR: Duration = Duration::from_secs(3);

/// What every call shares.
struct Server {
    routes: Routes,
    links: watch::Receiver<LinkSet>,
    nats: async_nats::Client,
    lattice: String,
    /// Where large results are offered (`creds::provider_inbox_prefix`).
    inbox_prefix: String,
    limit: Limit,
    max_in_flight: usize,
    /// Turns true when the provider stops: calls still arriving are answered
    /// `unavailable`, so their callers try another instance.
    stopping: watch::Receiver<bool>,
}

fn subscribe_failed(subject: &str, e: &dyn std::fmt::Display) -> ProviderError {
    ProviderError::Subscribe {
        subject: subject.to_owned(),
        reason: e.to_string(),
    }
}

/// One set of call subscriptions and the serve loop over them; a new set
/// replaces it when the host's locality labels change.
struct Serving {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<bool>,
}

impl Serving {
    /// Subscribe, in queue group `rpc`, to calls from components on any host
    /// (each on a subject naming that host), from the app's other providers
    /// (each on a subject naming it) and, for each of `locality`, to calls sent
    /// to instances near callers with that label; and serve them.
    async fn start(
        server: &Arc<Server>,
        init: &ProviderInit,
        locality: &[(String, String)],
    ) -> Result<Self, ProviderError> {
        let (lattice, app, name) = (&init.lattice, &init.app, &init.name);
        let mut subjects = vec![
            host_call_wildcard(lattice, app, name),
            wire::provider_call_wildcard(lattice, app, name),
        ];
        for (key, value) in locality {
            subjects.push(wire::rpc::locality_component_wildcard(
                lattice, key, value, app, name,
            ));
        }
        let mut calls = Vec::with_capacity(subjects.len());
        for subject in &subjects {
            let sub = server
                .nats
                .queue_subscribe(subject.clone(), RPC_QUEUE.to_owned())
                .await
                .map_err(|e| subscribe_failed(subject, &e))?;
            calls.push(sub);
        }
        // Sent before the old set's unsubscribes, on the same connection: the
        // server processes them in that order, so some set is always subscribed.
        server
            .nats
            .flush()
            .await
            .map_err(|e| subscribe_failed(&subjects[0], &e))?;
        let limits = ServeLimits {
            max_calls: server.max_in_flight,
            drain_for: DRAIN_FOR,
            finish_for: FINISH_FOR,
        };
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn({
            let server = server.clone();
            async move {
                let handle = |msg: Message| handle(&server, msg);
                let busy = |_: &Message| {
                    format!(
                        "provider '{}' is serving {} calls already; try again later",
                        server.routes.provider, server.max_in_flight
                    )
                };
                lattice_rpc::serve(&server.nats, calls, limits, stopped, handle, busy).await
            }
        });
        Ok(Self { stop, task })
    }
}

pub(crate) async fn run(provider: Provider) -> Result<(), ProviderError> {
    let Provider {
        init,
        nats,
        mut control,
        links,
        functions,
        aliases,
        max_in_flight,
        max_call_bytes,
    } = provider;
    let rpc_subject = host_call_wildcard(&init.lattice, &init.app, &init.name);
    let health = health_subject(&init.lattice, &init.app, &init.name, &init.host_id);
    let mut checks = nats
        .subscribe(health.clone())
        .await
        .map_err(|e| subscribe_failed(&health, &e))?;
    // Spans of the calls served, exported when the host passed an OTLP endpoint
    // on (OTEL_*); flushed when serving ends.
    let _telemetry = lattice_telemetry::Telemetry::init(
        &format!("lattice-provider-{}", init.name),
        vec![
            lattice_telemetry::KeyValue::new("lattice.app", init.app.clone()),
            lattice_telemetry::KeyValue::new("lattice.host.id", init.host_id.clone()),
        ],
    )
    .inspect_err(|e| tracing::warn!("exporting no spans: OpenTelemetry: {e}"));
    let (stop, stopping) = watch::channel(false);
    let server = Arc::new(Server {
        routes: Routes {
            app: init.app.clone(),
            provider: init.name.clone(),
            functions,
            aliases,
        },
        links: links.subscribe(),
        nats: nats.clone(),
        lattice: init.lattice.clone(),
        inbox_prefix: provider_inbox_prefix(&init.lattice, &init.app, &init.name),
        limit: Limit {
            bytes: max_call_bytes,
            owner: "the provider",
            setting: "Provider::max_call_bytes",
        },
        max_in_flight,
        stopping,
    });
    let mut serving = Serving::start(&server, &init, &init.locality).await?;
    tracing::info!(
        app = %init.app, provider = %init.name, host = %init.host_id,
        functions = server.routes.functions.len(), links = links.borrow().len(),
        locality = ?init.locality,
        "serving calls on {rpc_subject}"
    );

    loop {
        tokio::select! {
            _ = &mut serving.task => {
                // Every subscription ended without a stop: NATS closed for good.
                return Err(ProviderError::Closed);
            }
            msg = checks.next() => {
                let Some(msg) = msg else { return Err(ProviderError::Closed) };
                if let Some(reply) = msg.reply {
                    let _ = nats.publish(reply, "ok".into()).await;
                }
            }
            line = control.recv() => match line {
                None => {
                    tracing::info!("stdin closed (the host is gone); stopping");
                    break;
                }
                Some(Err(e)) => {
                    tracing::warn!("cannot read stdin ({e}); stopping");
                    break;
                }
                Some(Ok(line)) if line.trim().is_empty() => {}
                Some(Ok(line)) => match input::parse(&line) {
                    Ok(ProviderMessage::Links { links: new }) => {
                        tracing::info!(links = new.len(), "links changed");
                        links.send_replace(links::link_set(new));
                    }
                    Ok(ProviderMessage::Locality { locality }) => {
                        // The new subscriptions first, then the old drained: no
                        // moment without a subscriber.
                        tracing::info!(?locality, "locality labels changed");
                        let fresh = Serving::start(&server, &init, &locality).await?;
                        let old = std::mem::replace(&mut serving, fresh);
                        let _ = old.stop.send(true);
                        tokio::spawn(old.task);
                    }
                    Ok(ProviderMessage::Shutdown) => {
                        tracing::info!("shutdown requested; stopping");
                        break;
                    }
                    Ok(other) => tracing::warn!(
                        "ignoring a second `{}` message on stdin", input::name(&other)
                    ),
                    Err(e) => tracing::warn!("ignoring a line on stdin that is not a provider message: {e}"),
                },
            },
        }
    }

    // Stop taking calls: the server stops routing here; calls already routed are
    // answered `unavailable`, so their callers try another instance.
    drop(checks);
    let _ = stop.send(true);
    let _ = serving.stop.send(true);
    let _ = serving.task.await;
    let _ = nats.flush().await;
    tracing::info!("stopped");
    Ok(())
}

/// Serve one call and reply (in chunks when the results are large).
async fn handle(server: &Server, msg: Message) {
    if msg.reply.is_none() {
        return;
    }
    let incoming = lattice_rpc::incoming(&msg);
    // The served call is a server span, the child of the caller's client span.
    let function = wire::parse_call_subject(&msg.subject)
        .map_or_else(|| msg.subject.to_string(), |r| r.target.function_name());
    let traceparent =
        lattice_rpc::caller_trace(incoming.header, msg.headers.as_ref()).map(str::to_owned);
    let parent = traceparent
        .as_deref()
        .and_then(lattice_telemetry::TraceContext::parse);
    let (service, method) = function.rsplit_once('.').unwrap_or((&function, ""));
    let span = lattice_telemetry::Span::start(
        function.clone(),
        lattice_telemetry::Kind::Server,
        parent.as_ref(),
        vec![
            lattice_telemetry::KeyValue::new("rpc.system", "lattice"),
            lattice_telemetry::KeyValue::new("rpc.service", service.to_owned()),
            lattice_telemetry::KeyValue::new("rpc.method", method.to_owned()),
            lattice_telemetry::KeyValue::new("lattice.provider", server.routes.provider.clone()),
        ],
    );
    let answer = if *server.stopping.borrow() {
        let provider = &server.routes.provider;
        Err(CallError::new(
            CallErrorKind::Unavailable,
            format!("provider '{provider}' is stopping"),
        ))
    } else {
        answer(server, &msg, &incoming, traceparent.as_deref()).await
    };
    if let Err(failure) = &answer {
        span.fail(format!("{}: {}", failure.kind.as_str(), failure.message));
        tracing::warn!(
            subject = %msg.subject,
            caller = incoming.header.unwrap_or_default(),
            kind = failure.kind.as_str(),
            trace_id = trace_id(traceparent.as_deref()),
            "call failed: {}", failure.message
        );
    }
    lattice_rpc::reply(&server.nats, &msg, answer).await;
}

/// The encoded results of one call, inline or on offer.
async fn answer(
    server: &Server,
    msg: &Message,
    incoming: &lattice_rpc::Incoming<'_>,
    traceparent: Option<&str>,
) -> Result<Answer, CallError> {
    let links = server.links.borrow().clone();
    let admitted = server.routes.admit(&links, &msg.subject, incoming.header)?;
    let (provider, name) = (&server.routes.provider, admitted.name.clone());
    let timeout = Duration::from_millis(admitted.caller.timeout_ms);
    let deadline = Instant::now() + timeout;
    // This call holds one of the serve loop's slots already: its arguments are
    // fetched and decoded within it, and within the limits.
    let limit = server.limit;
    let payload = lattice_rpc::arguments(
        &server.nats,
        &server.lattice,
        msg,
        &incoming.payload,
        admitted.sender(),
        limit,
        deadline,
    )
    .await?;
    let function = admitted.function.clone();
    let call = admitted.call(&payload, wire::decoded_limit(limit.bytes), traceparent)?;
    drop(payload);
    let span = tracing::info_span!(
        "provider.call",
        call = %name,
        caller = %call.caller.component,
        link = %call.caller.link,
        trace_id = trace_id(call.traceparent.as_deref()),
    );
    // A task of its own: a handler that blocks its thread or panics does not take
    // the other calls with it.
    let mut running = tokio::spawn(tracing::Instrument::instrument(
        (function.handler)(call),
        span,
    ));
    let results = match tokio::time::timeout(timeout, &mut running).await {
        Err(_) => {
            running.abort();
            return Err(CallError::new(
                CallErrorKind::Timeout,
                format!("provider '{provider}' did not finish {name} within the caller's timeout of {timeout:?}"),
            ));
        }
        Ok(Err(_)) => {
            return Err(CallError::new(
                CallErrorKind::Internal,
                format!("provider '{provider}' panicked serving {name}"),
            ))
        }
        Ok(Ok(results)) => {
            results.map_err(|message| CallError::new(CallErrorKind::Internal, message))?
        }
    };
    let encoded = wire::encode_results(&function.results, &results).map_err(|e| {
        tracing::error!(call = %name, "a handler returned results of the wrong shape: {e}");
        CallError::new(
            CallErrorKind::Internal,
            format!("provider '{provider}' returned results for {name} that do not match its signature: {e}"),
        )
    })?;
    if encoded.len() > limit.bytes {
        let what = format!("the results of {name} are");
        return Err(limit.exceeded(&what, encoded.len() as u64));
    }
    Answer::new(&server.nats, &server.inbox_prefix, encoded.into(), deadline).await
}

/// The trace id of a `traceparent` (`00-<trace id>-<span>-<flags>`), for logs.
fn trace_id(traceparent: Option<&str>) -> &str {
    traceparent
        .and_then(|t| t.split('-').nth(1))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn trace_ids_come_from_traceparent() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(
            super::trace_id(Some(tp)),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(super::trace_id(Some("junk")), "");
        assert_eq!(super::trace_id(None), "");
    }
}
