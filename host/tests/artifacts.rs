//! Hosts running `artifact://` images from the lattice's artifact store on a real
//! nats-server: every byte checked against its digest before anything starts, a
//! digest fetched and compiled once per host (and not fetched again after a
//! restart with the same cache folder), tampered or oversized artifacts refused.

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

use async_nats::jetstream;
use lattice_artifacts::{ArtifactStore, Digest, FetchConfig, NewArtifact, StoreConfig};
use lattice_host::{Host, HostConfig};
use lattice_protocol::messages::WorkloadSpec;
use lattice_testing::components::component;
use lattice_testing::host::{get, quick_limits};
use lattice_testing::manifest::{spec, App, Component};
use lattice_testing::nats::{free_port, NatsServer};
use std::path::Path;

const LATTICE: &str = "arts";

async fn upload(nats: &NatsServer, file: &Path) -> Digest {
    let js = jetstream::new(nats.connect().await.unwrap());
    let store = ArtifactStore::open_or_create(js, LATTICE, StoreConfig::default())
        .await
        .unwrap();
    let bytes = std::fs::read(file).unwrap();
    let meta = store
        .put(&bytes, NewArtifact::component("hello.wasm"))
        .await
        .unwrap();
    meta.digest.parse().unwrap()
}

/// A cluster host: no file images, artifacts cached under `cache`.
async fn cluster_host(nats: &NatsServer, cache: &Path, fetch: FetchConfig) -> Host {
    let config = HostConfig {
        lattice: LATTICE.into(),
        limits: quick_limits(),
        cache_dir: Some(cache.to_path_buf()),
        artifacts: fetch,
        allow_file_load: false,
        ..HostConfig::default()
    };
    Host::new(config, Some(nats.connect().await.unwrap())).unwrap()
}

fn app(name: &str, version: &str, digest: &Digest, port: u16) -> WorkloadSpec {
    spec(
        App::new(name)
            .version(version)
            .with(Component::image("web", &format!("artifact://{digest}")))
            .http_server("web", port)
            .manifest(),
    )
}

#[tokio::test]
async fn a_digest_is_fetched_and_compiled_once_per_host() {
    let nats = NatsServer::start().unwrap();
    let digest = upload(&nats, &component("hello")).await;
    let cache = tempfile::tempdir().unwrap();
    let host = cluster_host(&nats, cache.path(), FetchConfig::default()).await;

    let port = free_port().unwrap();
    host.apply(app("one", "v1", &digest, port)).await.unwrap();
    assert_eq!(get(port, "/").await.0, 200);
    let (fetched, compiles) = host.artifact_stats();
    assert_eq!((fetched.store_fetches, compiles), (1, 1), "{fetched:?}");
    // Kept on disk under its digest, checked.
    let kept = cache.path().join("artifacts/sha256").join(digest.hex());
    assert_eq!(Digest::of(&std::fs::read(&kept).unwrap()), digest);

    // A new version and another app with the same digest: nothing fetched,
    // nothing read from disk, nothing compiled.
    host.apply(app("one", "v2", &digest, port)).await.unwrap();
    let other = free_port().unwrap();
    host.apply(app("two", "v1", &digest, other)).await.unwrap();
    assert_eq!(get(other, "/").await.0, 200);
    assert_eq!(host.artifact_stats(), (fetched, 1));

    // A restarted host with the same cache folder reads the disk, not NATS.
    drop(host);
    let again = cluster_host(&nats, cache.path(), FetchConfig::default()).await;
    let port = free_port().unwrap();
    again.apply(app("one", "v2", &digest, port)).await.unwrap();
    assert_eq!(get(port, "/").await.0, 200);
    let (fetched, _) = again.artifact_stats();
    assert_eq!((fetched.store_fetches, fetched.cache_hits), (0, 1));
}

#[tokio::test]
async fn workloads_asking_for_one_digest_at_once_fetch_it_once() {
    let nats = NatsServer::start().unwrap();
    let digest = upload(&nats, &component("hello")).await;
    let cache = tempfile::tempdir().unwrap();
    let host = cluster_host(&nats, cache.path(), FetchConfig::default()).await;
    let apps: Vec<WorkloadSpec> = (0..4)
        .map(|i| app(&format!("app-{i}"), "v1", &digest, free_port().unwrap()))
        .collect();
    let applied = futures::future::join_all(apps.into_iter().map(|a| host.apply(a))).await;
    assert!(applied.iter().all(Result::is_ok), "{applied:?}");
    let (fetched, _) = host.artifact_stats();
    assert_eq!(fetched.store_fetches, 1, "{fetched:?}");
}

/// Someone with write access to the bucket puts other bytes (a valid component
/// too: without the check it would run) under the digest's name. The host
/// refuses with a digest mismatch naming both digests, and nothing starts.
#[tokio::test]
async fn a_tampered_artifact_is_refused_and_nothing_starts() {
    let nats = NatsServer::start().unwrap();
    let digest = upload(&nats, &component("hello")).await;
    let js = jetstream::new(nats.connect().await.unwrap());
    let raw = js
        .get_object_store(format!("lattice_{LATTICE}_artifacts"))
        .await
        .unwrap();
    let info = raw.info(digest.hex()).await.unwrap();
    let evil = std::fs::read(component("counter")).unwrap();
    let object = jetstream::object_store::ObjectMetadata {
        name: digest.hex(),
        metadata: info.metadata.clone(),
        ..Default::default()
    };
    raw.put(object, &mut evil.as_slice()).await.unwrap();

    let cache = tempfile::tempdir().unwrap();
    let host = cluster_host(&nats, cache.path(), FetchConfig::default()).await;
    let port = free_port().unwrap();
    let err = image_refusal(
        host.apply(app("shop", "v1", &digest, port))
            .await
            .unwrap_err(),
    );
    assert!(err.contains("digest mismatch"), "{err}");
    assert!(
        err.contains(&digest.to_string()),
        "names the expected digest: {err}"
    );
    assert!(
        err.contains(&Digest::of(&evil).to_string()),
        "names the digest of what came back: {err}"
    );
    assert!(err.contains("component 'web' of app 'shop'"), "{err}");
    assert!(host.apps().is_empty(), "nothing applied");
    assert!(
        reqwest::get(format!("http://127.0.0.1:{port}/"))
            .await
            .is_err(),
        "nothing listens"
    );
    // Nothing was kept in the cache either.
    assert!(!cache
        .path()
        .join("artifacts/sha256")
        .join(digest.hex())
        .exists());
    let (fetched, compiles) = host.artifact_stats();
    assert_eq!((fetched.store_fetches, compiles), (0, 0));
}

#[tokio::test]
async fn an_artifact_over_the_hosts_bound_is_refused() {
    let nats = NatsServer::start().unwrap();
    let digest = upload(&nats, &component("hello")).await;
    let cache = tempfile::tempdir().unwrap();
    let small = FetchConfig {
        store: StoreConfig {
            max_artifact_bytes: 1000,
            ..StoreConfig::default()
        },
        ..FetchConfig::default()
    };
    let host = cluster_host(&nats, cache.path(), small).await;
    let err = image_refusal(
        host.apply(app("big", "v1", &digest, free_port().unwrap()))
            .await
            .unwrap_err(),
    );
    assert!(
        err.contains("over the artifact store's limit of 1000 bytes"),
        "{err}"
    );
    assert!(host.apps().is_empty());
}

#[tokio::test]
async fn a_missing_artifact_names_the_component_and_the_image() {
    let nats = NatsServer::start().unwrap();
    upload(&nats, &component("hello")).await;
    let cache = tempfile::tempdir().unwrap();
    let host = cluster_host(&nats, cache.path(), FetchConfig::default()).await;
    let absent = Digest::of(b"never uploaded");
    let err = image_refusal(
        host.apply(app("gone", "v1", &absent, free_port().unwrap()))
            .await
            .unwrap_err(),
    );
    assert!(err.contains("component 'web' of app 'gone'"), "{err}");
    assert!(err.contains(&format!("artifact://{absent}")), "{err}");
    assert!(err.contains("is not in the artifact store"), "{err}");
}

async fn put(nats: &NatsServer, bytes: &[u8], new: NewArtifact) -> Digest {
    let js = jetstream::new(nats.connect().await.unwrap());
    let store = ArtifactStore::open_or_create(js, LATTICE, StoreConfig::default())
        .await
        .unwrap();
    store.put(bytes, new).await.unwrap().digest.parse().unwrap()
}

/// An app with provider `aprov` from `provider` and component `web` from `hello`.
fn provider_app(provider: &Digest, hello: &Digest) -> WorkloadSpec {
    let manifest = App::new("prov")
        .with(Component::capability(
            "aprov",
            &format!("artifact://{provider}"),
        ))
        .with(Component::image("web", &format!("artifact://{hello}")))
        .manifest();
    let mut spec = spec(manifest);
    spec.placements.insert("aprov".into(), 1);
    spec
}

/// A provider executable uploaded for this platform runs from the host's cache,
/// mode 0755, after its digest checked out; one named as a component, or built
/// for another platform, is refused before anything starts.
#[tokio::test]
async fn provider_executables_run_from_the_checked_cache_copy() {
    let nats = NatsServer::start().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let marker = scratch.path().join("started");
    let script = format!(
        "#!/bin/sh\necho \"$0\" > '{}'\nexec sleep 30\n",
        marker.display()
    );
    let provider = put(
        &nats,
        script.as_bytes(),
        NewArtifact::local_provider("probe"),
    )
    .await;
    let hello = upload(&nats, &component("hello")).await;
    let cache = tempfile::tempdir().unwrap();
    let config = HostConfig {
        lattice: LATTICE.into(),
        limits: quick_limits(),
        cache_dir: Some(cache.path().to_path_buf()),
        provider_nats_url: Some(nats.url()),
        allow_file_load: false,
        allow_provider_images: true,
        ..HostConfig::default()
    };
    let host = Host::new(config, Some(nats.connect().await.unwrap())).unwrap();

    // A component's digest named as a provider: refused, nothing starts.
    let err = image_refusal(host.apply(provider_app(&hello, &hello)).await.unwrap_err());
    assert!(err.contains("component 'aprov' of app 'prov'"), "{err}");
    assert!(err.contains("is a Component, not a Provider"), "{err}");
    // A provider built for another platform: refused.
    let elsewhere = NewArtifact {
        os: Some("plan9".into()),
        ..NewArtifact::local_provider("probe-plan9")
    };
    let foreign = put(&nats, b"#!/bin/sh\nexit 1\n", elsewhere).await;
    let err = image_refusal(
        host.apply(provider_app(&foreign, &hello))
            .await
            .unwrap_err(),
    );
    assert!(err.contains("was built for plan9/"), "{err}");
    assert!(host.apps().is_empty());
    assert!(!marker.exists());

    host.apply(provider_app(&provider, &hello)).await.unwrap();
    let kept = cache.path().join("artifacts/sha256").join(provider.hex());
    let ran_from = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            if let Ok(text) = std::fs::read_to_string(&marker) {
                if !text.is_empty() {
                    return text;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the provider starts");
    assert_eq!(ran_from.trim(), kept.display().to_string());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&kept).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o755);
}

/// A host that runs provider executables from images, caching under `cache`.
async fn provider_host(nats: &NatsServer, cache: &Path) -> Host {
    let config = HostConfig {
        lattice: LATTICE.into(),
        limits: quick_limits(),
        cache_dir: Some(cache.to_path_buf()),
        provider_nats_url: Some(nats.url()),
        allow_file_load: false,
        allow_provider_images: true,
        ..HostConfig::default()
    };
    Host::new(config, Some(nats.connect().await.unwrap())).unwrap()
}

async fn wait_for_text(file: &Path) -> String {
    tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            if let Ok(text) = std::fs::read_to_string(file) {
                if text.ends_with('\n') {
                    return text;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the provider starts")
}

/// A component already in the cache (it ran) named as a provider: the cache
/// hit is checked for its kind as a fetch from the store is, and refused.
#[tokio::test]
async fn a_cached_component_named_as_a_provider_is_refused() {
    let nats = NatsServer::start().unwrap();
    let hello = upload(&nats, &component("hello")).await;
    let cache = tempfile::tempdir().unwrap();
    let host = provider_host(&nats, cache.path()).await;
    let port = free_port().unwrap();
    host.apply(app("one", "v1", &hello, port)).await.unwrap();
    assert!(cache
        .path()
        .join("artifacts/sha256")
        .join(hello.hex())
        .exists());

    let err = image_refusal(host.apply(provider_app(&hello, &hello)).await.unwrap_err());
    assert!(err.contains("component 'aprov' of app 'prov'"), "{err}");
    assert!(err.contains("is a Component, not a Provider"), "{err}");
    assert_eq!(host.apps(), vec!["one".to_string()]);
}

/// The cached executable is changed after the provider started, and the
/// provider process dies: the restart checks the copy against its digest again,
/// refuses it with a clear error, and never runs the changed file.
#[tokio::test]
async fn a_restart_refuses_a_cached_executable_changed_on_disk() {
    let nats = NatsServer::start().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let (marker, evil_ran) = (scratch.path().join("pid"), scratch.path().join("evil-ran"));
    let script = format!(
        "#!/bin/sh\necho $$ > '{}'\nexec sleep 30\n",
        marker.display()
    );
    let provider = put(
        &nats,
        script.as_bytes(),
        NewArtifact::local_provider("probe"),
    )
    .await;
    let hello = upload(&nats, &component("hello")).await;
    let cache = tempfile::tempdir().unwrap();
    let host = provider_host(&nats, cache.path()).await;
    host.apply(provider_app(&provider, &hello)).await.unwrap();
    let pid = wait_for_text(&marker).await;

    let kept = cache.path().join("artifacts/sha256").join(provider.hex());
    let evil = format!("#!/bin/sh\ntouch '{}'\nexec sleep 30\n", evil_ran.display());
    std::fs::write(&kept, evil).unwrap();
    let killed = std::process::Command::new("kill")
        .args(["-9", pid.trim()])
        .status()
        .unwrap();
    assert!(killed.success());

    let refused = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            let info = host.info();
            let error = info
                .workloads
                .iter()
                .flat_map(|w| w.providers.iter())
                .find_map(|p| p.last_error.clone())
                .filter(|e| e.contains("refusing"));
            if let Some(error) = error {
                return error;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the restart is refused");
    assert!(
        refused.contains("provider 'aprov' of app 'prov'"),
        "{refused}"
    );
    assert!(
        refused.contains(&format!("no longer has digest {provider}")),
        "{refused}"
    );
    // Give a wrongly started process time to show itself.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(!evil_ran.exists(), "the changed executable ran");
}

/// The message of an apply refused for an image (fetched, checked against its
/// digest and signatures, compiled); any other refusal fails the test.
#[track_caller]
fn image_refusal(err: lattice_host::ApplyError) -> String {
    match err {
        lattice_host::ApplyError::Image(message) => message,
        other => panic!("refused for another reason: {other}"),
    }
}
