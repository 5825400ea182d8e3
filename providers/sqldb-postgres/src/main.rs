//! `sqldb-postgres`: a lattice capability provider serving
//! `wasmcloud:postgres@0.1.1-draft` (`query` and `prepared`: parameterized queries
//! with typed rows, batches, prepared statements) and `wasi:keyvalue` (as the
//! resource-free `wrpc:keyvalue/{store,atomics,batch}` the host calls) on
//! PostgreSQL.
//!
//! Started by a lattice host for a manifest capability whose image is
//! `file://.../sqldb-postgres`. The database is the calling link's config (`url`
//! or wasmCloud's `POSTGRES_*` keys, `config.rs`), else the provider's own; one
//! bounded pool per distinct database serves every component linked to it
//! (`pool.rs`). Queries and prepared statements are `sql.rs` with
//! `statements.rs`, values `values/`, keyvalue `kv.rs`.

mod config;
mod kv;
mod pool;
mod sql;
mod statements;
mod values;
mod wit;

use anyhow::Context;
use lattice_protocol::provider::keyvalue::{self, FUNCTIONS, NAMESPACE, PACKAGE};
use lattice_provider::Provider;
use pool::Pools;
use std::sync::Arc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    lattice_provider::init_tracing();
    let mut provider = Provider::from_stdin()
        .await
        .context("starting the sqldb-postgres provider")?;
    let (app, name) = (provider.init().app.clone(), provider.init().name.clone());
    let pools = Pools::new(provider.config(), format!("lattice {app}/{name}"))
        .map_err(anyhow::Error::msg)
        .with_context(|| {
            format!("sqldb-postgres provider '{name}' of app '{app}' has a bad config")
        })?;
    let pools = Arc::new(pools);
    for link in provider.links().iter().filter(|l| l.to_provider) {
        if let Err(e) = pools.settings_for(link) {
            let (component, name) = (&link.component, &link.name);
            tracing::warn!("the link '{name}' of component '{component}': {e}");
        }
    }

    let sql = Arc::new(sql::Sql::new(pools.clone()));
    for function in wit::functions() {
        let sql = sql.clone();
        let name = function.name;
        provider.serve(
            function.interface,
            name,
            function.params,
            function.results,
            move |call| {
                let sql = sql.clone();
                async move { Ok(vec![sql.serve(name, &call).await?]) }
            },
        );
    }

    // Components link `wasi:keyvalue`; their host calls the provider on
    // `wrpc:keyvalue`.
    let kv = Arc::new(kv::Kv::new(pools));
    provider.link_alias(keyvalue::LINKED_AS, keyvalue::SERVED_AS);
    for function in FUNCTIONS {
        let kv = kv.clone();
        provider.serve(
            &format!("{NAMESPACE}:{PACKAGE}/{}", function.interface()),
            function.name(),
            function.params(),
            function.results(),
            move |call| {
                let kv = kv.clone();
                async move { Ok(vec![kv.serve(function, &call).await?]) }
            },
        );
    }
    provider.run().await.context("serving calls")?;
    Ok(())
}
