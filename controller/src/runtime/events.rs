//! Publishing on NATS without ever holding a task up for long.

use lattice_bus::Bus;
use lattice_protocol::messages::Event;
use lattice_protocol::subjects::Subjects;
use std::time::Duration;

/// How long publishing one message may wait for the NATS client (e.g. while it
/// reconnects).
pub(crate) const PUBLISH_DEADLINE: Duration = Duration::from_secs(1);

/// Publish an event on `lattice.L.evt.<kind>`; a failure is logged, never fatal.
pub(crate) async fn publish_event(bus: &dyn Bus, subjects: &Subjects, event: &Event) {
    let subject = subjects.event(event.kind());
    let publishing = bus.publish(subject, None, lattice_protocol::encode(event).into());
    match tokio::time::timeout(PUBLISH_DEADLINE, publishing).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %chain(&e), kind = event.kind(), "could not publish event")
        }
        Err(_) => tracing::warn!(
            kind = event.kind(),
            "could not publish event: NATS is not taking messages"
        ),
    }
}

/// An error and its sources, one sentence: "publishing on x: connection closed".
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
