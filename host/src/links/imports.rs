//! What one component imports through links and exports to them, worked out once
//! when a workload is applied.

use super::failure::ErrorCase;
use super::funcs::ImportedFunc;
use super::router::Router;
use super::types::Signature;
use super::InterfaceName;
use crate::ctx::Ctx;
use crate::env::ComponentEnv;
use std::sync::Arc;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker};
use wasmtime::Engine;

/// Packages whose interfaces the host itself provides (wasmtime-wasi's, the plugins'
/// and its own); an unlinked import of any other package (`example:shop`, or a
/// provider's such as `wasmcloud:postgres`) gets functions that fail with a clear
/// error instead of the component failing to instantiate.
const HOST_PACKAGES: [&str; 14] = [
    "wasi:cli",
    "wasi:clocks",
    "wasi:io",
    "wasi:random",
    "wasi:sockets",
    "wasi:filesystem",
    "wasi:http",
    "wasi:keyvalue",
    "wasi:config",
    "wasi:logging",
    "wasi:blobstore",
    "wasmcloud:bus",
    "wasmcloud:messaging",
    "lattice:host",
];

/// Whether the host's own linker serves `import` (`ns:pkg/iface@version`).
fn host_provides(import: &str) -> bool {
    let package = import.split('/').next().unwrap_or(import);
    HOST_PACKAGES.contains(&package)
}

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
            let ComponentItem::ComponentFunc(func) = item.ty else {
                continue;
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
            let imported = Arc::new(ImportedFunc {
                interface: name.clone(),
                interface_key: key.clone(),
                function: function.to_owned(),
                signature,
                error_case,
            });
            let router = router.clone();
            inst.func_new_async(function, move |mut store, _ty, params, results| {
                let imported = imported.clone();
                let router = router.clone();
                Box::new(async move {
                    let ctx = store.data_mut();
                    let env = ctx.env.clone();
                    let link_name = ctx.link_name_for_key(&imported.interface_key).to_owned();
                    let trace = *ctx.trace.get_or_insert_with(Default::default);
                    match router
                        .call(&env, &link_name, &imported, trace, params)
                        .await
                    {
                        Ok(values) => {
                            for (slot, value) in results.iter_mut().zip(values) {
                                *slot = value;
                            }
                            Ok(())
                        }
                        Err(failure) => {
                            router.counters().record_failure();
                            tracing::warn!(
                                app = %env.app, component = %env.component,
                                call = %imported.display(), link = %link_name,
                                kind = failure.kind.as_str(), trace_id = %trace.trace_id(),
                                "linked call failed: {}", failure.message
                            );
                            imported.error_case.deliver(&failure, results)
                        }
                    }
                })
            })
            .map_err(|e| format!("cannot link {import}.{function}: {e}"))?;
        }
    }
    Ok(linker)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_host_provides_its_own_packages_only() {
        assert!(super::host_provides("wasi:http/outgoing-handler@0.2.0"));
        assert!(super::host_provides("wasmcloud:messaging/consumer@0.2.0"));
        assert!(super::host_provides("wasi:blobstore/container@0.2.0-draft"));
        assert!(!super::host_provides(
            "wasmcloud:postgres/query@0.1.1-draft"
        ));
        assert!(!super::host_provides("example:shop/orders"));
        assert!(!super::host_provides("wasi:httpx/thing"));
    }
}
