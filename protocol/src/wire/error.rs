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
    Mismatch { expected: String, found: String },
    /// A record, tuple or argument list of the wrong length.
    #[error("expected {expected} {what}, found {found}")]
    Count {
        what: &'static str,
        expected: usize,
        found: usize,
    },
    #[error("the input ends early: at least {missing} more byte(s) needed")]
    Truncated { missing: usize },
    #[error("{count} byte(s) follow the end of the value")]
    TrailingBytes { count: usize },
    #[error("{value} is out of range for {ty}")]
    OutOfRange { value: i128, ty: &'static str },
    #[error("float64 {value} is not exactly representable as f32")]
    InexactF32 { value: f64 },
    #[error("the string is not valid UTF-8 (from byte {valid_up_to} on)")]
    InvalidUtf8 { valid_up_to: usize },
    #[error("a char is exactly one Unicode scalar value; found {count}")]
    NotOneChar { count: usize },
    #[error("case index {index} is out of range: the {kind} has {count} cases")]
    CaseIndex {
        index: i128,
        kind: &'static str,
        count: usize,
    },
    #[error("unknown {what} `{name}`; the type has {known}")]
    UnknownName {
        what: &'static str,
        name: String,
        known: String,
    },
    #[error("field {index} is named `{found}`, but the record's field {index} is `{expected}`")]
    FieldName {
        index: usize,
        expected: String,
        found: String,
    },
    #[error("flag `{name}` is given twice")]
    DuplicateFlag { name: String },
    #[error("flag bit {bit} is set, but the flags type has only {count} flags")]
    UnknownFlagBit { bit: u64, count: usize },
    #[error("case `{case}` {}", if *expects_payload {
        "carries a payload, but the value has none"
    } else {
        "carries no payload, but the value has one"
    })]
    Payload { case: String, expects_payload: bool },
    #[error(
        "resource `{name}` of `{interface}`: resource handles cannot cross hosts; pass \
         the data instead of the handle, or keep caller and callee on one host"
    )]
    Resource { interface: String, name: String },
    #[error("the value nests deeper than {max} levels")]
    TooDeep { max: usize },
    #[error("a {what} of {len} is too long for MessagePack (at most 4294967295)")]
    TooLong { what: &'static str, len: usize },
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
