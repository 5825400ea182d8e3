//! The provider as a lattice host runs it, with the sample manifests: the
//! `pg-notes` component writing and reading PostgreSQL through
//! `wasmcloud:postgres` (`manifests/notes-postgres.yaml`, wasmCloud's `POSTGRES_*`
//! link keys), and the unchanged `counter` counting in PostgreSQL through
//! `wasi:keyvalue` (`manifests/counter-postgres.yaml`: only the `kv` capability
//! differs from `counter-redis.yaml`).
#![allow(clippy::unwrap_used)] // tests: an unwrap that fails is a failed test

mod common;

use lattice_protocol::manifest::parse;
use lattice_testing::components::sample_manifest;
use lattice_testing::host::{get_ok, provider_host, send, Host};
use lattice_testing::manifest::placed;
use lattice_testing::nats::{free_port, NatsServer};
use lattice_testing::postgres::PostgresServer;

const PROVIDER: &str = env!("CARGO_BIN_EXE_sqldb-postgres");
/// Where the sample manifests expect the release build of the provider.
const SAMPLE_IMAGE: &str = "file://../target/release/sqldb-postgres";

/// A sample manifest on `port`, with the provider under test for its image and
/// `replace` applied.
fn sample(file: &str, from_port: u16, port: u16, replace: &[(&str, String)]) -> String {
    let mut yaml = sample_manifest(file, &[(from_port, port)]);
    assert!(yaml.contains(SAMPLE_IMAGE), "{file} has no {SAMPLE_IMAGE}");
    yaml = yaml.replace(SAMPLE_IMAGE, &format!("file://{PROVIDER}"));
    for (from, to) in replace {
        assert!(yaml.contains(from), "{file} has no {from}");
        yaml = yaml.replace(from, to);
    }
    yaml
}

async fn apply(host: &Host, yaml: &str, names: &[&str]) {
    let manifest = parse(yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    host.apply(placed(manifest, names, 4)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_writes_and_reads_postgres_through_the_provider() {
    let nats = NatsServer::start().unwrap();
    let pg = PostgresServer::start().unwrap();
    let host = provider_host(&nats).await;
    let port = free_port().unwrap();
    let yaml = sample(
        "notes-postgres.yaml",
        8089,
        port,
        &[(
            "POSTGRES_PORT: 5432",
            format!("POSTGRES_PORT: {}", pg.port()),
        )],
    );
    apply(&host, &yaml, &["notes", "postgres"]).await;

    assert_eq!(get_ok(port, "/notes").await, "no notes\n");
    for text in ["buy+milk", "call%20mom"] {
        let (status, body) =
            send(reqwest::Method::POST, port, &format!("/notes?text={text}")).await;
        assert_eq!((status, body.as_str()), (201, "added 1 note\n"));
    }
    let listed = get_ok(port, "/notes").await;
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 2, "{listed}");
    for (line, (id, text)) in lines.iter().zip([("1", "buy milk"), ("2", "call mom")]) {
        let (first, rest) = line.split_once(' ').unwrap();
        let (created, note) = rest.split_once(' ').unwrap();
        assert_eq!((first, note), (id, text), "{line}");
        // `created` is a typed timestamptz, printed by the component in UTC.
        assert!(created.len() == 27 && created.ends_with('Z'), "{line}");
    }
    assert_eq!(
        get_ok(port, "/notes?q=mom").await,
        format!("{}\n", lines[1])
    );

    // The rows are in PostgreSQL itself.
    let db = common::connect(&pg.url()).await;
    let rows = db
        .query(
            "SELECT id, text, now() - created < interval '1 minute' FROM notes ORDER BY id",
            &[],
        )
        .await
        .unwrap();
    let found: Vec<(i64, String, bool)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        found,
        vec![(1, "buy milk".into(), true), (2, "call mom".into(), true)]
    );

    // A database error reaches the component as the function's err case.
    db.batch_execute("DROP TABLE notes; CREATE TABLE notes (id bigserial PRIMARY KEY, body text)")
        .await
        .unwrap();
    let (status, body) = send(reqwest::Method::GET, port, "/notes").await;
    assert_eq!(status, 500, "{body}");
    assert!(
        body.starts_with(
            "error: invalid query: ERROR: column \"text\" does not exist (SQLSTATE 42703)"
        ),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_unchanged_counter_counts_in_postgres() {
    let nats = NatsServer::start().unwrap();
    let pg = PostgresServer::start().unwrap();
    let host = provider_host(&nats).await;
    let port = free_port().unwrap();
    let url = "postgres://postgres@127.0.0.1:5432/postgres";
    let yaml = sample("counter-postgres.yaml", 8088, port, &[(url, pg.url())]);
    apply(&host, &yaml, &["counter", "kv"]).await;

    assert_eq!(get_ok(port, "/hits").await, "hits -> 1\n");
    assert_eq!(get_ok(port, "/hits").await, "hits -> 2\n");
    assert_eq!(get_ok(port, "/other").await, "other -> 1\n");

    // The count is in PostgreSQL, under the app's name.
    let db = common::connect(&pg.url()).await;
    let row = db
        .query_one(
            "SELECT value FROM lattice_kv \
             WHERE app = 'counter-postgres' AND bucket = 'default' AND key = 'hits'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Vec<u8>>(0), b"2");

    // Compared with counter-redis.yaml, only the provider's image and the link's
    // config differ.
    let differences = |file: &str| -> Vec<String> {
        let text = std::fs::read_to_string(
            lattice_testing::components::repo_root()
                .join("manifests")
                .join(file),
        )
        .unwrap();
        text.lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .map(str::to_owned)
            .collect()
    };
    let redis = differences("counter-redis.yaml");
    let postgres = differences("counter-postgres.yaml");
    let changed: Vec<(&String, &String)> = redis
        .iter()
        .zip(&postgres)
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(redis.len(), postgres.len());
    let changed: Vec<String> = changed.iter().map(|(a, _)| a.trim().to_owned()).collect();
    assert_eq!(
        changed,
        vec![
            "name: counter-redis",
            "description: HTTP counter backed by Redis through the keyvalue-redis provider",
            "- name: redis",
            "url: redis://127.0.0.1:6379",
            "image: file://../target/release/keyvalue-redis",
            "address: 127.0.0.1:8086",
        ]
    );
}
