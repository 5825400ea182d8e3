//! Durability on a three-node JetStream cluster with real processes: a `lattice
//! controller --replicas 3` and two `lattice host`s connected to every node; the
//! node leading the state bucket is killed, and the app record survives, the app
//! keeps answering and a new deploy still works. A controller configured for 3
//! replicas refuses a state bucket that has 1.

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

use lattice_protocol::subjects::Subjects;
use lattice_testing::components::sample_manifest;
use lattice_testing::nats::free_port;
use lattice_testing::nats_cluster::NatsCluster;
use lattice_testing::process::Process;
use lattice_testing::trust::LatticeKey;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

const LATTICE_BIN: &str = env!("CARGO_BIN_EXE_lattice");
/// How long any one condition may take to come true (a new stream leader is
/// elected within seconds).
const DEADLINE: Duration = Duration::from_secs(45);

fn lattice(cluster: &NatsCluster, name: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(LATTICE_BIN);
    cmd.args(["--nats-url", &cluster.urls(), "--lattice", name])
        .args(args)
        .env("LATTICE_LOG", "info")
        .env("NO_COLOR", "1");
    cmd
}

fn output(mut cmd: Command) -> (bool, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&stdout),
        String::from_utf8_lossy(&stderr)
    );
    (status.success(), text)
}

async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let last = match check().await {
            Ok(v) => return v,
            Err(last) => last,
        };
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}; last seen: {last}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn answers(port: u16) -> Result<String, String> {
    let resp = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    match resp.status().as_u16() {
        200 => resp.text().await.map_err(|e| e.to_string()),
        other => Err(format!("HTTP {other}")),
    }
}

/// The hello sample as app `name`, listening on `port`.
fn hello(dir: &Path, name: &str, port: u16) -> PathBuf {
    let text = sample_manifest("hello.yaml", &[(8081, port)]).replacen(
        "  name: hello\n",
        &format!("  name: {name}\n"),
        1,
    );
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// `lattice app deploy` until it is accepted (the API may be between leaders);
/// the controller's log is shown if it never is.
async fn deploy(cluster: &NatsCluster, name: &str, file: &Path, controller: &Process) {
    let what = format!(
        "{} to be accepted (controller log: {})",
        file.display(),
        controller.log_path().display()
    );
    let _shown = ShowLogOnPanic(controller);
    eventually(&what, || async {
        let (ok, out) = output(lattice(
            cluster,
            name,
            &["app", "deploy", file.to_str().unwrap(), "--no-wait"],
        ));
        if ok {
            Ok(())
        } else {
            eprintln!("deploy refused: {out}");
            Err(out)
        }
    })
    .await
}

/// Prints a process's log when the test panics while it is alive.
struct ShowLogOnPanic<'a>(&'a Process);

impl Drop for ShowLogOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- {} log ---\n{}", self.0.name(), self.0.log());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_survive_losing_the_node_that_leads_the_state_bucket() {
    let mut cluster = NatsCluster::start(3).unwrap();
    let client = cluster.connect().await.unwrap();
    cluster.wait_jetstream(&client).await.unwrap();
    let name = "durable";
    let key = LatticeKey::new(name);
    let dir = tempfile::tempdir().unwrap();

    let mut controller = lattice(
        &cluster,
        name,
        &[
            "controller",
            "--replicas",
            "3",
            "--host-heartbeat-interval",
            "0.2",
        ],
    );
    controller.env("LATTICE_SIGNING_KEY", key.seed());
    let controller = Process::spawn("controller", controller).unwrap();
    let mut hosts = Vec::new();
    for host in ["h1", "h2"] {
        let label = format!("name={host}");
        let cmd = lattice(
            &cluster,
            name,
            &[
                "host",
                "--heartbeat-interval",
                "0.2",
                "--no-pooling",
                "--allow-file-load",
                "--label",
                &label,
                "--trust",
                &key.public_key(),
            ],
        );
        hosts.push(Process::spawn(host, cmd).unwrap());
    }

    let first = free_port().unwrap();
    deploy(
        &cluster,
        name,
        &hello(dir.path(), "first", first),
        &controller,
    )
    .await;
    eventually("the first app to answer", || answers(first)).await;

    // Both buckets hold three copies.
    let js = async_nats::jetstream::new(client.clone());
    let subjects = Subjects::new(name);
    for stream in [
        format!("KV_{}", subjects.state_bucket()),
        format!("OBJ_{}", subjects.artifact_bucket()),
    ] {
        let info = js
            .get_stream(&stream)
            .await
            .unwrap()
            .info()
            .await
            .unwrap()
            .clone();
        assert_eq!(info.config.num_replicas, 3, "{stream}");
    }

    // Kill the node that leads the state bucket.
    let state = format!("KV_{}", subjects.state_bucket());
    let info = js
        .get_stream(&state)
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .clone();
    let leader = info.cluster.and_then(|c| c.leader).unwrap();
    let dead = cluster.index_of(&leader).unwrap();
    cluster.kill(dead);
    let killed = std::time::Instant::now();
    eprintln!("killed {leader}, the leader of {state}");

    // The record survives: the API (a controller reconnected elsewhere) lists it.
    eventually("the app list to show the first app", || async {
        let (ok, out) = output(lattice(&cluster, name, &["app", "list"]));
        if ok && out.contains("first") {
            Ok(())
        } else {
            Err(out)
        }
    })
    .await;
    let listed = killed.elapsed();
    eventually("the first app to answer after the loss", || answers(first)).await;

    // A new deploy still works, and is stored with three replicas on two nodes.
    let second = free_port().unwrap();
    deploy(
        &cluster,
        name,
        &hello(dir.path(), "second", second),
        &controller,
    )
    .await;
    let accepted = killed.elapsed();
    eventually("the second app to answer", || answers(second)).await;
    eprintln!(
        "node loss: app list answered {listed:?} after the kill, a new deploy accepted \
         {accepted:?} and answering {:?} after it",
        killed.elapsed()
    );

    // The dead node comes back and catches up; nothing was restarted.
    cluster.restart(dead).unwrap();
    for mut p in hosts.into_iter().chain([controller]) {
        assert!(p.exited().is_none(), "{} exited:\n{}", p.name(), p.log());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_for_3_replicas_refuses_a_state_bucket_with_1() {
    let cluster = NatsCluster::start(3).unwrap();
    let client = cluster.connect().await.unwrap();
    cluster.wait_jetstream(&client).await.unwrap();
    let name = "thin";
    let bucket = Subjects::new(name).state_bucket();
    let js = async_nats::jetstream::new(client.clone());
    lattice_controller::store::ensure_kv_bucket(&js, &bucket, 1, 1, 1 << 20)
        .await
        .unwrap();

    let key = LatticeKey::new(name);
    let mut cmd = lattice(&cluster, name, &["controller", "--replicas", "3"]);
    cmd.env("LATTICE_SIGNING_KEY", key.seed());
    let mut controller = Process::spawn("controller", cmd).unwrap();
    let status = controller.wait(DEADLINE).unwrap();
    let log = controller.log();
    assert!(!status.success(), "{log}");
    for part in [
        format!("bucket {bucket}"),
        "has 1 replica(s)".to_string(),
        "configured for 3".to_string(),
        format!("nats stream edit KV_{bucket} --replicas 3"),
    ] {
        assert!(log.contains(&part), "{part:?} not in:\n{log}");
    }
}
