//! Application manifests: wadm-style OAM YAML (`core.oam.dev/v1beta1`, `Application`).
//!
//! [`parse`] turns YAML text into a validated [`Manifest`] or a list of every problem
//! found, each with its path in the document.

mod model;
mod parse;

pub use model::*;
pub use parse::{parse, ManifestError, Problem};
