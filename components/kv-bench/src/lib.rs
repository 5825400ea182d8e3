//! The component side of the keyvalue benchmark: `lattice:kvbench/run.ops` does
//! `count` `wasi:keyvalue` operations (`get` or `increment`) on one key, one after
//! another, and returns the nanoseconds they took, so the benchmark measures the
//! keyvalue path (host plugin, NATS, provider, backend) rather than instantiation.

mod bindings {
    #![allow(missing_docs, clippy::all)]
    pub mod bench {
        wit_bindgen::generate!({
            path: "../../wit/examples/kvbench.wit",
            world: "lattice:kvbench/kvbench",
        });
    }
    pub mod keyvalue {
        wit_bindgen::generate!({
            path: "../../wit/deps/keyvalue",
            world: "wasi:keyvalue/imports",
        });
    }
}

use bindings::keyvalue::wasi::keyvalue::{atomics, store};
use std::time::Instant;

struct KvBench;

bindings::bench::export!(KvBench with_types_in bindings::bench);

impl bindings::bench::exports::lattice::kvbench::run::Guest for KvBench {
    fn ops(op: String, key: String, count: u32) -> Result<u64, String> {
        let bucket = store::open("default").map_err(|e| format!("open: {e:?}"))?;
        let start = Instant::now();
        for _ in 0..count {
            match op.as_str() {
                "get" => {
                    bucket.get(&key).map_err(|e| format!("get: {e:?}"))?;
                }
                "increment" => {
                    atomics::increment(&bucket, &key, 1)
                        .map_err(|e| format!("increment: {e:?}"))?;
                }
                other => return Err(format!("unknown op '{other}': use get or increment")),
            }
        }
        Ok(u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }
}
