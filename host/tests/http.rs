//! The host serving HTTP through real components: counter, isolation, limits,
//! containment of misbehaving guests, and the other built-in capabilities.

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

mod support;

use futures::future::join_all;
use lattice_testing::host::{get, host, quick_limits};
use lattice_testing::manifest::{spec, App, Component};
use lattice_testing::nats::{free_port, NatsServer};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::{http_app, serve};

#[tokio::test]
async fn counter_counts_per_key_in_memory() {
    let host = host(quick_limits(), None);
    let port = serve(&host, "counter", "counter", 10).await;
    assert_eq!(get(port, "/hello").await, (200, "hello -> 1\n".into()));
    assert_eq!(get(port, "/hello").await, (200, "hello -> 2\n".into()));
    assert_eq!(get(port, "/world").await, (200, "world -> 1\n".into()));
}

#[tokio::test]
async fn keyvalue_is_isolated_between_apps_on_nats() {
    let nats = NatsServer::start().unwrap();
    let host = host(quick_limits(), Some(nats.connect().await.unwrap()));
    let (a, b) = (free_port().unwrap(), free_port().unwrap());
    host.apply(spec(http_app("app-a", "counter", a, "keyvalue-nats", 10)))
        .await
        .unwrap();
    host.apply(spec(http_app("app-b", "counter", b, "keyvalue-nats", 10)))
        .await
        .unwrap();
    assert_eq!(get(a, "/hello").await.1, "hello -> 1\n");
    assert_eq!(get(a, "/hello").await.1, "hello -> 2\n");
    assert_eq!(get(b, "/hello").await.1, "hello -> 1\n");

    // The data lives in JetStream: a new host on the same NATS continues counting.
    drop(host);
    let again = lattice_testing::host::host(quick_limits(), Some(nats.connect().await.unwrap()));
    let c = free_port().unwrap();
    again
        .apply(spec(http_app("app-a", "counter", c, "keyvalue-nats", 10)))
        .await
        .unwrap();
    assert_eq!(get(c, "/hello").await.1, "hello -> 3\n");
}

#[tokio::test]
async fn a_taken_address_names_both_apps_and_undeploy_frees_it() {
    let host = host(quick_limits(), None);
    let port = free_port().unwrap();
    host.apply(spec(http_app("first", "hello", port, "keyvalue-memory", 1)))
        .await
        .unwrap();
    let err = host
        .apply(spec(http_app(
            "second",
            "hello",
            port,
            "keyvalue-memory",
            1,
        )))
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            lattice_host::ApplyError::Capability {
                capability: "http-server",
                ..
            }
        ),
        "{err}"
    );
    let err = err.to_string();
    assert!(err.contains("'first'") && err.contains("'second'"), "{err}");
    // The first app still serves; the refused one changed nothing.
    assert_eq!(get(port, "/").await.0, 200);
    assert_eq!(host.apps(), vec!["first".to_string()]);

    assert!(host.remove("first"));
    let refused = reqwest::get(format!("http://127.0.0.1:{port}/")).await;
    assert!(refused.is_err(), "undeployed app still answers");
    host.apply(spec(http_app(
        "second",
        "hello",
        port,
        "keyvalue-memory",
        1,
    )))
    .await
    .unwrap();
    assert_eq!(get(port, "/").await, (200, "Hello from lattice!\n".into()));
}

#[tokio::test]
async fn overload_answers_503_instead_of_hanging() {
    let mut limits = quick_limits();
    limits.max_queued = 1;
    let host = host(limits, None);
    let port = serve(&host, "busy", "misbehave", 1).await;
    // One request holds the only instance, one waits in the queue; the rest are
    // refused at once.
    let requests = (0..6).map(|_| get(port, "/sleep?ms=700"));
    let results = join_all(requests).await;
    let ok = results.iter().filter(|(s, _)| *s == 200).count();
    let refused: Vec<_> = results.iter().filter(|(s, _)| *s == 503).collect();
    assert_eq!(ok + refused.len(), 6, "{results:?}");
    assert!(ok >= 1 && refused.len() >= 4, "{results:?}");
    assert!(refused[0].1.contains("overloaded"), "{}", refused[0].1);
    assert_eq!(get(port, "/").await, (200, "ok\n".into()));
}

#[tokio::test]
async fn trapping_looping_and_greedy_guests_are_contained() {
    let host = host(quick_limits(), None);
    let port = serve(&host, "bad", "misbehave", 2).await;
    let (status, body) = get(port, "/trap").await;
    assert_eq!(status, 500);
    assert!(
        body.contains("component 'web' of app 'bad' failed"),
        "{body}"
    );

    let (status, body) = get(port, "/loop").await;
    assert_eq!(status, 500);
    assert!(body.contains("deadline"), "{body}");

    let (status, _) = get(port, "/alloc?mb=200").await;
    assert_eq!(status, 500, "allocating past the 64 MiB limit must fail");
    let (status, _) = get(port, "/alloc?mb=8").await;
    assert_eq!(status, 200);

    // A spinning guest does not stop the host from serving others meanwhile.
    let spinning = tokio::spawn(get(port, "/loop"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(get(port, "/").await, (200, "ok\n".into()));
    assert_eq!(spinning.await.unwrap().0, 500);

    // The host's report counts them: six requests, of which the trap and both
    // loops trapped (the allocation past the limit is the guest's own 500; what
    // a rollout judges a new version by).
    let info = host.info();
    let web = &info.workloads[0].components[0];
    assert_eq!(
        (web.name.as_str(), web.invocations, web.traps),
        ("web", 6, 3)
    );
}

#[tokio::test]
async fn abandoned_requests_free_their_slot_at_once() {
    // A queue deep enough that every abandoned request waits rather than being
    // refused: only freeing slots on disconnect keeps the app answering.
    let mut limits = quick_limits();
    limits.max_queued = 2000;
    limits.queue_timeout = Duration::from_secs(30);
    limits.execution_timeout = Duration::from_secs(30);
    let host = host(limits, None);
    let port = serve(&host, "slow", "misbehave", 2).await;
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(30))
        .build()
        .unwrap();
    for _ in 0..20 {
        let batch = (0..50).map(|_| {
            impatient
                .get(format!("http://127.0.0.1:{port}/sleep?ms=1500"))
                .send()
        });
        for r in join_all(batch).await {
            assert!(r.is_err(), "the client gave up first");
        }
    }
    // 1,000 abandoned requests later, the app answers at once.
    let (status, body) = get(port, "/").await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let rt = host.component("slow", "web").unwrap();
    assert_eq!(rt.limiter.in_flight(), 0, "every slot was freed");
}

#[tokio::test]
async fn config_logging_bus_batch_and_outgoing_http() {
    let host = host(quick_limits(), None);
    let port = serve(&host, "feat", "features", 4).await;
    assert_eq!(get(port, "/config?key=greeting").await, (200, "hi".into()));
    assert_eq!(get(port, "/config?key=nope").await.0, 404);
    let (_, all) = get(port, "/config-all").await;
    assert_eq!(all, "colour=blue\ngreeting=hi\n");
    assert_eq!(get(port, "/log?msg=hello").await.0, 200);

    // Batch and keys.
    assert_eq!(get(port, "/kv/set?key=a&value=1").await.0, 200);
    // Increments saturate at u64::MAX, as wasmCloud's do (they wrapped to 3).
    let max_less_one = u64::MAX - 1;
    assert_eq!(
        get(port, &format!("/kv/set?key=max&value={max_less_one}"))
            .await
            .0,
        200
    );
    assert_eq!(
        get(port, "/kv/incr?key=max&by=5").await.1,
        format!("{}\n", u64::MAX)
    );
    let (_, many) = get(port, "/kv/batch?keys=a,b").await;
    assert!(many.contains("a=1") && many.contains("b=<none>"), "{many}");

    // set-link-name picks the named link at run time, in both bus versions.
    assert_eq!(
        get(port, "/link?name=other&key=k").await.1,
        "other:k -> 1\n"
    );
    assert_eq!(
        get(port, "/link2?name=other&key=k").await.1,
        "other:k -> 2\n"
    );
    assert_eq!(
        get(port, "/kv/incr?key=k&by=1").await.1,
        "1\n",
        "default link untouched"
    );
    let (status, body) = get(port, "/link?name=missing&key=k").await;
    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains("no wasi:keyvalue link named 'missing'"),
        "{body}"
    );
    // bus@2 refuses an unknown name at set-link-name, as wasmCloud's host does.
    let (status, body) = get(port, "/link2?name=missing&key=k").await;
    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains(
            "set-link-name \"missing\": interface `wasi:keyvalue/atomics` does not have an \
             existing link with name `missing`"
        ),
        "{body}"
    );

    // Outgoing HTTP: allowed to itself, refused elsewhere.
    let (_, fetched) = get(
        port,
        &format!("/fetch?url=http://127.0.0.1:{port}/config-all"),
    )
    .await;
    assert!(fetched.starts_with("status=200"), "{fetched}");
    let (status, denied) = get(port, "/fetch?url=http://127.0.0.2:9/").await;
    assert_eq!(status, 502, "{denied}");
    assert!(denied.to_lowercase().contains("denied"), "{denied}");
}

/// A component importing a provider's interface (`wasmcloud:postgres`) with no
/// link for it still deploys; its calls fail (the request answers 500) and the
/// host keeps serving.
#[tokio::test]
async fn an_unlinked_provider_import_fails_its_calls_not_the_deploy() {
    let host = host(quick_limits(), None);
    let port = free_port().unwrap();
    let manifest = App::new("notes")
        .with(Component::wasm("notes", "pg-notes"))
        .http_server("notes", port)
        .manifest();
    host.apply(spec(manifest)).await.unwrap();
    assert_eq!(get(port, "/notes").await.0, 500);
    assert_eq!(get(port, "/elsewhere").await.0, 404);
}

/// A component built for wasmCloud 2 (issue 12): `wasi:config/store@0.2.0-rc.1`
/// and unversioned `wasi:logging/logging` are served like their `-draft`
/// versions, and `wasmcloud:secrets`, whose `secret` resource nothing here
/// provides, no longer stops it from instantiating: its calls fail instead.
#[tokio::test]
async fn a_component_built_for_wasmcloud_2_runs_unchanged() {
    let host = host(quick_limits(), None);
    let port = free_port().unwrap();
    let manifest = App::new("v2")
        .with(Component::wasm("web", "wasmcloud-v2").config("settings", &[("greeting", "hi")]))
        .http_server("web", port)
        .manifest();
    host.apply(spec(manifest)).await.unwrap();
    assert_eq!(
        get(port, "/config?key=greeting").await,
        (200, "hi\n".into())
    );
    assert_eq!(get(port, "/config?key=nope").await.0, 404);
    assert_eq!(get(port, "/log?msg=hello").await, (200, "logged\n".into()));
    // No link provides wasmcloud:secrets: the call fails, the host serves on.
    assert_eq!(get(port, "/secret?key=db").await.0, 500);
    assert_eq!(get(port, "/config?key=greeting").await.0, 200);
}

/// A new version of an app replaces the running one on a host without a failed
/// request: requests arriving during the switch are answered by the old version
/// or the new one, never refused (the building block of a rolling upgrade).
#[tokio::test]
async fn a_new_version_takes_over_without_a_failed_request() {
    let host = host(quick_limits(), None);
    let port = free_port().unwrap();
    let version = |v: &str, greeting: &str| {
        App::new("swap")
            .version(v)
            .with(Component::wasm("web", "features").config("settings", &[("greeting", greeting)]))
            .http_server("web", port)
            .manifest()
    };
    host.apply(spec(version("v1", "one"))).await.unwrap();
    assert_eq!(get(port, "/config?key=greeting").await, (200, "one".into()));

    // Clients keep asking while v2 is applied; `asked` counts their answers.
    let stop = Arc::new(AtomicBool::new(false));
    let asked = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (stop, asked) = (stop.clone(), asked.clone());
        clients.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                answers.push(get(port, "/config?key=greeting").await);
                asked.fetch_add(1, Ordering::Relaxed);
            }
            answers
        }));
    }
    let answered = |n: usize| {
        let asked = asked.clone();
        async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while asked.load(Ordering::Relaxed) < n {
                assert!(std::time::Instant::now() < deadline, "the clients stalled");
                tokio::task::yield_now().await;
            }
        }
    };
    answered(20).await;
    host.apply(spec(version("v2", "two"))).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while get(port, "/config?key=greeting").await.1 != "two" {
        assert!(std::time::Instant::now() < deadline, "v2 never answered");
    }
    // Some more answers after the switch, then stop.
    answered(asked.load(Ordering::Relaxed) + 20).await;
    stop.store(true, Ordering::Relaxed);
    let mut seen = std::collections::BTreeMap::new();
    for c in clients {
        for answer in c.await.unwrap() {
            *seen.entry(answer).or_insert(0u32) += 1;
        }
    }
    let bad: Vec<_> = seen
        .keys()
        .filter(|(status, body)| *status != 200 || (body != "one" && body != "two"))
        .collect();
    assert!(bad.is_empty(), "failed answers during the switch: {seen:?}");
    assert!(seen.contains_key(&(200, "one".into())) && seen.contains_key(&(200, "two".into())));
}
