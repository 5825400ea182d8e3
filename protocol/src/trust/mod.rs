//! Who may drive whom: signed, fenced host commands, signed host reports, the
//! controller's admission of hosts, and which subjects a guest may use.
//!
//! - [`CommandEnvelope`] / [`SignedCommand`] / [`CommandVerifier`]: a controller signs
//!   each host command with the lattice signing key, naming the lattice, the host,
//!   its lease term, the time and a nonce; a host obeys only what a
//!   [`CommandVerifier`] accepts, and logs the [`Refusal`] otherwise.
//! - [`sign_report`] / [`ReportPolicy`]: a host signs its heartbeats and events
//!   with its own key (its id); the controller keeps only what its policy
//!   ([`Admission`]) admits.
//! - [`guest_subject_allowed`]: the subjects built-in messaging lets a guest use.
//! - [`keys`]: which nkey type plays which role, and why.
//!
//! Everything here is pure: times are arguments, nothing reads a clock or a file.
//! The wire forms are specified in `docs/protocol.md`, "Signed commands and
//! reports".

mod admission;
mod command;
mod frame;
mod guest;
pub mod keys;
mod refusal;
mod replay;
mod report;
mod verifier;

pub use admission::{Admission, Admitted, JoinToken};
pub use command::{CommandEnvelope, SignError, SignedCommand, COMMAND_KIND};
pub use guest::{guest_subject_allowed, SubjectRefusal, SubjectUse};
pub use keys::{
    check_host_key, check_join_key, check_lattice_key, new_host_key, new_lattice_key, KeyError,
    Nonce,
};
pub use refusal::{Refusal, ReportRefusal};
pub use report::{
    read_event_unverified, sign_report, ReportPolicy, SignedReport, VerifiedReport, REPORT_KIND,
};
pub use verifier::{CommandVerifier, Fence, Verified, VerifierConfig};
