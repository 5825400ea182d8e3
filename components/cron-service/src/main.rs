//! A service (`type: service`; a `wasi:cli/run` binary, world `cron-service` of
//! `wit/examples/cron.wit`) that calls the imported `example:cron/job.run(tick)` every
//! interval, forever, with `tick` = 1, 2, 3, ... The host links the import to the
//! component that exports `job` (`cron-job` in `manifests/cron.yaml`).
//!
//! Config (`wasi:config/store`): `interval_ms`, default `1000`: it sleeps that long
//! before each call. A `run` that returns `err(e)` is reported on stderr as
//! `tick <n>: job failed: <e>` and the loop goes on; a `run` that traps traps the
//! service too (the host restarts it). A bad `interval_ms` ends it with exit code 1.

mod bindings {
    #![allow(missing_docs, clippy::all)]
    wit_bindgen::generate!({
        path: "../../wit/examples/cron.wit",
        world: "example:cron/cron-service",
    });
}

use std::time::Duration;

use bindings::example::cron::job;
use service_support::config;

fn main() {
    let interval = Duration::from_millis(config::setting("interval_ms", 1000u64));
    eprintln!("calling job.run every {interval:?}");
    for tick in 1u64.. {
        std::thread::sleep(interval);
        if let Err(e) = job::run(tick) {
            eprintln!("tick {tick}: job failed: {e}");
        }
    }
}
