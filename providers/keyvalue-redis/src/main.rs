//! `keyvalue-redis`: a lattice capability provider serving `wasi:keyvalue` (as the
//! resource-free `wrpc:keyvalue/{store,atomics,batch}` the host calls) on Redis.
//!
//! Started by a lattice host for a manifest capability whose image is
//! `file://.../keyvalue-redis`. Redis is the calling link's `url` (a secret of the
//! link's `target`, else its target config), else the provider's own `url` config,
//! else `redis://127.0.0.1:6379`; one shared
//! connection per distinct URL serves every component linked to it. A `password`
//! secret (`properties.secrets`) authenticates to every URL that names no password,
//! as wasmCloud's Redis provider reads it. Buckets map to
//! key prefixes (`keys.rs`), functions to commands (`ops.rs`).

mod keys;
mod ops;
mod pool;
mod values;

use anyhow::Context;
use lattice_protocol::provider::keyvalue::{self, FUNCTIONS, NAMESPACE, PACKAGE};
use lattice_provider::Provider;
use std::sync::Arc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    lattice_provider::init_tracing();
    let mut provider = Provider::from_stdin()
        .await
        .context("starting the keyvalue-redis provider")?;
    let pool = Arc::new(
        pool::Pool::new(
            provider.config(),
            provider.secret_text(pool::PASSWORD_SECRET),
        )
        .map_err(anyhow::Error::msg)
        .with_context(|| {
            format!(
                "keyvalue-redis provider '{}' of app '{}' has a bad config",
                provider.init().name,
                provider.init().app
            )
        })?,
    );
    for link in provider.links().iter().filter(|l| l.to_provider) {
        if let Err(e) = pool::check(pool.url_for(link)) {
            let (component, name) = (&link.component, &link.name);
            tracing::warn!("the link '{name}' of component '{component}': {e}");
        }
    }
    // Components link `wasi:keyvalue`; their host calls the provider on
    // `wrpc:keyvalue`.
    provider.link_alias(keyvalue::LINKED_AS, keyvalue::SERVED_AS);
    for function in FUNCTIONS {
        let pool = pool.clone();
        provider.serve(
            &format!("{NAMESPACE}:{PACKAGE}/{}", function.interface()),
            function.name(),
            function.params(),
            function.results(),
            move |call| {
                let pool = pool.clone();
                async move { Ok(vec![ops::serve(&pool, function, &call).await?]) }
            },
        );
    }
    provider.run().await.context("serving keyvalue calls")?;
    Ok(())
}
