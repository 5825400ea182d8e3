//! The provider as a lattice host runs it: the counter component, unchanged, on
//! `builtin://keyvalue-memory`, `builtin://keyvalue-nats` and this provider with
//! only the manifest changed; the provider SIGKILLed and restarted by its host; a
//! link to a provider that runs nowhere answered with a clear error; on a NATS
//! with decentralized auth, the provider connecting with the user its host minted
//! for it.
#![allow(clippy::unwrap_used)] // tests: an unwrap that fails is a failed test

use lattice_protocol::manifest::Manifest;
use lattice_testing::host::{
    get, get_ok, provider_host, provider_host_with, HostConfig, ProviderSigner,
};
use lattice_testing::manifest::{placed, App, Component, Link};
use lattice_testing::nats::{free_port, NatsServer};
use lattice_testing::redis::RedisServer;
use std::time::{Duration, Instant};

const PROVIDER: &str = env!("CARGO_BIN_EXE_keyvalue-redis");

/// The counter on HTTP `port` with its keyvalue link to capability `kv` whose
/// image is `image`, and `url` as the link's target config when given.
fn counter(app: &str, port: u16, image: &str, url: Option<&str>) -> Manifest {
    let mut link = Link::to("kv", "wasi:keyvalue", &["atomics", "store"]);
    if let Some(url) = url {
        link = link.target_config("redis", &[("url", url)]);
    }
    App::new(app)
        .with(Component::wasm("counter", "counter").link(link))
        .with(Component::capability("kv", image))
        .http_server("counter", port)
        .manifest()
}

/// The value of `key` in Redis, read over its own protocol.
fn redis_get(redis: &RedisServer, key: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", redis.port())).unwrap();
    write!(s, "*2\r\n$3\r\nGET\r\n${}\r\n{key}\r\n", key.len()).unwrap();
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).unwrap();
    let reply = String::from_utf8_lossy(&buf[..n]).into_owned();
    reply.lines().nth(1).map(str::to_owned)
}

/// Processes whose executable is `path` (from `/proc`, no `pkill` needed).
fn pids_running(path: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            let argv0 = cmdline.split(|b| *b == 0).next()?;
            (argv0 == path.as_bytes()).then_some(pid)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_counter_runs_unchanged_on_three_keyvalue_backends() {
    let nats = NatsServer::start().unwrap();
    let redis = RedisServer::start().unwrap();
    let host = provider_host(&nats).await;
    let provider = format!("file://{PROVIDER}");
    let url = redis.url();
    for (app, image, url, names) in [
        (
            "on-memory",
            "builtin://keyvalue-memory",
            None,
            &["counter"][..],
        ),
        ("on-nats", "builtin://keyvalue-nats", None, &["counter"][..]),
        (
            "on-redis",
            provider.as_str(),
            Some(url.as_str()),
            &["counter", "kv"][..],
        ),
    ] {
        let port = free_port().unwrap();
        host.apply(placed(counter(app, port, image, url), names, 4))
            .await
            .unwrap_or_else(|e| panic!("{app}: {e}"));
        assert_eq!(get_ok(port, "/hits").await, "hits -> 1\n", "{app}");
        assert_eq!(get_ok(port, "/hits").await, "hits -> 2\n", "{app}");
    }
    // The provider's count is in Redis itself.
    assert_eq!(redis_get(&redis, "hits").as_deref(), Some("2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_provider_is_restarted_and_a_missing_one_is_a_clear_error() {
    let nats = NatsServer::start().unwrap();
    let redis = RedisServer::start().unwrap();
    let host = provider_host(&nats).await;
    let port = free_port().unwrap();
    // A copy of the provider at a path of this test's own, so killing it by path
    // touches no other test's provider.
    let dir = tempfile::tempdir().unwrap();
    let own = dir.path().join("keyvalue-redis-killed");
    std::fs::copy(PROVIDER, &own).unwrap();
    let own = own.to_str().unwrap().to_owned();
    let provider = format!("file://{own}");
    let manifest = counter("killed", port, &provider, Some(&redis.url()));
    host.apply(placed(manifest.clone(), &["counter", "kv"], 4))
        .await
        .unwrap();
    assert_eq!(get_ok(port, "/k").await, "k -> 1\n");

    // SIGKILL it.
    let pids = pids_running(&own);
    assert_eq!(pids.len(), 1, "one provider process: {pids:?}");
    for pid in pids {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL).unwrap();
    }
    // The host restarts it; the counter answers again and Redis kept the count.
    assert_eq!(get_ok(port, "/k").await, "k -> 2\n");
    let report = host.info().workloads[0].providers[0].clone();
    assert!(report.restarts >= 1, "{report:?}");
    assert!(report.last_error.unwrap().contains("exited"));

    // A keyvalue link to a provider that runs nowhere: a clear error, at once.
    let other = free_port().unwrap();
    host.apply(placed(
        counter("orphan", other, &provider, None),
        &["counter"],
        4,
    ))
    .await
    .unwrap();
    let started = Instant::now();
    let (status, body) = get(other, "/k").await;
    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains("no instance of 'kv' (app 'orphan') runs anywhere"),
        "{body}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// On a NATS that refuses anonymous clients, the host (with its own user) mints
/// the provider a user of its own, and the provider serves with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_nats_with_auth_the_provider_serves_with_its_own_minted_user() {
    let nats = NatsServer::builder().operator_auth().start().unwrap();
    let auth = nats.auth().unwrap();
    let redis = RedisServer::start().unwrap();
    let seed = auth.signing_key().seed().unwrap();
    let signer = ProviderSigner::new(&seed, Some(auth.account())).unwrap();
    let config = HostConfig {
        provider_signer: Some(signer),
        allow_file_load: true,
        ..HostConfig::default()
    };
    let host = provider_host_with(&nats, config).await;
    let port = free_port().unwrap();
    let provider = format!("file://{PROVIDER}");
    host.apply(placed(
        counter("authed", port, &provider, Some(&redis.url())),
        &["counter", "kv"],
        4,
    ))
    .await
    .unwrap();
    assert_eq!(get_ok(port, "/visits").await, "visits -> 1\n");
    assert_eq!(redis_get(&redis, "visits").as_deref(), Some("1"));

    // Without a signer the same provider cannot even connect: its host reports
    // it crashing, and the call fails clearly instead of hanging.
    let bare = provider_host(&nats).await;
    let other = free_port().unwrap();
    bare.apply(placed(
        counter("unauthed", other, &provider, Some(&redis.url())),
        &["counter", "kv"],
        4,
    ))
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let report = bare.info().workloads[0].providers[0].clone();
        if let Some(error) = &report.last_error {
            assert!(error.contains("exited"), "{report:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the provider never failed: {report:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = get(other, "/visits").await;
    assert_eq!(status, 500, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_batch_reaches_the_provider_as_one_get_many() {
    let nats = NatsServer::start().unwrap();
    let redis = RedisServer::start().unwrap();
    let host = provider_host(&nats).await;
    let port = free_port().unwrap();
    let link = Link::to("kv", "wasi:keyvalue", &["store", "atomics", "batch"])
        .target_config("redis", &[("url", &redis.url())]);
    let manifest = App::new("batch")
        .with(Component::wasm("features", "features").link(link))
        .with(Component::capability("kv", &format!("file://{PROVIDER}")))
        .http_server("features", port)
        .manifest();
    host.apply(placed(manifest, &["features", "kv"], 4))
        .await
        .unwrap();
    assert_eq!(get_ok(port, "/kv/set?key=a&value=1").await, "ok\n");
    // The host sends the provider's `batch.get-many` (MGET) and reads its answer:
    // values in request order, the absent one as none.
    assert_eq!(
        get_ok(port, "/kv/batch?keys=a,b,a").await,
        "a=1,b=<none>,a=1\n"
    );
    assert_eq!(redis_get(&redis, "a").as_deref(), Some("1"));
}

/// A Redis that requires a password: the provider gets it as the `password`
/// secret in its init, or a link gives it the whole URL as its `url` secret
/// (sealed for the host by the "controller" here, opened by the host), never in
/// the manifest; without either, calls fail with Redis's refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_secret_authenticates_the_provider_to_redis() {
    use lattice_protocol::manifest::SecretRef;
    use lattice_protocol::secrets::{new_key, seal, SealedSecrets};
    const PASSWORD: &str = "redis-pa55-from-a-secret";
    let nats = NatsServer::start().unwrap();
    let redis = RedisServer::start_with_password(PASSWORD).unwrap();
    let host = provider_host(&nats).await;
    let provider = format!("file://{PROVIDER}");
    let with_secret = |app: &str, port: u16| {
        let mut manifest = counter(app, port, &provider, Some(&redis.url()));
        let kv = manifest
            .components
            .iter_mut()
            .find(|c| c.name == "kv")
            .unwrap();
        kv.secrets = vec![SecretRef {
            name: "password".into(),
            key: "redis-password".into(),
            policy: "nats-kv".into(),
            backend: "nats-kv".into(),
        }];
        manifest
    };

    // Sealed for this host's key, as a controller seals it.
    let controller = new_key();
    let host_key = host
        .info()
        .secrets_key
        .expect("a host announces its secrets key");
    let sealed = SealedSecrets {
        sender: controller.public_key(),
        recipient: host_key.clone(),
        values: [(
            "redis-password".to_string(),
            seal(PASSWORD.as_bytes(), &controller, &host_key).unwrap(),
        )]
        .into(),
    };
    let port = free_port().unwrap();
    let mut spec = placed(with_secret("authed", port), &["counter", "kv"], 4);
    spec.secrets = Some(sealed.clone());
    host.apply(spec).await.unwrap();
    assert_eq!(get_ok(port, "/hits").await, "hits -> 1\n");
    assert_eq!(get_ok(port, "/hits").await, "hits -> 2\n");

    // The whole URL, password included, as a secret of the link's target side
    // (wadm's `target.secrets`): the provider reads it from the link; the
    // manifest names only the stored secret.
    let linked = free_port().unwrap();
    let mut manifest = counter("link-secret", linked, &provider, None);
    let source = manifest
        .components
        .iter_mut()
        .find(|c| c.name == "counter")
        .unwrap();
    source.links[0].target_secrets = vec![SecretRef {
        name: "url".into(),
        key: "redis-url".into(),
        policy: "nats-kv".into(),
        backend: "nats-kv".into(),
    }];
    let url = format!("redis://:{PASSWORD}@127.0.0.1:{}", redis.port());
    let mut spec = placed(manifest, &["counter", "kv"], 4);
    spec.secrets = Some(SealedSecrets {
        values: [(
            "redis-url".to_string(),
            seal(url.as_bytes(), &controller, &host_key).unwrap(),
        )]
        .into(),
        ..sealed.clone()
    });
    host.apply(spec).await.unwrap();
    assert_eq!(get_ok(linked, "/hits").await, "hits -> 3\n");

    // Without the secret, Redis refuses the provider.
    let other = free_port().unwrap();
    host.apply(placed(
        counter("no-password", other, &provider, Some(&redis.url())),
        &["counter", "kv"],
        4,
    ))
    .await
    .unwrap();
    // (Once the provider serves: until then calls say no instance runs.)
    let deadline = Instant::now() + Duration::from_secs(10);
    let (status, body) = loop {
        let (status, body) = get(other, "/hits").await;
        if !body.contains("no instance") || Instant::now() > deadline {
            break (status, body);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status >= 500 && body.contains("NOAUTH"), "{status} {body}");

    // Secrets sealed for another host's key are refused, saying why.
    let mut spec = placed(
        with_secret("stolen", free_port().unwrap()),
        &["counter", "kv"],
        4,
    );
    spec.secrets = Some(SealedSecrets {
        recipient: new_key().public_key(),
        ..sealed
    });
    let err = host.apply(spec).await.unwrap_err();
    let lattice_testing::host::ApplyError::Secrets(err) = err else {
        panic!("refused for another reason: {err}");
    };
    assert!(err.contains("sealed for key"), "{err}");
}
