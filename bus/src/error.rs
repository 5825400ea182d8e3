//! The seam's errors: what a caller may want to tell apart is a variant, the rest is
//! the underlying client's error as the source.

use std::time::Duration;

/// Any underlying error (async-nats' errors, a fake's sentence).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why publishing, subscribing or flushing failed.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("publishing on {subject}")]
    Publish {
        subject: String,
        #[source]
        source: BoxError,
    },
    #[error("subscribing to {subject}")]
    Subscribe {
        subject: String,
        #[source]
        source: BoxError,
    },
    #[error("flushing the NATS connection")]
    Flush {
        #[source]
        source: BoxError,
    },
}

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// Someone listens on the subject but did not answer in time.
    #[error("no answer on {subject} within {}s", timeout.as_secs_f64())]
    TimedOut { subject: String, timeout: Duration },
    /// Nobody listens on the subject.
    #[error("nobody listens on {subject} (no responders)")]
    NoResponders { subject: String },
    #[error("requesting on {subject}")]
    Other {
        subject: String,
        #[source]
        source: BoxError,
    },
}

/// Why a KV operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    /// A compare-and-set lost: the key changed since the expected revision (`None`:
    /// it was expected to have no value).
    #[error("key '{key}' in KV bucket {bucket} changed since revision {}", expected.map_or("(none)".to_string(), |r| r.to_string()))]
    Conflict {
        bucket: String,
        key: String,
        expected: Option<u64>,
    },
    #[error("{doing} '{key}' in KV bucket {bucket}")]
    Other {
        bucket: String,
        /// What was being done: "reading", "creating", "watching", ...
        doing: &'static str,
        key: String,
        #[source]
        source: BoxError,
    },
}
