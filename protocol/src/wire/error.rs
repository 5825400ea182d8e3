//! Why a value could not be encoded or decoded, and where in the value.

use std::fmt;

/// A problem at one place in a value: `args[1].items[3].name: expected string,
/// found integer`.
///
/// The path starts at `value`, `args[i]` or `results[i]` and goes down with
/// `.field` (record), `.0` (tuple), `[3]` (list), `.case` (variant payload), `.some`
/// (option payload) and `.ok` / `.err` (result payload).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct WireError {
    path: String,
    problem: Problem,
}

impl WireError {
    /// Where in the value, e.g. `args[1].items[3].name`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What is wrong there.
    pub fn problem(&self) -> &Problem {
        &self.problem
    }

    /// A problem at a place the caller will name by prefixing segments.
    pub(crate) fn here(problem: Problem) -> Self {
        Self {
            path: String::new(),
            problem,
        }
    }

    /// Put `segment` in front of the path, on the way out of the recursion: paths cost
    /// nothing unless something fails.
    pub(crate) fn within(mut self, segment: Segment<'_>) -> Self {
        self.path.insert_str(0, &segment.to_string());
        self
    }
}

/// One step of a [`WireError`] path.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Segment<'a> {
    /// The whole value: `value`, `args`, `results`.
    Root(&'a str),
    /// One parameter or result: `args[1]`.
    RootIndex(&'a str, usize),
    /// A record field or a variant, option or result payload: `.name`, `.ok`.
    Name(&'a str),
    /// A tuple element: `.0`.
    Position(usize),
    /// A list element: `[3]`.
    Element(usize),
}

impl fmt::Display for Segment<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Segment::Root(root) => f.write_str(root),
            Segment::RootIndex(root, i) => write!(f, "{root}[{i}]"),
            Segment::Name(name) => write!(f, ".{name}"),
            Segment::Position(i) => write!(f, ".{i}"),
            Segment::Element(i) => write!(f, "[{i}]"),
        }
    }
}

/// What is wrong at the place a [`WireError`] names.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Problem {
    /// The value (encoding) or the bytes (decoding) are of another kind than the type.
    #[error("expected {expected}, found {found}")]
    Mismatch {
        /// What the type asks for, e.g. `string`.
        expected: String,
        /// What was there, e.g. `integer`.
        found: String,
    },
    /// A record, tuple or argument list of the wrong length.
    #[error("expected {expected} {what}, found {found}")]
    Count {
        /// What is counted, e.g. `fields`.
        what: &'static str,
        /// How many the type has.
        expected: usize,
        /// How many there were.
        found: usize,
    },
    /// The bytes end inside a value.
    #[error("the input ends early: at least {missing} more byte(s) needed")]
    Truncated {
        /// How many more bytes were needed at least.
        missing: usize,
    },
    /// Bytes after the end of the value.
    #[error("{count} byte(s) follow the end of the value")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// An integer the type cannot hold.
    #[error("{value} is out of range for {ty}")]
    OutOfRange {
        /// The integer.
        value: i128,
        /// The WIT type, e.g. `u8`.
        ty: &'static str,
    },
    /// A float 64 sent for an `f32` that does not fit exactly.
    #[error("float64 {value} is not exactly representable as f32")]
    InexactF32 {
        /// The value sent.
        value: f64,
    },
    /// A string that is not UTF-8.
    #[error("the string is not valid UTF-8 (from byte {valid_up_to} on)")]
    InvalidUtf8 {
        /// How many leading bytes are valid.
        valid_up_to: usize,
    },
    /// A `char` that is not exactly one Unicode scalar value.
    #[error("a char is exactly one Unicode scalar value; found {count}")]
    NotOneChar {
        /// How many scalar values there were.
        count: usize,
    },
    /// A variant, enum or result case the type does not have.
    #[error("case index {index} is out of range: the {kind} has {count} cases")]
    CaseIndex {
        /// The index sent.
        index: i128,
        /// `variant`, `enum` or `result`.
        kind: &'static str,
        /// How many cases the type has.
        count: usize,
    },
    /// A case, field or flag name the type does not have (encoding).
    #[error("unknown {what} `{name}`; the type has {known}")]
    UnknownName {
        /// `case`, `flag`, ...
        what: &'static str,
        /// The name given.
        name: String,
        /// The names the type has (the first few).
        known: String,
    },
    /// A record field out of declaration order (encoding).
    #[error("field {index} is named `{found}`, but the record's field {index} is `{expected}`")]
    FieldName {
        /// The field's position.
        index: usize,
        /// The type's field at that position.
        expected: String,
        /// The value's field at that position.
        found: String,
    },
    /// A flag set twice in a value (encoding).
    #[error("flag `{name}` is given twice")]
    DuplicateFlag {
        /// The flag.
        name: String,
    },
    /// A flag bit past the type's flags.
    #[error("flag bit {bit} is set, but the flags type has only {count} flags")]
    UnknownFlagBit {
        /// The bit.
        bit: u64,
        /// How many flags the type has.
        count: usize,
    },
    /// A case with a payload sent without one, or the reverse.
    #[error("case `{case}` {}", if *expects_payload {
        "carries a payload, but the value has none"
    } else {
        "carries no payload, but the value has one"
    })]
    Payload {
        /// The case's name.
        case: String,
        /// Whether the type's case carries a payload.
        expects_payload: bool,
    },
    /// A resource handle, which cannot cross hosts.
    #[error(
        "resource `{name}` of `{interface}`: resource handles cannot cross hosts; pass \
         the data instead of the handle, or keep caller and callee on one host"
    )]
    Resource {
        /// The resource's interface.
        interface: String,
        /// The resource's name.
        name: String,
    },
    /// Decoded, the values would take more memory than the call allows.
    #[error("decoded, the value would take more than {limit} bytes of memory")]
    TooLarge {
        /// The bound, in bytes.
        limit: usize,
    },
    /// Nested deeper than [`MAX_DEPTH`](super::MAX_DEPTH).
    #[error("the value nests deeper than {max} levels")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// A string, list or binary longer than MessagePack can say.
    #[error("a {what} of {len} is too long for MessagePack (at most 4294967295)")]
    TooLong {
        /// `string`, `list`, ...
        what: &'static str,
        /// Its length.
        len: usize,
    },
}

/// `names` for a message: `cases a, b, c` (the first few, then a count).
pub(crate) fn known_names(
    what: &str,
    names: impl ExactSizeIterator<Item = impl AsRef<str>>,
) -> String {
    const SHOWN: usize = 8;
    let total = names.len();
    if total == 0 {
        return format!("no {what}");
    }
    let mut text = format!("{what} ");
    for (i, name) in names.take(SHOWN).enumerate() {
        if i > 0 {
            text.push_str(", ");
        }
        text.push_str(name.as_ref());
    }
    if total > SHOWN {
        text.push_str(&format!(" and {} more", total - SHOWN));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_built_outside_in() {
        let e = WireError::here(Problem::Mismatch {
            expected: "string".into(),
            found: "integer".into(),
        })
        .within(Segment::Name("name"))
        .within(Segment::Element(3))
        .within(Segment::Name("items"))
        .within(Segment::RootIndex("args", 1));
        assert_eq!(
            e.to_string(),
            "args[1].items[3].name: expected string, found integer"
        );
        assert_eq!(e.path(), "args[1].items[3].name");
    }

    #[test]
    fn known_names_are_abbreviated() {
        assert_eq!(known_names("cases", ["a", "b"].iter()), "cases a, b");
        let many: Vec<String> = (0..10).map(|i| format!("c{i}")).collect();
        assert_eq!(
            known_names("cases", many.iter()),
            "cases c0, c1, c2, c3, c4, c5, c6, c7 and 2 more"
        );
        assert_eq!(
            known_names("flags", Vec::<String>::new().iter()),
            "no flags"
        );
    }
}
