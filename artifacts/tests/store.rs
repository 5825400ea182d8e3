//! The artifact store on a real nats-server: round trip, idempotent put, list,
//! remove, and each refusal (too large, store full, not found, tampered bytes).

#![allow(clippy::unwrap_used)]

use async_nats::jetstream;
use lattice_artifacts::{
    ArtifactKind, ArtifactStore, Digest, NewArtifact, StoreConfig, StoreError,
};
use lattice_testing::nats::NatsServer;

async fn store(server: &NatsServer, lattice: &str, config: StoreConfig) -> ArtifactStore {
    let js = jetstream::new(server.connect().await.unwrap());
    ArtifactStore::open_or_create(js, lattice, config)
        .await
        .unwrap()
}

#[tokio::test]
async fn put_get_list_remove() {
    let server = NatsServer::start().unwrap();
    let js = jetstream::new(server.connect().await.unwrap());
    // Nothing uploaded yet: no bucket, and a clear error.
    let err = ArtifactStore::open(js.clone(), "arts", StoreConfig::default())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NoBucket { .. }), "{err}");

    let store = store(&server, "arts", StoreConfig::default()).await;
    assert_eq!(store.bucket(), "lattice_arts_artifacts");
    let bytes = b"\0asm\x0d\0\x01\0 not really a component".to_vec();
    let meta = store
        .put(&bytes, NewArtifact::component("hello.wasm"))
        .await
        .unwrap();
    let digest = Digest::of(&bytes);
    assert_eq!(meta.digest, digest.to_string());
    assert_eq!(meta.size, bytes.len() as u64);

    // Idempotent: the same bytes again write nothing.
    let (used, _) = store.usage().await.unwrap();
    let again = store
        .put(&bytes, NewArtifact::component("other-name.wasm"))
        .await
        .unwrap();
    assert_eq!(again, meta, "the stored metadata is answered");
    assert_eq!(store.usage().await.unwrap().0, used);

    let exe = b"#!/bin/sh\necho provider\n".to_vec();
    let provider = store
        .put(&exe, NewArtifact::local_provider("prov"))
        .await
        .unwrap();
    assert_eq!(provider.kind, ArtifactKind::Provider);
    assert_eq!(provider.os.as_deref(), Some(std::env::consts::OS));

    let (got_meta, got) = store.get(&digest).await.unwrap();
    assert_eq!(got, bytes);
    assert_eq!(got_meta.name, "hello.wasm");
    let listed: Vec<String> = store
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.digest)
        .collect();
    let mut want = vec![meta.digest.clone(), provider.digest.clone()];
    want.sort();
    assert_eq!(listed, want);

    store.remove(&digest).await.unwrap();
    let err = store.get(&digest).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains(&digest.to_string()), "{err}");
    let err = store.remove(&digest).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    assert_eq!(store.list().await.unwrap().len(), 1);
}

#[tokio::test]
async fn too_large_is_refused_both_ways() {
    let server = NatsServer::start().unwrap();
    let small = StoreConfig {
        max_artifact_bytes: 1000,
        ..StoreConfig::default()
    };
    let store = store(&server, "big", small).await;
    let err = store
        .put(&vec![1u8; 1001], NewArtifact::component("big.wasm"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::TooLarge {
                size: 1001,
                max: 1000,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("over the artifact store's limit"),
        "{err}"
    );

    // Stored by a writer with a larger bound, refused by a reader with a smaller.
    let roomy = store_with(&server, "big", StoreConfig::default()).await;
    let bytes = vec![2u8; 5000];
    roomy
        .put(&bytes, NewArtifact::component("b.wasm"))
        .await
        .unwrap();
    let err = store.get(&Digest::of(&bytes)).await.unwrap_err();
    assert!(
        matches!(err, StoreError::TooLarge { size: 5000, .. }),
        "{err}"
    );
}

async fn store_with(server: &NatsServer, lattice: &str, config: StoreConfig) -> ArtifactStore {
    let js = jetstream::new(server.connect().await.unwrap());
    ArtifactStore::open(js, lattice, config).await.unwrap()
}

#[tokio::test]
async fn a_full_store_says_so() {
    let server = NatsServer::start().unwrap();
    let config = StoreConfig {
        max_artifact_bytes: 1 << 20,
        max_store_bytes: 200_000,
        ..StoreConfig::default()
    };
    let store = store(&server, "full", config).await;
    store
        .put(&vec![1u8; 120_000], NewArtifact::component("a.wasm"))
        .await
        .unwrap();
    let err = store
        .put(&vec![2u8; 120_000], NewArtifact::component("b.wasm"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Full { max: 200_000, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("lattice artifact rm"), "{err}");
}

/// Bytes put under another digest's name straight through JetStream (as someone
/// with write access to the bucket could) are refused on the way out, naming both
/// digests.
#[tokio::test]
async fn tampered_bytes_are_a_digest_mismatch() {
    let server = NatsServer::start().unwrap();
    let store = store(&server, "tamper", StoreConfig::default()).await;
    let good = b"the real component".to_vec();
    let meta = store
        .put(&good, NewArtifact::component("real.wasm"))
        .await
        .unwrap();
    let digest = Digest::of(&good);

    let js = jetstream::new(server.connect().await.unwrap());
    let raw = js
        .get_object_store("lattice_tamper_artifacts")
        .await
        .unwrap();
    let info = raw.info(digest.hex()).await.unwrap();
    let evil = b"something else entirely".to_vec();
    let object = async_nats::jetstream::object_store::ObjectMetadata {
        name: digest.hex(),
        metadata: info.metadata.clone(),
        ..Default::default()
    };
    raw.put(object, &mut evil.as_slice()).await.unwrap();

    let err = store.get(&digest).await.unwrap_err();
    assert!(matches!(err, StoreError::DigestMismatch { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains(&meta.digest),
        "names the expected digest: {text}"
    );
    assert!(
        text.contains(&Digest::of(&evil).to_string()),
        "names the digest of what came back: {text}"
    );
}
