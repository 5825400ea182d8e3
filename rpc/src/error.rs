//! One call error for every side of a call.

use lattice_protocol::wire::{CallErrorKind, Problem, WireError};

/// Why a call produced no results: the kind (as the `lattice-error` header names
/// it) and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallError {
    pub kind: CallErrorKind,
    pub message: String,
}

impl CallError {
    pub fn new(kind: CallErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// Arguments or results (`what`) that did not decode: `too-large` when their
    /// decoded values would pass the call's memory bound, else `kind`.
    pub fn undecodable(kind: CallErrorKind, what: String, e: &WireError) -> Self {
        let kind = match e.problem() {
            Problem::TooLarge { .. } => CallErrorKind::TooLarge,
            _ => kind,
        };
        Self::new(kind, format!("{what} did not decode: {e}"))
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.kind.as_str())
    }
}

impl std::error::Error for CallError {}

#[cfg(test)]
mod tests {
    use super::*;
    use lattice_protocol::wire::{self, WitType};

    #[test]
    fn a_decode_over_the_bound_is_too_large_and_other_failures_keep_their_kind() {
        let bytes = wire::encode_args(
            &[WitType::list(WitType::U8)],
            &[wire::WitValue::Bytes(vec![0; 64])],
        )
        .unwrap_or_default();
        let over = wire::decode_args_within(&[WitType::list(WitType::U8)], &bytes, 8)
            .err()
            .map(|e| {
                CallError::undecodable(CallErrorKind::BadArguments, "the arguments".into(), &e)
            });
        assert_eq!(over.map(|e| e.kind), Some(CallErrorKind::TooLarge));
        let garbage = wire::decode_args(&[WitType::String], &[0xc1])
            .err()
            .map(|e| {
                CallError::undecodable(CallErrorKind::BadArguments, "the arguments".into(), &e)
            });
        let garbage = garbage.unwrap_or_else(|| CallError::new(CallErrorKind::Internal, ""));
        assert_eq!(garbage.kind, CallErrorKind::BadArguments);
        assert!(garbage
            .message
            .starts_with("the arguments did not decode: "));
        assert_eq!(
            CallError::new(CallErrorKind::Timeout, "slow").to_string(),
            "slow (timeout)"
        );
    }
}
