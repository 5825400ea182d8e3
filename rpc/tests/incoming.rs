//! Property tests of how a served call is read: the call header as the first
//! line of a request without headers, the arguments after it.

use async_nats::Message;
use bytes::Bytes;
use lattice_protocol::wire::CallHeader;
use lattice_rpc::incoming;
use proptest::collection::vec;
use proptest::prelude::*;

fn message(payload: Vec<u8>) -> Message {
    let length = payload.len();
    Message {
        subject: "lattice.l.rpch.NH.app.comp.ns.pkg.iface.f".into(),
        reply: Some("_INBOX.r".into()),
        payload: Bytes::from(payload),
        headers: None,
        status: None,
        description: None,
        length,
    }
}

proptest! {
    #[test]
    fn a_call_header_line_and_any_arguments_read_back(
        host in "[A-Z0-9]{1,56}",
        app in ".{0,20}",
        component in ".{0,20}",
        link in ".{0,20}",
        signature in "[0-9a-f]{16}",
        timeout_ms in any::<u64>(),
        trace in proptest::option::of("00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]"),
        args in vec(any::<u8>(), 0..512),
    ) {
        let header = CallHeader { host, app, component, link, signature, timeout_ms, trace };
        let text = header.encode();
        let mut payload = text.clone().into_bytes();
        payload.push(b'\n');
        payload.extend_from_slice(&args);
        let msg = message(payload);
        let got = incoming(&msg);
        prop_assert_eq!(got.header, Some(text.as_str()));
        prop_assert_eq!(&got.payload[..], &args[..]);
        prop_assert_eq!(CallHeader::parse(&text), Ok(header));
    }

    #[test]
    fn any_payload_reads_without_losing_a_byte(payload in vec(any::<u8>(), 0..8192)) {
        let msg = message(payload.clone());
        let got = incoming(&msg);
        match got.header {
            Some(header) => {
                prop_assert!(!header.contains('\n'));
                prop_assert_eq!(header.len() + 1 + got.payload.len(), payload.len());
            }
            None => prop_assert_eq!(&got.payload[..], &payload[..]),
        }
    }
}
