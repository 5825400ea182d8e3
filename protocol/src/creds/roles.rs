//! What each role's NATS user may do on one lattice: host, controller, operator
//! CLI and built-in messaging's guest connection (a provider's is
//! [`provider_permissions`](super::provider_permissions)). Each set is built from
//! the lattice name (and a host's id) and lists exactly the subjects that role's
//! code uses; `lattice nats-auth` mints users with them and
//! `testing/tests/nats_roles.rs` attacks each on a real server.
//!
//! Every role but messaging gets an inbox prefix of its own
//! ([`role_inbox_prefix`]): its requests' replies arrive under it and nobody
//! else may subscribe there. Replies to requests a role receives go out through
//! `allow_responses` (one reply per request), not through a publish grant on the
//! requester's inbox.
//!
//! JetStream API subjects carry a stream name as one whole token, so a prefix of a
//! bucket name cannot be granted: a host gets the JetStream API with the
//! controller's state bucket denied, the controller only its state bucket. One
//! NATS account per lattice (what `lattice nats-auth init` makes) keeps other
//! lattices' buckets out of reach.

use super::Permissions;
use crate::subjects::Subjects;

/// The inbox prefix a role's connection uses (`custom_inbox_prefix`), read back
/// from its credentials by [`inbox_prefix_of`](super::inbox_prefix_of).
pub fn role_inbox_prefix(lattice: &str, role: Role<'_>) -> String {
    match role {
        Role::Host(id) => crate::wire::body::host_inbox_prefix(lattice, id),
        Role::Controller => format!("_INBOX_{lattice}_controller"),
        Role::Cli => format!("_INBOX_{lattice}_cli"),
        Role::Messaging => format!("_INBOX_{lattice}_messaging"),
        Role::Leaf => format!("_INBOX_{lattice}_leaf"),
    }
}

/// A role with a fixed permission set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role<'a> {
    /// The host with this id (its public key, `N…`).
    Host(&'a str),
    /// A controller.
    Controller,
    /// The operator's CLI.
    Cli,
    /// Built-in messaging's guest connection.
    Messaging,
    /// An edge leaf node's connection to the core (`leafnodes.remotes`): it
    /// carries every local client's traffic of the lattice's account, so it may
    /// carry every subject; what each client may do is checked by the leaf node
    /// it connects to, with its own user.
    Leaf,
}

impl Role<'_> {
    /// The permissions of this role on `lattice`.
    pub fn permissions(self, lattice: &str) -> Permissions {
        match self {
            Role::Host(id) => host_permissions(lattice, id),
            Role::Controller => controller_permissions(lattice),
            Role::Cli => cli_permissions(lattice),
            Role::Messaging => messaging_permissions(lattice),
            Role::Leaf => Permissions {
                publish: vec![">".into()],
                subscribe: vec![">".into()],
                ..Permissions::default()
            },
        }
    }
}

/// Publish subjects that would touch the JetStream stream `stream`: its API
/// (stream, consumer and direct-get operations) and its acks.
fn stream_api(stream: &str) -> Vec<String> {
    vec![
        format!("$JS.API.STREAM.*.{stream}"),
        format!("$JS.API.STREAM.*.*.{stream}"),
        format!("$JS.API.CONSUMER.*.{stream}"),
        format!("$JS.API.CONSUMER.*.{stream}.>"),
        format!("$JS.API.CONSUMER.*.*.{stream}"),
        format!("$JS.API.CONSUMER.*.*.{stream}.>"),
        format!("$JS.API.DIRECT.GET.{stream}"),
        format!("$JS.API.DIRECT.GET.{stream}.>"),
        format!("$JS.ACK.{stream}.>"),
        format!("$JS.FC.{stream}.>"),
    ]
}

/// A host: its own commands and the pings, calls it serves and makes, events,
/// providers' health checks, chunked bodies, and the JetStream KV and object
/// stores of apps' `builtin://keyvalue-nats` and `builtin://blobstore-nats`
/// buckets, and reading the named-config bucket. Not: writing named config,
/// another host's commands, calls in another host's name
/// (`wire::host_call_subject` carries the caller's id), the controller's API or
/// state bucket, other roles' inboxes.
pub fn host_permissions(lattice: &str, host_id: &str) -> Permissions {
    let s = Subjects::new(lattice);
    let state = s.state_bucket();
    let inbox = role_inbox_prefix(lattice, Role::Host(host_id));
    let l = format!("lattice.{lattice}");
    let id = crate::wire::rpc::escape_token(host_id);
    let config = s.config_bucket();
    let mut publish_deny = vec![format!("$KV.{state}.>"), format!("$KV.{config}.>")];
    publish_deny.extend(stream_api(&format!("KV_{state}")));
    // Named config: read (watch, get) but not written, purged or deleted.
    publish_deny.extend(
        ["CREATE", "UPDATE", "DELETE", "PURGE"]
            .map(|op| format!("$JS.API.STREAM.{op}.KV_{config}")),
    );
    publish_deny.push(format!("$JS.API.STREAM.MSG.DELETE.KV_{config}"));
    Permissions {
        publish: vec![
            format!("{l}.evt.>"),
            // Its guests' log lines.
            format!("{l}.log.>"),
            // Calls from its components, on subjects naming it as the caller.
            format!("{l}.rpch.{id}.>"),
            format!("{l}.rpchl.{id}.>"),
            format!("{l}.prov.>"),
            // Chunked bodies other hosts and providers offer, and its own.
            format!("_INBOX_{lattice}.host.*.>"),
            format!("_INBOX_{lattice}.*.*.>"),
            "$JS.API.>".into(),
            "$JS.ACK.>".into(),
            "$JS.FC.>".into(),
            "$KV.>".into(),
            "$O.>".into(),
        ],
        publish_deny,
        subscribe: vec![
            s.host_command(host_id),
            s.hosts_ping(),
            // Calls to components it runs, from any host.
            format!("{l}.rpch.>"),
            format!("{l}.rpchl.>"),
            // Providers' calls to components it runs (it may not publish there).
            format!("{l}.rpcp.>"),
            // The CLI's calls (`lattice call`; it may not publish there).
            format!("{l}.rpcc.>"),
            format!("{inbox}.>"),
        ],
        subscribe_deny: Vec::new(),
        allow_responses: true,
    }
}

/// A controller: the API (queue group and per-controller subjects), host
/// commands, events, its state and named-config buckets, and creating and reading the settings of
/// the artifact store (it creates the bucket with the lattice's replicas; it
/// reads or writes no artifact). Not: serving calls, apps' buckets.
pub fn controller_permissions(lattice: &str) -> Permissions {
    let s = Subjects::new(lattice);
    let state = s.state_bucket();
    let config = s.config_bucket();
    let artifacts = s.artifact_bucket();
    let inbox = role_inbox_prefix(lattice, Role::Controller);
    let l = format!("lattice.{lattice}");
    let mut publish = vec![
        format!("{l}.ctl.host.*"),
        format!("{l}.ctl.controller.*.>"),
        format!("{l}.evt.>"),
        format!("$KV.{state}.>"),
        format!("$KV.{config}.>"),
        "$JS.API.INFO".into(),
        format!("$JS.API.STREAM.CREATE.OBJ_{artifacts}"),
        format!("$JS.API.STREAM.INFO.OBJ_{artifacts}"),
    ];
    publish.extend(stream_api(&format!("KV_{state}")));
    publish.extend(stream_api(&format!("KV_{config}")));
    Permissions {
        publish,
        publish_deny: Vec::new(),
        subscribe: vec![
            s.api_all(),
            format!("{l}.ctl.controller.*.>"),
            s.events_all(),
            format!("{inbox}.>"),
        ],
        subscribe_deny: Vec::new(),
        allow_responses: true,
    }
}

/// The operator's CLI: requests to the controller API and the hosts' ping, and
/// their replies; the lattice's artifact store (`app deploy` uploads into it,
/// `artifact push|list|rm`); calls to any component (`lattice call`, on its own
/// `rpcc` subjects). Not: events (it cannot pose as a host), host commands, calls
/// as a host or provider, other buckets.
pub fn cli_permissions(lattice: &str) -> Permissions {
    let s = Subjects::new(lattice);
    let inbox = role_inbox_prefix(lattice, Role::Cli);
    let artifacts = s.artifact_bucket();
    let mut publish = vec![
        s.api_all(),
        s.hosts_ping(),
        format!("$O.{artifacts}.>"),
        format!("lattice.{lattice}.rpcc.>"),
    ];
    publish.extend(stream_api(&format!("OBJ_{artifacts}")));
    Permissions {
        publish,
        publish_deny: Vec::new(),
        subscribe: vec![
            format!("{inbox}.>"),
            // Guests' log lines (`lattice app logs`, `lattice dev`).
            format!("lattice.{lattice}.log.>"),
        ],
        subscribe_deny: Vec::new(),
        allow_responses: false,
    }
}

/// Subjects built-in messaging's connection may never publish or subscribe to:
/// the lattice's, NATS's own, and other roles' inboxes.
pub fn messaging_denied(lattice: &str) -> Vec<String> {
    vec![
        "lattice.>".into(),
        "$JS.>".into(),
        "$KV.>".into(),
        "$O.>".into(),
        "$SYS.>".into(),
        "_INBOX.>".into(),
        format!("_INBOX_{lattice}.>"),
        format!("{}.>", role_inbox_prefix(lattice, Role::Controller)),
        format!("{}.>", role_inbox_prefix(lattice, Role::Cli)),
    ]
}

/// Built-in messaging's guest connection: anything but [`messaging_denied`], its
/// own inbox for guests' requests, and one reply to each request it receives.
pub fn messaging_permissions(lattice: &str) -> Permissions {
    let inbox = role_inbox_prefix(lattice, Role::Messaging);
    Permissions {
        publish: vec![">".into()],
        publish_deny: messaging_denied(lattice),
        // The inbox first: `inbox_prefix_of` reads it from here.
        subscribe: vec![format!("{inbox}.>"), ">".into()],
        subscribe_deny: messaging_denied(lattice),
        allow_responses: true,
    }
}

/// The permission template of a lattice's scoped provider signing key: a user it
/// signs gets exactly [`provider_permissions`](super::provider_permissions) for
/// the app and provider named by its tags ([`provider_tags`]), whatever the user
/// JWT asks for (NATS refuses a scoped user that asks for anything).
pub fn provider_template(lattice: &str) -> Permissions {
    super::provider_permissions_of_tokens(lattice, "{{tag(app)}}", "{{tag(provider)}}")
}

/// The tags a scoped provider user carries: its app and provider name, each as
/// one escaped subject token.
pub fn provider_tags(app: &str, name: &str) -> Vec<String> {
    let t = crate::wire::rpc::escape_token;
    vec![format!("app:{}", t(app)), format!("provider:{}", t(name))]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NATS subject matching: `*` one token, `>` the rest.
    fn matches(pattern: &str, subject: &str) -> bool {
        let (mut p, mut s) = (pattern.split('.'), subject.split('.'));
        loop {
            match (p.next(), s.next()) {
                (Some(">"), Some(_)) => return true,
                (Some("*"), Some(_)) => {}
                (Some(a), Some(b)) if a == b => {}
                (None, None) => return true,
                _ => return false,
            }
        }
    }

    fn may(perms: &Permissions, publish: bool, subject: &str) -> bool {
        let (allow, deny) = if publish {
            (&perms.publish, &perms.publish_deny)
        } else {
            (&perms.subscribe, &perms.subscribe_deny)
        };
        allow.iter().any(|p| matches(p, subject)) && !deny.iter().any(|p| matches(p, subject))
    }

    const PUB: bool = true;
    const SUB: bool = false;

    #[test]
    fn each_role_may_do_its_job_and_nothing_more() {
        let l = "prod";
        let state = "KV_lattice_prod_state";
        let app_kv = "KV_lattice_prod_kv_shop_default";
        let h = Role::Host("NHOSTA");
        #[rustfmt::skip]
        let table: &[(Role, bool, &str, bool)] = &[
            // A host: its commands, pings, calls, events, app buckets.
            (h, SUB, "lattice.prod.ctl.host.NHOSTA", true),
            (h, SUB, "lattice.prod.ctl.host.NHOSTB", false),
            (h, PUB, "lattice.prod.ctl.host.NHOSTB", false),
            (h, SUB, "lattice.prod.ctl.hosts.ping", true),
            (h, PUB, "lattice.prod.ctl.hosts.ping", false),
            (h, PUB, "lattice.prod.evt.host_heartbeat", true),
            (h, SUB, "lattice.prod.evt.host_heartbeat", false),
            (h, PUB, "lattice.prod.api.deploy", false),
            (h, SUB, "lattice.prod.api.deploy", false),
            // Calls: made only in its own name, served from any host.
            (h, PUB, "lattice.prod.rpch.NHOSTA.shop.web.a.b.c.f", true),
            (h, PUB, "lattice.prod.rpchl.NHOSTA.zone.a.shop.web.a.b.c.f", true),
            (h, PUB, "lattice.prod.rpch.NHOSTB.shop.web.a.b.c.f", false),
            (h, PUB, "lattice.prod.rpchl.NHOSTB.zone.a.shop.web.a.b.c.f", false),
            (h, PUB, "lattice.prod.rpch.*.shop.web.a.b.c.f", false),
            (h, PUB, "lattice.prod.rpc.shop.web.a.b.c.f", false),
            (h, PUB, "lattice.prod.rpcl.zone.a.shop.web.a.b.c.f", false),
            (h, SUB, "lattice.prod.rpch.*.shop.web.>", true),
            (h, SUB, "lattice.prod.rpchl.*.zone.a.shop.web.>", true),
            (h, SUB, "lattice.prod.rpch.NHOSTB.shop.web.a.b.c.f", true),
            // Providers' calls reach it; it cannot make one as a provider.
            (h, SUB, "lattice.prod.rpcp.shop.kv.web.a.b.c.f", true),
            (h, PUB, "lattice.prod.rpcp.shop.kv.web.a.b.c.f", false),
            // The CLI's calls reach it; it cannot make one as the CLI.
            (h, SUB, "lattice.prod.rpcc.shop.web.>", true),
            (h, PUB, "lattice.prod.rpcc.shop.web.a.b.c.f", false),
            (h, PUB, "lattice.prod.prov.shop.kv.NHOSTA.health", true),
            (h, SUB, "_INBOX_prod.host.NHOSTA.x", true),
            (h, SUB, "_INBOX_prod.host.NHOSTB.x", false),
            (h, PUB, "_INBOX_prod.host.NHOSTB.x", true),
            (h, PUB, "_INBOX_prod.shop.kv.x", true),
            (h, SUB, "_INBOX.x", false),
            (h, PUB, "_INBOX_prod_cli.x.y", false),
            (h, PUB, "_INBOX_prod_controller.x.y", false),
            (h, PUB, "lattice.other.evt.host_heartbeat", false),
            (h, PUB, "$KV.lattice_prod_kv_shop_default.k", true),
            (h, PUB, "$O.lattice_prod_blob_shop_photos.C.x", true),
            (h, PUB, &format!("$JS.API.STREAM.INFO.{app_kv}"), true),
            (h, PUB, &format!("$JS.API.STREAM.CREATE.{app_kv}"), true),
            (h, PUB, &format!("$JS.API.CONSUMER.CREATE.{app_kv}.c.f"), true),
            (h, PUB, &format!("$JS.API.DIRECT.GET.{app_kv}.$KV.x.k"), true),
            (h, PUB, "$JS.API.STREAM.DELETE.OBJ_lattice_prod_blob_shop_photos", true),
            (h, PUB, "$KV.lattice_prod_state.app.shop", false),
            (h, PUB, &format!("$JS.API.STREAM.DELETE.{state}"), false),
            (h, PUB, &format!("$JS.API.STREAM.PURGE.{state}"), false),
            (h, PUB, &format!("$JS.API.STREAM.INFO.{state}"), false),
            (h, PUB, &format!("$JS.API.STREAM.MSG.DELETE.{state}"), false),
            (h, PUB, &format!("$JS.API.CONSUMER.CREATE.{state}.c.f"), false),
            (h, PUB, &format!("$JS.API.CONSUMER.DURABLE.CREATE.{state}.c"), false),
            (h, PUB, &format!("$JS.API.DIRECT.GET.{state}.$KV.x.k"), false),
            // A controller: API, commands, events, its state bucket only.
            (Role::Controller, SUB, "lattice.prod.api.deploy", true),
            (Role::Controller, SUB, "lattice.prod.ctl.controller.C1.deploy", true),
            (Role::Controller, PUB, "lattice.prod.ctl.controller.C1.deploy", true),
            (Role::Controller, PUB, "lattice.prod.ctl.host.NHOSTB", true),
            (Role::Controller, SUB, "lattice.prod.ctl.host.NHOSTB", false),
            (Role::Controller, SUB, "lattice.prod.evt.host_heartbeat", true),
            (Role::Controller, PUB, "lattice.prod.evt.app_deployed", true),
            (Role::Controller, SUB, "_INBOX_prod_controller.x", true),
            (Role::Controller, SUB, "_INBOX.x", false),
            (Role::Controller, PUB, "$KV.lattice_prod_state.app.shop", true),
            (Role::Controller, PUB, &format!("$JS.API.STREAM.CREATE.{state}"), true),
            (Role::Controller, PUB, &format!("$JS.API.CONSUMER.CREATE.{state}.c.f"), true),
            (Role::Controller, PUB, &format!("$JS.API.DIRECT.GET.{state}.$KV.x.k"), true),
            (Role::Controller, PUB, "$JS.API.STREAM.CREATE.OBJ_lattice_prod_artifacts", true),
            (Role::Controller, PUB, "$JS.API.STREAM.INFO.OBJ_lattice_prod_artifacts", true),
            (Role::Controller, PUB, "$JS.API.STREAM.DELETE.OBJ_lattice_prod_artifacts", false),
            (Role::Controller, PUB, "$O.lattice_prod_artifacts.C.n", false),
            (Role::Controller, PUB, "$KV.lattice_prod_kv_shop_default.k", false),
            (Role::Controller, PUB, &format!("$JS.API.STREAM.DELETE.{app_kv}"), false),
            (Role::Controller, PUB, "lattice.prod.rpch.NHOSTA.shop.web.a.b.c.f", false),
            (Role::Controller, SUB, "lattice.prod.rpch.NHOSTA.shop.web.a.b.c.f", false),
            (Role::Controller, PUB, "lattice.prod.rpcc.shop.web.a.b.c.f", false),
            // The CLI: API requests, pings and the artifact store, nothing else.
            (Role::Cli, PUB, "lattice.prod.api.deploy", true),
            (Role::Cli, PUB, "$O.lattice_prod_artifacts.C.n", true),
            (Role::Cli, PUB, "$JS.API.STREAM.CREATE.OBJ_lattice_prod_artifacts", true),
            (Role::Cli, PUB, "$JS.API.CONSUMER.CREATE.OBJ_lattice_prod_artifacts.c.f", true),
            (Role::Cli, PUB, "$O.lattice_prod_blob_shop_c.C.n", false),
            (Role::Cli, PUB, "$JS.API.STREAM.DELETE.OBJ_lattice_prod_blob_shop_c", false),
            (Role::Cli, PUB, "lattice.prod.ctl.hosts.ping", true),
            (Role::Cli, SUB, "_INBOX_prod_cli.x", true),
            (Role::Cli, PUB, "lattice.prod.evt.host_heartbeat", false),
            (Role::Cli, SUB, "lattice.prod.evt.host_heartbeat", false),
            (Role::Cli, PUB, "lattice.prod.ctl.host.NHOSTA", false),
            (Role::Cli, SUB, "lattice.prod.api.deploy", false),
            (Role::Cli, PUB, "lattice.prod.rpch.NHOSTA.shop.web.a.b.c.f", false),
            (Role::Cli, PUB, "lattice.prod.rpcp.shop.kv.web.a.b.c.f", false),
            // `lattice call`: any component, on the CLI's own subjects.
            (Role::Cli, PUB, "lattice.prod.rpcc.shop.web.a.b.c.f", true),
            (Role::Cli, SUB, "lattice.prod.rpcc.shop.web.a.b.c.f", false),
            // Guests' log lines: read, never written.
            (Role::Cli, SUB, "lattice.prod.log.shop.web", true),
            (Role::Cli, PUB, "lattice.prod.log.shop.web", false),
            (h, PUB, "lattice.prod.log.shop.web", true),
            (h, SUB, "lattice.prod.log.shop.web", false),
            (Role::Cli, PUB, "$KV.lattice_prod_state.app.shop", false),
            (Role::Cli, PUB, "$JS.API.INFO", false),
            (Role::Cli, SUB, "_INBOX.x", false),
            // Built-in messaging: anything but the lattice's, NATS's and inboxes.
            (Role::Messaging, PUB, "orders.new", true),
            (Role::Messaging, SUB, "orders.>", true),
            (Role::Messaging, SUB, "_INBOX_prod_messaging.x.y", true),
            (Role::Messaging, PUB, "lattice.prod.ctl.host.NHOSTA", false),
            (Role::Messaging, PUB, "lattice.prod.rpcc.shop.web.a.b.c.f", false),
            (Role::Messaging, SUB, "lattice.prod.evt.host_heartbeat", false),
            (Role::Messaging, PUB, "$JS.API.STREAM.DELETE.KV_lattice_prod_state", false),
            (Role::Messaging, PUB, "$KV.lattice_prod_state.app.shop", false),
            (Role::Messaging, PUB, "$O.x.C.y", false),
            (Role::Messaging, SUB, "$SYS.REQ.SERVER.PING", false),
            (Role::Messaging, SUB, "_INBOX.abc.1", false),
            (Role::Messaging, SUB, "_INBOX_prod.host.NHOSTA.x", false),
            (Role::Messaging, SUB, "_INBOX_prod.shop.kv.x", false),
            (Role::Messaging, SUB, "_INBOX_prod_cli.x.y", false),
            (Role::Messaging, PUB, "_INBOX_prod_controller.x.y", false),
        ];
        for (role, publish, subject, expected) in table {
            let perms = role.permissions(l);
            assert_eq!(
                may(&perms, *publish, subject),
                *expected,
                "{role:?} {} {subject}",
                if *publish { "publish" } else { "subscribe" }
            );
        }
    }

    #[test]
    fn every_role_but_the_cli_answers_requests_and_each_has_its_inbox_first() {
        for role in [Role::Host("NH"), Role::Controller, Role::Messaging] {
            assert!(role.permissions("l").allow_responses, "{role:?}");
        }
        assert!(!Role::Cli.permissions("l").allow_responses);
        for role in [
            Role::Host("NH"),
            Role::Controller,
            Role::Cli,
            Role::Messaging,
        ] {
            let perms = role.permissions("l");
            let first_inbox = perms.subscribe.iter().find(|s| s.starts_with("_INBOX"));
            assert_eq!(
                first_inbox,
                Some(&format!("{}.>", role_inbox_prefix("l", role))),
                "{role:?}"
            );
        }
    }

    #[test]
    fn a_provider_calls_only_under_its_own_name() {
        let p = super::super::provider_permissions("prod", "shop", "kv");
        #[rustfmt::skip]
        let table: &[(bool, &str, bool)] = &[
            (PUB, "lattice.prod.rpcp.shop.kv.web.a.b.c.f", true),
            // As another provider, as a host (a component's call), another app.
            (PUB, "lattice.prod.rpcp.shop.gw.web.a.b.c.f", false),
            (PUB, "lattice.prod.rpch.NHOSTA.shop.web.a.b.c.f", false),
            (PUB, "lattice.prod.rpchl.NHOSTA.zone.a.shop.web.a.b.c.f", false),
            (PUB, "lattice.prod.rpcp.billing.kv.web.a.b.c.f", false),
            (PUB, "lattice.prod.rpcc.shop.web.a.b.c.f", false),
            // Calls to it, from hosts and from its app's other providers.
            (SUB, "lattice.prod.rpch.*.shop.kv.>", true),
            (SUB, "lattice.prod.rpch.NHOSTA.shop.kv.a.b.c.f", true),
            (SUB, "lattice.prod.rpcp.shop.gw.kv.a.b.c.f", true),
            (SUB, "lattice.prod.rpcp.shop.gw.web.a.b.c.f", false),
            (SUB, "lattice.prod.rpch.NHOSTA.shop.web.a.b.c.f", false),
            (SUB, "lattice.prod.rpch.*.billing.kv.>", false),
            // Calls to it by locality, not to another provider.
            (SUB, "lattice.prod.rpchl.*.zone.eu-1.shop.kv.>", true),
            (SUB, "lattice.prod.rpchl.*.zone.eu-1.shop.web.>", false),
            // Bodies hosts offer, never a host's reply inbox or another inbox.
            (PUB, "_INBOX_prod.host.NHOSTA.body.0123abcd", true),
            (PUB, "_INBOX_prod.host.NHOSTA.nuid.1", false),
            (PUB, "_INBOX_prod.host.NHOSTA.x", false),
            (PUB, "_INBOX_prod.shop.gw.body.0123abcd", false),
            (PUB, "_INBOX_prod_cli.x.body.y", false),
        ];
        for (publish, subject, expected) in table {
            assert_eq!(may(&p, *publish, subject), *expected, "{subject}");
        }
    }

    #[test]
    fn the_provider_template_is_the_provider_set_with_tags() {
        let template = provider_template("l");
        let concrete = super::super::provider_permissions("l", "my.app", "kv");
        let tags = provider_tags("my.app", "kv");
        let expand = |s: &String| {
            s.replace("{{tag(app)}}", &tags[0]["app:".len()..])
                .replace("{{tag(provider)}}", &tags[1]["provider:".len()..])
        };
        assert_eq!(
            template.publish.iter().map(expand).collect::<Vec<_>>(),
            concrete.publish
        );
        assert_eq!(
            template.subscribe.iter().map(expand).collect::<Vec<_>>(),
            concrete.subscribe
        );
        assert!(template.allow_responses);
    }
}
