//! Budgets for manifests: how big a manifest may be before the parser refuses it.
//! The CLI, the controller's API and hosts parse with the same limits, so a
//! manifest sent straight to the API cannot make placement or storage do
//! unbounded work.

/// The largest manifest the parser takes. Each limit is refused with a problem at
/// the path that breaks it, like every other problem.
///
/// ```
/// use lattice_protocol::manifest::{parse_with_limits, Limits};
///
/// let limits = Limits { max_components: 1, ..Limits::default() };
/// let yaml = r#"
/// apiVersion: core.oam.dev/v1beta1
/// kind: Application
/// metadata: {name: a, annotations: {version: v1}}
/// spec:
///   components:
///     - {name: x, type: component, properties: {image: file://x.wasm}}
///     - {name: y, type: component, properties: {image: file://y.wasm}}
/// "#;
/// let err = parse_with_limits(yaml, &limits).unwrap_err();
/// assert_eq!(err.to_string(), "spec.components: has 2 components, over the limit of 1");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The whole text, in bytes (default 1 MiB).
    pub max_document_bytes: usize,
    /// `[` and `{` characters in the whole text, wherever they are (default
    /// 4096). The YAML reader's work grows with the square of how deeply flow
    /// collections nest, so 100,000 `[` would take it minutes; counting them
    /// bounds that, and no quoting can hide one.
    pub max_brackets: usize,
    /// Entries of `spec.components` (default 256).
    pub max_components: usize,
    /// A scaler's `instances` (default 10,000).
    pub max_instances: u32,
    /// A scaler's spread entries (default 64).
    pub max_spreads: usize,
    /// A spread's `weight` (default 1,000,000).
    pub max_weight: u32,
    /// `link` traits of one component (default 256).
    pub max_links: usize,
    /// Entries of one config (a component's, or one side of a link), after
    /// merging (default 256).
    pub max_config_entries: usize,
    /// Link names, spread names, WIT names, config and label keys, in bytes
    /// (default 253). App and component names are DNS labels (at most 63).
    pub max_name_bytes: usize,
    /// One config value or label value, in bytes (default 64 KiB).
    pub max_value_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_document_bytes: 1024 * 1024,
            max_brackets: 4096,
            max_components: 256,
            max_instances: 10_000,
            max_spreads: 64,
            max_weight: 1_000_000,
            max_links: 256,
            max_config_entries: 256,
            max_name_bytes: 253,
            max_value_bytes: 64 * 1024,
        }
    }
}
