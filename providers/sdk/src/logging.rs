//! Logs of a provider: to stderr (a host passes its stderr through to its own), at
//! the level the host was started with.

/// Log to stderr with the filter in `LATTICE_LOG`, else `RUST_LOG`, else `info` (`async_nats` at
/// `warn`).
///
/// These are the variables a host passes on to the providers it starts (with
/// `PATH` and `OTEL_*`, nothing else of its environment), so reading them here is part of the
/// provider contract rather than configuration. Call it once, first thing in
/// `main`; a second call does nothing.
pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("LATTICE_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info,async_nats=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// `url` with any password (or whole user part) replaced by `***`, for messages and
/// logs: `redis://:pw@h:1/0` → `redis://***@h:1/0`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***{}", &rest[at..]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact_url("redis://:pw@h:1/0"), "redis://***@h:1/0");
        assert_eq!(redact_url("nats://u:pw@h"), "nats://***@h");
        assert_eq!(redact_url("redis://h:1/0"), "redis://h:1/0");
        assert_eq!(redact_url("redis://h/a@b"), "redis://h/a@b");
        assert_eq!(redact_url("nonsense"), "nonsense");
    }
}
