//! The lattice's NATS header names as async-nats `HeaderName`s made once: reading
//! or writing a header by a `&str` name allocates that name on every message.

use async_nats::header::HeaderName;
use lattice_protocol::wire::rpc::headers;

pub const CALL: HeaderName = HeaderName::from_static(headers::CALL);
pub const TRACEPARENT: HeaderName = HeaderName::from_static(headers::TRACEPARENT);
pub const ERROR: HeaderName = HeaderName::from_static(headers::ERROR);
pub const BODY: HeaderName = HeaderName::from_static(headers::BODY);
pub const CHUNK: HeaderName = HeaderName::from_static(headers::CHUNK);
pub const DESCRIBE: HeaderName = HeaderName::from_static(headers::DESCRIBE);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_name_reads_a_header_written_by_its_text() {
        for (name, text) in [
            (CALL, headers::CALL),
            (TRACEPARENT, headers::TRACEPARENT),
            (ERROR, headers::ERROR),
            (BODY, headers::BODY),
            (CHUNK, headers::CHUNK),
            (DESCRIBE, headers::DESCRIBE),
        ] {
            let mut h = async_nats::HeaderMap::new();
            h.insert(text, "x");
            assert_eq!(h.get(name).map(|v| v.as_str()), Some("x"), "{text}");
        }
    }
}
