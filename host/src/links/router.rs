//! The host-wide side of links: where each call goes (an instance here, or over
//! NATS), and which of this host's components are served to other hosts.

use super::directory::{CallCounters, Directory};
use super::failure::{self, CallError};
use super::funcs::{mismatch, ImportedFunc};
use super::remote::{self, WireCall};
use super::serve::{ServeError, Serving};
use super::settings::LinkSettings;
use crate::component::{invoke, ComponentRuntime};
use crate::env::ComponentEnv;
use crate::telemetry::trace::TraceContext;
use lattice_protocol::manifest::Manifest;
use lattice_protocol::wire::{CallErrorKind, WitValue};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// One per host: routes linked calls and serves the ones that arrive over NATS.
pub struct Router {
    dir: Arc<Directory>,
    /// Per app, the NATS subscriptions of this host's components (for the CLI's
    /// calls, and for links where some link points at the component).
    serving: Mutex<HashMap<String, HashMap<String, Serving>>>,
}

impl Router {
    pub fn new(
        host_id: String,
        lattice: String,
        nats: Option<async_nats::Client>,
        settings: LinkSettings,
        labels: Arc<Mutex<BTreeMap<String, String>>>,
    ) -> Self {
        Self {
            dir: Arc::new(Directory::new(host_id, lattice, nats, settings, labels)),
            serving: Mutex::default(),
        }
    }

    pub fn settings(&self) -> &LinkSettings {
        &self.dir.settings
    }

    pub fn counters(&self) -> &CallCounters {
        &self.dir.counters
    }

    /// The host's NATS connection, if it has one.
    pub fn nats(&self) -> Option<&async_nats::Client> {
        self.dir.nats.as_ref()
    }

    /// `(key, value)` of each locality label this host has, most specific first.
    pub fn locality(&self) -> Vec<(String, String)> {
        self.dir.locality()
    }

    fn serving(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<String, Serving>>> {
        self.serving.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Make `app`'s link targets on this host callable: in-process at once, and
    /// over NATS for the ones some link points at; and every component callable
    /// by the CLI. Replaces what was registered.
    pub async fn register(
        &self,
        manifest: &Manifest,
        components: &BTreeMap<String, Arc<ComponentRuntime>>,
    ) -> Result<(), ServeError> {
        let app = manifest.name.clone();
        let targets = self.dir.set_app(manifest, components);
        let mut serving = self.serving().remove(&app).unwrap_or_default();
        serving.retain(|component, s| {
            components.contains_key(component) && s.linked == targets.contains(component)
        });
        if let Some(nats) = &self.dir.nats {
            for component in components.keys() {
                if !serving.contains_key(component) {
                    let linked = targets.contains(component);
                    let s = Serving::start(&self.dir, nats, &app, component, linked).await?;
                    serving.insert(component.clone(), s);
                }
            }
        }
        self.serving().insert(app, serving);
        Ok(())
    }

    /// Restart the serving subscriptions of every app (the new ones first, then the
    /// old drained): the locality subjects follow the host's labels now.
    pub async fn refresh_serving(&self) -> Result<(), ServeError> {
        let Some(nats) = &self.dir.nats else {
            return Ok(());
        };
        let wanted: Vec<(String, Vec<(String, bool)>)> = self
            .serving()
            .iter()
            .map(|(app, s)| {
                let components = s.iter().map(|(c, s)| (c.clone(), s.linked)).collect();
                (app.clone(), components)
            })
            .collect();
        for (app, components) in wanted {
            for (component, linked) in components {
                let fresh = Serving::start(&self.dir, nats, &app, &component, linked).await?;
                let old = self
                    .serving()
                    .get_mut(&app)
                    .and_then(|s| s.insert(component, fresh));
                drop(old);
            }
        }
        Ok(())
    }

    /// Forget `app`: stop serving its calls.
    pub fn unregister(&self, app: &str) {
        self.dir.remove_app(app);
        let stopped = self.serving().remove(app);
        drop(stopped);
    }

    /// Route one call of `func` made by the component `env` under link name `link`.
    pub async fn call(
        &self,
        env: &ComponentEnv,
        link: &str,
        func: &ImportedFunc,
        trace: TraceContext,
        args: Vec<WitValue>,
    ) -> Result<Vec<WitValue>, CallError> {
        let no_link = || {
            let named = if link == lattice_protocol::manifest::DEFAULT_LINK_NAME {
                String::new()
            } else {
                format!(" named '{link}'")
            };
            CallError::new(
                CallErrorKind::NoLink,
                format!(
                    "component '{}' of app '{}' called {}, but no link{named} of the app gives it {}: add a link trait to the component",
                    env.component,
                    env.app,
                    func.display(),
                    func.interface_key
                ),
            )
        };
        let target = env
            .links
            .get(&func.interface_key)
            .and_then(|by_name| by_name.get(link))
            .ok_or_else(no_link)?;
        let signature = func.signature.as_ref().ok_or_else(no_link)?;
        if let Some(rt) = self.dir.local(&env.app, &target.component) {
            self.dir.counters.record_local();
            let export = rt.exports.get(&func.interface_key, &func.function)?;
            if export.signature.fingerprint != signature.fingerprint {
                return Err(mismatch(&func.display(), &signature.fingerprint, export));
            }
            let timeout = target.timeout;
            return match tokio::time::timeout(timeout, invoke(&rt, export, args, Some(trace))).await
            {
                Ok(result) => result,
                Err(_) => Err(CallError::new(
                    CallErrorKind::Timeout,
                    format!(
                        "'{}' did not answer {} within the link's timeout of {timeout:?}",
                        target.component,
                        func.display()
                    ),
                )),
            };
        }
        self.dir.counters.record_remote();
        remote::call(&self.dir, env, link, target, func, signature, trace, args).await
    }

    /// Send a call in the wire model over NATS (to a capability provider), counted
    /// as remote.
    pub async fn call_remote(
        &self,
        call: &WireCall<'_>,
        args: &[WitValue],
    ) -> Result<Vec<WitValue>, CallError> {
        self.dir.counters.record_remote();
        let result = remote::call_wire(&self.dir, call, args).await;
        if let Err(failure) = &result {
            let call_name = call.target.function_name();
            let report = failure::report(
                failure,
                &call.target.app,
                call.caller,
                call_name,
                &call.trace,
            );
            self.dir.counters.record_failed_call(report);
        }
        result
    }
}
