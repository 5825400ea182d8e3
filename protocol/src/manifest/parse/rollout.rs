//! `spec.rollout`: how a new version of the app moves across its hosts.
//!
//! ```yaml
//! spec:
//!   rollout:
//!     maxUnavailable: 2      # or "25%": hosts that switch at once (default 1)
//! ```
//!
//! wadm has no such setting; Kubernetes users know the name from a Deployment's
//! `strategy.rollingUpdate.maxUnavailable`.

use super::walk::{describe, Node, Walker};
use crate::manifest::{MaxUnavailable, Rollout};
use serde_yaml_ng::Value;

/// Reads `spec.rollout`.
pub(super) fn rollout(w: &mut Walker, node: &Node<'_>) -> Option<Rollout> {
    let obj = w.map(node)?;
    w.only(&obj, &["maxUnavailable"], &[]);
    let max_unavailable = match obj.get("maxUnavailable") {
        Some(n) => max_unavailable(w, &n)?,
        None => MaxUnavailable::default(),
    };
    Some(Rollout { max_unavailable })
}

fn max_unavailable(w: &mut Walker, node: &Node<'_>) -> Option<MaxUnavailable> {
    let bad = |found: &str| {
        format!(
            "expected a number of hosts from 1 to {} or a percentage from 1% to 100% \
             (hosts that switch to a new version at once), found {found}",
            u32::MAX
        )
    };
    match node.value {
        Value::Number(n) => match n.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(n) if n >= 1 => Some(MaxUnavailable::Hosts(n)),
            _ => {
                w.problem(&node.path, bad(&describe(node.value)));
                None
            }
        },
        Value::String(text) => {
            let percent = text
                .strip_suffix('%')
                .and_then(|p| p.trim().parse::<u32>().ok())
                .filter(|p| (1..=100).contains(p));
            if percent.is_none() {
                w.problem(&node.path, bad(&describe(node.value)));
            }
            percent.map(MaxUnavailable::Percent)
        }
        other => {
            w.problem(&node.path, bad(&describe(other)));
            None
        }
    }
}
