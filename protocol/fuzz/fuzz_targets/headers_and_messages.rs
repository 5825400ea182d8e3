//! Control-plane messages, the call header (a `lattice-call` header or a
//! payload's first line) and the chunk headers from arbitrary bytes: never a
//! panic, and what is accepted reads back the same.

#![no_main]

use lattice_protocol::messages::{DeployRequest, Event, HostCommand, HostInfo};
use lattice_protocol::wire::body::{check_body_subject, parse_chunk_index, BodyOffer, BodySender};
use lattice_protocol::wire::rpc::split_call_line;
use lattice_protocol::wire::CallHeader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = lattice_protocol::decode::<HostCommand>(data);
    let _ = lattice_protocol::decode::<Event>(data);
    let _ = lattice_protocol::decode::<HostInfo>(data);
    let _ = lattice_protocol::decode::<DeployRequest>(data);
    if let Some((line, args)) = split_call_line(data) {
        assert!(!line.contains('\n') && args <= data.len());
        if let Ok(header) = CallHeader::parse(line) {
            assert_eq!(CallHeader::parse(&header.encode()), Ok(header));
        }
    }
    let text = String::from_utf8_lossy(data);
    if let Ok(header) = CallHeader::parse(&text) {
        assert_eq!(CallHeader::parse(&header.encode()), Ok(header));
    }
    if let Ok(offer) = BodyOffer::parse(&text) {
        assert_eq!(BodyOffer::parse(&offer.encode()), Ok(offer.clone()));
        let _ = check_body_subject("default", &offer.subject, BodySender::AnyHost);
        let _ = parse_chunk_index(&text, offer.chunks());
    }
});
