//! Component-model values on the wire: what a cross-host call carries.
//!
//! A type-directed MessagePack encoding (specified in `docs/protocol.md`, "Cross-host
//! calls: value encoding"): the bytes hold no names and no kinds, only what the type
//! leaves open, so both sides must decode with the type they encoded with. Calls carry
//! a [`signature_fingerprint`] for that.
//!
//! - [`types`]: [`WitType`] and [`WitValue`], the model the host converts wasmtime's
//!   `component::Type` and `component::Val` to and from.
//! - [`encode`] / [`decode`]: one value; [`encode_args`] / [`decode_args`] and
//!   [`encode_results`] / [`decode_results`]: a call's arguments or results as an
//!   array. [`typecheck`] is [`encode`] without output.
//! - [`rpc`]: the call envelope: subjects, headers, error kinds, signatures.
//! - [`body`]: payloads offered in chunks, and where they may be fetched from.
//! - [`wave`]: values as people write them (WAVE text), for `lattice call`.
//!
//! Decoding never panics, bounds its recursion by [`MAX_DEPTH`] and allocates no
//! more than the input can fill.

pub mod body;
mod decode;
mod encode;
mod error;
mod msgpack;
pub mod rpc;
pub mod types;
pub mod wave;

pub use body::{
    body_subject, check_body_subject, host_inbox_prefix, BodyError, BodyOffer, BodySender,
};
pub use decode::{
    decode, decode_args, decode_args_within, decode_results, decode_results_within, decoded_limit,
    DECODED_PER_CALL_BYTE,
};
pub use encode::{encode, encode_args, encode_results, typecheck};
pub use error::{Problem, WireError};
pub use rpc::{
    check_caller, cli_call_subject, cli_call_wildcard, host_call_subject, host_call_wildcard,
    locality_subject, parse_call_subject, provider_call_subject, provider_call_wildcard, read_call,
    signature, signature_fingerprint, CallErrorKind, CallHeader, CallRoute, CallTarget,
    SubjectCaller,
};
pub use types::{Signature, WitType, WitValue};

/// How deeply values may nest: a value inside more than 64 lists, records, tuples,
/// variants, options or results is refused by both encoder and decoder.
pub const MAX_DEPTH: usize = 64;
