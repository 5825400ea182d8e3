//! The HTTP plumbing the example components share (`features`, `net-client`,
//! `shop-auth`): percent-decoded query parameters and a `text/plain` reply.

use wasi::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

/// What a route answers: a status and a `text/plain` body.
#[derive(Debug, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            body: body.into(),
        }
    }

    pub fn ok(body: impl Into<Vec<u8>>) -> Self {
        Self::new(200, body)
    }

    pub fn missing() -> Self {
        Self::new(404, "missing\n")
    }

    pub fn not_found() -> Self {
        Self::new(404, "no such route\n")
    }

    pub fn bad_request(detail: impl std::fmt::Display) -> Self {
        Self::new(400, format!("bad request: {detail}\n"))
    }

    /// The host refused or failed an operation.
    pub fn error(detail: impl std::fmt::Display) -> Self {
        Self::new(500, format!("error: {detail}\n"))
    }

    /// 401, sent with the `www-authenticate: Bearer` challenge.
    pub fn unauthorized() -> Self {
        Self::new(401, "unauthorized\n")
    }

    /// Sets the response and streams the body. The body is written in 4 KiB chunks,
    /// the most one `blocking-write-and-flush` may carry.
    pub fn send(self, response_out: ResponseOutparam) {
        let mut headers = vec![
            ("content-type".to_string(), b"text/plain".to_vec()),
            (
                "content-length".to_string(),
                self.body.len().to_string().into_bytes(),
            ),
        ];
        if self.status == 401 {
            headers.push(("www-authenticate".to_string(), b"Bearer".to_vec()));
        }
        let headers = Fields::from_list(&headers).expect("static headers are valid");
        let response = OutgoingResponse::new(headers);
        response
            .set_status_code(self.status)
            .expect("status code is valid");
        let outgoing = response.body().expect("body is taken once");
        ResponseOutparam::set(response_out, Ok(response));
        let stream = outgoing.write().expect("stream is taken once");
        for chunk in self.body.chunks(4096) {
            stream
                .blocking_write_and_flush(chunk)
                .expect("host accepted the body");
        }
        drop(stream);
        OutgoingBody::finish(outgoing, None).expect("body is complete");
    }
}

/// A request's path and its decoded query parameters.
pub fn target(request: &IncomingRequest) -> (String, Query) {
    let path_with_query = request.path_with_query().unwrap_or_default();
    match path_with_query.split_once('?') {
        Some((path, query)) => (path.to_owned(), Query::parse(query)),
        None => (path_with_query, Query::parse("")),
    }
}

/// A decoded `application/x-www-form-urlencoded` query string.
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(raw: &str) -> Self {
        let pairs = raw
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                (decode(key), decode(value))
            })
            .collect();
        Self(pairs)
    }

    /// The first value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The first value of `name`, or a 400 reply naming the missing parameter.
    pub fn required(&self, name: &str) -> Result<&str, Reply> {
        self.get(name)
            .ok_or_else(|| Reply::bad_request(format!("query parameter `{name}` is required")))
    }
}

/// Percent-decoding, with `+` as a space. Invalid escapes are kept as they are.
pub fn decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match bytes.get(i + 1..i + 3).and_then(hex_byte) {
                Some(byte) => {
                    out.push(byte);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_byte(pair: &[u8]) -> Option<u8> {
    let digit = |b: u8| char::from(b).to_digit(16);
    Some((digit(pair[0])? * 16 + digit(pair[1])?) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_parameters() {
        let query = Query::parse("customer=Ann+Lee&items=apple%3A2&coupon=&flag");
        assert_eq!(query.get("customer"), Some("Ann Lee"));
        assert_eq!(query.get("items"), Some("apple:2"));
        assert_eq!(query.get("coupon"), Some(""));
        assert_eq!(query.get("flag"), Some(""));
        assert_eq!(query.get("other"), None);
    }
}
