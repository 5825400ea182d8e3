//! What the host tells about itself and its guests: W3C trace context carried
//! across NATS ([`trace`]), guests' output as tracing events ([`guest_output`]) and
//! their log lines on NATS ([`guest_logs`]), and the host's metrics ([`metrics`]:
//! `Host::metrics`).

pub mod guest_logs;
pub mod guest_output;
pub mod metrics;
pub mod trace;
