//! `wasmcloud:secrets@0.1.0-draft` (`store`, `reveal`): the secrets the manifest
//! gives a component (`properties.secrets`), opened by the host when it applied
//! the app (see `lattice_protocol::secrets`). `get` hands out a handle; only
//! `reveal` reads the value, so a component's secret use is easy to audit, as in
//! wasmCloud. Nothing here logs a value.

use crate::capability::Capability;
use crate::ctx::Ctx;
use bindings::wasmcloud::secrets::{reveal, store};
use lattice_protocol::secrets::SecretValue;
use wasmtime::component::{HasSelf, Linker, Resource};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "lattice:host/secrets-imports",
        imports: { default: async | trappable },
        with: {
            "wasmcloud:secrets/store.secret": crate::plugins::secrets::Secret,
        },
    });
}

/// A `secret` handle: the name the component asked for.
pub struct Secret {
    name: String,
}

/// The capability (its data is the component's secrets, in `ComponentEnv`).
pub struct Secrets;

impl Capability for Secrets {
    fn name(&self) -> &'static str {
        "secrets"
    }

    fn add_to_linker(&self, linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
        store::add_to_linker::<Ctx, HasSelf<Ctx>>(linker, |c| c)?;
        reveal::add_to_linker::<Ctx, HasSelf<Ctx>>(linker, |c| c)
    }
}

impl store::Host for Ctx {
    async fn get(
        &mut self,
        key: String,
    ) -> wasmtime::Result<Result<Resource<Secret>, store::SecretsError>> {
        if !self.env.secrets.contains_key(&key) {
            return Ok(Err(store::SecretsError::NotFound));
        }
        Ok(Ok(self.table.push(Secret { name: key })?))
    }
}

impl store::HostSecret for Ctx {
    async fn drop(&mut self, rep: Resource<Secret>) -> wasmtime::Result<()> {
        self.table.delete(rep)?;
        Ok(())
    }
}

impl reveal::Host for Ctx {
    async fn reveal(&mut self, s: Resource<Secret>) -> wasmtime::Result<store::SecretValue> {
        let name = &self.table.get(&s)?.name;
        // `get` checked the name; the component's secrets do not change while it runs.
        let value = self
            .env
            .secrets
            .get(name)
            .ok_or_else(|| wasmtime::Error::msg(format!("secret '{name}' vanished")))?;
        Ok(match value {
            SecretValue::String(s) => store::SecretValue::String(s.clone()),
            SecretValue::Bytes(b) => store::SecretValue::Bytes(b.clone()),
        })
    }
}
