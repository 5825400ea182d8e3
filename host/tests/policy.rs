//! What a host may run: `file://` images only when it loads files, provider
//! executables from images only when allowed, files only from its provider folder, and a refused apply leaves nothing
//! behind (no provider process started for an app whose component fails).

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

use lattice_host::{ApplyError, Host, HostConfig};
use lattice_testing::host::{provider_host_with, quick_limits};
use lattice_testing::manifest::{spec, App, Component};
use lattice_testing::nats::{free_port, NatsServer};
use std::time::Duration;

fn host(config: HostConfig) -> Host {
    Host::new(config, None).expect("the host starts")
}

#[tokio::test]
async fn file_images_need_allow_file_load() {
    let port = free_port().unwrap();
    let app = App::new("files")
        .with(Component::wasm("web", "hello"))
        .http_server("web", port)
        .manifest();
    let cluster_host = host(HostConfig {
        limits: quick_limits(),
        ..HostConfig::default()
    });
    let error = cluster_host.apply(spec(app.clone())).await.unwrap_err();
    assert!(matches!(error, ApplyError::ImageNotAllowed(_)), "{error}");
    let error = error.to_string();
    assert!(error.contains("--allow-file-load"), "{error}");
    assert!(error.contains("'web'"), "{error}");
    assert!(cluster_host.apps().is_empty());
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());

    let dev_host = host(HostConfig {
        limits: quick_limits(),
        allow_file_load: true,
        ..HostConfig::default()
    });
    dev_host.apply(spec(app)).await.unwrap();
    assert_eq!(dev_host.apps(), ["files"]);
}

/// A provider shipped as an image is native code chosen by whoever deploys: a
/// host runs one only when its operator allows it.
#[tokio::test]
async fn provider_images_need_allow_provider_images() {
    let zeros = format!("sha256:{}", "0".repeat(64));
    for image in [
        format!("artifact://{zeros}"),
        format!("registry.example/tools/probe@{zeros}"),
    ] {
        let manifest = App::new("prov")
            .with(Component::capability("aprov", &image))
            .manifest();
        let mut spec = spec(manifest);
        spec.placements.insert("aprov".into(), 1);

        let cluster_host = host(HostConfig {
            limits: quick_limits(),
            ..HostConfig::default()
        });
        let error = cluster_host.apply(spec.clone()).await.unwrap_err();
        assert!(matches!(error, ApplyError::ImageNotAllowed(_)), "{error}");
        let error = error.to_string();
        assert!(error.contains("--allow-provider-images"), "{error}");
        assert!(error.contains("provider 'aprov'"), "{error}");
        assert!(cluster_host.apps().is_empty());

        // Allowed, the same apply gets past the gate (and fails at the fetch:
        // this host has no store and no registry to fetch from).
        let allowing_host = host(HostConfig {
            limits: quick_limits(),
            allow_provider_images: true,
            ..HostConfig::default()
        });
        let error = allowing_host.apply(spec).await.unwrap_err();
        assert!(matches!(error, ApplyError::Image(_)), "{error}");
    }
}

/// An app with provider `aprov` running `executable` and a component `zbad`
/// running `wasm` (names sorted so the provider comes first).
fn provider_app(
    executable: &std::path::Path,
    wasm: &str,
) -> lattice_protocol::messages::WorkloadSpec {
    let manifest = App::new("prov")
        .with(Component::capability(
            "aprov",
            &format!("file://{}", executable.display()),
        ))
        .with(Component::image("zbad", wasm))
        .manifest();
    let mut spec = spec(manifest);
    spec.placements.insert("aprov".into(), 1);
    spec
}

/// A provider executable that leaves `marker` behind when it starts.
fn marking_provider(dir: &std::path::Path, marker: &std::path::Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("marking-provider");
    std::fs::write(
        &path,
        format!("#!/bin/sh\ntouch '{}'\nexec sleep 30\n", marker.display()),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[tokio::test]
async fn providers_run_only_from_the_provider_dir() {
    let nats = NatsServer::start().unwrap();
    let allowed = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let marker = elsewhere.path().join("started");
    let outside = marking_provider(elsewhere.path(), &marker);
    let host = provider_host_with(
        &nats,
        HostConfig {
            provider_dir: Some(allowed.path().to_owned()),
            ..HostConfig::default()
        },
    )
    .await;
    let hello = lattice_testing::components::component("hello");
    let error = host
        .apply(provider_app(
            &outside,
            &format!("file://{}", hello.display()),
        ))
        .await
        .unwrap_err();
    assert!(matches!(error, ApplyError::ImageNotAllowed(_)), "{error}");
    assert!(error.to_string().contains("--provider-dir"), "{error}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!marker.exists(), "the provider never started");
    assert!(host.apps().is_empty());
}

#[tokio::test]
async fn a_component_that_does_not_compile_starts_no_provider() {
    let nats = NatsServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("started");
    let provider = marking_provider(dir.path(), &marker);
    let not_wasm = dir.path().join("not.wasm");
    std::fs::write(&not_wasm, b"this is not a component").unwrap();
    let host = provider_host_with(&nats, HostConfig::default()).await;
    let error = host
        .apply(provider_app(
            &provider,
            &format!("file://{}", not_wasm.display()),
        ))
        .await
        .unwrap_err();
    assert!(matches!(error, ApplyError::Image(_)), "{error}");
    assert!(error.to_string().contains("zbad"), "{error}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!marker.exists(), "a refused apply started the provider");
    assert!(host.apps().is_empty());

    // The probe works: with a component that compiles, the provider starts.
    let hello = lattice_testing::components::component("hello");
    host.apply(provider_app(
        &provider,
        &format!("file://{}", hello.display()),
    ))
    .await
    .unwrap();
    tokio::time::timeout(Duration::from_secs(5), async {
        while !marker.exists() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the provider starts once the apply is valid");
}

/// Attack: a command carrying a manifest no parser would accept (sent as the JSON
/// model, never through the YAML parser) is refused by the host itself.
#[tokio::test]
async fn the_host_validates_what_it_is_told_to_apply() {
    let host = host(HostConfig {
        limits: quick_limits(),
        allow_file_load: true,
        ..HostConfig::default()
    });
    let port = free_port().unwrap();
    let app = App::new("huge")
        .with(Component::wasm("web", "hello"))
        .http_server("web", port)
        .manifest();
    let mut huge = spec(app.clone());
    huge.placements.insert("web".into(), u32::MAX);
    let error = host.apply(huge).await.unwrap_err();
    assert!(
        matches!(&error, ApplyError::OverBudget { component, instances: u32::MAX, .. } if component == "web"),
        "{error}"
    );
    assert!(error.to_string().contains("budget"), "{error}");
    let mut bad = spec(app);
    bad.manifest.components[0].scaler = Some(lattice_protocol::manifest::Scaler::Spreadscaler {
        instances: u32::MAX,
        spread: vec![],
    });
    let error = host.apply(bad).await.unwrap_err();
    assert!(
        matches!(error, ApplyError::InvalidManifest { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("instances"), "{error}");
    assert!(host.apps().is_empty());
}
