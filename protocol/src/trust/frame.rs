//! The text frame shared by signed commands and signed reports.
//!
//! ```text
//! lattice-sig <signer public key> <signature, base64url without padding>\n
//! <kind line, e.g. lattice-command/1>\n
//! <name> <value>\n          (fields, in a fixed order)
//! \n
//! <body bytes>
//! ```
//!
//! The signature covers every byte after the first line, exactly as received: a
//! verifier never re-serializes anything. Reading is strict (fixed field order,
//! canonical numbers), so one envelope has one byte form.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// The first token of a signed envelope.
pub(super) const SIG_TAG: &str = "lattice-sig";
/// Length of an ed25519 signature.
const SIGNATURE_LEN: usize = 64;
/// Longest header (everything before the body) read: far above any real one.
const MAX_HEAD: usize = 4096;

/// A signed envelope as read, before its signature is checked.
#[derive(Debug, Clone)]
pub(super) struct Frame<'a> {
    pub signer: &'a str,
    pub signature: [u8; SIGNATURE_LEN],
    /// Every byte after the first line: what the signature covers.
    pub signed: &'a [u8],
}

/// Why bytes are not a signed envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum FrameError {
    /// The bytes do not start with `lattice-sig `: no signature at all.
    Unsigned,
    /// A signature line or a header that is not well formed.
    Malformed(String),
}

/// Split off and read the signature line.
pub(super) fn read(bytes: &[u8]) -> Result<Frame<'_>, FrameError> {
    let tag = format!("{SIG_TAG} ");
    if !bytes.starts_with(tag.as_bytes()) {
        return Err(FrameError::Unsigned);
    }
    let end = bytes
        .iter()
        .take(MAX_HEAD)
        .position(|b| *b == b'\n')
        .ok_or_else(|| malformed("the signature line does not end"))?;
    let line = std::str::from_utf8(&bytes[tag.len()..end])
        .map_err(|_| malformed("the signature line is not UTF-8"))?;
    let (signer, sig) = line
        .split_once(' ')
        .ok_or_else(|| malformed("the signature line needs `lattice-sig KEY SIGNATURE`"))?;
    let sig = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| malformed("the signature is not base64url without padding"))?;
    let signature: [u8; SIGNATURE_LEN] = sig
        .try_into()
        .map_err(|_| malformed("the signature is not 64 bytes"))?;
    Ok(Frame {
        signer,
        signature,
        signed: &bytes[end + 1..],
    })
}

/// The whole envelope: the signature line, then the signed bytes.
pub(super) fn write(signer: &str, signature: &[u8], signed: &[u8]) -> Vec<u8> {
    let sig = URL_SAFE_NO_PAD.encode(signature);
    let mut out = Vec::with_capacity(signed.len() + signer.len() + sig.len() + 16);
    out.extend_from_slice(format!("{SIG_TAG} {signer} {sig}\n").as_bytes());
    out.extend_from_slice(signed);
    out
}

/// base64url without padding, as in the signature line.
pub(super) fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Strict base64url without padding.
pub(super) fn unb64(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

fn malformed(what: &str) -> FrameError {
    FrameError::Malformed(what.to_owned())
}

/// Reads the signed part: the kind line, `name value` fields in order, a blank
/// line, the body.
#[derive(Debug)]
pub(super) struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    /// Start reading `signed`, whose first line must be exactly `kind`.
    pub fn open(signed: &'a [u8], kind: &str) -> Result<Self, FrameError> {
        let mut fields = Fields { rest: signed };
        let line = fields.line()?;
        if line != kind {
            let found: String = line.chars().take(40).collect();
            return Err(FrameError::Malformed(format!(
                "expected a {kind} envelope, found '{found}'"
            )));
        }
        Ok(fields)
    }

    fn line(&mut self) -> Result<&'a str, FrameError> {
        let end = self
            .rest
            .iter()
            .take(MAX_HEAD)
            .position(|b| *b == b'\n')
            .ok_or_else(|| malformed("the header does not end with an empty line"))?;
        let line = std::str::from_utf8(&self.rest[..end])
            .map_err(|_| malformed("the header is not UTF-8"))?;
        self.rest = &self.rest[end + 1..];
        Ok(line)
    }

    /// The next line, which must be `name VALUE`; VALUE is returned.
    pub fn field(&mut self, name: &str) -> Result<&'a str, FrameError> {
        let line = self.line()?;
        line.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix(' '))
            .ok_or_else(|| {
                let found: String = line.chars().take(40).collect();
                FrameError::Malformed(format!("expected the field `{name}`, found '{found}'"))
            })
    }

    /// The field `name` if it is the next line.
    pub fn optional(&mut self, name: &str) -> Result<Option<&'a str>, FrameError> {
        let prefix = format!("{name} ");
        if self.rest.starts_with(prefix.as_bytes()) {
            return self.field(name).map(Some);
        }
        Ok(None)
    }

    /// A field holding a number in canonical decimal (no sign, no leading zero).
    pub fn number(&mut self, name: &str) -> Result<u64, FrameError> {
        let text = self.field(name)?;
        let canonical = !text.is_empty()
            && text.bytes().all(|b| b.is_ascii_digit())
            && (text == "0" || !text.starts_with('0'));
        canonical
            .then(|| text.parse().ok())
            .flatten()
            .ok_or_else(|| {
                FrameError::Malformed(format!("`{name}` is not a canonical number: '{text}'"))
            })
    }

    /// The empty line that ends the header, and the body after it.
    pub fn body(mut self) -> Result<&'a [u8], FrameError> {
        let line = self.line()?;
        if !line.is_empty() {
            let found: String = line.chars().take(40).collect();
            return Err(FrameError::Malformed(format!(
                "expected the empty line before the body, found '{found}'"
            )));
        }
        Ok(self.rest)
    }
}

/// Whether `value` can be a field value: no line breaks, no control characters,
/// not empty, no longer than 256 bytes.
pub(super) fn valid_value(value: &str) -> bool {
    !value.is_empty() && value.len() <= 256 && !value.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_signature_from_signed_bytes() {
        let bytes = write("CKEY", &[7; 64], b"kind/1\nname v\n\nbody");
        let frame = read(&bytes).unwrap();
        assert_eq!((frame.signer, frame.signature), ("CKEY", [7; 64]));
        let mut fields = Fields::open(frame.signed, "kind/1").unwrap();
        assert_eq!(fields.optional("other").unwrap(), None);
        assert_eq!(fields.field("name").unwrap(), "v");
        assert_eq!(fields.body().unwrap(), b"body");
    }

    #[test]
    fn numbers_are_canonical() {
        for (text, ok) in [("0", true), ("12", true), ("012", false), ("+1", false)] {
            let signed = format!("k\nn {text}\n\n");
            let mut fields = Fields::open(signed.as_bytes(), "k").unwrap();
            assert_eq!(fields.number("n").is_ok(), ok, "{text}");
        }
        let signed = b"k\nn 18446744073709551616\n\n";
        assert!(Fields::open(signed, "k").unwrap().number("n").is_err());
    }

    #[test]
    fn unsigned_and_malformed_frames() {
        assert_eq!(read(b"{\"v\":1}").unwrap_err(), FrameError::Unsigned);
        for bad in [
            &b"lattice-sig K"[..],
            b"lattice-sig K AAAA\n",
            b"lattice-sig K !!\n",
        ] {
            assert!(matches!(read(bad), Err(FrameError::Malformed(_))));
        }
    }
}
