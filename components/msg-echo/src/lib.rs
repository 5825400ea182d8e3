//! A `wasmcloud:messaging@0.2.0` handler, as a wasmCloud 1.x user writes one: every
//! message it is handed that has a reply subject is answered there, through the
//! `consumer` import its link routes to a messaging provider, with the body
//! `echo: <body>`. Messages without a reply subject are answered on
//! `<subject>.echoed`. For the messaging provider's tests.

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
        let mut body = b"echo: ".to_vec();
        body.extend_from_slice(&msg.body);
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
