//! The few MessagePack formats the wire encoding uses: a writer that always picks the
//! shortest format, and a strict reader over a byte slice that accepts every format
//! of a family (any integer width, `str8` for a short string, ...), never panics and
//! never trusts a declared length beyond the bytes that remain.
//!
//! Hand-written rather than `rmp` so that writing into a `Vec` is infallible and
//! reading can report exactly what it found; the tests check both directions against
//! `rmpv`, an independent implementation.

use super::error::Problem;

/// Where encoded bytes go: a `Vec<u8>`, or nowhere (type checking walks the same code
/// as encoding, without output).
pub(crate) trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// A sink that keeps nothing.
pub(crate) struct Discard;

impl Sink for Discard {
    fn put(&mut self, _: &[u8]) {}
}

pub(crate) fn write_nil(out: &mut impl Sink) {
    out.put(&[0xc0]);
}

pub(crate) fn write_bool(out: &mut impl Sink, b: bool) {
    out.put(&[if b { 0xc3 } else { 0xc2 }]);
}

/// The shortest unsigned format: positive fixint, uint8, uint16, uint32 or uint64.
pub(crate) fn write_uint(out: &mut impl Sink, v: u64) {
    if v < 0x80 {
        out.put(&[v as u8]);
    } else if let Ok(v) = u8::try_from(v) {
        out.put(&[0xcc, v]);
    } else if let Ok(v) = u16::try_from(v) {
        out.put(&[0xcd]);
        out.put(&v.to_be_bytes());
    } else if let Ok(v) = u32::try_from(v) {
        out.put(&[0xce]);
        out.put(&v.to_be_bytes());
    } else {
        out.put(&[0xcf]);
        out.put(&v.to_be_bytes());
    }
}

/// Non-negative values as [`write_uint`]; negative ones in the shortest of negative
/// fixint, int8, int16, int32, int64.
pub(crate) fn write_sint(out: &mut impl Sink, v: i64) {
    if let Ok(v) = u64::try_from(v) {
        write_uint(out, v);
    } else if v >= -32 {
        out.put(&[v as u8]);
    } else if let Ok(v) = i8::try_from(v) {
        out.put(&[0xd0, v as u8]);
    } else if let Ok(v) = i16::try_from(v) {
        out.put(&[0xd1]);
        out.put(&v.to_be_bytes());
    } else if let Ok(v) = i32::try_from(v) {
        out.put(&[0xd2]);
        out.put(&v.to_be_bytes());
    } else {
        out.put(&[0xd3]);
        out.put(&v.to_be_bytes());
    }
}

/// float32 with the exact bits (NaN payloads included).
pub(crate) fn write_f32(out: &mut impl Sink, v: f32) {
    out.put(&[0xca]);
    out.put(&v.to_bits().to_be_bytes());
}

/// float64 with the exact bits.
pub(crate) fn write_f64(out: &mut impl Sink, v: f64) {
    out.put(&[0xcb]);
    out.put(&v.to_bits().to_be_bytes());
}

pub(crate) fn write_str(out: &mut impl Sink, s: &str) -> Result<(), Problem> {
    write_len(out, "string", s.len(), Some(0xa0), [0xd9, 0xda, 0xdb])?;
    out.put(s.as_bytes());
    Ok(())
}

/// The header of a bin of `len` bytes; the caller writes the bytes.
pub(crate) fn write_bin_header(out: &mut impl Sink, len: usize) -> Result<(), Problem> {
    write_len(out, "list<u8>", len, None, [0xc4, 0xc5, 0xc6])
}

/// The header of an array of `len` elements; the caller writes the elements.
pub(crate) fn write_array_header(out: &mut impl Sink, len: usize) -> Result<(), Problem> {
    if len < 16 {
        out.put(&[0x90 | len as u8]);
        return Ok(());
    }
    // There is no array8: array16 and array32 only.
    write_len(out, "list", len, None, [0xdc, 0xdc, 0xdd])
}

/// A length header: fix format (`fix` | len < 32) when there is one, then the
/// 8, 16 or 32-bit format.
fn write_len(
    out: &mut impl Sink,
    what: &'static str,
    len: usize,
    fix: Option<u8>,
    [m8, m16, m32]: [u8; 3],
) -> Result<(), Problem> {
    match (fix, len) {
        (Some(fix), 0..32) => out.put(&[fix | len as u8]),
        (_, 0..=0xff) if m8 != m16 => out.put(&[m8, len as u8]),
        (_, 0..=0xffff) => {
            out.put(&[m16]);
            out.put(&(len as u16).to_be_bytes());
        }
        _ => {
            let len32 = u32::try_from(len).map_err(|_| Problem::TooLong { what, len })?;
            out.put(&[m32]);
            out.put(&len32.to_be_bytes());
        }
    }
    Ok(())
}

/// What the reader found where it expected something else, in MessagePack words.
pub(crate) fn describe(marker: Option<u8>) -> &'static str {
    match marker {
        None => "the end of the input",
        Some(0x00..=0x7f | 0xe0..=0xff | 0xcc..=0xd3) => "integer",
        Some(0xc0) => "nil",
        Some(0xc2 | 0xc3) => "boolean",
        Some(0xca) => "float32",
        Some(0xcb) => "float64",
        Some(0xa0..=0xbf | 0xd9..=0xdb) => "string",
        Some(0xc4..=0xc6) => "binary",
        Some(0x90..=0x9f | 0xdc | 0xdd) => "array",
        Some(0x80..=0x8f | 0xde | 0xdf) => "map",
        Some(0xc7..=0xc9 | 0xd4..=0xd8) => "extension",
        Some(0xc1) => "the never-used byte 0xc1",
    }
}

/// Why a read failed: the next value is of another kind (the caller, who knows the
/// type, words the message), or it is malformed.
#[derive(Debug)]
pub(crate) enum ReadError {
    Found(&'static str),
    Bad(Problem),
}

impl From<Problem> for ReadError {
    fn from(p: Problem) -> Self {
        ReadError::Bad(p)
    }
}

/// A float as it was on the wire.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Float {
    F32(f32),
    F64(f64),
}

/// Reads values from the front of a byte slice.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    fn peek(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Problem> {
        if n > self.rest.len() {
            return Err(Problem::Truncated {
                missing: n - self.rest.len(),
            });
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn take_array<const N: usize>(&mut self) -> Result<[u8; N], Problem> {
        let bytes = self.take(N)?;
        let mut out = [0; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// Consume the marker if `accept` returns something for it.
    fn marker<T>(&mut self, accept: impl Fn(u8) -> Option<T>) -> Result<T, ReadError> {
        match self.peek().and_then(&accept) {
            Some(t) => {
                self.rest = &self.rest[1..];
                Ok(t)
            }
            None => Err(ReadError::Found(describe(self.peek()))),
        }
    }

    /// A nil, if that is what comes next.
    pub fn nil(&mut self) -> bool {
        self.marker(|m| (m == 0xc0).then_some(())).is_ok()
    }

    pub fn bool(&mut self) -> Result<bool, ReadError> {
        self.marker(|m| match m {
            0xc2 => Some(false),
            0xc3 => Some(true),
            _ => None,
        })
    }

    /// An integer in any of MessagePack's integer formats.
    pub fn int(&mut self) -> Result<i128, ReadError> {
        let m =
            self.marker(|m| matches!(m, 0x00..=0x7f | 0xe0..=0xff | 0xcc..=0xd3).then_some(m))?;
        Ok(match m {
            0x00..=0x7f => i128::from(m),
            0xe0..=0xff => i128::from(m as i8),
            0xcc => i128::from(u8::from_be_bytes(self.take_array()?)),
            0xcd => i128::from(u16::from_be_bytes(self.take_array()?)),
            0xce => i128::from(u32::from_be_bytes(self.take_array()?)),
            0xcf => i128::from(u64::from_be_bytes(self.take_array()?)),
            0xd0 => i128::from(i8::from_be_bytes(self.take_array()?)),
            0xd1 => i128::from(i16::from_be_bytes(self.take_array()?)),
            0xd2 => i128::from(i32::from_be_bytes(self.take_array()?)),
            _ => i128::from(i64::from_be_bytes(self.take_array()?)),
        })
    }

    pub fn float(&mut self) -> Result<Float, ReadError> {
        let m = self.marker(|m| matches!(m, 0xca | 0xcb).then_some(m))?;
        Ok(if m == 0xca {
            Float::F32(f32::from_bits(u32::from_be_bytes(self.take_array()?)))
        } else {
            Float::F64(f64::from_bits(u64::from_be_bytes(self.take_array()?)))
        })
    }

    /// A str, checked to be UTF-8.
    pub fn str(&mut self) -> Result<&'a str, ReadError> {
        let m = self.marker(|m| matches!(m, 0xa0..=0xbf | 0xd9..=0xdb).then_some(m))?;
        let len = match m {
            0xd9 => self.len8()?,
            0xda => self.len16()?,
            0xdb => self.len32()?,
            fix => usize::from(fix & 0x1f),
        };
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes).map_err(|e| {
            ReadError::Bad(Problem::InvalidUtf8 {
                valid_up_to: e.valid_up_to(),
            })
        })
    }

    pub fn bin(&mut self) -> Result<&'a [u8], ReadError> {
        let m = self.marker(|m| matches!(m, 0xc4..=0xc6).then_some(m))?;
        let len = match m {
            0xc4 => self.len8()?,
            0xc5 => self.len16()?,
            _ => self.len32()?,
        };
        Ok(self.take(len)?)
    }

    /// An array header. Every element takes at least one byte, so a length beyond
    /// the remaining bytes is refused here, before anyone allocates for it.
    pub fn array(&mut self) -> Result<usize, ReadError> {
        let m = self.marker(|m| matches!(m, 0x90..=0x9f | 0xdc | 0xdd).then_some(m))?;
        let len = match m {
            0xdc => self.len16()?,
            0xdd => self.len32()?,
            fix => usize::from(fix & 0x0f),
        };
        if len > self.remaining() {
            return Err(ReadError::Bad(Problem::Truncated {
                missing: len - self.remaining(),
            }));
        }
        Ok(len)
    }

    fn len8(&mut self) -> Result<usize, Problem> {
        Ok(usize::from(self.take_array::<1>()?[0]))
    }

    fn len16(&mut self) -> Result<usize, Problem> {
        Ok(usize::from(u16::from_be_bytes(self.take_array()?)))
    }

    fn len32(&mut self) -> Result<usize, Problem> {
        let len = u32::from_be_bytes(self.take_array()?);
        // On 16-bit targets a length that does not fit cannot be in the input anyway.
        usize::try_from(len).map_err(|_| Problem::Truncated {
            missing: usize::MAX,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(f: impl Fn(&mut Vec<u8>)) -> Vec<u8> {
        let mut out = Vec::new();
        f(&mut out);
        out
    }

    #[test]
    fn integers_take_the_shortest_format() {
        let cases: [(i64, &[u8]); 12] = [
            (0, &[0x00]),
            (127, &[0x7f]),
            (128, &[0xcc, 0x80]),
            (255, &[0xcc, 0xff]),
            (256, &[0xcd, 0x01, 0x00]),
            (65536, &[0xce, 0x00, 0x01, 0x00, 0x00]),
            (-1, &[0xff]),
            (-32, &[0xe0]),
            (-33, &[0xd0, 0xdf]),
            (-129, &[0xd1, 0xff, 0x7f]),
            (-32769, &[0xd2, 0xff, 0xff, 0x7f, 0xff]),
            (i64::MIN, &[0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0]),
        ];
        for (v, want) in cases {
            let got = bytes(|o| write_sint(o, v));
            assert_eq!(got, want, "{v}");
            assert_eq!(Reader::new(&got).int().unwrap(), i128::from(v));
        }
        let max = bytes(|o| write_uint(o, u64::MAX));
        assert_eq!(max, [0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(Reader::new(&max).int().unwrap(), i128::from(u64::MAX));
    }

    #[test]
    fn lengths_pick_fix_8_16_32_formats() {
        assert_eq!(bytes(|o| write_str(o, "hi").unwrap()), b"\xa2hi");
        assert_eq!(bytes(|o| write_str(o, &"x".repeat(31)).unwrap())[0], 0xbf);
        assert_eq!(
            bytes(|o| write_str(o, &"x".repeat(32)).unwrap())[..2],
            [0xd9, 32]
        );
        assert_eq!(
            bytes(|o| write_str(o, &"x".repeat(255)).unwrap())[..2],
            [0xd9, 255]
        );
        assert_eq!(
            bytes(|o| write_str(o, &"x".repeat(256)).unwrap())[..3],
            [0xda, 1, 0]
        );
        assert_eq!(bytes(|o| write_bin_header(o, 3).unwrap()), [0xc4, 3]);
        assert_eq!(bytes(|o| write_bin_header(o, 300).unwrap()), [0xc5, 1, 44]);
        assert_eq!(
            bytes(|o| write_bin_header(o, 70000).unwrap()),
            [0xc6, 0, 1, 0x11, 0x70]
        );
        assert_eq!(bytes(|o| write_array_header(o, 15).unwrap()), [0x9f]);
        assert_eq!(bytes(|o| write_array_header(o, 16).unwrap()), [0xdc, 0, 16]);
        assert_eq!(
            bytes(|o| write_array_header(o, 70000).unwrap()),
            [0xdd, 0, 1, 0x11, 0x70]
        );
    }

    #[test]
    fn reader_refuses_lengths_beyond_the_input() {
        let mut r = Reader::new(&[0xdd, 0xff, 0xff, 0xff, 0xff, 0x00]);
        assert!(matches!(
            r.array(),
            Err(ReadError::Bad(Problem::Truncated { .. }))
        ));
        let mut r = Reader::new(&[0xdb, 0xff, 0xff, 0xff, 0xff, b'a']);
        assert!(matches!(
            r.str(),
            Err(ReadError::Bad(Problem::Truncated { .. }))
        ));
        let mut r = Reader::new(&[0xcd, 0x01]);
        assert!(matches!(
            r.int(),
            Err(ReadError::Bad(Problem::Truncated { missing: 1 }))
        ));
    }

    #[test]
    fn reader_names_what_it_found() {
        let mut r = Reader::new(&[0x81, 0x00, 0x00]);
        assert!(matches!(r.str(), Err(ReadError::Found("map"))));
        assert!(matches!(
            Reader::new(&[]).int(),
            Err(ReadError::Found("the end of the input"))
        ));
        assert!(matches!(
            Reader::new(&[0xc1]).bool(),
            Err(ReadError::Found(_))
        ));
        let mut r = Reader::new(&[0xa1, 0xff]);
        assert!(matches!(
            r.str(),
            Err(ReadError::Bad(Problem::InvalidUtf8 { valid_up_to: 0 }))
        ));
    }
}
