//! `deploy/compose/compose.yaml` as Docker Compose would run it, without
//! Docker: each service's entrypoint, command and environment exactly as the
//! file says (after Compose's `$$` and `<<:` merge), run as real processes on
//! this machine, with only what a container changes mapped:
//!
//! - the images: `lattice` is this build's `lattice` binary (the Dockerfile's
//!   ENTRYPOINT, on `PATH` for shell entrypoints), `nats:*` is nats-server (the
//!   image's entrypoint runs `nats-server ARGS` for arguments that start with
//!   `-`);
//! - each volume's mount point is a folder of the test's (named volumes shared
//!   between services as Compose shares them, binds of the compose folder read
//!   from it; `/apps` is the test's manifests);
//! - the `nats` hostname is 127.0.0.1, and nats-server listens on a free port
//!   instead of 4222 (given after the file's arguments);
//!
//! then `docker compose run --rm cli app deploy /apps/hello.yaml`, the same way,
//! and the app answers over HTTP. What is not tested: the images themselves
//! (the Dockerfile), Docker's networking and restart policies.

#![allow(clippy::unwrap_used)] // a test: an unwrap that fails is a failed test

mod multi_host_support;

use lattice_testing::manifest::{App, Component};
use lattice_testing::nats::{find_binary, free_port};
use lattice_testing::process::Process;
use multi_host_support::http_get;
use serde_yaml_ng::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use multi_host_support::LATTICE_BIN;

fn compose_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/compose")
}

/// One service as Compose reads it.
struct Service {
    image: String,
    entrypoint: Option<Vec<String>>,
    command: Vec<String>,
    environment: BTreeMap<String, String>,
    /// Mount point to what is mounted there (`name` of a volume, `./path` of a bind).
    volumes: Vec<(String, String)>,
}

fn strings(value: Option<&Value>) -> Option<Vec<String>> {
    match value? {
        Value::Sequence(items) => Some(
            items
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect(),
        ),
        Value::String(s) => Some(s.split_whitespace().map(str::to_string).collect()),
        other => panic!("expected a list or a string, found {other:?}"),
    }
}

fn services() -> BTreeMap<String, Service> {
    let text = std::fs::read_to_string(compose_dir().join("compose.yaml")).unwrap();
    let mut doc: Value = serde_yaml_ng::from_str(&text).unwrap();
    doc.apply_merge().unwrap();
    let mut out = BTreeMap::new();
    for (name, svc) in doc["services"].as_mapping().unwrap() {
        let mut svc = svc.clone();
        svc.apply_merge().unwrap();
        let environment = svc
            .get("environment")
            .and_then(Value::as_mapping)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        let v = match v {
                            Value::String(s) => s.clone(),
                            other => serde_yaml_ng::to_string(other).unwrap().trim().to_string(),
                        };
                        (k.as_str().unwrap().to_string(), v)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let volumes = strings(svc.get("volumes"))
            .unwrap_or_default()
            .iter()
            .map(|v| {
                let mut parts = v.split(':');
                let (from, to) = (parts.next().unwrap(), parts.next().unwrap());
                (to.to_string(), from.to_string())
            })
            .collect();
        out.insert(
            name.as_str().unwrap().to_string(),
            Service {
                image: svc["image"].as_str().unwrap().to_string(),
                entrypoint: strings(svc.get("entrypoint")),
                command: strings(svc.get("command")).unwrap_or_default(),
                environment,
                volumes,
            },
        );
    }
    out
}

/// The machine's side of a run: where volumes live, and the NATS port.
struct Machine {
    dir: tempfile::TempDir,
    apps: PathBuf,
    nats_port: u16,
}

impl Machine {
    /// What the container would see at `to`, on this machine.
    fn mount(&self, from: &str, to: &str) -> PathBuf {
        if to == "/apps" {
            return self.apps.clone();
        }
        if let Some(rel) = from.strip_prefix("./") {
            return compose_dir().join(rel);
        }
        let path = self.dir.path().join("volumes").join(from);
        std::fs::create_dir_all(&path).unwrap();
        path
    }

    /// `text` with Compose's `$$` undone and the container's paths and the
    /// `nats` hostname replaced by this machine's.
    fn map(&self, service: &Service, text: &str) -> String {
        let mut out = text.replace("$$", "$");
        // Longest mount point first: /var/lib/lattice before /lattice.
        let mut mounts = service.volumes.clone();
        mounts.sort_by_key(|(to, _)| std::cmp::Reverse(to.len()));
        let mut marked = Vec::new();
        for (i, (to, from)) in mounts.iter().enumerate() {
            let mark = format!("\u{0}{i}\u{0}");
            out = out.replace(to.as_str(), &mark);
            marked.push((mark, self.mount(from, to)));
        }
        for (mark, path) in marked {
            out = out.replace(&mark, &path.display().to_string());
        }
        out.replace(
            "nats://nats:4222",
            &format!("nats://127.0.0.1:{}", self.nats_port),
        )
    }

    /// The process Compose would start for `service`, `args` replacing its
    /// command when given (`compose run SERVICE ARGS`).
    fn command(&self, service: &Service, args: Option<&[&str]>) -> Command {
        let bin_dir = Path::new(LATTICE_BIN).parent().unwrap();
        let (mut program, mut argv): (String, Vec<String>) = match &service.entrypoint {
            Some(e) => (e[0].clone(), e[1..].to_vec()),
            None if service.image == "lattice" => (LATTICE_BIN.to_string(), Vec::new()),
            None if service.image.starts_with("nats:") => {
                (find_binary().unwrap().display().to_string(), Vec::new())
            }
            None => panic!("unknown image {}", service.image),
        };
        let command: Vec<String> = match args {
            Some(args) => args.iter().map(|s| s.to_string()).collect(),
            None => service.command.clone(),
        };
        argv.extend(command.iter().map(|a| self.map(service, a)));
        if program == "lattice" {
            program = LATTICE_BIN.to_string();
        }
        let mut cmd = Command::new(program);
        cmd.args(argv).env_clear().env(
            "PATH",
            format!("{}:/usr/local/bin:/usr/bin:/bin", bin_dir.display()),
        );
        for (k, v) in &service.environment {
            cmd.env(k, self.map(service, v));
        }
        cmd
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compose_files_commands_run_a_lattice_that_serves_an_app() {
    let services = services();
    let dir = tempfile::tempdir().unwrap();
    let apps = dir.path().join("apps");
    std::fs::create_dir_all(&apps).unwrap();
    let machine = Machine {
        dir,
        apps,
        nats_port: free_port().unwrap(),
    };

    // `init` runs to completion first (every other service depends on it),
    // twice: the second `up` finds the keys and keeps them.
    for run in ["first", "second"] {
        let out = machine.command(&services["init"], None).output().unwrap();
        assert!(
            out.status.success(),
            "init ({run} run): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let keys = machine.dir.path().join("volumes/lattice");
    for file in [
        "nats-auth.conf",
        "nats.conf",
        "trust",
        "host-1.creds",
        "host-2.nk",
    ] {
        assert!(keys.join(file).is_file(), "init wrote no {file}");
    }

    let port = machine.nats_port.to_string();
    let mut nats_cmd = machine.command(&services["nats"], None);
    nats_cmd.args(["--addr", "127.0.0.1", "--port", &port]);
    let nats = Process::spawn("nats", nats_cmd).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", machine.nats_port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nats did not start: {}",
            nats.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut running = vec![nats];
    for name in ["controller", "host-1", "host-2"] {
        let cmd = machine.command(&services[name], None);
        running.push(Process::spawn(name, cmd).unwrap());
    }

    // `docker compose run --rm cli app deploy /apps/hello.yaml`.
    let http = free_port().unwrap();
    // One instance: the test's hosts share one loopback, where a container each
    // would have its own.
    let manifest = App::new("hello")
        .with(Component::wasm("hello", "hello").instances(1))
        .http_server("hello", http)
        .yaml();
    std::fs::write(machine.apps.join("hello.yaml"), manifest).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = machine
            .command(
                &services["cli"],
                Some(&["app", "deploy", "/apps/hello.yaml", "--timeout", "30s"]),
            )
            .output()
            .unwrap();
        if out.status.success() {
            break;
        }
        let said = String::from_utf8_lossy(&out.stderr).into_owned();
        let logs: Vec<String> = running.iter().map(|p| p.log()).collect();
        assert!(
            Instant::now() < deadline,
            "deploy kept failing: {said}\n{}",
            logs.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let body = http_get(http, "/").await.unwrap();
    assert!(body.contains("Hello"), "{body}");
    for p in &mut running {
        assert_eq!(p.exited(), None, "{} exited: {}", p.name(), p.log());
    }
}
