//! Hosts running OCI images from a real registry (Debian's `docker-registry`):
//! provider executables pushed per platform run from the host's checked cache
//! copy (mode 0755); an unpinned reference and an index without this host's
//! platform are refused before anything starts; a pinned image seen before runs
//! from the cache with the registry gone.

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

use lattice_artifacts::oci::{Kind, Platform, Registry, RegistrySettings};
use lattice_host::{Host, HostConfig};
use lattice_protocol::messages::WorkloadSpec;
use lattice_testing::components::component;
use lattice_testing::host::quick_limits;
use lattice_testing::manifest::{spec, App, Component};
use lattice_testing::nats::NatsServer;
use lattice_testing::registry::OciRegistry;
use std::path::Path;
use std::time::Duration;

const LATTICE: &str = "ocihost";

fn settings(registry: &OciRegistry) -> RegistrySettings {
    RegistrySettings {
        insecure: vec![registry.host()],
        ..RegistrySettings::default()
    }
}

async fn host(nats: &NatsServer, cache: &Path, registry: RegistrySettings) -> Host {
    let config = HostConfig {
        lattice: LATTICE.into(),
        limits: quick_limits(),
        cache_dir: Some(cache.to_path_buf()),
        provider_nats_url: Some(nats.url()),
        allow_file_load: false,
        allow_provider_images: true,
        registry,
        ..HostConfig::default()
    };
    Host::new(config, Some(nats.connect().await.unwrap())).unwrap()
}

/// An app with provider `aprov` from `provider` and component `web` from `hello`.
fn provider_app(provider: &str, hello: &str) -> WorkloadSpec {
    let manifest = App::new("prov")
        .with(Component::capability("aprov", provider))
        .with(Component::image("web", hello))
        .manifest();
    let mut spec = spec(manifest);
    spec.placements.insert("aprov".into(), 1);
    spec
}

async fn wait_for(marker: &Path) -> String {
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Ok(text) = std::fs::read_to_string(marker) {
                if !text.is_empty() {
                    return text;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the provider starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_images_run_per_platform_from_the_checked_cache() {
    let nats = NatsServer::start().unwrap();
    let oci = OciRegistry::start().unwrap();
    let reg = oci.host();
    let client = Registry::new(settings(&oci)).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let marker = scratch.path().join("started");
    let script = format!(
        "#!/bin/sh\necho \"$0\" > '{}'\nexec sleep 30\n",
        marker.display()
    );
    let here = Platform::current();
    let plan9 = Platform {
        os: "plan9".into(),
        architecture: here.architecture.clone(),
    };
    // One index with this platform and plan9; another with plan9 alone.
    let probe = format!("{reg}/probe:v1");
    client
        .push(
            &probe,
            b"#!/bin/sh\nexit 1\n".to_vec(),
            &Kind::Provider(plan9.clone()),
        )
        .await
        .unwrap();
    client
        .push(
            &probe,
            script.clone().into_bytes(),
            &Kind::Provider(here.clone()),
        )
        .await
        .unwrap();
    let foreign = format!("{reg}/foreign:v1");
    client
        .push(
            &foreign,
            b"#!/bin/sh\nexit 1\n".to_vec(),
            &Kind::Provider(plan9),
        )
        .await
        .unwrap();
    let hello = format!("{reg}/hello:v1");
    client
        .push(
            &hello,
            std::fs::read(component("hello")).unwrap(),
            &Kind::Component,
        )
        .await
        .unwrap();
    let (probe_pinned, foreign_pinned, hello_pinned) = (
        client.pin(&probe).await.unwrap(),
        client.pin(&foreign).await.unwrap(),
        client.pin(&hello).await.unwrap(),
    );

    let cache = tempfile::tempdir().unwrap();
    let h = host(&nats, cache.path(), settings(&oci)).await;
    // An unpinned image: refused, whoever sent it (hosts run only what the
    // controller pinned).
    let err = h
        .apply(provider_app(&probe, &hello_pinned))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("is not pinned to a digest"), "{err}");
    // No entry for this host's platform: refused, naming what there is.
    let err = h
        .apply(provider_app(&foreign_pinned, &hello_pinned))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("has no provider for {here}")) && err.contains("plan9/"),
        "{err}"
    );
    // A component named as a provider: refused.
    let err = h
        .apply(provider_app(&hello_pinned, &hello_pinned))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("is a single manifest"), "{err}");
    assert!(h.apps().is_empty());
    assert!(!marker.exists());

    h.apply(provider_app(&probe_pinned, &hello_pinned))
        .await
        .unwrap();
    let layer = lattice_artifacts::Digest::of(script.as_bytes());
    let kept = cache.path().join("artifacts/sha256").join(layer.hex());
    assert_eq!(wait_for(&marker).await.trim(), kept.display().to_string());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&kept).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o755);
    let pulls = h.artifact_stats().0.oci_pulls;
    assert_eq!(pulls, 2, "the provider and the component, once each");
    assert!(h.remove("prov"));
    drop(h);

    // The registry is gone: a host on the same cache runs the pinned images it
    // has, with no request.
    drop(oci);
    std::fs::remove_file(&marker).unwrap();
    let h2 = host(
        &nats,
        cache.path(),
        RegistrySettings {
            insecure: vec![reg.clone()],
            timeout: Duration::from_secs(2),
            ..RegistrySettings::default()
        },
    )
    .await;
    h2.apply(provider_app(&probe_pinned, &hello_pinned))
        .await
        .unwrap();
    assert_eq!(wait_for(&marker).await.trim(), kept.display().to_string());
    let stats = h2.artifact_stats().0;
    assert_eq!((stats.oci_pulls, stats.cache_hits), (0, 2), "{stats:?}");
    assert!(h2.remove("prov"));
}

/// Apps asking for one OCI image at once pull it once: the others wait for the
/// first pull and then find it in the cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_image_asked_for_at_once_is_pulled_once() {
    let nats = NatsServer::start().unwrap();
    let oci = OciRegistry::start().unwrap();
    let client = Registry::new(settings(&oci)).unwrap();
    let hello = format!("{}/hello:v1", oci.host());
    client
        .push(
            &hello,
            std::fs::read(component("hello")).unwrap(),
            &Kind::Component,
        )
        .await
        .unwrap();
    let pinned = client.pin(&hello).await.unwrap();
    let cache = tempfile::tempdir().unwrap();
    let h = host(&nats, cache.path(), settings(&oci)).await;
    let apps: Vec<WorkloadSpec> = (0..4)
        .map(|i| {
            spec(
                App::new(&format!("app-{i}"))
                    .with(Component::image("web", &pinned))
                    .manifest(),
            )
        })
        .collect();
    let applied = futures::future::join_all(apps.into_iter().map(|a| h.apply(a))).await;
    assert!(applied.iter().all(Result::is_ok), "{applied:?}");
    let stats = h.artifact_stats().0;
    assert_eq!((stats.oci_pulls, stats.cache_hits), (1, 3), "{stats:?}");
}
