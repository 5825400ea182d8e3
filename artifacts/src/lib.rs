//! Where the code a host runs comes from, always checked against a SHA-256 digest:
//! the lattice's own artifact store (a JetStream object store), OCI registries, and
//! the host's on-disk cache. No wasmtime here: the host compiles what this crate
//! hands it.

pub mod cache;
pub mod claims;
pub mod credentials;
pub mod digest;
pub mod fetch;
pub mod oci;
pub mod store;

pub use digest::Digest;
pub use fetch::{FetchConfig, FetchError, Fetcher};
pub use store::{ArtifactKind, ArtifactMeta, ArtifactStore, NewArtifact, StoreConfig, StoreError};
