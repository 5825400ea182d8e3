//! The API task: answers `lattice.L.api.<op>` (queue group shared by every
//! controller) and `lattice.L.ctl.controller.<id>.<op>` (this controller only). See
//! `mod.rs`.
//!
//! A follower forwards what it receives on the queue group to the leader's own
//! subject, so every answer (status above all: only the leader knows which commands
//! hosts refused) comes from the controller that acts. When the leader does not
//! answer, the follower answers itself: writes are compare-and-set in KV, so any
//! controller may make them.
//!
//! Every manifest is checked again here with the CLI's parser and budgets
//! (`manifest::revalidate`), so a request sent straight to the API cannot store
//! what `lattice app deploy` would refuse. `set_host_labels` is answered by the
//! leader alone: it signs a `set_labels` command under its lease term and answers
//! with the host's reply.

use super::commands::{leads_in, send_command};
use super::configs::ConfigStore;
use super::election::View;
use super::events::{chain, publish_event, PUBLISH_DEADLINE};
use super::msg::Msg;
use super::secrets::SecretStore;
use super::signer::Signer;
use super::store::Store;
use crate::brain::model::short_host_id;
use crate::brain::record::{AppRecord, RecordError};
use crate::client::SetHostLabelsRequest;
use futures::StreamExt;
use lattice_artifacts::oci::Registry;
use lattice_bus::{Bus, SharedBus, Subscription};
use lattice_protocol::manifest::{revalidate, Config, Image, Limits, Manifest};
use lattice_protocol::messages::{
    ApiReply, AppRequest, AppStatus, ConfigPutRequest, ConfigRequest, DeployRequest, Event,
    GetRequest, HostCommand, HostInfo, ListRequest, SecretPutRequest, StoredManifest, VersionInfo,
};
use lattice_protocol::subjects::Subjects;
use lattice_protocol::{decode, encode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use tracing::Instrument;

/// How long the API waits for the state task.
const STATE_DEADLINE: Duration = Duration::from_secs(4);
/// How long a follower waits for the leader before answering itself. A live leader
/// answers in milliseconds and a dead one at once (no responders); this bounds the
/// wait on a leader that hangs.
const FORWARD_DEADLINE: Duration = Duration::from_millis(1500);
/// How long pinning one image's tag may take (inside the CLI's 5 s deadline).
const PIN_DEADLINE: Duration = Duration::from_secs(3);
/// Requests answered at the same time; more wait for a slot.
const CONCURRENT_REQUESTS: usize = 64;

/// The operations this controller answers, for error messages.
const OPS: &str =
    "deploy, put, get, undeploy, delete, list, status, history, hosts, set_host_labels, \
     artifacts_in_use, config_put, config_get, config_list, config_rm, secret_key, secret_put, \
     secret_list, secret_rm";

pub(crate) struct Api {
    bus: SharedBus,
    subjects: Subjects,
    /// This controller's id.
    id: String,
    store: Store,
    tx: mpsc::Sender<Msg>,
    election: watch::Receiver<View>,
    signer: Signer,
    /// How long a host may take to answer a command.
    command_timeout: Duration,
    /// Pins OCI image tags to digests when a version is stored.
    registry: Option<Registry>,
    /// Named config (`config_put`, `config_get`, `config_list`, `config_rm`).
    configs: ConfigStore,
    /// Secrets (`secret_key`, `secret_put`, `secret_list`, `secret_rm`).
    secrets: SecretStore,
}

/// Answer API requests until both subscriptions end, at most
/// [`CONCURRENT_REQUESTS`] at a time. `queue` is the shared API, `direct` this
/// controller's own subject.
pub(crate) async fn serve(mut queue: Subscription, mut direct: Subscription, api: Api) {
    let api = Arc::new(api);
    let slots = Arc::new(Semaphore::new(CONCURRENT_REQUESTS));
    let queue_prefix = api.subjects.api("");
    let direct_prefix = api.subjects.controller_api(&api.id, "");
    loop {
        let (msg, forwarded) = tokio::select! {
            Some(m) = queue.next() => (m, false),
            Some(m) = direct.next() => (m, true),
            else => break,
        };
        let Some(reply) = msg.reply.clone() else {
            tracing::warn!(subject = %msg.subject, "API request without a reply subject; ignored");
            continue;
        };
        let prefix = if forwarded {
            &direct_prefix
        } else {
            &queue_prefix
        };
        let op = msg
            .subject
            .strip_prefix(prefix.as_str())
            .unwrap_or(msg.subject.as_str())
            .to_string();
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let api = api.clone();
        tokio::spawn(async move {
            let span = tracing::info_span!("api", op = %op, forwarded);
            let answer = api
                .answer(&op, msg.payload, forwarded)
                .instrument(span)
                .await;
            let publishing = api.bus.publish(reply, None, answer);
            match tokio::time::timeout(PUBLISH_DEADLINE, publishing).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %chain(&e), "could not answer an API request")
                }
                Err(_) => {
                    tracing::warn!("could not answer an API request: NATS is not taking messages")
                }
            }
            drop(slot);
        });
    }
}

fn answer<T: Serialize>(result: Result<T, String>) -> Vec<u8> {
    encode(&match result {
        Ok(data) => ApiReply::ok(data),
        Err(e) => ApiReply::error(e),
    })
}

fn request<T: DeserializeOwned>(op: &str, payload: &[u8]) -> Result<T, String> {
    decode(payload).map_err(|e| format!("cannot read the {op} request: {e}"))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Api {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        bus: SharedBus,
        subjects: Subjects,
        id: String,
        store: Store,
        tx: mpsc::Sender<Msg>,
        election: watch::Receiver<View>,
        signer: Signer,
        command_timeout: Duration,
        configs: ConfigStore,
        secrets: SecretStore,
    ) -> Self {
        Self {
            bus,
            subjects,
            id,
            store,
            tx,
            election,
            signer,
            command_timeout,
            registry: None,
            configs,
            secrets,
        }
    }

    /// Pin the OCI images of deployed manifests with `registry`.
    pub(crate) fn with_registry(mut self, registry: Registry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// `manifest` with every OCI image pinned to the digest its tag names now
    /// (`name:tag@sha256:…`), so every host runs the same bytes even if the tag
    /// moves mid-rollout. An image that cannot be resolved refuses the deploy,
    /// naming the component, the image and why.
    async fn pin_images(&self, mut manifest: Manifest) -> Result<Manifest, String> {
        let Some(registry) = &self.registry else {
            return Ok(manifest);
        };
        for component in &mut manifest.components {
            let Image::Oci(reference) = &component.image else {
                continue;
            };
            match tokio::time::timeout(PIN_DEADLINE, registry.pin(reference)).await {
                Ok(Ok(pinned)) => {
                    tracing::info!(app = %manifest.name, component = %component.name, image = %reference, %pinned, "pinned");
                    component.image = Image::Oci(pinned);
                }
                Ok(Err(e)) => {
                    return Err(format!(
                        "component '{}' of app '{}': image '{reference}' cannot be resolved to a digest: {e}",
                        component.name, manifest.name
                    ))
                }
                Err(_) => {
                    return Err(format!(
                        "component '{}' of app '{}': image '{reference}' cannot be resolved to a digest: its registry did not answer within {}s",
                        component.name,
                        manifest.name,
                        PIN_DEADLINE.as_secs_f64()
                    ))
                }
            }
        }
        Ok(manifest)
    }

    /// The answer to one request: the leader's when this controller is a follower
    /// and the leader answers in time, else this controller's own.
    async fn answer(&self, op: &str, payload: bytes::Bytes, forwarded: bool) -> bytes::Bytes {
        if !forwarded {
            let leader = {
                let view = self.election.borrow();
                let leads = view.leads(tokio::time::Instant::now().into_std());
                view.holder.clone().filter(|h| !leads && *h != self.id)
            };
            if let Some(leader) = leader {
                let subject = self.subjects.controller_api(&leader, op);
                let forwarding = self
                    .bus
                    .request(subject, None, payload.clone(), FORWARD_DEADLINE);
                match forwarding.await {
                    Ok(reply) => return reply.payload,
                    Err(e) => tracing::debug!(
                        leader = %leader,
                        error = %e,
                        "the leader did not answer a forwarded request; answering here"
                    ),
                }
            }
        }
        self.handle(op, &payload).await.into()
    }

    async fn handle(&self, op: &str, payload: &[u8]) -> Vec<u8> {
        use lattice_telemetry::{KeyValue, Kind, Span};
        let _span = Span::start(
            format!("lattice.controller/{op}"),
            Kind::Server,
            None,
            vec![
                KeyValue::new("rpc.system", "lattice"),
                KeyValue::new("rpc.service", "lattice.controller"),
                KeyValue::new("rpc.method", op.to_owned()),
            ],
        );
        match op {
            "deploy" => answer(self.deploy(payload).await),
            "put" => answer(self.put(payload).await),
            "get" => answer(self.get(payload).await),
            "undeploy" => answer(self.undeploy(payload).await),
            "delete" => answer(self.delete(payload).await),
            "list" => answer(self.list(payload).await),
            "status" => answer(self.status(payload).await),
            "history" => answer(self.history(payload).await),
            "hosts" => answer(self.hosts(payload).await),
            "set_host_labels" => answer(self.set_host_labels(payload).await),
            "artifacts_in_use" => answer(self.artifacts_in_use(payload).await),
            "config_put" => answer(self.config_put(payload).await),
            "config_get" => answer(self.config_get(payload).await),
            "config_list" => answer(self.config_list(payload).await),
            "config_rm" => answer(self.config_rm(payload).await),
            "secret_key" => answer(self.secret_key(payload)),
            "secret_put" => answer(self.secret_put(payload).await),
            "secret_list" => answer(self.secret_list(payload).await),
            "secret_rm" => answer(self.secret_rm(payload).await),
            _ => answer::<()>(Err(format!(
                "unknown API operation '{op}'; this controller answers {OPS}"
            ))),
        }
    }

    async fn deploy(&self, payload: &[u8]) -> Result<AppStatus, String> {
        let req: DeployRequest = request("deploy", payload)?;
        let (name, (record, revision)) = match (req.manifest, req.name) {
            (Some(manifest), name) => self.store_manifest(manifest, name, true).await?,
            (None, Some(name)) => {
                let version = req.version.as_deref();
                let written = self
                    .store
                    .update(&name, |current| {
                        let mut record = existing(&name, current)?;
                        record.deploy(&name, version)?;
                        Ok(record)
                    })
                    .await
                    .map_err(|e| e.to_string())?;
                (name, written)
            }
            (None, None) => {
                return Err(
                    "a deploy request needs a manifest, or the name of a stored app".to_string(),
                )
            }
        };
        tracing::info!(app = %name, version = ?record.deployed, "deployed");
        self.upsert(name, record, revision).await
    }

    /// Store a new version without deploying it (`lattice app put`).
    async fn put(&self, payload: &[u8]) -> Result<AppStatus, String> {
        let req: DeployRequest = request("put", payload)?;
        let Some(manifest) = req.manifest else {
            return Err("a put request needs a manifest".to_string());
        };
        let (name, (record, revision)) = self.store_manifest(manifest, req.name, false).await?;
        let version = record.latest().map(|v| v.version.clone());
        tracing::info!(app = %name, version = ?version, "stored");
        self.upsert(name, record, revision).await
    }

    /// Validate `manifest` as the CLI does, pin its images and store it as a
    /// version of its app (deploying it when `deploy`); `name`, when given, must
    /// be the manifest's.
    async fn store_manifest(
        &self,
        manifest: Manifest,
        name: Option<String>,
        deploy: bool,
    ) -> Result<(String, (AppRecord, u64)), String> {
        // The CLI's parser and budgets, whoever sent it: what would be refused
        // from YAML is refused here, with the same messages.
        let manifest = revalidate(&manifest, &Limits::default())
            .map_err(|e| format!("the manifest is not valid:\n{e}"))?;
        let manifest = self.pin_images(manifest).await?;
        if deploy {
            self.check_named_configs(&manifest).await?;
        }
        if let Some(name) = name.filter(|n| *n != manifest.name) {
            return Err(format!(
                "the request names app '{name}' but its manifest is app '{}'",
                manifest.name
            ));
        }
        let name = manifest.name.clone();
        let now = now_ms();
        let written = self
            .store
            .update(&name, |current| {
                let mut record = current.unwrap_or_default();
                // A manifest without a version gets one here (a ULID).
                let version = record.store(manifest.clone(), now)?;
                if deploy {
                    record.deploy(&manifest.name, Some(&version))?;
                }
                Ok(record)
            })
            .await
            .map_err(|e| e.to_string())?;
        Ok((name, written))
    }

    /// Store named config; hosts see it within a moment (they watch the bucket).
    /// Answers with the number of entries stored.
    async fn config_put(&self, payload: &[u8]) -> Result<usize, String> {
        let ConfigPutRequest { name, values } = request("config_put", payload)?;
        self.configs.put(&name, &values).await?;
        tracing::info!(config = %name, entries = values.len(), "config stored");
        Ok(values.len())
    }

    async fn config_get(&self, payload: &[u8]) -> Result<Config, String> {
        let ConfigRequest { name } = request("config_get", payload)?;
        self.configs
            .get(&name)
            .await?
            .ok_or_else(|| format!("no config named '{name}'"))
    }

    async fn config_list(&self, payload: &[u8]) -> Result<Vec<String>, String> {
        let ListRequest {} = request("config_list", payload)?;
        self.configs.list().await
    }

    /// Answers with the name removed.
    async fn config_rm(&self, payload: &[u8]) -> Result<String, String> {
        let ConfigRequest { name } = request("config_rm", payload)?;
        if !self.configs.remove(&name).await? {
            return Err(format!("no config named '{name}'"));
        }
        tracing::info!(config = %name, "config removed");
        Ok(name)
    }

    /// The public key new secrets are sealed to.
    fn secret_key(&self, payload: &[u8]) -> Result<String, String> {
        let ListRequest {} = request("secret_key", payload)?;
        self.secrets.public_key()
    }

    /// Store a secret sealed for this controller; answers with its size.
    async fn secret_put(&self, payload: &[u8]) -> Result<usize, String> {
        let SecretPutRequest {
            name,
            sender,
            sealed,
        } = request("secret_put", payload)?;
        let size = self.secrets.put(&name, &sender, &sealed).await?;
        tracing::info!(secret = %name, "secret stored");
        Ok(size)
    }

    async fn secret_list(&self, payload: &[u8]) -> Result<Vec<String>, String> {
        let ListRequest {} = request("secret_list", payload)?;
        self.secrets.list().await
    }

    async fn secret_rm(&self, payload: &[u8]) -> Result<String, String> {
        let ConfigRequest { name } = request("secret_rm", payload)?;
        if !self.secrets.remove(&name).await? {
            return Err(format!("no secret named '{name}'"));
        }
        tracing::info!(secret = %name, "secret removed");
        Ok(name)
    }

    /// Refuse to deploy a manifest naming config that is not stored: its
    /// components would start without the values they were written for.
    async fn check_named_configs(&self, manifest: &Manifest) -> Result<(), String> {
        let mut missing = Vec::new();
        for c in &manifest.components {
            for name in c.config_names() {
                if self.configs.get(name).await?.is_none() {
                    missing.push(format!("'{name}' (component {})", c.name));
                }
            }
        }
        let secrets = self.secrets.missing(manifest).await?;
        if !secrets.is_empty() {
            return Err(format!(
                "the manifest names secrets that are not stored: {}; store each with `lattice \
                 secret put KEY` (the value from stdin)",
                secrets.join(", ")
            ));
        }
        if missing.is_empty() {
            return Ok(());
        }
        Err(format!(
            "the manifest names config that is not stored: {}; store it with `lattice config \
             put NAME KEY=VALUE...`",
            missing.join(", ")
        ))
    }

    /// One stored version's manifest (the newest when none is named), read
    /// from KV so a version stored a moment ago is found.
    async fn get(&self, payload: &[u8]) -> Result<StoredManifest, String> {
        let GetRequest { name, version } = request("get", payload)?;
        let (record, _) = self
            .store
            .get(&name)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| RecordError::NoSuchApp { app: name.clone() }.to_string())?;
        let found = match version.as_deref() {
            Some(v) => record.version(v),
            None => record.latest(),
        };
        let Some(found) = found else {
            return Err(RecordError::NoSuchVersion {
                app: name,
                version: version.unwrap_or_else(|| "(latest)".to_string()),
            }
            .to_string());
        };
        Ok(StoredManifest {
            info: VersionInfo {
                version: found.version.clone(),
                stored_at_ms: found.stored_at_ms,
                deployed: record.deployed.as_deref() == Some(found.version.as_str()),
            },
            manifest: found.manifest.clone(),
        })
    }

    async fn undeploy(&self, payload: &[u8]) -> Result<AppStatus, String> {
        let AppRequest { name } = request("undeploy", payload)?;
        let (record, revision) = self
            .store
            .update(&name, |current| {
                let mut record = existing(&name, current)?;
                record.deployed = None;
                Ok(record)
            })
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(app = %name, "undeployed");
        let status = self.upsert(name.clone(), record, revision).await?;
        self.publish(Event::AppUndeployed { app: name }).await;
        Ok(status)
    }

    async fn delete(&self, payload: &[u8]) -> Result<Vec<VersionInfo>, String> {
        let AppRequest { name } = request("delete", payload)?;
        let (record, revision) = self
            .store
            .delete(&name)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| RecordError::NoSuchApp { app: name.clone() }.to_string())?;
        tracing::info!(app = %name, "deleted");
        // The delete marker's revision is above the record's.
        self.tx_send(Msg::Stored {
            name: name.clone(),
            record: None,
            revision: revision + 1,
        })
        .await?;
        self.publish(Event::AppDeleted { app: name }).await;
        Ok(record.history())
    }

    /// Every artifact a stored version names, read from KV (not the state
    /// task's view), so a version stored a moment ago counts.
    async fn artifacts_in_use(
        &self,
        payload: &[u8],
    ) -> Result<Vec<crate::client::ArtifactUse>, String> {
        let ListRequest {} = request("artifacts_in_use", payload)?;
        let records = self.store.load_all().await.map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        for (app, (record, _)) in records {
            for (version, component, digest) in record.artifacts() {
                out.push(crate::client::ArtifactUse {
                    digest,
                    app: app.clone(),
                    version,
                    component,
                });
            }
        }
        Ok(out)
    }

    async fn list(&self, payload: &[u8]) -> Result<Vec<AppStatus>, String> {
        let ListRequest {} = request("list", payload)?;
        self.ask(|reply| Msg::List { reply }).await
    }

    async fn status(&self, payload: &[u8]) -> Result<AppStatus, String> {
        let AppRequest { name } = request("status", payload)?;
        let app = name.clone();
        self.ask(|reply| Msg::Status { name, reply })
            .await?
            .ok_or_else(|| RecordError::NoSuchApp { app }.to_string())
    }

    async fn history(&self, payload: &[u8]) -> Result<Vec<VersionInfo>, String> {
        let AppRequest { name } = request("history", payload)?;
        let app = name.clone();
        self.ask(|reply| Msg::History { name, reply })
            .await?
            .ok_or_else(|| RecordError::NoSuchApp { app }.to_string())
    }

    async fn hosts(&self, payload: &[u8]) -> Result<Vec<HostInfo>, String> {
        let ListRequest {} = request("hosts", payload)?;
        self.ask(|reply| Msg::Hosts { query: None, reply }).await
    }

    /// Sign a `set_labels` command for the one host whose id starts with
    /// `req.host` and answer with its reply. Only the leader sends it.
    async fn set_host_labels(&self, payload: &[u8]) -> Result<String, String> {
        let SetHostLabelsRequest { host, set, unset } = request("set_host_labels", payload)?;
        if host.is_empty() {
            return Err("set_host_labels needs a host id or a prefix of one".to_string());
        }
        let term = {
            let view = self.election.borrow();
            view.leadership
                .filter(|_| view.leads(tokio::time::Instant::now().into_std()))
                .map(|l| l.term)
        };
        let Some(term) = term else {
            return Err(
                "this controller does not lead the lattice and the leader did not \
                        answer; try again in a few seconds"
                    .to_string(),
            );
        };
        let query = Some(host.clone());
        let found = self.ask(|reply| Msg::Hosts { query, reply }).await?;
        let id = match found.as_slice() {
            [one] => one.host_id.clone(),
            [] => {
                return Err(format!(
                    "no host of this lattice has an id starting with '{host}' (see `lattice get hosts`)"
                ))
            }
            many => {
                return Err(format!(
                    "'{host}' matches {} hosts; give more of the id",
                    many.len()
                ))
            }
        };
        if !leads_in(&self.election, term) {
            return Err("this controller lost the lead before sending; try again".to_string());
        }
        let command = HostCommand::SetLabels { set, unset };
        let signed = self
            .signer
            .sign(&id, term, &command)
            .map_err(|e| format!("cannot sign the command for host {id}: {e}"))?;
        let subject = self.subjects.host_command(&id);
        send_command(&*self.bus, subject, signed, self.command_timeout)
            .await
            .map_err(|e| format!("host {}: {e}", short_host_id(&id)))?;
        tracing::info!(host = %id, "host labels changed");
        Ok(id)
    }

    async fn upsert(
        &self,
        name: String,
        record: AppRecord,
        revision: u64,
    ) -> Result<AppStatus, String> {
        self.ask(|reply| Msg::Upsert {
            name,
            record,
            revision,
            reply,
        })
        .await
    }

    async fn ask<T>(&self, msg: impl FnOnce(oneshot::Sender<T>) -> Msg) -> Result<T, String> {
        let (reply, answer) = oneshot::channel();
        self.tx_send(msg(reply)).await?;
        match tokio::time::timeout(STATE_DEADLINE, answer).await {
            Ok(Ok(data)) => Ok(data),
            Ok(Err(_)) => Err("the controller is shutting down".to_string()),
            Err(_) => Err(format!(
                "the controller is overloaded: no answer within {}s",
                STATE_DEADLINE.as_secs()
            )),
        }
    }

    async fn tx_send(&self, msg: Msg) -> Result<(), String> {
        match tokio::time::timeout(STATE_DEADLINE, self.tx.send(msg)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err("the controller is shutting down".to_string()),
            Err(_) => Err(format!(
                "the controller is overloaded: its queue stayed full for {}s",
                STATE_DEADLINE.as_secs()
            )),
        }
    }

    async fn publish(&self, event: Event) {
        publish_event(&*self.bus, &self.subjects, &event).await;
    }
}

fn existing(name: &str, current: Option<AppRecord>) -> Result<AppRecord, RecordError> {
    current.ok_or_else(|| RecordError::NoSuchApp {
        app: name.to_string(),
    })
}

#[cfg(test)]
#[path = "api_tests.rs"]
mod tests;
