//! The one wasmtime `Engine` of a host process, and the epoch ticker behind deadlines.

use crate::config::Limits;
use std::time::Duration;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances: the granularity of execution deadlines and of
/// cooperative yields of long-running guests.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Maximum concurrent instances the pooling allocator reserves room for.
const POOL_INSTANCES: u32 = 1000;
/// Idle warm instances all components of a host may keep together: half the
/// pool, so fresh instances always find room.
pub const WARM_INSTANCES: usize = POOL_INSTANCES as usize / 2;

/// Build the host's engine: component model, async, epoch interruption, and the
/// pooling allocator when `pooling` is asked for and the machine can reserve it
/// (otherwise on-demand allocation, with a warning). Returns whether pooling is on.
///
/// Where the kernel has `PAGEMAP_SCAN` (Linux >= 6.7), a returned slot keeps its
/// pages resident and only the pages the guest dirtied are reset: no `madvise` and
/// no page faults per invocation, which halves the per-request CPU of a small HTTP
/// component (see docs/benchmarks.md). Without it, that tuning would zero whole
/// slots on every reuse, so it is left off.
pub fn build_engine(limits: &Limits, pooling: bool) -> anyhow::Result<(Engine, bool)> {
    if pooling {
        for pagemap_scan in [true, false] {
            let mut config = base_config();
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool_config(
                limits,
                pagemap_scan,
            )));
            match Engine::new(&config) {
                Ok(engine) => return Ok((engine, true)),
                Err(e) if pagemap_scan => tracing::debug!(
                    error = %e,
                    "PAGEMAP_SCAN unavailable; pooling slots are reset with madvise"
                ),
                Err(e) => tracing::warn!(
                    error = %e,
                    "pooling allocator unavailable on this machine; using on-demand allocation"
                ),
            }
        }
    }
    let engine = Engine::new(&base_config()).map_err(anyhow::Error::from)?;
    Ok((engine, false))
}

fn pool_config(limits: &Limits, pagemap_scan: bool) -> PoolingAllocationConfig {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(POOL_INSTANCES)
        .total_core_instances(POOL_INSTANCES * 4)
        .total_memories(POOL_INSTANCES * 2)
        .total_tables(POOL_INSTANCES * 4)
        .total_stacks(POOL_INSTANCES)
        .max_memory_size(limits.max_memory_bytes)
        .max_unused_warm_slots(100);
    if pagemap_scan {
        pool.linear_memory_keep_resident(4 << 20)
            .table_keep_resident(64 << 10)
            .pagemap_scan(wasmtime::Enabled::Yes);
    }
    pool
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
