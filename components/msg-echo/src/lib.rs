//! A `wasmcloud:messaging@0.2.0` handler, as a wasmCloud 1.x user writes one: every
//! message it is handed that has a reply subject is answered there, through the
//! `consumer` import its link routes to a messaging provider, with the body
//! `echo: <body>`. Messages without a reply subject are answered on
//! `<subject>.echoed`. For the messaging provider's tests.
//!
//! Two bodies are commands instead, for the host's attack tests: `!publish SUBJECT
//! [REPLY_TO]` publishes `attack` to SUBJECT (asking for replies on REPLY_TO), and
//! `!request SUBJECT` sends `attack` as a request (1 s timeout); the answer is `ok`,
//! `ok: <reply body>` or `error: <what the host said>`. `!forward SUBJECT` hands
//! the request on: it publishes `forwarded` to SUBJECT with the message's own
//! reply subject, so whoever serves SUBJECT answers the original requester (an
//! error is answered by the handler itself).

mod bindings {
    #![allow(missing_docs, clippy::all)]
    wit_bindgen::generate!({
        inline: "
            package lattice:msg-echo;
            world msg-echo {
                import wasmcloud:messaging/consumer@0.2.0;
                export wasmcloud:messaging/handler@0.2.0;
            }
        ",
        path: "../../wit/deps/messaging-0.2.0",
        world: "lattice:msg-echo/msg-echo",
        generate_all,
    });
}

use bindings::exports::wasmcloud::messaging::handler::{BrokerMessage, Guest};
use bindings::wasmcloud::messaging::{consumer, types};

struct MsgEcho;

bindings::export!(MsgEcho with_types_in bindings);

impl Guest for MsgEcho {
    fn handle_message(msg: BrokerMessage) -> Result<(), String> {
        if let Some(target) = std::str::from_utf8(&msg.body)
            .ok()
            .and_then(|t| t.strip_prefix("!forward "))
        {
            let forwarded = consumer::publish(&types::BrokerMessage {
                subject: target.to_owned(),
                body: b"forwarded".to_vec(),
                reply_to: msg.reply_to.clone(),
            });
            let Err(e) = forwarded else {
                return Ok(());
            };
            return consumer::publish(&types::BrokerMessage {
                subject: msg
                    .reply_to
                    .unwrap_or_else(|| format!("{}.echoed", msg.subject)),
                body: format!("error: {e}").into_bytes(),
                reply_to: None,
            });
        }
        let body = match std::str::from_utf8(&msg.body) {
            Ok(text) if text.starts_with('!') => command(text).into_bytes(),
            _ => [b"echo: ".as_slice(), &msg.body].concat(),
        };
        let subject = msg
            .reply_to
            .unwrap_or_else(|| format!("{}.echoed", msg.subject));
        consumer::publish(&types::BrokerMessage {
            subject,
            body,
            reply_to: None,
        })
    }
}

/// Run a `!publish` or `!request` command; what happened, in a line.
fn command(text: &str) -> String {
    let words: Vec<&str> = text.split(' ').collect();
    let sent = match words.as_slice() {
        ["!publish", subject] | ["!publish", subject, _] => {
            consumer::publish(&types::BrokerMessage {
                subject: (*subject).to_owned(),
                body: b"attack".to_vec(),
                reply_to: words.get(2).map(|r| (*r).to_owned()),
            })
            .map(|()| "ok".to_owned())
        }
        ["!request", subject] => consumer::request(subject, b"attack", 1000)
            .map(|reply| format!("ok: {}", String::from_utf8_lossy(&reply.body))),
        _ => Err(format!("unknown command '{text}'")),
    };
    sent.unwrap_or_else(|e| format!("error: {e}"))
}
