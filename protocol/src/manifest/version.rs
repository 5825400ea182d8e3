//! The version the controller gives a manifest stored without one, as wadm does: a
//! ULID (26 characters of Crockford base32, sortable by time). Its time part is
//! the store time; its other 80 bits come from the manifest's content, so the same
//! manifest stored twice in one millisecond (a retried request) gets the same
//! version, and two different ones never share it.

use super::Manifest;
use sha2::{Digest, Sha256};

/// Crockford's base32 alphabet, as ULIDs use it.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// The ULID-form version for `manifest` stored at `now_ms` (Unix milliseconds).
///
/// ```
/// use lattice_protocol::manifest::{assigned_version, Manifest};
/// let m = Manifest { name: "a".into(), version: String::new(), description: None, components: vec![], rollout: None };
/// let v = assigned_version(&m, 1_700_000_000_000);
/// assert_eq!(v.len(), 26);
/// assert!(v.starts_with("01HF"));
/// assert_eq!(v, assigned_version(&m, 1_700_000_000_000));
/// assert!(assigned_version(&m, 1_700_000_000_001) > v);
/// ```
pub fn assigned_version(manifest: &Manifest, now_ms: u64) -> String {
    let mut unversioned = manifest.clone();
    unversioned.version.clear();
    let content = serde_json::to_vec(&unversioned).unwrap_or_default();
    let hash = Sha256::digest(&content);
    let mut entropy = [0u8; 16];
    entropy[6..].copy_from_slice(&hash[..10]);
    let value = (u128::from(now_ms & 0xFFFF_FFFF_FFFF) << 80) | u128::from_be_bytes(entropy);
    (0..26)
        .map(|i| {
            let shift = 125 - 5 * i;
            char::from(ALPHABET[((value >> shift) & 31) as usize])
        })
        .collect()
}
