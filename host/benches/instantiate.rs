//! The fixed cost of one invocation: a fresh `Store` plus instantiating the `hello`
//! component from its `InstancePre`, with the pooling allocator and without it.
//!
//! Run: `cargo bench -p lattice-host --bench instantiate`
//! (figures and their meaning: `docs/benchmarks.md`).

#![allow(clippy::unwrap_used)] // a benchmark: an unwrap that fails is a failed run

use criterion::{criterion_group, criterion_main, Criterion};
use lattice_host::workload::ComponentRuntime;
use lattice_host::{Host, HostConfig};
use lattice_protocol::messages::WorkloadSpec;
use lattice_testing::manifest::{App, Component};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::runtime::Runtime;

/// A host with `pooling` as asked, running the `hello` component (no listener).
fn hello_host(rt: &Runtime, pooling: bool) -> (Host, Arc<ComponentRuntime>) {
    let manifest = App::new("bench")
        .with(Component::wasm("hello", "hello"))
        .manifest();
    let config = HostConfig {
        pooling,
        allow_file_load: true,
        ..HostConfig::default()
    };
    let host = rt.block_on(async {
        let host = Host::new(config, None).expect("host starts");
        let spec = WorkloadSpec {
            manifest,
            placements: BTreeMap::from([("hello".to_string(), 1)]),
            secrets: None,
        };
        host.apply(spec).await.expect("hello deploys");
        host
    });
    assert_eq!(
        host.pooling(),
        pooling,
        "pooling allocator state differs from the one asked for"
    );
    let hello = host.component("bench", "hello").expect("hello is placed");
    (host, hello)
}

fn instantiate(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut group = c.benchmark_group("instantiate_hello");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));

    for (label, pooling) in [("pooling", true), ("on_demand", false)] {
        let (_host, hello) = hello_host(&rt, pooling);
        group.bench_function(format!("store_only/{label}"), |b| {
            b.iter(|| drop(hello.new_store()))
        });
        group.bench_function(format!("store_and_instance/{label}"), |b| {
            b.to_async(&rt)
                .iter(|| async { hello.instantiate_only().await.expect("hello instantiates") })
        });
    }
    group.finish();
}

criterion_group!(benches, instantiate);
criterion_main!(benches);
