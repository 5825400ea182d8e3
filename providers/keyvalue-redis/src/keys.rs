//! Where a bucket's keys live in Redis: the bucket `default` (or an empty name) is
//! Redis's keyspace as it is; any other bucket `b` keeps key `k` as `b:k`.
//!
//! So the default bucket also sees the keys of other buckets (`b:k` is a key of
//! `default` too), and a bucket named `a:b` shares keys with bucket `a`: buckets
//! are a naming convention in one Redis database, not a wall.

/// The bucket Redis's own keyspace is.
const DEFAULT_BUCKET: &str = "default";

/// The Redis key of `key` in `bucket`.
pub fn redis_key(bucket: &str, key: &str) -> String {
    match prefix(bucket) {
        Some(prefix) => format!("{prefix}{key}"),
        None => key.to_owned(),
    }
}

/// What every Redis key of `bucket` starts with; `None` for the default bucket.
fn prefix(bucket: &str) -> Option<String> {
    (!bucket.is_empty() && bucket != DEFAULT_BUCKET).then(|| format!("{bucket}:"))
}

/// The `SCAN ... MATCH` pattern of every key of `bucket`.
pub fn scan_pattern(bucket: &str) -> String {
    match prefix(bucket) {
        Some(prefix) => format!("{}*", escape_glob(&prefix)),
        None => "*".to_owned(),
    }
}

/// The bucket's key of a Redis key SCAN found for `bucket`.
pub fn bucket_key<'a>(bucket: &str, redis_key: &'a str) -> Option<&'a str> {
    match prefix(bucket) {
        Some(prefix) => redis_key.strip_prefix(prefix.as_str()),
        None => Some(redis_key),
    }
}

/// `text` matched literally by a Redis glob pattern: `*`, `?`, `[`, `]` and `\`
/// escaped with a backslash.
fn escape_glob(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_prefix_their_keys() {
        for (bucket, key, redis, pattern) in [
            ("default", "a", "a", "*"),
            ("", "a", "a", "*"),
            ("users", "42", "users:42", "users:*"),
            ("users", "", "users:", "users:*"),
            (
                "we*ird?[x]\\",
                "k",
                "we*ird?[x]\\:k",
                "we\\*ird\\?\\[x\\]\\\\:*",
            ),
        ] {
            assert_eq!(redis_key(bucket, key), redis, "{bucket}");
            assert_eq!(scan_pattern(bucket), pattern, "{bucket}");
            assert_eq!(bucket_key(bucket, redis), Some(key), "{bucket}");
        }
        assert_eq!(bucket_key("users", "other:1"), None);
    }
}
