//! The typed client of the controller API, and the host scatter/gather ping.

use futures::StreamExt;
use lattice_protocol::manifest::{Config, Manifest};
use lattice_protocol::messages::{
    ApiReply, AppRequest, AppStatus, ConfigPutRequest, ConfigRequest, DeployRequest, GetRequest,
    HostInfo, ListRequest, SecretPutRequest, StoredManifest, VersionInfo,
};
use lattice_protocol::subjects::Subjects;
use lattice_protocol::{decode, encode, CodecError};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// How long [`ApiClient`] waits for the controller unless told otherwise.
pub const DEFAULT_API_TIMEOUT: Duration = Duration::from_secs(5);

/// Why an API call did not produce an answer.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(
        "no controller answered on lattice '{lattice}' within {}s: is `lattice up` or \
         `lattice controller` running?",
        timeout.as_secs_f64()
    )]
    NoController { lattice: String, timeout: Duration },
    #[error("sending {op} to the controller on lattice '{lattice}'")]
    Request {
        op: String,
        lattice: String,
        #[source]
        source: async_nats::RequestError,
    },
    #[error("the controller's answer to {op} is unreadable")]
    Decode {
        op: String,
        #[source]
        source: CodecError,
    },
    /// The controller refused; the message says why.
    #[error("{0}")]
    Controller(String),
    #[error("pinging hosts on lattice '{lattice}'")]
    Ping {
        lattice: String,
        #[source]
        source: async_nats::Error,
    },
}

/// `lattice.L.api.set_host_labels`: change one host's labels through the leader,
/// which signs the `set_labels` command. Answered with the host's full id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetHostLabelsRequest {
    /// The host's id, or a prefix of it that matches exactly one live host.
    pub host: String,
    /// Labels to set (key -> value).
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    /// Label keys to remove.
    #[serde(default)]
    pub unset: Vec<String>,
}

/// `lattice.L.api.artifacts_in_use` answers one of these for every `artifact://`
/// image of every stored version of every app (what `lattice artifact rm` must
/// not remove).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactUse {
    /// `sha256:<hex>`.
    pub digest: String,
    pub app: String,
    pub version: String,
    pub component: String,
}

/// A typed client of one lattice's controller API. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ApiClient {
    client: async_nats::Client,
    lattice: String,
    subjects: Subjects,
    timeout: Duration,
}

impl ApiClient {
    pub fn new(client: async_nats::Client, lattice: &str) -> Self {
        Self {
            client,
            lattice: lattice.to_string(),
            subjects: Subjects::new(lattice),
            timeout: DEFAULT_API_TIMEOUT,
        }
    }

    /// Wait at most `timeout` for each answer (default 5 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Store `manifest` as a new version (identical content is fine) and deploy it.
    pub async fn deploy(&self, manifest: Manifest) -> Result<AppStatus, ApiError> {
        let req = DeployRequest {
            manifest: Some(manifest),
            name: None,
            version: None,
        };
        self.call("deploy", &req).await
    }

    /// Store `manifest` as a new version without deploying it.
    pub async fn put(&self, manifest: Manifest) -> Result<AppStatus, ApiError> {
        let req = DeployRequest {
            manifest: Some(manifest),
            name: None,
            version: None,
        };
        self.call("put", &req).await
    }

    /// Store named config `name` (replacing what was there).
    pub async fn config_put(&self, name: &str, values: Config) -> Result<usize, ApiError> {
        let req = ConfigPutRequest {
            name: name.to_string(),
            values,
        };
        self.call("config_put", &req).await
    }

    /// The named config `name`.
    pub async fn config_get(&self, name: &str) -> Result<Config, ApiError> {
        let req = ConfigRequest {
            name: name.to_string(),
        };
        self.call("config_get", &req).await
    }

    /// Every named config's name.
    pub async fn config_list(&self) -> Result<Vec<String>, ApiError> {
        self.call("config_list", &ListRequest {}).await
    }

    /// Remove the named config `name`.
    pub async fn config_rm(&self, name: &str) -> Result<String, ApiError> {
        let req = ConfigRequest {
            name: name.to_string(),
        };
        self.call("config_rm", &req).await
    }

    /// Store secret `name` with `value`, sealed on this side for the controller's
    /// secrets key with a one-time key, so it is never in clear on NATS. Returns
    /// its size.
    pub async fn secret_put(&self, name: &str, value: &[u8]) -> Result<usize, ApiError> {
        let controller: String = self.call("secret_key", &ListRequest {}).await?;
        let once = lattice_protocol::secrets::new_key();
        let sealed = lattice_protocol::secrets::seal(value, &once, &controller)
            .map_err(|e| ApiError::Controller(format!("the controller's secrets key: {e}")))?;
        let req = SecretPutRequest {
            name: name.to_string(),
            sender: once.public_key(),
            sealed,
        };
        self.call("secret_put", &req).await
    }

    /// Every stored secret's name.
    pub async fn secret_list(&self) -> Result<Vec<String>, ApiError> {
        self.call("secret_list", &ListRequest {}).await
    }

    /// Remove secret `name`.
    pub async fn secret_rm(&self, name: &str) -> Result<String, ApiError> {
        let req = ConfigRequest {
            name: name.to_string(),
        };
        self.call("secret_rm", &req).await
    }

    /// A stored version of `name` with its manifest (the newest when `version` is
    /// `None`).
    pub async fn get(&self, name: &str, version: Option<&str>) -> Result<StoredManifest, ApiError> {
        let req = GetRequest {
            name: name.to_string(),
            version: version.map(str::to_string),
        };
        self.call("get", &req).await
    }

    /// Deploy a stored version of `name` (the newest when `version` is `None`); this
    /// is how to roll back.
    pub async fn deploy_version(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<AppStatus, ApiError> {
        let req = DeployRequest {
            manifest: None,
            name: Some(name.to_string()),
            version: version.map(str::to_string),
        };
        self.call("deploy", &req).await
    }

    /// Stop running `name` everywhere; its versions stay stored.
    pub async fn undeploy(&self, name: &str) -> Result<AppStatus, ApiError> {
        self.call("undeploy", &app(name)).await
    }

    /// Undeploy `name` and forget it; answers the versions that were deleted.
    pub async fn delete(&self, name: &str) -> Result<Vec<VersionInfo>, ApiError> {
        self.call("delete", &app(name)).await
    }

    /// Status of every stored app.
    pub async fn list(&self) -> Result<Vec<AppStatus>, ApiError> {
        self.call("list", &ListRequest {}).await
    }

    pub async fn status(&self, name: &str) -> Result<AppStatus, ApiError> {
        self.call("status", &app(name)).await
    }

    /// Every artifact a stored version of an app names (see [`ArtifactUse`]).
    pub async fn artifacts_in_use(&self) -> Result<Vec<ArtifactUse>, ApiError> {
        self.call("artifacts_in_use", &ListRequest {}).await
    }

    /// Stored versions, oldest first.
    pub async fn history(&self, name: &str) -> Result<Vec<VersionInfo>, ApiError> {
        self.call("history", &app(name)).await
    }

    /// The live hosts as the controller knows them: the last heartbeat of each
    /// host whose signed reports it admits, sorted by id. Unlike [`ping_hosts`],
    /// a forged answer cannot add a host here.
    pub async fn hosts(&self) -> Result<Vec<HostInfo>, ApiError> {
        self.call("hosts", &ListRequest {}).await
    }

    /// Change the labels of the host whose id is or starts with `host` (exactly
    /// one live host must match): the leading controller signs a `set_labels`
    /// command and relays the host's answer. Returns the host's full id.
    pub async fn set_host_labels(
        &self,
        host: &str,
        set: BTreeMap<String, String>,
        unset: Vec<String>,
    ) -> Result<String, ApiError> {
        let req = SetHostLabelsRequest {
            host: host.to_string(),
            set,
            unset,
        };
        self.call("set_host_labels", &req).await
    }

    async fn call<Req: Serialize, T: DeserializeOwned>(
        &self,
        op: &str,
        req: &Req,
    ) -> Result<T, ApiError> {
        let request = async_nats::Request::new()
            .payload(encode(req).into())
            .timeout(Some(self.timeout));
        let msg = self
            .client
            .send_request(self.subjects.api(op), request)
            .await
            .map_err(|source| match source.kind() {
                async_nats::RequestErrorKind::TimedOut
                | async_nats::RequestErrorKind::NoResponders => ApiError::NoController {
                    lattice: self.lattice.clone(),
                    timeout: self.timeout,
                },
                _ => ApiError::Request {
                    op: op.to_string(),
                    lattice: self.lattice.clone(),
                    source,
                },
            })?;
        let reply: ApiReply<T> = decode(&msg.payload).map_err(|source| ApiError::Decode {
            op: op.to_string(),
            source,
        })?;
        reply.into_result().map_err(ApiError::Controller)
    }
}

fn app(name: &str) -> AppRequest {
    AppRequest {
        name: name.to_string(),
    }
}

/// Ask every host of `lattice` for its [`HostInfo`] and collect the answers that
/// arrive within `gather`. Hosts are sorted by id; unreadable answers are skipped.
///
/// Answers to pings are not signed: anyone on the lattice's NATS can answer as any
/// host. Use [`ApiClient::hosts`] for the hosts the controller admits.
pub async fn ping_hosts(
    client: &async_nats::Client,
    lattice: &str,
    gather: Duration,
) -> Result<Vec<HostInfo>, ApiError> {
    let err = |source: async_nats::Error| ApiError::Ping {
        lattice: lattice.to_string(),
        source,
    };
    let subjects = Subjects::new(lattice);
    let inbox = client.new_inbox();
    let mut replies = client
        .subscribe(inbox.clone())
        .await
        .map_err(|e| err(e.into()))?;
    client
        .publish_with_reply(subjects.hosts_ping(), inbox, encode(&ListRequest {}).into())
        .await
        .map_err(|e| err(e.into()))?;
    client.flush().await.map_err(|e| err(e.into()))?;
    let mut hosts = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + gather;
    while let Ok(Some(msg)) = tokio::time::timeout_at(deadline, replies.next()).await {
        if msg.status == Some(async_nats::StatusCode::NO_RESPONDERS) {
            break; // no host is listening at all
        }
        if msg.status.is_some() {
            continue;
        }
        match decode::<HostInfo>(&msg.payload) {
            Ok(info) => {
                hosts.insert(info.host_id.clone(), info);
            }
            Err(e) => tracing::warn!(error = %e, "skipping an unreadable answer to the host ping"),
        }
    }
    Ok(hosts.into_values().collect())
}
