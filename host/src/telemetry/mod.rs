//! What the host tells about itself and its guests: W3C trace context carried
//! across NATS ([`trace`]) and guests' output as tracing events ([`guest_output`]).

pub mod guest_output;
pub mod trace;
