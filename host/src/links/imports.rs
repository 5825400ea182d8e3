//! What one component imports through links and exports to them, worked out once
//! when a workload is applied.

use super::directory::LinkCount;
use super::failure::{self, CallError, ErrorCase};
use super::funcs::ImportedFunc;
use super::router::Router;
use super::typed::{self, Route, Routed};
use super::types::{from_wire, to_wire, Signature};
use super::InterfaceName;
use crate::ctx::Ctx;
use crate::env::ComponentEnv;
use crate::telemetry::trace::TraceContext;
use lattice_protocol::wire::{CallErrorKind, WitValue};
use std::sync::Arc;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker, LinkerInstance, ResourceType};
use wasmtime::Engine;

/// Packages the host serves whole: WASI 0.2 from wasmtime-wasi and
/// wasmtime-wasi-http (every 0.2.x release of each interface), and its own.
const HOST_PACKAGES: [&str; 8] = [
    "wasi:cli",
    "wasi:clocks",
    "wasi:io",
    "wasi:random",
    "wasi:sockets",
    "wasi:filesystem",
    "wasi:http",
    "lattice:host",
];

/// Interfaces the plugins serve, each at the versions its WIT names (`""`:
/// unversioned, as wasmCloud 1.x also serves `wasi:logging/logging`). A release
/// version also serves imports of a semver-compatible release (wasmtime's rule:
/// the same major, or the same minor below 1.0); a pre-release only itself.
const PLUGIN_INTERFACES: [(&str, &str); 17] = [
    ("wasi:keyvalue/store", "0.2.0-draft"),
    ("wasi:keyvalue/atomics", "0.2.0-draft"),
    ("wasi:keyvalue/batch", "0.2.0-draft"),
    ("wasi:config/store", "0.2.0-draft"),
    ("wasi:config/store", "0.2.0-rc.1"),
    ("wasi:config/runtime", "0.2.0-draft"),
    ("wasi:logging/logging", "0.1.0-draft"),
    ("wasi:logging/logging", ""),
    ("wasi:blobstore/types", "0.2.0-draft"),
    ("wasi:blobstore/container", "0.2.0-draft"),
    ("wasi:blobstore/blobstore", "0.2.0-draft"),
    ("wasmcloud:messaging/consumer", "0.2.0"),
    ("wasmcloud:messaging/types", "0.2.0"),
    ("wasmcloud:bus/lattice", "1.0.0"),
    ("wasmcloud:bus/lattice", "2.0.0"),
    ("wasmcloud:secrets/store", "0.1.0-draft"),
    ("wasmcloud:secrets/reveal", "0.1.0-draft"),
];

/// Whether the host's own linker serves `import` (`ns:pkg/iface@version`). Any
/// other import (`example:shop/orders`, a provider's `wasmcloud:postgres/query`,
/// or a host package at a version the host does not serve, such as
/// `wasmcloud:secrets/store@0.2.0` or `wasi:keyvalue/store@0.2.0`) is routed
/// through a link or gets failing stubs, so the component still instantiates,
/// as wasmCloud's host makes it.
pub fn host_provides(import: &str) -> bool {
    let (interface, version) = import.split_once('@').unwrap_or((import, ""));
    let package = interface.split('/').next().unwrap_or(interface);
    if HOST_PACKAGES.contains(&package) {
        return true;
    }
    PLUGIN_INTERFACES
        .iter()
        .any(|(i, v)| *i == interface && semver_serves(v, version))
}

/// Whether an interface served at version `served` satisfies an import of
/// version `wanted` (`""`: unversioned).
fn semver_serves(served: &str, wanted: &str) -> bool {
    served == wanted
        || matches!((compat_key(served), compat_key(wanted)), (Some(a), Some(b)) if a == b)
}

/// The part of a release version that must agree for two releases to be
/// compatible: `2` of `2.0.1`, `0.2` of `0.2.6`; `None` for a pre-release or
/// anything that is not `MAJOR.MINOR.PATCH`.
fn compat_key(version: &str) -> Option<String> {
    let mut parts = version.split('.');
    let (major, minor, patch) = (parts.next()?, parts.next()?, parts.next()?);
    let numbers = [major, minor, patch];
    if parts.next().is_some()
        || !numbers
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    Some(match (major, minor) {
        ("0", "0") => version.to_owned(),
        ("0", minor) => format!("0.{minor}"),
        (major, _) => major.to_owned(),
    })
}

/// The type a failing stub gives a resource of an import nothing provides: the
/// component instantiates, and its calls fail before a value could exist.
struct Unprovided;

/// The per-component linker: the host's linker plus a routed implementation of every
/// import a link of this component carries, and failing stubs for imports nothing
/// provides. `None` when the component needs neither (it shares the host's linker).
pub fn linker_for(
    host_linker: &Linker<Ctx>,
    engine: &Engine,
    component: &Component,
    env: &ComponentEnv,
    router: &Arc<Router>,
) -> Result<Option<Linker<Ctx>>, String> {
    let mut linker: Option<Linker<Ctx>> = None;
    let ty = component.component_type();
    for (import, item) in ty.imports(engine) {
        let ComponentItem::ComponentInstance(instance) = item.ty else {
            continue;
        };
        let Some(name) = InterfaceName::parse(import) else {
            continue;
        };
        let key = name.key();
        let linked = env.links.contains_key(&key);
        if !linked && host_provides(import) {
            continue;
        }
        if !linked {
            tracing::warn!(
                app = %env.app, component = %env.component, interface = %import,
                "no link provides this import; its calls will fail until one does"
            );
        }
        let linker = linker.get_or_insert_with(|| {
            let mut l = host_linker.clone();
            l.allow_shadowing(true);
            l
        });
        let mut inst = linker
            .instance(import)
            .map_err(|e| format!("cannot link {import}: {e}"))?;
        for (function, item) in instance.exports(engine) {
            let func = match item.ty {
                ComponentItem::ComponentFunc(func) => func,
                ComponentItem::Resource(_) => {
                    inst.resource(function, ResourceType::host::<Unprovided>(), |_, _| Ok(()))
                        .map_err(|e| format!("cannot link {import}.{function}: {e}"))?;
                    continue;
                }
                _ => continue,
            };
            let signature = match Signature::of(engine, &key, &instance, function, &func) {
                Ok(sig) => Some(sig),
                Err(e) if linked => {
                    return Err(format!(
                        "component '{}' of app '{}' cannot be linked: {e}",
                        env.component, env.app
                    ))
                }
                Err(_) => None,
            };
            let error_case = signature
                .as_ref()
                .map_or(ErrorCase::Trap, |s| ErrorCase::of(&s.results));
            let shape = signature
                .as_ref()
                .and_then(|s| typed::shape_of(&s.params, &s.results));
            let linked_import = Arc::new(LinkedImport {
                count: router.counters().link(&env.app, &env.component, &key),
                router: router.clone(),
                func: ImportedFunc {
                    interface: name.clone(),
                    interface_key: key.clone(),
                    function: function.to_owned(),
                    signature,
                    error_case,
                    sites: Default::default(),
                },
            });
            match shape {
                Some(shape) => shape.link(&mut inst, function, linked_import),
                None => link_dynamic(&mut inst, function, linked_import),
            }
            .map_err(|e| format!("cannot link {import}.{function}: {e}"))?;
        }
    }
    Ok(linker)
}

/// One function of a linked import, as its host function (typed or dynamic)
/// calls it.
pub struct LinkedImport {
    pub func: ImportedFunc,
    router: Arc<Router>,
    count: Arc<LinkCount>,
}

/// Who makes one call: read from the calling instance's store before the call
/// is routed.
struct Site {
    env: Arc<ComponentEnv>,
    link_name: String,
    trace: TraceContext,
}

impl Route for LinkedImport {
    fn route(self: Arc<Self>, ctx: &mut Ctx, args: Vec<WitValue>) -> Routed {
        let site = self.site(ctx);
        Box::pin(async move { self.call(site, Ok(args)).await })
    }

    fn display(&self) -> String {
        self.func.display()
    }
}

impl LinkedImport {
    /// The caller of a call made from the instance whose store data is `ctx`.
    fn site(&self, ctx: &mut Ctx) -> Site {
        Site {
            env: ctx.env.clone(),
            link_name: ctx.link_name_for_key(&self.func.interface_key).to_owned(),
            trace: *ctx.trace.get_or_insert_with(Default::default),
        }
    }

    /// Route one call (or, when its arguments could not be read, fail it); a
    /// failure is counted, reported and logged with the trace id before it is
    /// returned.
    async fn call(
        &self,
        site: Site,
        args: Result<Vec<WitValue>, CallError>,
    ) -> Result<Vec<WitValue>, CallError> {
        self.count.call();
        let Site {
            env,
            link_name,
            trace,
        } = site;
        let result = match args {
            Ok(args) => {
                self.router
                    .call(&env, &link_name, &self.func, trace, args)
                    .await
            }
            Err(failure) => Err(failure),
        };
        if let Err(failure) = &result {
            self.count.failure();
            self.router.counters().record_failed_call(failure::report(
                failure,
                &env.app,
                &env.component,
                self.func.display(),
                &trace,
            ));
            tracing::warn!(
                app = %env.app, component = %env.component,
                call = %self.func.display(), link = %link_name,
                kind = failure.kind.as_str(), trace_id = %trace.trace_id(),
                "linked call failed: {}", failure.message
            );
        }
        result
    }
}

/// Define `function` with wasmtime's dynamic values: any signature links can
/// carry.
fn link_dynamic(
    inst: &mut LinkerInstance<'_, Ctx>,
    function: &str,
    import: Arc<LinkedImport>,
) -> wasmtime::Result<()> {
    inst.func_new_async(function, move |mut store, _ty, params, results| {
        let import = import.clone();
        let site = import.site(store.data_mut());
        Box::new(async move {
            let args = params
                .iter()
                .map(to_wire)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| CallError::new(CallErrorKind::BadArguments, e));
            match import.call(site, args).await {
                Ok(values) => {
                    for (slot, value) in results.iter_mut().zip(values) {
                        *slot = from_wire(value);
                    }
                    Ok(())
                }
                Err(failure) => import.func.error_case.deliver(&failure, results),
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::host_provides;

    #[test]
    fn the_host_provides_its_own_interfaces_at_their_versions_only() {
        assert!(host_provides("wasi:http/outgoing-handler@0.2.0"));
        assert!(host_provides("wasi:io/streams@0.2.6"));
        assert!(host_provides("wasmcloud:messaging/consumer@0.2.0"));
        assert!(host_provides("wasi:blobstore/container@0.2.0-draft"));
        assert!(host_provides("wasi:config/store@0.2.0-rc.1"));
        assert!(host_provides("wasi:logging/logging"));
        // wasmtime matches semver-compatible releases.
        assert!(host_provides("wasmcloud:bus/lattice@2.0.1"));
        assert!(host_provides("wasmcloud:messaging/types@0.2.3"));
        // Not served: another pre-release, another release line, another
        // interface of a served package, another package.
        assert!(!host_provides("wasi:config/store@0.2.0-rc.2"));
        assert!(!host_provides("wasi:keyvalue/store@0.2.0"));
        assert!(!host_provides("wasmcloud:messaging/producer@0.3.0"));
        assert!(!host_provides("wasmcloud:bus/error@2.0.1"));
        assert!(!host_provides("wasmcloud:bus/lattice@3.0.0"));
        assert!(host_provides("wasmcloud:secrets/store@0.1.0-draft"));
        assert!(!host_provides("wasmcloud:secrets/store@0.2.0"));
        assert!(!host_provides("wasmcloud:postgres/query@0.1.1-draft"));
        assert!(!host_provides("example:shop/orders"));
        assert!(!host_provides("wasi:httpx/thing"));
    }
}
