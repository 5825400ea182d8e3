//! The API task: answers `lattice.L.api.<op>`. See `runtime.rs`.

use crate::state::Msg;
use crate::store::{AppRecord, RecordError, Store};
use futures::StreamExt;
use lattice_protocol::messages::{
    ApiReply, AppRequest, AppStatus, DeployRequest, Event, ListRequest, VersionInfo,
};
use lattice_protocol::subjects::Subjects;
use lattice_protocol::{decode, encode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

/// How long the API waits for the state task.
const STATE_DEADLINE: Duration = Duration::from_secs(4);

/// The operations this controller answers, for error messages.
const OPS: &str = "deploy, undeploy, delete, list, status, history";

pub(crate) struct Api {
    client: async_nats::Client,
    subjects: Subjects,
    prefix: String,
    store: Store,
    tx: mpsc::Sender<Msg>,
}

/// Answer API requests one at a time, in arrival order, until the subscription ends.
pub(crate) async fn serve(mut sub: async_nats::Subscriber, api: Api) {
    while let Some(msg) = sub.next().await {
        let Some(reply) = msg.reply.clone() else {
            tracing::warn!(subject = %msg.subject, "API request without a reply subject; ignored");
            continue;
        };
        let op = msg
            .subject
            .strip_prefix(api.prefix.as_str())
            .unwrap_or(msg.subject.as_str());
        let answer = api
            .handle(op, &msg.payload)
            .instrument(tracing::info_span!("api", op = op))
            .await;
        let publishing = api.client.publish(reply, answer.into());
        match tokio::time::timeout(crate::PUBLISH_DEADLINE, publishing).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "could not answer an API request"),
            Err(_) => {
                tracing::warn!("could not answer an API request: NATS is not taking messages")
            }
        }
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
    pub(crate) fn new(
        client: async_nats::Client,
        subjects: Subjects,
        store: Store,
        tx: mpsc::Sender<Msg>,
    ) -> Self {
        let prefix = subjects.api("");
        Self {
            client,
            subjects,
            prefix,
            store,
            tx,
        }
    }

    async fn handle(&self, op: &str, payload: &[u8]) -> Vec<u8> {
        match op {
            "deploy" => answer(self.deploy(payload).await),
            "undeploy" => answer(self.undeploy(payload).await),
            "delete" => answer(self.delete(payload).await),
            "list" => answer(self.list(payload).await),
            "status" => answer(self.status(payload).await),
            "history" => answer(self.history(payload).await),
            _ => answer::<()>(Err(format!(
                "unknown API operation '{op}'; this controller answers {OPS}"
            ))),
        }
    }

    async fn deploy(&self, payload: &[u8]) -> Result<AppStatus, String> {
        let req: DeployRequest = request("deploy", payload)?;
        let (name, (record, revision)) = match (req.manifest, req.name) {
            (Some(manifest), name) => {
                if let Some(name) = name.filter(|n| *n != manifest.name) {
                    return Err(format!(
                        "the deploy request names app '{name}' but its manifest is app '{}'",
                        manifest.name
                    ));
                }
                let name = manifest.name.clone();
                let now = now_ms();
                let written = self
                    .store
                    .update(&name, |current| {
                        let mut record = current.unwrap_or_default();
                        record.store(manifest.clone(), now)?;
                        record.deploy(&manifest.name, Some(&manifest.version))?;
                        Ok(record)
                    })
                    .await
                    .map_err(|e| e.to_string())?;
                (name, written)
            }
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
        crate::publish_event(&self.client, &self.subjects, &event).await;
    }
}

fn existing(name: &str, current: Option<AppRecord>) -> Result<AppRecord, RecordError> {
    current.ok_or_else(|| RecordError::NoSuchApp {
        app: name.to_string(),
    })
}
