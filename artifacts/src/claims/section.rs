//! Where the claims live inside a Wasm binary: a custom section at the top level,
//! and the hash of the binary without it, computed exactly as wasmCloud's `wascap`
//! does so that a component signed by `wash claims sign` verifies here and one
//! signed here verifies there.
//!
//! The hash is the upper-case hex SHA-256 of a re-encoding of the binary that
//! leaves out every claims section (at any depth): each section is copied byte
//! for byte behind its id and a minimal LEB128 length, and nested core modules and
//! components are re-encoded the same way.

use super::model::{ClaimsError, CLAIMS_SECTION, LEGACY_CLAIMS_SECTION};
use sha2::{Digest, Sha256};
use wasmparser::{Encoding, Parser, Payload};

const MODULE_HEADER: [u8; 8] = *b"\0asm\x01\0\0\0";
const COMPONENT_HEADER: [u8; 8] = *b"\0asm\x0d\0\x01\0";
const CORE_MODULE_SECTION_ID: u8 = 1;
const COMPONENT_SECTION_ID: u8 = 4;

fn is_claims(name: &str) -> bool {
    name == CLAIMS_SECTION || name == LEGACY_CLAIMS_SECTION
}

fn malformed(e: wasmparser::BinaryReaderError) -> ClaimsError {
    ClaimsError::Malformed {
        reason: e.to_string(),
    }
}

/// The text of the first claims section at the top level of `wasm`, if any.
pub fn find(wasm: &[u8]) -> Result<Option<&str>, ClaimsError> {
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(malformed)? {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::CustomSection(c) if depth == 0 && is_claims(c.name()) => {
                let text = std::str::from_utf8(c.data()).map_err(|e| ClaimsError::Token {
                    reason: format!("the {} section is not UTF-8: {e}", c.name()),
                })?;
                return Ok(Some(text));
            }
            _ => {}
        }
    }
    Ok(None)
}

/// `wasm` without any claims section, re-encoded as `wascap` does.
pub fn strip(wasm: &[u8]) -> Result<Vec<u8>, ClaimsError> {
    let mut output = Vec::with_capacity(wasm.len());
    let mut stack: Vec<Vec<u8>> = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(malformed)?;
        match &payload {
            Payload::Version { encoding, .. } => output.extend_from_slice(match encoding {
                Encoding::Component => &COMPONENT_HEADER,
                Encoding::Module => &MODULE_HEADER,
            }),
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => {
                stack.push(std::mem::take(&mut output));
                continue;
            }
            Payload::End(_) => {
                let Some(mut parent) = stack.pop() else { break };
                let id = if output.starts_with(&COMPONENT_HEADER) {
                    COMPONENT_SECTION_ID
                } else {
                    CORE_MODULE_SECTION_ID
                };
                append_section(&mut parent, id, &output);
                output = parent;
                continue;
            }
            Payload::CustomSection(c) if is_claims(c.name()) => continue,
            _ => {}
        }
        if let Some((id, range)) = payload.as_section() {
            let data = wasm.get(range).ok_or_else(|| ClaimsError::Malformed {
                reason: "a section runs past the end of the binary".into(),
            })?;
            append_section(&mut output, id, data);
        }
    }
    Ok(output)
}

/// The hash the claims carry for `wasm`: upper-case hex SHA-256 of [`strip`].
pub fn code_hash(wasm: &[u8]) -> Result<String, ClaimsError> {
    Ok(hex::encode_upper(Sha256::digest(strip(wasm)?)))
}

/// `wasm` with a custom section `name` holding `data` appended at its end.
pub fn with_custom_section(wasm: &[u8], name: &str, data: &[u8]) -> Vec<u8> {
    let mut contents = Vec::with_capacity(name.len() + data.len() + 10);
    leb128(&mut contents, name.len());
    contents.extend_from_slice(name.as_bytes());
    contents.extend_from_slice(data);
    let mut out = Vec::with_capacity(wasm.len() + contents.len() + 6);
    out.extend_from_slice(wasm);
    append_section(&mut out, 0, &contents);
    out
}

fn append_section(out: &mut Vec<u8>, id: u8, data: &[u8]) {
    out.push(id);
    leb128(out, data.len());
    out.extend_from_slice(data);
}

fn leb128(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(wat: &str) -> Vec<u8> {
        wat::parse_str(wat).unwrap()
    }

    #[test]
    fn leb128_is_minimal() {
        for (n, bytes) in [
            (0usize, vec![0u8]),
            (127, vec![0x7f]),
            (128, vec![0x80, 1]),
            (624_485, vec![0xe5, 0x8e, 0x26]),
        ] {
            let mut out = Vec::new();
            leb128(&mut out, n);
            assert_eq!(out, bytes, "{n}");
        }
    }

    #[test]
    fn stripping_removes_only_claims_sections() {
        let plain = module("(module (func (export \"f\")))");
        let signed = with_custom_section(&plain, CLAIMS_SECTION, b"a.b.c");
        let both = with_custom_section(&signed, LEGACY_CLAIMS_SECTION, b"x.y.z");
        assert_eq!(strip(&both).unwrap(), plain);
        assert_eq!(find(&both).unwrap(), Some("a.b.c"));
        assert_eq!(find(&plain).unwrap(), None);
        let other = with_custom_section(&plain, "producers-ish", b"keep");
        assert_eq!(strip(&other).unwrap(), other);
    }

    #[test]
    fn claims_inside_a_nested_module_are_not_the_components() {
        // A component embedding a core module that carries its own claims: those
        // do not sign the component, and are stripped from its hash.
        let inner = with_custom_section(&module("(module)"), CLAIMS_SECTION, b"inner.claims.sig");
        let mut component = COMPONENT_HEADER.to_vec();
        append_section(&mut component, CORE_MODULE_SECTION_ID, &inner);
        assert_eq!(find(&component).unwrap(), None);
        let mut expected = COMPONENT_HEADER.to_vec();
        append_section(&mut expected, CORE_MODULE_SECTION_ID, &module("(module)"));
        assert_eq!(strip(&component).unwrap(), expected);
    }

    #[test]
    fn garbage_is_malformed() {
        assert!(matches!(
            strip(b"not wasm at all"),
            Err(ClaimsError::Malformed { .. })
        ));
    }
}
