//! `deploy/kubernetes/` as a cluster would run it, without Kubernetes:
//! `make-auth.sh DIR 3 --apply` with a `kubectl` that keeps each config map and
//! secret it is asked to create as a folder (the files `--from-file` names),
//! then every pod of `lattice.yaml`'s StatefulSets and Deployments as a real
//! process, each pod in a network namespace of its own (its pod IP), with exactly the
//! container's image, command, args and environment, mapping only what a
//! kubelet provides:
//!
//! - images: `lattice` is this build's binary (the Dockerfile's ENTRYPOINT),
//!   `nats:*` is nats-server (the image runs `nats-server ARGS`);
//! - `valueFrom`: `metadata.name` is the pod's name, `spec.nodeName` its node's,
//!   `secretKeyRef` the secret's file; `$(VAR)` in values and args as Kubernetes
//!   expands it;
//! - volumes: a folder per pod and mount (secrets, config maps and projected
//!   volumes filled from the folders above, emptyDir and claims empty);
//! - names: `nats-N.nats` is the address of pod nats-N.
//!
//! Every pod's readiness and liveness probes must answer 200; then `lattice app
//! deploy` from outside, with the `cli.creds` make-auth.sh wrote, and every host
//! pod answers HTTP. Not tested: Kubernetes itself
//! (scheduling, Services, restarts), the image.
//!
//! Skipped, saying why, where network namespaces cannot be made (not root).

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

mod multi_host_support;

use lattice_testing::manifest::{App, Component, Link};
use lattice_testing::nats::find_binary;
use lattice_testing::process::Process;
use lattice_testing::topology::netns::Network;
use multi_host_support::{http_answer, LATTICE_BIN};
use serde_yaml_ng::Value;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The most replicas of one workload (nodes named node-0...).
const NODES: usize = 3;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes")
}

/// A `kubectl` that keeps `create secret generic NAME --from-file=F...` and
/// `create configmap NAME --from-file=F...` as `$KUBE_DIR/NAME/<F's name>`, and
/// accepts the namespace's `create --dry-run` / `apply`.
const FAKE_KUBECTL: &str = r#"#!/bin/sh
set -e
[ "$1" = "-n" ] && shift 2
case "$1 $2" in
  "create secret") shift 3 ;;
  "create configmap") shift 2 ;;
  "create namespace") exit 0 ;;
  "apply -f") cat >/dev/null; exit 0 ;;
  *) echo "kubectl: unexpected $*" >&2; exit 1 ;;
esac
name="$1"; shift
mkdir -p "$KUBE_DIR/$name"
for arg in "$@"; do
  file="${arg#--from-file=}"
  [ "$file" = "$arg" ] && { echo "kubectl: unexpected $arg" >&2; exit 1; }
  cp "$file" "$KUBE_DIR/$name/"
done
"#;

/// One container of a pod template, and the template's volumes.
struct Workload {
    name: String,
    replicas: usize,
    container: Value,
    volumes: BTreeMap<String, Value>,
}

fn workloads() -> Vec<Workload> {
    let text = std::fs::read_to_string(deploy_dir().join("lattice.yaml")).unwrap();
    let mut out = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(&text) {
        let doc = <Value as serde::Deserialize>::deserialize(doc).unwrap();
        if !matches!(doc["kind"].as_str(), Some("StatefulSet" | "Deployment")) {
            continue;
        }
        let spec = &doc["spec"];
        let pod = &spec["template"]["spec"];
        let containers = pod["containers"].as_sequence().unwrap();
        assert_eq!(containers.len(), 1, "one container per pod");
        let mut volumes: BTreeMap<String, Value> = pod["volumes"]
            .as_sequence()
            .into_iter()
            .flatten()
            .map(|v| (v["name"].as_str().unwrap().to_string(), v.clone()))
            .collect();
        for claim in spec["volumeClaimTemplates"]
            .as_sequence()
            .into_iter()
            .flatten()
        {
            let name = claim["metadata"]["name"].as_str().unwrap().to_string();
            volumes.insert(name, Value::Null);
        }
        out.push(Workload {
            name: doc["metadata"]["name"].as_str().unwrap().to_string(),
            replicas: spec["replicas"].as_u64().unwrap() as usize,
            container: containers[0].clone(),
            volumes,
        });
    }
    out
}

/// `$(NAME)` replaced as Kubernetes does, from the variables defined so far.
fn expand(text: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = text.to_string();
    for (k, v) in env {
        out = out.replace(&format!("$({k})"), v);
    }
    out
}

/// A running pod: which workload and index it is, its process, and how many
/// times it was restarted.
struct Pod {
    at: (usize, usize),
    process: Process,
    restarts: u32,
}

struct Cluster {
    dir: tempfile::TempDir,
    kube: PathBuf,
    net: Network,
    /// Each pod's network namespace (its index in `net`), by pod name.
    slots: BTreeMap<String, usize>,
}

impl Cluster {
    /// Pod `name`'s IP.
    fn ip(&self, name: &str) -> Ipv4Addr {
        self.net.core_ip(self.slots[name])
    }

    /// The folder of a secret or config map make-auth.sh created.
    fn object(&self, name: &str) -> PathBuf {
        let dir = self.kube.join(name);
        assert!(dir.is_dir(), "make-auth.sh created no {name}");
        dir
    }

    /// Volume `volume` of pod `pod`, made as a kubelet would.
    fn volume(&self, pod: &str, name: &str, volume: &Value) -> PathBuf {
        let dir = self.dir.path().join("pods").join(pod).join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let mut sources = Vec::new();
        if let Some(s) = volume["secret"]["secretName"].as_str() {
            sources.push((s, &volume["secret"]["items"]));
        }
        if let Some(c) = volume["configMap"]["name"].as_str() {
            sources.push((c, &volume["configMap"]["items"]));
        }
        for source in volume["projected"]["sources"]
            .as_sequence()
            .into_iter()
            .flatten()
        {
            for kind in ["secret", "configMap"] {
                if let Some(n) = source[kind]["name"].as_str() {
                    sources.push((n, &source[kind]["items"]));
                }
            }
        }
        for (object, items) in sources {
            let from = self.object(object);
            match items.as_sequence() {
                Some(items) => {
                    for item in items {
                        let (key, path) = (
                            item["key"].as_str().unwrap(),
                            item["path"].as_str().unwrap(),
                        );
                        std::fs::copy(from.join(key), dir.join(path)).unwrap();
                    }
                }
                None => {
                    for entry in std::fs::read_dir(&from).unwrap() {
                        let entry = entry.unwrap();
                        std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
                    }
                }
            }
        }
        dir
    }

    /// Pod `index` of `w` on node `index`: its command, ready to spawn.
    fn pod(&self, w: &Workload, index: usize) -> (String, Command) {
        let pod = format!("{}-{index}", w.name);
        let c = &w.container;
        let node = format!("node-{index}");
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        for var in c["env"].as_sequence().into_iter().flatten() {
            let name = var["name"].as_str().unwrap().to_string();
            let value = if let Some(v) = var["value"].as_str() {
                expand(v, &env)
            } else if let Some(path) = var["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
                match path {
                    "metadata.name" => pod.clone(),
                    "spec.nodeName" => node.clone(),
                    other => panic!("{pod}: fieldRef {other} is not mapped by this test"),
                }
            } else if let Some(secret) = var["valueFrom"]["secretKeyRef"]["name"].as_str() {
                let key = var["valueFrom"]["secretKeyRef"]["key"].as_str().unwrap();
                std::fs::read_to_string(self.object(secret).join(key)).unwrap()
            } else {
                panic!("{pod}: env {name} has no value this test maps");
            };
            env.insert(name, value);
        }
        // Mount paths, longest first, and the NATS pods' names.
        let mut mounts: Vec<(String, PathBuf)> = c["volumeMounts"]
            .as_sequence()
            .into_iter()
            .flatten()
            .map(|m| {
                let name = m["name"].as_str().unwrap();
                let volume = &w.volumes[name];
                let path = self.volume(&pod, name, volume);
                (m["mountPath"].as_str().unwrap().to_string(), path)
            })
            .collect();
        mounts.sort_by_key(|(at, _)| std::cmp::Reverse(at.len()));
        let local = |text: &str| -> String {
            let mut out = text.to_string();
            for (at, path) in &mounts {
                if out.starts_with(at.as_str()) {
                    out = format!("{}{}", path.display(), &out[at.len()..]);
                }
            }
            for name in self.slots.keys().filter(|n| n.starts_with("nats-")) {
                out = out.replace(&format!("{name}.nats"), &self.ip(name).to_string());
            }
            out
        };
        let image = c["image"].as_str().unwrap();
        let program = match image {
            "lattice" => PathBuf::from(LATTICE_BIN),
            _ if image.starts_with("nats:") => find_binary().unwrap(),
            other => panic!("unknown image {other}"),
        };
        assert!(
            c["command"].is_null(),
            "{pod}: the image's entrypoint is used"
        );
        let args: Vec<String> = c["args"]
            .as_sequence()
            .into_iter()
            .flatten()
            .map(|a| local(&expand(a.as_str().unwrap(), &env)))
            .collect();
        let mut cmd = self
            .net
            .command(self.net.core_ns(self.slots[&pod]), &program);
        cmd.args(args)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin");
        for (k, v) in &env {
            cmd.env(k, local(v));
        }
        (pod, cmd)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kubernetes_manifests_commands_run_a_lattice_that_serves_an_app() {
    if let Some(why) = lattice_testing::topology::unavailable() {
        eprintln!("SKIPPED: this test needs network namespaces: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let kube = dir.path().join("kube");
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let kubectl = bin.join("kubectl");
    std::fs::write(&kubectl, FAKE_KUBECTL).unwrap();
    let executable = std::os::unix::fs::PermissionsExt::from_mode(0o755);
    std::fs::set_permissions(&kubectl, executable).unwrap();
    let auth = dir.path().join("auth");
    let out = Command::new(deploy_dir().join("make-auth.sh"))
        .arg(&auth)
        .args(["3", "--apply"])
        .env("LATTICE_BIN", LATTICE_BIN)
        .env("KUBE_DIR", &kube)
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "make-auth.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The account's and operator's seeds stay off the cluster.
    for object in [
        "nats-auth",
        "lattice-controller",
        "lattice-hosts",
        "nats-config",
    ] {
        for seed in ["operator.nk", "account.nk", "system.nk"] {
            assert!(
                !kube.join(object).join(seed).exists(),
                "{seed} is in {object}"
            );
        }
    }

    let workloads = workloads();
    let slots: BTreeMap<String, usize> = workloads
        .iter()
        .flat_map(|w| (0..w.replicas).map(move |i| format!("{}-{i}", w.name)))
        .enumerate()
        .map(|(slot, name)| (name, slot))
        .collect();
    let cluster = Cluster {
        dir,
        kube,
        net: Network::create(slots.len(), &[]).unwrap(),
        slots,
    };
    let names: Vec<&str> = workloads.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["nats", "lattice-controller", "lattice-host"]);
    // Every pod at once, restarted when its process exits, as Kubernetes
    // does (a host or controller that finds no NATS or no JetStream leader yet
    // exits, and comes back).
    let mut pods = Vec::new();
    for (k, w) in workloads.iter().enumerate() {
        assert!(w.replicas <= NODES, "{}: {} replicas", w.name, w.replicas);
        for i in 0..w.replicas {
            let (name, cmd) = cluster.pod(w, i);
            pods.push(Pod {
                at: (k, i),
                process: Process::spawn(&name, cmd).unwrap(),
                restarts: 0,
            });
        }
    }
    let restart_exited = |pods: &mut Vec<Pod>| {
        for pod in pods.iter_mut() {
            if pod.process.exited().is_some() {
                let (name, cmd) = cluster.pod(&workloads[pod.at.0], pod.at.1);
                pod.process = Process::spawn(&name, cmd).unwrap();
                pod.restarts += 1;
            }
        }
    };

    // Every probe the manifest gives answers 200 (the admin address).
    for pod in &mut pods {
        let w = &workloads[pod.at.0];
        let name = format!("{}-{}", w.name, pod.at.1);
        for probe in ["livenessProbe", "readinessProbe"] {
            let get = &w.container[probe]["httpGet"];
            let Some(path) = get["path"].as_str() else {
                continue;
            };
            let port = match &get["port"] {
                Value::Number(n) => n.as_u64().unwrap() as u16,
                Value::String(named) => w.container["ports"]
                    .as_sequence()
                    .unwrap()
                    .iter()
                    .find(|p| p["name"].as_str() == Some(named))
                    .and_then(|p| p["containerPort"].as_u64())
                    .unwrap() as u16,
                other => panic!("{name}: probe port {other:?}"),
            };
            let url = format!("http://{}:{port}{path}", cluster.ip(&name));
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let answer = reqwest::Client::new()
                    .get(&url)
                    .timeout(Duration::from_secs(2))
                    .send()
                    .await;
                match answer {
                    Ok(r) if r.status().as_u16() == 200 => break,
                    other => assert!(
                        Instant::now() < deadline,
                        "{name}: {probe} {url}: {other:?}\n{}",
                        pod.process.log()
                    ),
                }
                if pod.process.exited().is_some() {
                    let (_, cmd) = cluster.pod(w, pod.at.1);
                    pod.process = Process::spawn(&name, cmd).unwrap();
                    pod.restarts += 1;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    let probed: Vec<&str> = workloads
        .iter()
        .filter(|w| !w.container["readinessProbe"].is_null())
        .map(|w| w.name.as_str())
        .collect();
    assert_eq!(probed, ["lattice-controller", "lattice-host"]);

    // The app, deployed from outside with the CLI's user.
    let port = 8080;
    let manifest = cluster.dir.path().join("hello.yaml");
    // On every host, listening on the pod's address.
    let listen = format!("0.0.0.0:{port}");
    let app = App::new("hello")
        .with(Component::wasm("hello", "hello").on_every_host(1))
        .with(
            Component::capability("httpserver", "builtin://http-server").link(
                Link::to("hello", "wasi:http", &["incoming-handler"])
                    .source_config("listen", &[("address", &listen)]),
            ),
        );
    std::fs::write(&manifest, app.yaml()).unwrap();
    let url = format!("nats://{}:4222", cluster.ip("nats-0"));
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let out = Command::new(LATTICE_BIN)
            .args(["--nats-url", &url, "--nats-creds"])
            .arg(auth.join("cli.creds"))
            .args(["app", "deploy"])
            .arg(&manifest)
            .args(["--timeout", "30s"])
            .output()
            .unwrap();
        if out.status.success() {
            break;
        }
        restart_exited(&mut pods);
        if Instant::now() > deadline {
            let logs: Vec<String> = pods
                .iter()
                .map(|p| format!("{}:\n{}", p.process.name(), p.process.log()))
                .collect();
            panic!(
                "deploy kept failing: {}\n{}",
                String::from_utf8_lossy(&out.stderr),
                logs.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for i in 0..3 {
        let ip = cluster.ip(&format!("lattice-host-{i}"));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match http_answer(format!("{ip}:{port}"), "/").await {
                Ok((200, body)) => {
                    assert!(body.contains("Hello"), "{body}");
                    break;
                }
                other => assert!(Instant::now() < deadline, "lattice-host-{i}: {other:?}"),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let restarts: Vec<String> = pods
        .iter()
        .map(|p| format!("{} {}", p.process.name(), p.restarts))
        .collect();
    eprintln!("restarts: {}", restarts.join(", "));
    for p in &mut pods {
        let exited = p.process.exited();
        assert_eq!(exited, None, "{}: {}", p.process.name(), p.process.log());
    }
}
