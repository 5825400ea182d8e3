//! The one wasmtime `Engine` of a host process, and the epoch ticker behind deadlines.

use crate::config::Limits;
use std::time::Duration;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances: the granularity of execution deadlines and of
/// cooperative yields of long-running guests.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Maximum concurrent instances the pooling allocator reserves room for.
const POOL_INSTANCES: u32 = 1000;

/// Build the host's engine: component model, async, epoch interruption, and the
/// pooling allocator when `pooling` is asked for and the machine can reserve it
/// (otherwise on-demand allocation, with a warning).
pub fn build_engine(limits: &Limits, pooling: bool) -> anyhow::Result<(Engine, bool)> {
    if pooling {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(POOL_INSTANCES)
            .total_core_instances(POOL_INSTANCES * 4)
            .total_memories(POOL_INSTANCES * 2)
            .total_tables(POOL_INSTANCES * 4)
            .total_stacks(POOL_INSTANCES)
            .max_memory_size(limits.max_memory_bytes)
            .max_unused_warm_slots(100);
        let mut config = base_config();
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        match Engine::new(&config) {
            Ok(engine) => return Ok((engine, true)),
            Err(e) => tracing::warn!(
                error = %e,
                "pooling allocator unavailable on this machine; using on-demand allocation"
            ),
        }
    }
    let engine = Engine::new(&base_config()).map_err(anyhow::Error::from)?;
    Ok((engine, false))
}

fn base_config() -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true).epoch_interruption(true);
    config
}

/// Advance the engine's epoch every [`EPOCH_TICK`] on a dedicated thread, for as long
/// as the engine is alive.
pub fn start_epoch_ticker(engine: &Engine) {
    let engine = engine.weak();
    std::thread::Builder::new()
        .name("lattice-epoch".into())
        .spawn(move || {
            while let Some(engine) = engine.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("the OS refused to start the epoch thread");
}
