//! `wasmcloud:messaging@0.2.0` types in the wire model.

use lattice_provider::{WitType, WitValue};

/// `record broker-message { subject: string, body: list<u8>, reply-to: option<string> }`.
pub fn broker_message() -> WitType {
    WitType::record([
        ("subject", WitType::String),
        ("body", WitType::list(WitType::U8)),
        ("reply-to", WitType::option(WitType::String)),
    ])
}

/// `result<_, string>`.
pub fn unit_or_string() -> WitType {
    WitType::result(None, Some(WitType::String))
}

/// A broker message as the provider handles it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub subject: String,
    pub body: Vec<u8>,
    pub reply_to: Option<String>,
}

/// A `broker-message` value.
pub fn message_value(subject: String, body: Vec<u8>, reply_to: Option<String>) -> WitValue {
    WitValue::Record(vec![
        ("subject".into(), WitValue::String(subject)),
        ("body".into(), WitValue::Bytes(body)),
        (
            "reply-to".into(),
            WitValue::Option(reply_to.map(|r| Box::new(WitValue::String(r)))),
        ),
    ])
}

/// Read a `broker-message` argument.
pub fn read_message(value: Option<&WitValue>) -> Result<Message, String> {
    let Some(WitValue::Record(fields)) = value else {
        return Err("expected a broker-message".into());
    };
    let mut msg = Message {
        subject: String::new(),
        body: Vec::new(),
        reply_to: None,
    };
    for (name, value) in fields {
        match (name.as_str(), value) {
            ("subject", WitValue::String(s)) => msg.subject = s.clone(),
            ("body", body) => {
                msg.body = body.as_bytes().map(|b| b.into_owned()).unwrap_or_default()
            }
            ("reply-to", WitValue::Option(Some(r))) => {
                if let WitValue::String(r) = &**r {
                    msg.reply_to = Some(r.clone());
                }
            }
            _ => {}
        }
    }
    if msg.subject.is_empty() {
        return Err("the message has an empty subject".into());
    }
    Ok(msg)
}

/// `ok(value)` or `err(message)` of a `result<T, string>`.
pub fn outcome(result: Result<Option<WitValue>, String>) -> WitValue {
    match result {
        Ok(v) => WitValue::Result(Ok(v.map(Box::new))),
        Err(e) => WitValue::Result(Err(Some(Box::new(WitValue::String(e))))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_through_values() {
        let v = message_value("a.b".into(), b"hi".to_vec(), Some("r".into()));
        let m = read_message(Some(&v)).unwrap();
        assert_eq!(
            (m.subject.as_str(), &m.body[..], m.reply_to.as_deref()),
            ("a.b", &b"hi"[..], Some("r"))
        );
        lattice_protocol::wire::typecheck(&broker_message(), &v).unwrap();
        assert!(read_message(Some(&WitValue::Bool(true))).is_err());
    }
}
