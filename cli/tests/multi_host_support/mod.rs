//! A lattice of real processes for the `multi_host_*` tests: a real nats-server,
//! `lattice host` processes (each its own NATS connection and labels), and a
//! controller, either in this process (short timings) or as `lattice controller`
//! processes. Hosts are told apart by a `name` label.

#![allow(dead_code)]

use futures::StreamExt;
use lattice_controller::{ApiClient, Controller, ControllerConfig};
use lattice_protocol::messages::{AppStatus, Event, HostInfo};
use lattice_protocol::subjects::Subjects;
use lattice_protocol::trust::read_event_unverified;
use lattice_testing::components::component;
use lattice_testing::nats::NatsServer;
use lattice_testing::process::Process;
use lattice_testing::trust::LatticeKey;
use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

pub const LATTICE_BIN: &str = env!("CARGO_BIN_EXE_lattice");
/// Heartbeat interval of the test hosts, in seconds.
pub const BEAT_SECS: f64 = 0.2;
/// How long any one condition may take to come true.
pub const DEADLINE: Duration = Duration::from_secs(15);

/// Controller timings to match [`BEAT_SECS`]: a host is lost after 3 missed beats.
pub fn fast_controller() -> ControllerConfig {
    ControllerConfig {
        tick: Duration::from_millis(100),
        command_timeout: Duration::from_secs(5),
        host_heartbeat_interval: Duration::from_secs_f64(BEAT_SECS),
        missed_beats: 3,
        ping_gather: Duration::from_millis(300),
        backoff_base: Duration::from_millis(200),
        backoff_max: Duration::from_secs(2),
        resend_after: Duration::from_secs(5),
        lease_ttl: Duration::from_millis(900),
        lease_renew: Duration::from_millis(300),
        ..ControllerConfig::default()
    }
}

pub struct TestLattice {
    pub nats: NatsServer,
    pub name: String,
    pub dir: tempfile::TempDir,
    pub client: async_nats::Client,
    pub api: ApiClient,
    hosts: BTreeMap<String, Process>,
    killed: std::collections::BTreeSet<String>,
    /// Every heartbeat since the start, so placements are seen the moment hosts
    /// report them (hosts beat right after every command).
    beats: async_nats::Subscriber,
    latest: BTreeMap<String, HostInfo>,
    controller: Option<tokio::task::JoinHandle<()>>,
    /// The lattice's signing key: its controller signs with it, its hosts trust it.
    pub key: LatticeKey,
}

impl TestLattice {
    pub async fn start(name: &str) -> Self {
        let nats = NatsServer::start().unwrap();
        let client = nats.connect().await.unwrap();
        let api = ApiClient::new(client.clone(), name);
        let beats = client
            .subscribe(Subjects::new(name).event("host_heartbeat"))
            .await
            .unwrap();
        client.flush().await.unwrap();
        Self {
            nats,
            name: name.to_string(),
            dir: tempfile::tempdir().unwrap(),
            client,
            api,
            hosts: BTreeMap::new(),
            killed: Default::default(),
            beats,
            latest: BTreeMap::new(),
            controller: None,
            key: LatticeKey::new(name),
        }
    }

    /// `lattice --nats-url URL --lattice NAME ARGS...`
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(LATTICE_BIN);
        cmd.args(["--nats-url", &self.nats.url(), "--lattice", &self.name])
            .args(args)
            .env("LATTICE_LOG", "info");
        cmd
    }

    /// `lattice ARGS...` run to its end: (success, stdout, stderr).
    pub fn run(&self, args: &[&str]) -> (bool, String, String) {
        let out = self.command(args).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Start `lattice host` labelled `name=<name>` plus `labels`, heartbeating every
    /// [`BEAT_SECS`].
    pub fn start_host(&mut self, name: &str, labels: &[(&str, &str)]) {
        self.start_host_beating(name, labels, BEAT_SECS);
    }

    /// Start `lattice host` heartbeating every `beat_secs`.
    pub fn start_host_beating(&mut self, name: &str, labels: &[(&str, &str)], beat_secs: f64) {
        let cmd = self.host_command(name, labels, beat_secs, &["--allow-file-load"]);
        let process = Process::spawn(&format!("host {name}"), cmd).unwrap();
        self.adopt_host(name, process);
    }

    /// Keep `process` (a host started from [`TestLattice::host_command`] with
    /// something of the test's own, e.g. its environment) as the host `name`.
    pub fn adopt_host(&mut self, name: &str, process: Process) {
        self.hosts.insert(name.to_string(), process);
    }

    /// Start `lattice host` as a host of a cluster runs: no `--allow-file-load`,
    /// `extra` arguments (e.g. `--state-dir`), in the working folder `cwd`.
    pub fn start_cluster_host(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        extra: &[&str],
        cwd: &std::path::Path,
    ) {
        let mut cmd = self.host_command(name, labels, BEAT_SECS, extra);
        cmd.current_dir(cwd);
        let process = Process::spawn(&format!("host {name}"), cmd).unwrap();
        self.hosts.insert(name.to_string(), process);
    }

    pub fn host_command(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        beat_secs: f64,
        extra: &[&str],
    ) -> Command {
        let beat = beat_secs.to_string();
        let mut args = vec![
            "host".to_string(),
            "--heartbeat-interval".into(),
            beat,
            "--no-pooling".into(),
            "--drain-timeout".into(),
            "2".into(),
            "--label".into(),
            format!("name={name}"),
            "--trust".into(),
            self.key.public_key(),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        for (k, v) in labels {
            args.extend(["--label".to_string(), format!("{k}={v}")]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.command(&args)
    }

    /// `manifests/shop.yaml` (the edge-plus-core example) with the built
    /// components' paths and its listener on `port`, written to this lattice's
    /// folder.
    pub fn shop_manifest(&self, port: u16) -> PathBuf {
        let path = self.dir.path().join("shop.yaml");
        let text = lattice_testing::components::sample_manifest("shop.yaml", &[(8082, port)]);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// SIGKILL the host `name`.
    pub fn kill_host(&mut self, name: &str) {
        self.hosts.get_mut(name).expect("a started host").kill();
        self.killed.insert(name.to_string());
    }

    /// Run a controller in this process with [`fast_controller`] timings.
    pub async fn start_controller(&mut self) {
        self.start_controller_with(fast_controller()).await;
    }

    /// Run a controller in this process.
    pub async fn start_controller_with(&mut self, config: ControllerConfig) {
        let config = ControllerConfig {
            signing_key: Some(self.key.seed()),
            ..config
        };
        let client = self.nats.connect().await.unwrap();
        let controller = Controller::new(client, &self.name, config);
        self.controller = Some(tokio::spawn(async move {
            controller
                .run(std::future::pending())
                .await
                .expect("the controller runs");
        }));
        let api = self.api.clone().with_timeout(Duration::from_millis(500));
        eventually("the controller to answer", || async {
            api.list().await.map(|_| ()).map_err(|e| e.to_string())
        })
        .await;
    }

    /// Every host that answers a ping, by its `name` label.
    pub async fn hosts(&self) -> BTreeMap<String, HostInfo> {
        lattice_controller::ping_hosts(&self.client, &self.name, Duration::from_millis(300))
            .await
            .unwrap()
            .into_iter()
            .filter_map(|h| Some((h.labels.get("name")?.clone(), h)))
            .collect()
    }

    /// Wait until exactly the hosts `names` answer.
    pub async fn wait_hosts(&self, names: &[&str]) -> BTreeMap<String, HostInfo> {
        let mut want: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        want.sort();
        eventually(&format!("hosts {want:?} to answer"), || async {
            let hosts = self.hosts().await;
            let got: Vec<String> = hosts.keys().cloned().collect();
            if got == want {
                Ok(hosts)
            } else {
                Err(format!("{got:?}"))
            }
        })
        .await
    }

    /// Instances of `app`/`component` per host name, hosts running none left out.
    pub async fn placement(&self, app: &str, component: &str) -> BTreeMap<String, u32> {
        placement_of(&self.hosts().await, app, component)
    }

    /// Wait until the hosts' heartbeats show `app`/`component` running exactly as
    /// `want` (host name -> instances) on the hosts not killed; returns when they did.
    pub async fn wait_placement(
        &mut self,
        app: &str,
        component: &str,
        want: &[(&str, u32)],
    ) -> Instant {
        let want: BTreeMap<String, u32> = want.iter().map(|(h, n)| (h.to_string(), *n)).collect();
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let live: BTreeMap<String, HostInfo> = self
                .latest
                .iter()
                .filter(|(name, _)| !self.killed.contains(*name))
                .map(|(n, h)| (n.clone(), h.clone()))
                .collect();
            let got = placement_of(&live, app, component);
            if got == want {
                return Instant::now();
            }
            match tokio::time::timeout_at(deadline, self.beats.next()).await {
                Ok(Some(msg)) => {
                    if let Ok(Event::HostHeartbeat(info)) = read_event_unverified(&msg.payload) {
                        if let Some(name) = info.labels.get("name").cloned() {
                            self.latest.insert(name, info);
                        }
                    }
                }
                _ => panic!(
                    "timed out waiting for {app}/{component} to run as {want:?}; last seen: \
                     {got:?}"
                ),
            }
        }
    }

    /// Write a manifest of `app` at `version` whose components all run the `hello`
    /// guest: `components` are (name, trait YAML under `traits:`).
    pub fn manifest(&self, app: &str, version: &str, components: &[(&str, &str)]) -> PathBuf {
        let image = component("hello");
        let mut yaml = format!(
            "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: {app}\n  \
             annotations:\n    version: {version}\nspec:\n  components:\n"
        );
        for (name, traits) in components {
            yaml.push_str(&format!(
                "    - name: {name}\n      type: component\n      properties:\n        image: \
                 file://{}\n      traits:\n",
                image.display()
            ));
            for line in traits.trim().lines() {
                yaml.push_str(&format!("        {line}\n"));
            }
        }
        let path = self.dir.path().join(format!("{app}-{version}.yaml"));
        std::fs::write(&path, yaml).unwrap();
        path
    }

    /// `lattice app deploy FILE --no-wait`, which must succeed.
    pub fn deploy(&self, manifest: &std::path::Path) {
        let out = self
            .command(&["app", "deploy", manifest.to_str().unwrap(), "--no-wait"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "deploy failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Wait until `app`'s status satisfies `ok`.
    pub async fn status_until(
        &self,
        app: &str,
        what: &str,
        ok: impl Fn(&AppStatus) -> bool,
    ) -> AppStatus {
        eventually(what, || async {
            match self.api.status(app).await {
                Ok(s) if ok(&s) => Ok(s),
                Ok(s) => Err(format!("{:?}: {}", s.state, s.message)),
                Err(e) => Err(e.to_string()),
            }
        })
        .await
    }

    /// The logs of every host, for failure messages.
    pub fn host_logs(&self) -> String {
        self.hosts
            .values()
            .map(|p| format!("--- {}\n{}", p.name(), p.log()))
            .collect()
    }
}

impl Drop for TestLattice {
    fn drop(&mut self) {
        if let Some(c) = self.controller.take() {
            c.abort();
        }
        if std::thread::panicking() {
            eprintln!("{}", self.host_logs());
        }
    }
}

/// Instances of `app`/`component` per host name in `hosts`.
pub fn placement_of(
    hosts: &BTreeMap<String, HostInfo>,
    app: &str,
    component: &str,
) -> BTreeMap<String, u32> {
    hosts
        .iter()
        .filter_map(|(name, h)| {
            let w = h.workloads.iter().find(|w| w.app == app)?;
            let c = w.components.iter().find(|c| c.name == component)?;
            (c.instances > 0).then(|| (name.clone(), c.instances))
        })
        .collect()
}

/// Poll `check` every 50 ms until it answers `Ok`, or panic after [`DEADLINE`] with
/// `what` and the last thing seen.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
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
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out waiting for {what}; last seen: {last}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// GET `http://<addr><path>` (`addr` is `host:port`): the status and body, or
/// why there was no answer within 5 s.
pub async fn http_answer(
    addr: impl std::fmt::Display,
    path: &str,
) -> Result<(u16, String), String> {
    let resp = reqwest::Client::new()
        .get(format!("http://{addr}{path}"))
        .timeout(std::time::Duration::from_secs(5))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body = resp.text().await.map_err(|e| e.to_string())?;
    Ok((status, body))
}

/// GET `http://127.0.0.1:<port><path>`: the body of a 200, else the status and body.
pub async fn http_get(port: u16, path: &str) -> Result<String, String> {
    match http_answer(format!("127.0.0.1:{port}"), path).await? {
        (200, body) => Ok(body),
        (status, body) => Err(format!("{status} {body}")),
    }
}
