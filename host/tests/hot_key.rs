//! A hot key (issue 15): several hosts on one NATS, many concurrent increments of
//! one counter through the `counter` component on `builtin://keyvalue-nats`. Every
//! increment succeeds, each caller sees its own value, and none is lost.
//!
//! Without per-key coalescing every increment is its own compare-and-set, and
//! 300 concurrent ones on one key run out of attempts (and invocation deadlines).

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

#[allow(dead_code)] // `serve` is for other tests
mod support;

use futures::future::join_all;
use lattice_testing::host::{get, host, Limits};
use lattice_testing::manifest::spec;
use lattice_testing::nats::{free_port, NatsServer};
use std::collections::BTreeSet;
use std::time::Duration;
use support::http_app;

const HOSTS: usize = 3;
const PER_HOST: usize = 100;

fn limits() -> Limits {
    Limits {
        max_memory_bytes: 64 << 20,
        execution_timeout: Duration::from_secs(15),
        max_queued: PER_HOST,
        queue_timeout: Duration::from_secs(15),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hot_key_on_three_hosts_counts_every_increment_once() {
    let nats = NatsServer::start().unwrap();
    let mut hosts = Vec::new();
    let mut ports = Vec::new();
    for _ in 0..HOSTS {
        let host = host(limits(), Some(nats.connect().await.unwrap()));
        let port = free_port().unwrap();
        // The same app on every host: one JetStream bucket shared by all of them.
        host.apply(spec(http_app(
            "hot",
            "counter",
            port,
            "keyvalue-nats",
            PER_HOST as u32,
        )))
        .await
        .unwrap();
        hosts.push(host);
        ports.push(port);
    }
    // The bucket exists before the load (its creation is not what is measured).
    assert_eq!(get(ports[0], "/warm").await, (200, "warm -> 1\n".into()));

    let requests = ports
        .iter()
        .flat_map(|port| (0..PER_HOST).map(move |_| get(*port, "/hot")));
    let answers = join_all(requests).await;

    let mut values = Vec::new();
    for (status, body) in &answers {
        assert_eq!(*status, 200, "an increment failed: {body}");
        let value = body
            .trim()
            .strip_prefix("hot -> ")
            .unwrap_or_else(|| panic!("unexpected answer {body:?}"));
        values.push(value.parse::<u64>().unwrap());
    }
    let total = (HOSTS * PER_HOST) as u64;
    let distinct: BTreeSet<u64> = values.iter().copied().collect();
    assert_eq!(distinct.len(), values.len(), "two callers got one value");
    assert_eq!(distinct, (1..=total).collect::<BTreeSet<u64>>());
    // Nothing lost, nothing counted twice: the next increment is total + 1.
    assert_eq!(
        get(ports[1], "/hot").await,
        (200, format!("hot -> {}\n", total + 1))
    );
}

/// On a three-node cluster, a host with `bucket_replicas: 3` creates its apps'
/// keyvalue-nats buckets with three copies, so a counter survives a node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_keyvalue_buckets_get_the_hosts_bucket_replicas() {
    use futures::StreamExt;
    use lattice_host::{Host, HostConfig};
    let cluster = lattice_testing::nats_cluster::NatsCluster::start(3).unwrap();
    let client = cluster.connect().await.unwrap();
    cluster.wait_jetstream(&client).await.unwrap();
    let config = HostConfig {
        limits: limits(),
        allow_file_load: true,
        bucket_replicas: 3,
        ..HostConfig::default()
    };
    let host = Host::new(config, Some(client.clone())).unwrap();
    let port = free_port().unwrap();
    let manifest = http_app("counted", "counter", port, "keyvalue-nats", 1);
    host.apply(spec(manifest)).await.unwrap();
    assert_eq!(get(port, "/k").await, (200, "k -> 1\n".into()));

    let js = async_nats::jetstream::new(client);
    let prefix = "KV_lattice_default_kv_counted_";
    let mut names = js.stream_names();
    let mut found = Vec::new();
    while let Some(name) = names.next().await {
        let name = name.unwrap();
        if name.starts_with(prefix) {
            let mut stream = js.get_stream(&name).await.unwrap();
            found.push((name, stream.info().await.unwrap().config.num_replicas));
        }
    }
    assert!(!found.is_empty(), "no bucket of the app was created");
    for (name, replicas) in found {
        assert_eq!(replicas, 3, "{name}");
    }
}
