//! The NATS side of a provider: calls in queue group `rpc`, health checks, the
//! control lines from the host, and a clean stop.

use crate::call::{Failure, Request, Routes};
use crate::links::{self, LinkSet};
use crate::{input, Provider, ProviderError};
use async_nats::{HeaderMap, Message};
use futures::{FutureExt, StreamExt};
use lattice_protocol::provider::{health_subject, ProviderMessage};
use lattice_protocol::wire::rpc::{headers, host_call_wildcard, RPC_QUEUE};
use lattice_protocol::wire::{self, CallErrorKind};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Semaphore};
use tracing::Instrument;

/// How long calls in flight may finish after `shutdown` or the end of stdin.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Room left in a message for headers: results longer than the server's
/// `max_payload` minus this are refused (`too-large`), as a host would offer them
/// in chunks, which providers do not do yet.
const HEADROOM: usize = 8 * 1024;

/// What every call task shares.
struct Server {
    routes: Routes,
    links: watch::Receiver<LinkSet>,
    nats: async_nats::Client,
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
    } = provider;
    let subscribe_failed = |subject: &str, e: &dyn std::fmt::Display| ProviderError::Subscribe {
        subject: subject.to_owned(),
        reason: e.to_string(),
    };
    // Calls from components on any host, each on a subject naming that host.
    let rpc_subject = host_call_wildcard(&init.lattice, &init.app, &init.name);
    let mut from_hosts = nats
        .queue_subscribe(rpc_subject.clone(), RPC_QUEUE.to_owned())
        .await
        .map_err(|e| subscribe_failed(&rpc_subject, &e))?;
    // Calls from the app's other providers, each on a subject naming it.
    let provider_subject = wire::provider_call_wildcard(&init.lattice, &init.app, &init.name);
    let mut from_providers = nats
        .queue_subscribe(provider_subject.clone(), RPC_QUEUE.to_owned())
        .await
        .map_err(|e| subscribe_failed(&provider_subject, &e))?;
    let health = health_subject(&init.lattice, &init.app, &init.name, &init.host_id);
    let mut checks = nats
        .subscribe(health.clone())
        .await
        .map_err(|e| subscribe_failed(&health, &e))?;
    tracing::info!(
        app = %init.app, provider = %init.name, host = %init.host_id,
        functions = functions.len(), links = links.borrow().len(),
        "serving calls on {rpc_subject}"
    );
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
    let server = Arc::new(Server {
        routes: Routes {
            app: init.app.clone(),
            provider: init.name.clone(),
            functions,
            aliases,
        },
        links: links.subscribe(),
        nats: nats.clone(),
    });
    let slots = Arc::new(Semaphore::new(max_in_flight));

    loop {
        tokio::select! {
            msg = next_call(&mut from_hosts, &mut from_providers) => {
                let Some(msg) = msg else { return Err(ProviderError::Closed) };
                match slots.clone().try_acquire_owned() {
                    Ok(slot) => {
                        let server = server.clone();
                        tokio::spawn(async move {
                            handle(&server, msg).await;
                            drop(slot);
                        });
                    }
                    Err(_) => {
                        let message = format!(
                            "provider '{}' is serving {max_in_flight} calls already; try again later",
                            init.name
                        );
                        refuse(&server, &msg, CallErrorKind::Overloaded, message).await;
                    }
                }
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
    let until = tokio::time::Instant::now() + STOP_GRACE;
    drop(checks);
    for calls in [&mut from_hosts, &mut from_providers] {
        if calls.drain().await.is_ok() {
            while let Ok(Some(msg)) = tokio::time::timeout_at(until, calls.next()).await {
                let message = format!("provider '{}' is stopping", init.name);
                refuse(&server, &msg, CallErrorKind::Unavailable, message).await;
            }
        }
    }
    let all = u32::try_from(max_in_flight).unwrap_or(u32::MAX);
    if tokio::time::timeout_at(until, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!(
            running = max_in_flight - slots.available_permits(),
            "calls still running {STOP_GRACE:?} after the stop; leaving them"
        );
    }
    let _ = nats.flush().await;
    tracing::info!("stopped");
    Ok(())
}

/// The next call from either subscription (`None` when one ends). Both `next`s
/// are cancel-safe, so nothing is lost when the other branch wins.
async fn next_call(
    a: &mut async_nats::Subscriber,
    b: &mut async_nats::Subscriber,
) -> Option<Message> {
    tokio::select! {
        msg = a.next() => msg,
        msg = b.next() => msg,
    }
}

/// Serve one call and reply.
async fn handle(server: &Server, msg: Message) {
    let Some(reply) = msg.reply.clone() else {
        return;
    };
    // The served call is a server span, the child of the caller's client span.
    let function = wire::parse_call_subject(&msg.subject)
        .map_or_else(|| msg.subject.to_string(), |r| r.target.function_name());
    let parent = msg
        .headers
        .as_ref()
        .and_then(|h| h.get(headers::TRACEPARENT))
        .and_then(|v| lattice_telemetry::TraceContext::parse(v.as_str()));
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
    match answer(server, &msg).await {
        Ok(payload) => {
            let _ = server.nats.publish(reply, payload).await;
        }
        Err(failure) => {
            span.fail(format!("{}: {}", failure.kind.as_str(), failure.message));
            refuse(server, &msg, failure.kind, failure.message).await
        }
    }
}

/// Reply with a `lattice-error`, and log it.
async fn refuse(server: &Server, msg: &Message, kind: CallErrorKind, message: String) {
    let h = msg.headers.as_ref();
    let header = |name: &str| h.and_then(|h| h.get(name)).map(|v| v.as_str().to_owned());
    tracing::warn!(
        subject = %msg.subject,
        caller = header(headers::CALL).unwrap_or_default(),
        kind = kind.as_str(),
        trace_id = trace_id(header(headers::TRACEPARENT).as_deref()),
        "call failed: {message}"
    );
    let Some(reply) = msg.reply.clone() else {
        return;
    };
    let mut out = HeaderMap::new();
    out.insert(headers::ERROR, kind.as_str());
    let _ = server
        .nats
        .publish_with_headers(reply, out, message.into())
        .await;
}

/// The encoded results of one call.
async fn answer(server: &Server, msg: &Message) -> Result<bytes::Bytes, Failure> {
    let h = msg.headers.as_ref();
    let header = |name: &str| h.and_then(|h| h.get(name)).map(|v| v.as_str());
    let links = server.links.borrow().clone();
    let admitted = server.routes.admit(
        &links,
        &Request {
            subject: msg.subject.as_str(),
            caller: header(headers::CALL),
            traceparent: header(headers::TRACEPARENT),
            chunked: header(headers::BODY).is_some(),
            payload: &msg.payload,
        },
    )?;
    let (call, function, name) = (admitted.call, admitted.function, admitted.name);
    let provider = &server.routes.provider;
    let timeout = call.timeout();
    let span = tracing::info_span!(
        "provider.call",
        call = %name,
        caller = %call.caller.component,
        link = %call.caller.link,
        trace_id = trace_id(call.traceparent.as_deref()),
    );
    let running = AssertUnwindSafe((function.handler)(call)).catch_unwind();
    let results = tokio::time::timeout(timeout, running.instrument(span))
        .await
        .map_err(|_| {
            Failure::new(
                CallErrorKind::Timeout,
                format!("provider '{provider}' did not finish {name} within the caller's timeout of {timeout:?}"),
            )
        })?
        .map_err(|_| {
            Failure::new(
                CallErrorKind::Internal,
                format!("provider '{provider}' panicked serving {name}"),
            )
        })?
        .map_err(|message| Failure::new(CallErrorKind::Internal, message))?;
    let encoded = wire::encode_results(&function.results, &results).map_err(|e| {
        tracing::error!(call = %name, "a handler returned results of the wrong shape: {e}");
        Failure::new(
            CallErrorKind::Internal,
            format!("provider '{provider}' returned results for {name} that do not match its signature: {e}"),
        )
    })?;
    let limit = inline_limit(&server.nats);
    if encoded.len() > limit {
        return Err(Failure::new(
            CallErrorKind::TooLarge,
            format!(
                "the results of {name} are {} bytes, over the {limit} bytes provider '{provider}' can send in one message",
                encoded.len()
            ),
        ));
    }
    Ok(encoded.into())
}

/// The largest reply payload sent in one message.
fn inline_limit(nats: &async_nats::Client) -> usize {
    nats.server_info()
        .max_payload
        .saturating_sub(HEADROOM)
        .max(1024)
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
