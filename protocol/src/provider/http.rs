//! HTTP forwarded over the lattice: how an ingress that does not run a component
//! (the `http-gateway` provider) hands a request to a host that does. `wasi:http`
//! passes requests as resources, which cannot cross processes, so a host serves
//! every component exporting `wasi:http/incoming-handler` that a link from a gateway
//! points at with one more, resource-free function:
//!
//! ```wit
//! package lattice:http;
//! interface gateway {
//!     record request { method: string, path-with-query: string,
//!                      headers: list<tuple<string, list<u8>>>, body: list<u8> }
//!     record response { status: u16, headers: list<tuple<string, list<u8>>>, body: list<u8> }
//!     handle: func(request: request) -> result<response, string>;
//! }
//! ```
//!
//! A link that carries `wasi:http/incoming-handler` from the gateway to the
//! component allows calls to `lattice:http/gateway`.

use crate::wire::{WitType, WitValue};

/// The gateway interface's WIT namespace.
pub const NAMESPACE: &str = "lattice";
/// The gateway interface's WIT package.
pub const PACKAGE: &str = "http";
/// The gateway interface's name.
pub const INTERFACE: &str = "gateway";
/// The gateway's one function.
pub const FUNCTION: &str = "handle";
/// `namespace:package/interface` of the gateway interface.
pub const KEY: &str = "lattice:http/gateway";
/// The interface a link names to allow gateway calls.
pub const LINKED_AS: &str = "wasi:http/incoming-handler";

fn headers() -> WitType {
    WitType::list(WitType::Tuple(vec![
        WitType::String,
        WitType::list(WitType::U8),
    ]))
}

/// The `request` record.
pub fn request_type() -> WitType {
    WitType::record([
        ("method", WitType::String),
        ("path-with-query", WitType::String),
        ("headers", headers()),
        ("body", WitType::list(WitType::U8)),
    ])
}

/// The `response` record.
pub fn response_type() -> WitType {
    WitType::record([
        ("status", WitType::U16),
        ("headers", headers()),
        ("body", WitType::list(WitType::U8)),
    ])
}

/// Parameter types of `handle`.
pub fn params() -> Vec<WitType> {
    vec![request_type()]
}

/// Result types of `handle`.
pub fn results() -> Vec<WitType> {
    vec![WitType::result(
        Some(response_type()),
        Some(WitType::String),
    )]
}

/// An HTTP request or response in plain data.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    /// Requests: the method; responses: empty.
    pub method: String,
    /// Requests: path and query; responses: empty.
    pub path_with_query: String,
    /// Responses: the status; requests: 0.
    pub status: u16,
    /// Header names and values, in order.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The whole body.
    pub body: Vec<u8>,
}

fn bytes_value(bytes: &[u8]) -> WitValue {
    WitValue::Bytes(bytes.to_vec())
}

fn headers_value(headers: &[(String, Vec<u8>)]) -> WitValue {
    WitValue::List(
        headers
            .iter()
            .map(|(k, v)| WitValue::Tuple(vec![WitValue::String(k.clone()), bytes_value(v)]))
            .collect(),
    )
}

fn value_bytes(value: &WitValue) -> Vec<u8> {
    value.as_bytes().map(|b| b.into_owned()).unwrap_or_default()
}

impl Message {
    /// The `request` record value.
    pub fn request_value(&self) -> WitValue {
        WitValue::Record(vec![
            ("method".into(), WitValue::String(self.method.clone())),
            (
                "path-with-query".into(),
                WitValue::String(self.path_with_query.clone()),
            ),
            ("headers".into(), headers_value(&self.headers)),
            ("body".into(), bytes_value(&self.body)),
        ])
    }

    /// The `response` record value.
    pub fn response_value(&self) -> WitValue {
        WitValue::Record(vec![
            ("status".into(), WitValue::U16(self.status)),
            ("headers".into(), headers_value(&self.headers)),
            ("body".into(), bytes_value(&self.body)),
        ])
    }

    /// Read a `request` or `response` record value.
    pub fn from_value(value: &WitValue) -> Option<Self> {
        let WitValue::Record(fields) = value else {
            return None;
        };
        let mut m = Message::default();
        for (name, value) in fields {
            match (name.as_str(), value) {
                ("method", WitValue::String(s)) => m.method = s.clone(),
                ("path-with-query", WitValue::String(s)) => m.path_with_query = s.clone(),
                ("status", WitValue::U16(s)) => m.status = *s,
                ("headers", WitValue::List(items)) => {
                    for item in items {
                        if let WitValue::Tuple(kv) = item {
                            if let [WitValue::String(k), v] = &kv[..] {
                                m.headers.push((k.clone(), value_bytes(v)));
                            }
                        }
                    }
                }
                ("body", v) => m.body = value_bytes(v),
                _ => {}
            }
        }
        Some(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_responses_round_trip() {
        let req = Message {
            method: "POST".into(),
            path_with_query: "/a?b=c".into(),
            headers: vec![("host".into(), b"shop.example".to_vec())],
            body: b"hi".to_vec(),
            ..Default::default()
        };
        let v = req.request_value();
        crate::wire::typecheck(&request_type(), &v).unwrap();
        assert_eq!(Message::from_value(&v), Some(req));
        let resp = Message {
            status: 201,
            headers: vec![("x".into(), vec![1, 2])],
            body: b"ok".to_vec(),
            ..Default::default()
        };
        let v = resp.response_value();
        crate::wire::typecheck(&response_type(), &v).unwrap();
        assert_eq!(Message::from_value(&v), Some(resp));
    }
}
