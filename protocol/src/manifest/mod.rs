//! Application manifests: wadm-style OAM YAML (`core.oam.dev/v1beta1`, `Application`).
//!
//! [`parse`] turns YAML text into a validated [`Manifest`] or a list of every problem
//! found, each with its path in the document; [`parse_with_limits`] does the same
//! within budgets other than the default [`Limits`]; [`revalidate`] checks a
//! manifest that arrived as JSON (the model) with the same parser and budgets.

mod limits;
mod model;
mod oam;
mod parse;
mod reference;
mod version;

pub use limits::Limits;
pub use model::*;
pub use oam::{revalidate, to_oam};
pub use parse::{is_dns_label, parse, parse_with_limits, ManifestError, Problem};
pub use reference::{check_digest, OciReference};
pub use version::assigned_version;
