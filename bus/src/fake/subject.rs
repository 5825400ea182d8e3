//! NATS subject matching.

/// Whether `subject` matches `pattern`: tokens split on `.`, `*` matches one token,
/// a final `>` one or more.
pub fn matches(pattern: &str, subject: &str) -> bool {
    let mut subject = subject.split('.');
    for p in pattern.split('.') {
        match (p, subject.next()) {
            (">", Some(_)) => return true,
            (_, None) => return false,
            ("*", Some(_)) => {}
            (p, Some(s)) if p == s => {}
            _ => return false,
        }
    }
    subject.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn wildcards() {
        let cases = [
            ("a.b.c", "a.b.c", true),
            ("a.b.c", "a.b", false),
            ("a.b", "a.b.c", false),
            ("a.*.c", "a.x.c", true),
            ("a.*.c", "a.x.y.c", false),
            ("a.*", "a", false),
            ("a.>", "a.b", true),
            ("a.>", "a.b.c.d", true),
            ("a.>", "a", false),
            (">", "a", true),
            ("*.b.>", "x.b.y", true),
            ("*.b.>", "x.c.y", false),
            ("a.b", "a.bc", false),
        ];
        for (pattern, subject, want) in cases {
            assert_eq!(matches(pattern, subject), want, "{pattern} ~ {subject}");
        }
    }
}
