//! Applying a workload: compile and link its components, start its service and
//! providers (keeping those of the same version running), bind its listeners and
//! register its link targets, all or nothing.

use super::*;
use crate::capability::AppStart;
use crate::component::WarmPool;
use crate::env::ComponentEnv;
use crate::limiter::Limiter;
use crate::links::funcs::Exports;
use crate::links::{imports, targets};
use crate::provider::{self, Provider, ProviderContext, ProviderSpec};
use crate::service::Service;
use lattice_protocol::manifest::{revalidate, ComponentKind, Image, Manifest};
use lattice_protocol::messages::WorkloadSpec;
use lattice_protocol::secrets::{given, SecretValue};
use std::collections::BTreeSet;
use wasmtime_wasi_http::p2::bindings::ProxyIndices;

impl Host {
    /// Open the secrets `spec` carries for the components it places here: every
    /// one they name must be there, sealed for this host's key. Stored name to
    /// value.
    fn open_secrets(
        &self,
        manifest: &Manifest,
        spec: &WorkloadSpec,
    ) -> Result<BTreeMap<String, SecretValue>, String> {
        let wanted: BTreeSet<&str> = spec
            .placements
            .iter()
            .filter(|(_, n)| **n > 0)
            .flat_map(|(name, _)| manifest.secrets_of(name).map(|r| r.key.as_str()))
            .collect();
        if wanted.is_empty() {
            return Ok(BTreeMap::new());
        }
        let refuse =
            |why: String| format!("host {} refuses app '{}': {why}", self.id(), manifest.name);
        let Some(sealed) = &spec.secrets else {
            return Err(refuse(
                "its components are given secrets but the command carries none".into(),
            ));
        };
        let own = self.inner.secrets_key.public_key();
        if sealed.recipient != own {
            return Err(refuse(format!(
                "its secrets are sealed for key {} but this host's key is {own} (it restarted); \
                 they are sent again with its next heartbeat",
                sealed.recipient
            )));
        }
        let mut out = BTreeMap::new();
        for key in wanted {
            let Some(value) = sealed.values.get(key) else {
                return Err(refuse(format!("secret '{key}' was not sent")));
            };
            let clear =
                lattice_protocol::secrets::open(value, &self.inner.secrets_key, &sealed.sender)
                    .map_err(|e| refuse(format!("secret '{key}': {e}")))?;
            out.insert(key.to_string(), SecretValue::from_bytes(clear));
        }
        Ok(out)
    }

    /// Run exactly `spec` for its app, replacing what ran before. Returns the
    /// components whose instances changed, with their new count (0: stopped here).
    /// On error nothing changes and the message says what to fix.
    pub async fn apply(&self, spec: WorkloadSpec) -> Result<Vec<(String, u32)>, ApplyError> {
        let host = || self.id().to_string();
        if self.inner.draining.load(Ordering::SeqCst) {
            return Err(ApplyError::Draining { host: host() });
        }
        // Validated here too: a host applies only what the parser accepts, with
        // the same budgets as the CLI and the controller.
        let limits = lattice_protocol::manifest::Limits::default();
        let manifest =
            revalidate(&spec.manifest, &limits).map_err(|e| ApplyError::InvalidManifest {
                host: host(),
                app: spec.manifest.name.clone(),
                reason: e.to_string(),
            })?;
        let app = manifest.name.clone();
        if let Some((name, n)) = spec
            .placements
            .iter()
            .find(|(_, n)| **n > limits.max_instances)
        {
            return Err(ApplyError::OverBudget {
                host: host(),
                app,
                component: name.clone(),
                instances: *n,
                max: limits.max_instances,
            });
        }
        // The same version keeps its loopback network and its running service; a
        // new version starts both afresh.
        let (loopback, running_service, running_providers) = match self.workloads().get(&app) {
            Some(w) if w.version == manifest.version => {
                (w.loopback.clone(), w.service.clone(), w.providers.clone())
            }
            Some(w) => (Arc::new(Loopback::default()), None, w.providers.clone()),
            None => (Arc::new(Loopback::default()), None, BTreeMap::new()),
        };
        self.check_images(&manifest, &spec.placements)
            .map_err(ApplyError::ImageNotAllowed)?;
        let secrets = self
            .open_secrets(&manifest, &spec)
            .map_err(ApplyError::Secrets)?;
        // Fetch (checked by digest) and compile every image first, then link:
        // none of it has an effect outside this call, so an image that cannot be
        // fetched or a component that does not compile leaves nothing behind.
        let ready = self
            .fetch_images(&manifest, &spec.placements)
            .await
            .map_err(ApplyError::Image)?;
        let mut components = BTreeMap::new();
        for (name, &instances) in &spec.placements {
            if instances == 0 || manifest.is_provider(name) {
                continue;
            }
            let rt = self
                .prepare(&manifest, name, instances, &loopback, &ready, &secrets)
                .await
                .map_err(ApplyError::Component)?;
            components.insert(name.clone(), Arc::new(rt));
        }
        // Then start processes; a later failure drops (and so stops) the new ones.
        let mut providers = BTreeMap::new();
        for (name, &instances) in &spec.placements {
            let Some(Ready::Executable(executable)) = ready.get(name).filter(|_| instances > 0)
            else {
                continue;
            };
            let Some(mut provider) = ProviderSpec::of(&manifest, name, executable.clone()) else {
                continue;
            };
            // A provider reads its config and secrets once, at start: named config
            // as it is now (a change restarts it at the next apply, as any config
            // change does).
            if let Some(c) = manifest.component(name) {
                provider.config = self
                    .inner
                    .named_configs
                    .resolve(&c.config, &c.config_layers);
                provider.secrets = given(&c.secrets, &secrets);
            }
            let links = provider::links_of(&manifest, name, &secrets);
            let process = match running_providers.get(name) {
                // Same executable and config: keep the process, tell it the links.
                Some((_, p)) if p.spec == provider => {
                    p.set_links(links);
                    p.clone()
                }
                _ => {
                    let started = self
                        .provider_context()
                        .and_then(|ctx| Provider::start(ctx, provider, links));
                    Arc::new(started.map_err(ApplyError::Provider)?)
                }
            };
            providers.insert(name.clone(), (instances, process));
        }
        let service = match (manifest.service(), running_service) {
            (Some(_), _) if components.is_empty() => None,
            (Some(_), Some(running)) => Some(running),
            (Some(svc), None) => {
                let rt = self
                    .prepare(&manifest, &svc.name, 1, &loopback, &ready, &secrets)
                    .await
                    .map_err(ApplyError::Component)?;
                let policy = svc.restart.unwrap_or_default();
                let service = Service::start(&self.inner.services, Arc::new(rt), policy)
                    .map_err(ApplyError::Service)?;
                Some(Arc::new(service))
            }
            (None, _) => None,
        };
        // What the capabilities start for the app (subscriptions, listeners); if
        // one fails, the guards of the others drop here and nothing stays behind.
        let start = AppStart {
            manifest: &manifest,
            placed: &components,
        };
        let mut guards = Vec::new();
        for capability in &self.inner.capabilities {
            let started = capability.start(&start).await;
            let guard = started.map_err(|reason| ApplyError::Capability {
                capability: capability.name(),
                reason,
            })?;
            guards.extend(guard);
        }
        let after: BTreeMap<String, u32> = components
            .iter()
            .map(|(n, rt)| (n.clone(), rt.instances))
            .chain(providers.iter().map(|(n, (i, _))| (n.clone(), *i)))
            .collect();
        let before = self.instances(&app);
        self.inner.router.register(&manifest, &components).await?;
        let workload = Workload {
            version: manifest.version.clone(),
            manifest,
            components,
            loopback,
            service,
            providers,
            guards,
        };
        self.workloads().insert(app.clone(), workload);
        tracing::info!(%app, "workload applied");
        Ok(scaled(&before, &after))
    }

    /// Refuse, before anything starts, images this host may not run: `file://`
    /// ones unless it loads files, provider executables from images unless it
    /// allows them, and provider files outside its provider folder.
    fn check_images(
        &self,
        manifest: &Manifest,
        placements: &BTreeMap<String, u32>,
    ) -> Result<(), String> {
        let config = &self.inner.config;
        let app = &manifest.name;
        for name in placements.keys() {
            let Some(component) = manifest.component(name) else {
                continue;
            };
            let from_image = matches!(component.image, Image::Artifact(_) | Image::Oci(_));
            if from_image && manifest.is_provider(name) && !config.allow_provider_images {
                return Err(format!(
                    "provider '{name}' of app '{app}' is the executable image '{}', and host {} runs no provider executables from images (start it with --allow-provider-images, as `lattice up` does, or use a bundled provider from --provider-dir)",
                    component.image.to_uri(),
                    self.id()
                ));
            }
            let Image::File(path) = &component.image else {
                continue;
            };
            if !config.allow_file_load {
                return Err(format!(
                    "component '{name}' of app '{app}' has the file image '{path}', and host {} does not load files (start it with --allow-file-load, as `lattice up` does)",
                    self.id()
                ));
            }
            let Some(dir) = config.provider_dir.as_ref() else {
                continue;
            };
            if !manifest.is_provider(name) {
                continue;
            }
            let executable = std::path::Path::new(path.strip_prefix("file://").unwrap_or(path));
            let inside = executable
                .canonicalize()
                .ok()
                .zip(dir.canonicalize().ok())
                .is_some_and(|(exe, dir)| exe.starts_with(dir));
            if !inside {
                return Err(format!(
                    "provider '{name}' of app '{app}': {} is not inside this host's provider folder {} (--provider-dir)",
                    executable.display(),
                    dir.display()
                ));
            }
        }
        Ok(())
    }

    /// What providers started here are given: where NATS is.
    fn provider_context(&self) -> Result<ProviderContext, String> {
        let (Some(nats_url), Some(nats)) = (
            self.inner.config.provider_nats_url.clone(),
            self.inner.router.nats().cloned(),
        ) else {
            return Err(format!(
                "host {} has no NATS URL to give capability providers, so it cannot run them",
                self.id()
            ));
        };
        Ok(ProviderContext {
            lattice: self.inner.config.lattice.clone(),
            host_id: self.id().to_string(),
            nats_url,
            nats_tls: self.inner.config.provider_nats_tls.clone(),
            nats,
            signer: self.inner.config.provider_signer.clone(),
            locality: self.inner.router.locality(),
        })
    }

    /// Fetch every image the placements and the service need, each checked
    /// against its digest, and compile the components (a digest compiled before
    /// is neither fetched nor compiled again) once their signatures admit them,
    /// when this host trusts issuers. All or nothing: the first failure is the
    /// answer, naming the component, its image and why.
    async fn fetch_images(
        &self,
        manifest: &Manifest,
        placements: &BTreeMap<String, u32>,
    ) -> Result<BTreeMap<String, Ready>, String> {
        let app = &manifest.name;
        let service = manifest.service().map(|s| s.name.as_str());
        let needed = placements
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(name, _)| name.as_str())
            .chain(service)
            .collect::<std::collections::BTreeSet<_>>();
        let fetches = needed.into_iter().filter_map(|name| {
            let component = manifest.component(name)?;
            component.image.is_code().then_some((name, component))
        });
        let fetches = fetches.map(|(name, component)| async move {
            let image = &component.image;
            let failed = |e: &dyn std::fmt::Display| {
                format!(
                    "component '{name}' of app '{app}': cannot fetch its image {} on host {}: {e}",
                    image.to_uri(),
                    self.id()
                )
            };
            let fetcher = &self.inner.fetcher;
            if let Image::Bundled(bundled) = image {
                let dir = self.inner.config.provider_dir.as_deref();
                let exe = crate::provider::bundled::locate(*bundled, dir)
                    .map_err(|e| format!("component '{name}' of app '{app}': {e}"))?;
                let exe = lattice_artifacts::fetch::Executable::unchecked(exe);
                return Ok((name.to_string(), Ready::Executable(exe)));
            }
            if component.is_provider() {
                let exe = fetcher.executable(image).await.map_err(|e| failed(&e))?;
                return Ok::<_, String>((name.to_string(), Ready::Executable(exe)));
            }
            let refused =
                |e: crate::cache::LoadError| format!("component '{name}' of app '{app}': {e}");
            let cache = &self.inner.cache;
            let known = match lattice_artifacts::Fetcher::digest_of(image) {
                Some(d) => cache
                    .get(&image.to_uri(), &d.hex())
                    .map_err(refused)?
                    .map(|c| (d.hex(), c)),
                None => None,
            };
            let (digest, compiled) = match known {
                Some(found) => found,
                None => {
                    let fetched = fetcher.component(image).await.map_err(|e| failed(&e))?;
                    cache
                        .load_bytes(&image.to_uri(), fetched.bytes)
                        .await
                        .map_err(refused)?
                }
            };
            Ok((name.to_string(), Ready::Component(digest, compiled)))
        });
        let ready = futures::future::try_join_all(fetches).await?;
        Ok(ready.into_iter().collect())
    }

    async fn prepare(
        &self,
        manifest: &Manifest,
        name: &str,
        instances: u32,
        loopback: &Arc<Loopback>,
        ready: &BTreeMap<String, Ready>,
        secrets: &BTreeMap<String, SecretValue>,
    ) -> Result<ComponentRuntime, String> {
        let app = &manifest.name;
        let component = manifest
            .component(name)
            .ok_or_else(|| format!("app '{app}' has no component named '{name}'"))?;
        if component.kind == ComponentKind::Capability {
            return Err(format!(
                "component '{name}' of app '{app}' is a capability and cannot be placed as a component"
            ));
        }
        let Some(Ready::Component(digest, compiled)) = ready.get(name) else {
            return Err(format!(
                "component '{name}' of app '{app}' has no Wasm component image to run ({})",
                component.image.to_uri()
            ));
        };
        let (digest, compiled) = (digest.clone(), compiled.clone());
        let mut env = ComponentEnv::new(app, name);
        env.config = component.config.clone();
        env.config_layers = component.config_layers.clone();
        env.named_configs = self.inner.named_configs.clone();
        env.logs = self.inner.guest_logs.clone();
        env.secrets = Arc::new(given(manifest.secrets_of(name), secrets));
        env.links = targets::of(manifest, name, &self.inner.config.links)?;
        env.link_names = component
            .links
            .iter()
            .flat_map(|l| {
                l.interfaces
                    .iter()
                    .map(|i| (format!("{}:{}/{i}", l.namespace, l.package), l.name.clone()))
            })
            .collect();
        env.loopback = Some(loopback.clone());
        env.can_listen = component.kind == ComponentKind::Service;
        for capability in &self.inner.capabilities {
            capability.configure(manifest, name, &mut env.settings)?;
        }
        let engine = &self.inner.engine;
        let own_linker = imports::linker_for(
            &self.inner.linker,
            engine,
            &compiled,
            &env,
            &self.inner.router,
        )?;
        let linker = own_linker.as_ref().unwrap_or(&self.inner.linker);
        let pre = linker.instantiate_pre(&compiled).map_err(|e| {
            format!("component '{name}' of app '{app}' cannot be linked on this host: {e:#}")
        })?;
        let proxy = ProxyIndices::new(&pre).ok();
        let limits = self.inner.config.limits;
        let warm = component
            .warm
            .map(|w| WarmPool::new(w, instances, self.inner.warm_budget.clone()));
        Ok(ComponentRuntime {
            env: Arc::new(env),
            exports: Exports::of(engine, &compiled),
            pre,
            proxy,
            limiter: Limiter::new(instances, limits.max_queued, limits.queue_timeout),
            limits,
            instances,
            digest,
            outcomes: Default::default(),
            warm,
        })
    }
}

/// An image fetched and ready to run: a compiled component (by digest) or a
/// provider executable (with the digest it is checked against at every start).
enum Ready {
    Component(String, wasmtime::component::Component),
    Executable(lattice_artifacts::fetch::Executable),
}

/// Components whose instance count differs between `before` and `after`.
fn scaled(before: &BTreeMap<String, u32>, after: &BTreeMap<String, u32>) -> Vec<(String, u32)> {
    let stopped = before
        .keys()
        .filter(|n| !after.contains_key(*n))
        .map(|n| (n.clone(), 0));
    let changed = after
        .iter()
        .filter(|(n, i)| before.get(*n) != Some(*i))
        .map(|(n, i)| (n.clone(), *i));
    changed.chain(stopped).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaled_lists_changes_and_stops() {
        let m = |v: &[(&str, u32)]| v.iter().map(|(n, i)| (n.to_string(), *i)).collect();
        let before = m(&[("a", 1), ("b", 2), ("c", 3)]);
        let after = m(&[("a", 1), ("b", 4), ("d", 1)]);
        assert_eq!(
            scaled(&before, &after),
            vec![("b".into(), 4), ("d".into(), 1), ("c".into(), 0)]
        );
        assert!(scaled(&after, &after).is_empty());
    }
}
