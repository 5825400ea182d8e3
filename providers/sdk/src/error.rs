//! What can stop a provider from starting or running.

use lattice_protocol::CodecError;

/// Why a provider could not start or keep serving.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("cannot read the provider's stdin: {source}")]
    Stdin {
        #[source]
        source: std::io::Error,
    },
    #[error(
        "stdin closed before the host sent `init`: a provider is started by a lattice host, \
         which writes {{\"v\":1,\"message\":\"init\",...}} as the first line"
    )]
    NoInit,
    #[error("the first line on stdin is not a provider message ({source}): expected {{\"v\":1,\"message\":\"init\",...}}")]
    BadInit {
        #[source]
        source: CodecError,
    },
    #[error("the first message on stdin is `{got}`, expected `init`")]
    NotInit { got: &'static str },
    #[error("cannot connect to NATS at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("cannot subscribe to {subject}: {reason}")]
    Subscribe { subject: String, reason: String },
    #[error("the NATS connection closed while serving")]
    Closed,
}
