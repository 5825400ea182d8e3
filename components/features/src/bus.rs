//! `/link` and `/link2`: pick a named link at run time through `wasmcloud:bus`, then
//! increment `key` in bucket `default` over that link. Answers `N:K -> count\n`.

use crate::bindings::wasi::keyvalue::{atomics, store};
use crate::bindings::wasmcloud::{bus1_0_0, bus2_0_0};
use http_support::{Query, Reply};

/// `wasmcloud:bus/lattice@1.0.0`: `set-link-name` cannot fail.
pub fn link_v1(query: &Query) -> Reply {
    use bus1_0_0::lattice::{set_link_name, CallTargetInterface};
    let (name, key) = match name_and_key(query) {
        Ok(pair) => pair,
        Err(reply) => return reply,
    };
    set_link_name(
        name,
        vec![
            CallTargetInterface::new("wasi", "keyvalue", "atomics"),
            CallTargetInterface::new("wasi", "keyvalue", "store"),
        ],
    );
    increment(name, key)
}

/// `wasmcloud:bus/lattice@2.0.0`: `set-link-name` fails if no such link exists.
pub fn link_v2(query: &Query) -> Reply {
    use bus2_0_0::lattice::{set_link_name, CallTargetInterface};
    let (name, key) = match name_and_key(query) {
        Ok(pair) => pair,
        Err(reply) => return reply,
    };
    let interfaces = vec![
        CallTargetInterface::new("wasi", "keyvalue", "atomics"),
        CallTargetInterface::new("wasi", "keyvalue", "store"),
    ];
    if let Err(e) = set_link_name(name, interfaces) {
        return Reply::error(format!("set-link-name {name:?}: {e}"));
    }
    increment(name, key)
}

fn name_and_key(query: &Query) -> Result<(&str, &str), Reply> {
    Ok((query.required("name")?, query.required("key")?))
}

fn increment(name: &str, key: &str) -> Reply {
    let bucket = match store::open("default") {
        Ok(bucket) => bucket,
        Err(e) => return Reply::error(format!("open bucket \"default\" on link {name:?}: {e:?}")),
    };
    match atomics::increment(&bucket, key, 1) {
        Ok(count) => Reply::ok(format!("{name}:{key} -> {count}\n")),
        Err(e) => Reply::error(format!("increment {key:?} on link {name:?}: {e:?}")),
    }
}
