//! Which subjects a guest may use through built-in messaging, as a table.

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

use lattice_protocol::trust::{guest_subject_allowed, SubjectRefusal, SubjectUse};
use SubjectUse::{Publish, Reply, ReplyTo, Subscribe};

fn verdict(r: Result<(), SubjectRefusal>) -> &'static str {
    match r {
        Ok(()) => "ok",
        Err(SubjectRefusal::Invalid { .. }) => "invalid",
        Err(SubjectRefusal::Wildcard { .. }) => "wildcard",
        Err(SubjectRefusal::Reserved { .. }) => "reserved",
        Err(SubjectRefusal::OutsidePrefix { .. }) => "outside",
        Err(SubjectRefusal::BadPrefix { .. }) => "bad-prefix",
    }
}

#[test]
fn guest_subjects_table() {
    let cases: &[(&str, SubjectUse, Option<&str>, &str)] = &[
        ("orders.new", Publish, None, "ok"),
        ("orders.new", ReplyTo, None, "ok"),
        ("orders.*", Subscribe, None, "ok"),
        ("orders.>", Subscribe, None, "ok"),
        ("lattice", Publish, None, "ok"),
        ("lattices.x", Publish, None, "ok"),
        // the lattice's own subjects
        ("lattice.default.ctl.host.NABC", Publish, None, "reserved"),
        ("lattice.default.evt.>", Subscribe, None, "reserved"),
        ("lattice.default.ctl.host.N1", ReplyTo, None, "reserved"),
        ("lattice.default.api.deploy", Reply, None, "reserved"),
        // NATS's own
        ("$JS.API.STREAM.DELETE.x", Publish, None, "reserved"),
        (
            "$KV.lattice_default_state.leader",
            Publish,
            None,
            "reserved",
        ),
        ("$O.bucket.C.x", Subscribe, None, "reserved"),
        ("$SYS.REQ.SERVER.PING", Publish, None, "reserved"),
        ("$JS.API.STREAM.DELETE.x", Reply, None, "reserved"),
        ("$X", Publish, None, "reserved"),
        // patterns that could match reserved subjects
        (">", Subscribe, None, "reserved"),
        ("*.>", Subscribe, None, "reserved"),
        ("*.default.ctl.>", Subscribe, None, "reserved"),
        ("*", Subscribe, None, "reserved"),
        ("orders.*.x", Subscribe, None, "ok"),
        // inboxes: never named by the guest, except to answer a delivered request
        ("_INBOX.abc.def", Publish, None, "reserved"),
        ("_INBOX.abc.def", ReplyTo, None, "reserved"),
        ("_INBOX.>", Subscribe, None, "reserved"),
        ("_INBOX_default.shop.kv.x", Publish, None, "reserved"),
        ("_INBOX.abc.def", Reply, None, "ok"),
        ("_INBOX_default.h.x", Reply, None, "ok"),
        // malformed
        ("", Publish, None, "invalid"),
        ("a..b", Publish, None, "invalid"),
        (".a", Subscribe, None, "invalid"),
        ("a.", Publish, None, "invalid"),
        ("a b", Publish, None, "invalid"),
        ("a\r\nPUB x 1", Publish, None, "invalid"),
        // wildcards
        ("orders.*", Publish, None, "wildcard"),
        ("orders.>", ReplyTo, None, "wildcard"),
        ("orders.>", Reply, None, "wildcard"),
        ("orders.>.x", Subscribe, None, "wildcard"),
        ("orders.a*", Subscribe, None, "wildcard"),
        // the app's prefix
        ("shop.orders", Publish, Some("shop.orders"), "ok"),
        ("shop.orders.new", Publish, Some("shop.orders"), "ok"),
        ("shop.orders.>", Subscribe, Some("shop.orders.>"), "ok"),
        ("shop.orders.new", ReplyTo, Some("shop"), "ok"),
        ("shop.users", Publish, Some("shop.orders"), "outside"),
        ("shop.*", Subscribe, Some("shop.orders"), "outside"),
        ("shop", Publish, Some("shop.orders"), "outside"),
        ("x.y", ReplyTo, Some("shop"), "outside"),
        ("other.reply.subject", Reply, Some("shop"), "ok"),
        ("shop.x", Publish, Some("shop.*"), "bad-prefix"),
        ("lattice.default.x", Publish, Some("lattice"), "reserved"),
    ];
    let mut failures = Vec::new();
    for (subject, kind, prefix, want) in cases {
        let got = verdict(guest_subject_allowed(subject, *kind, *prefix));
        if got != *want {
            failures.push(format!(
                "{subject:?} {kind:?} {prefix:?}: expected {want}, got {got}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn refusals_name_the_subject_and_the_rule() {
    let err = guest_subject_allowed("$JS.API.STREAM.DELETE.x", Publish, None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "a guest cannot publish to '$JS.API.STREAM.DELETE.x': subjects starting with `$` belong to NATS itself ($JS, $KV, $O, $SYS, ...)"
    );
    let err = guest_subject_allowed(">", Subscribe, None).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("a guest cannot subscribe to '>': subjects under `lattice.>`"),
        "{err}"
    );
    let err = guest_subject_allowed("x.y", Publish, Some("shop")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "a guest of this app cannot publish to 'x.y': its manifest allows only subjects under 'shop'"
    );
}
