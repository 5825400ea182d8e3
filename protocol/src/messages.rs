//! Control-plane messages and their codec.
//!
//! Every message travels as a JSON object that carries `"v": PROTOCOL_VERSION` next to
//! its own fields. [`decode`] refuses a message without a version or with one this
//! peer does not speak, naming both versions, so mismatched peers fail loudly.

use crate::manifest::Manifest;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::collections::BTreeMap;

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u16 = 1;

/// Why a message could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The bytes are not JSON (or not an object).
    #[error("message is not a JSON object: {source}")]
    NotJson {
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// The object has no `v` field.
    #[error("message carries no protocol version field \"v\"")]
    MissingVersion,
    /// The object speaks another protocol version.
    #[error("message speaks protocol version {got}; this peer speaks version {PROTOCOL_VERSION}")]
    UnsupportedVersion {
        /// The version the message carries.
        got: u64,
    },
    /// The message does not have the fields of its type.
    #[error("malformed {what}: {source}")]
    Malformed {
        /// The message type, e.g. `HostCommand`.
        what: &'static str,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
}

#[derive(Serialize)]
struct Versioned<'a, T> {
    v: u16,
    #[serde(flatten)]
    body: &'a T,
}

/// Encode a message with the protocol version.
pub fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
    serde_json::to_vec(&Versioned {
        v: PROTOCOL_VERSION,
        body: msg,
    })
    // Our message types serialize to JSON objects without fallible parts (no maps
    // with non-string keys), so this cannot fail.
    .expect("protocol messages always serialize")
}

/// Decode a message, checking its protocol version first.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|source| CodecError::NotJson { source })?;
    let v = value
        .get("v")
        .and_then(serde_json::Value::as_u64)
        .ok_or(CodecError::MissingVersion)?;
    if v != u64::from(PROTOCOL_VERSION) {
        return Err(CodecError::UnsupportedVersion { got: v });
    }
    serde_json::from_value(value).map_err(|source| CodecError::Malformed {
        what: std::any::type_name::<T>()
            .rsplit("::")
            .next()
            .unwrap_or("message"),
        source,
    })
}

// ---------------------------------------------------------------- guests' logs

/// One line a guest logged (`wasi:logging`, or a line of its stdout or stderr),
/// published by its host on `lattice.<L>.log.<app>.<component>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// The host the guest runs on.
    pub host: String,
    /// The guest's app.
    pub app: String,
    /// The guest's component name in the manifest.
    pub component: String,
    /// `trace`, `debug`, `info`, `warn`, `error` (`wasi:logging`'s `critical` is
    /// `error`), or `stdout` / `stderr`.
    pub level: String,
    /// The line (for `wasi:logging`: `context: message`, or the message alone).
    pub message: String,
}

// ---------------------------------------------------------------- hosts

/// What a host says about itself: published as a heartbeat and answered to pings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostInfo {
    /// The host's public nkey (starts with `N`).
    pub host_id: String,
    /// The lattice the host belongs to.
    pub lattice: String,
    /// User labels plus `hostcore.os`, `hostcore.arch`, `hostcore.hostname`.
    pub labels: BTreeMap<String, String>,
    /// Software version of the host.
    pub version: String,
    /// Milliseconds since the Unix epoch when the host started.
    pub started_at_ms: u64,
    /// The host is shutting down and takes no new work.
    #[serde(default)]
    pub draining: bool,
    /// What the host runs now.
    #[serde(default)]
    pub workloads: Vec<WorkloadReport>,
    /// Linked calls since the host started, by where they went.
    #[serde(default)]
    pub calls: CallCounts,
    /// Commands the host refused since it started (unsigned, signed by a key it
    /// does not trust, for another host, too old, replayed, or of a stale term).
    #[serde(default)]
    pub refused_commands: u64,
    /// The host's public secrets key (`X…`, new at every start): secrets for it
    /// are sealed to this key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets_key: Option<String>,
    /// Linked calls made from this host, per app, source component and
    /// interface, since each component started here (what the dashboard turns
    /// into call and error rates per link).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub link_calls: Vec<LinkCalls>,
    /// The last linked and provider calls made from this host that failed,
    /// oldest first, at most [`MAX_FAILED_CALLS`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_calls: Vec<FailedCall>,
}

/// The most failed calls a host report carries.
pub const MAX_FAILED_CALLS: usize = 16;

/// Calls a component made through the links of one interface it imports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkCalls {
    /// The app of the calling component.
    pub app: String,
    /// The calling component.
    pub source: String,
    /// `ns:pkg/iface`.
    pub interface: String,
    /// Calls made.
    pub calls: u64,
    /// Of those, the ones that failed (the caller got a call error).
    pub failed: u64,
}

/// One call that failed, as the caller's host saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedCall {
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The app of the calling component.
    pub app: String,
    /// The calling component.
    pub component: String,
    /// `ns:pkg/iface.function`.
    pub call: String,
    /// The call error's kind (`timeout`, `unreachable`, `trapped`, ...).
    pub kind: String,
    /// What went wrong, cut to 200 characters.
    pub message: String,
    /// The W3C trace id (32 hex digits) of the invocation that made the call.
    pub trace_id: String,
}

/// Linked calls (component to component) a host has routed, by where they went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallCounts {
    /// Calls its components made to an instance on the same host (in-process).
    pub local: u64,
    /// Calls its components sent over NATS to another host.
    pub remote: u64,
    /// Calls from other hosts it answered.
    pub served: u64,
    /// Calls its components made that failed.
    pub failed: u64,
}

/// The part of one app a host runs, as the host sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadReport {
    /// The app's name.
    pub app: String,
    /// The app version this host runs.
    pub version: String,
    /// The app's Wasm components on this host.
    pub components: Vec<ComponentReport>,
    /// The app's service on this host, if the app has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceReport>,
    /// The app's provider processes on this host (each also listed in
    /// `components` with its placed instances).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<ServiceReport>,
}

/// How a workload's service is doing on one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceReport {
    /// The service component's name.
    pub name: String,
    /// How it is doing.
    pub state: ServiceState,
    /// Restarts since the workload started.
    pub restarts: u32,
    /// Crashes in a row (reset by a run longer than the policy's `max_backoff`).
    #[serde(default)]
    pub crashes_in_a_row: u32,
    /// Why it last stopped, if it crashed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// The life of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceState {
    /// Running as it should.
    Running,
    /// Crashed; waiting out its backoff before the next start.
    Restarting,
    /// `wasi:cli/run` returned success: the service finished and is not restarted.
    Exited,
    /// Crashed more times in a row than its policy allows; stays down.
    Failed,
}

/// One component of a workload on a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentReport {
    /// The component's name.
    pub name: String,
    /// Maximum concurrent invocations on this host.
    pub instances: u32,
    /// Invocations running right now.
    #[serde(default)]
    pub in_flight: u32,
    /// Invocations (HTTP requests and calls to its exports) that ended, since
    /// this version of the app started on this host.
    #[serde(default)]
    pub invocations: u64,
    /// Of those, the ones that trapped or ran out of time: a rollout stops when
    /// a host that switched to the new version reports most of them failing.
    #[serde(default)]
    pub traps: u64,
}

/// A command from the controller to one host, on `lattice.L.ctl.host.<host>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum HostCommand {
    /// Run exactly this part of an app (replacing what ran for it before).
    Apply {
        /// The manifest and this host's placements.
        workload: WorkloadSpec,
    },
    /// Stop everything of an app.
    Remove {
        /// The app to remove.
        app: String,
    },
    /// Change the host's labels at run time: set these, then drop those in `unset`.
    /// `hostcore.*` labels are the host's own and cannot be changed.
    SetLabels {
        /// Labels to set (key -> value).
        #[serde(default)]
        set: BTreeMap<String, String>,
        /// Label keys to remove.
        #[serde(default)]
        unset: Vec<String>,
    },
}

/// The part of an app one host must run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadSpec {
    /// The whole validated manifest: the host needs links and config of every
    /// component it runs.
    pub manifest: Manifest,
    /// Component name -> instances on this host. Components absent here do not run.
    pub placements: BTreeMap<String, u32>,
    /// The secrets the placed components (and providers) are given, sealed for
    /// this host; added by the controller as it sends the command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<crate::secrets::SealedSecrets>,
}

/// A host's answer to a [`HostCommand`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandReply {
    /// Whether the command was carried out.
    pub ok: bool,
    /// Why not, when `ok` is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl CommandReply {
    /// Success.
    pub fn ok() -> Self {
        Self {
            ok: true,
            error: None,
        }
    }

    /// Failure, with the message for people.
    pub fn error(message: impl Into<String>) -> Self {
        Self {
            ok: false,
            error: Some(message.into()),
        }
    }
}

// ---------------------------------------------------------------- controller API

/// `lattice.L.api.deploy`: store a new version and deploy it, or deploy a stored one.
/// `lattice.L.api.put` takes the same request with a `manifest` and only stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployRequest {
    /// A new manifest to store (as its `version`) and deploy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<Manifest>,
    /// Otherwise: the stored app to deploy ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// ... at this stored version (the newest when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// `lattice.L.api.{undeploy,delete,status,history}`: an operation on one app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppRequest {
    /// The app's name.
    pub name: String,
}

/// `lattice.L.api.get`: one stored version of an app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetRequest {
    /// The app's name.
    pub name: String,
    /// The stored version (the newest when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// The answer to `lattice.L.api.get`: a stored version and its manifest, as the
/// controller keeps it (images pinned, `file://` images uploaded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredManifest {
    /// The version, its store time and whether it is deployed.
    #[serde(flatten)]
    pub info: VersionInfo,
    /// The manifest of that version.
    pub manifest: Manifest,
}

/// `lattice.L.api.config_put`: store config under a name (replacing what was
/// there); components whose manifests name it read the new values at their next
/// invocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigPutRequest {
    /// The config's name (see `manifest::valid_config_name`).
    pub name: String,
    /// Its keys and values.
    pub values: crate::manifest::Config,
}

/// `lattice.L.api.config_get` and `config_rm`: one stored config by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigRequest {
    /// The config's name.
    pub name: String,
}

/// `lattice.L.api.secret_put`: store a secret, sealed by the CLI's one-time key
/// `sender` for the controller's secrets key (`secret_key`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretPutRequest {
    /// The secret's name (as a config name).
    pub name: String,
    /// The sealing key's public half (`X…`).
    pub sender: String,
    /// The value, sealed (base64).
    pub sealed: String,
}

/// `lattice.L.api.list`: no arguments.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListRequest {}

/// The controller's answer to any API request: `data` when `ok`, else `error`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiReply<T> {
    /// Whether the request succeeded.
    pub ok: bool,
    /// The answer, when `ok`.
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    pub data: Option<T>,
    /// Why not, when not `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn none<T>() -> Option<T> {
    None
}

impl<T> ApiReply<T> {
    /// Success with data.
    pub fn ok(data: T) -> Self {
        Self {
            ok: true,
            data: Some(data),
            error: None,
        }
    }

    /// Failure, with the message for people.
    pub fn error(message: impl Into<String>) -> Self {
        Self {
            ok: false,
            data: None,
            error: Some(message.into()),
        }
    }

    /// The data, or the controller's error message.
    pub fn into_result(self) -> Result<T, String> {
        match (self.ok, self.data, self.error) {
            (true, Some(data), _) => Ok(data),
            (_, _, Some(e)) => Err(e),
            _ => Err("controller answered without data or error".to_string()),
        }
    }
}

/// The state of an app or of one of its components.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppState {
    /// Everything desired runs.
    Deployed,
    /// Commands are out; the lattice is converging.
    Reconciling,
    /// The desired state cannot be reached; the message says why.
    Failed,
    /// Stored but not deployed.
    Undeployed,
    /// Deployed, but no host can take the work yet (e.g. no hosts).
    Waiting,
}

impl std::fmt::Display for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AppState::Deployed => "deployed",
            AppState::Reconciling => "reconciling",
            AppState::Failed => "failed",
            AppState::Undeployed => "undeployed",
            AppState::Waiting => "waiting",
        })
    }
}

/// Status of one app: the answer to `status`, and one row of `list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppStatus {
    /// The app's name.
    pub name: String,
    /// The version that is the desired state, if deployed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployed_version: Option<String>,
    /// The newest stored version.
    pub latest_version: String,
    /// The app's state.
    pub state: AppState,
    /// One sentence a person can act on.
    pub message: String,
    /// Each component's status.
    #[serde(default)]
    pub components: Vec<ComponentStatus>,
}

/// Status of one component of an app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentStatus {
    /// The component's name.
    pub name: String,
    /// Its state.
    pub state: AppState,
    /// Instances the manifest asks for in total.
    pub desired: u32,
    /// Instances running, per host id.
    pub running: BTreeMap<String, u32>,
    /// One sentence a person can act on.
    pub message: String,
}

/// One stored version of an app, for `history`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInfo {
    /// The version as in the manifest.
    pub version: String,
    /// Milliseconds since the Unix epoch when it was stored.
    pub stored_at_ms: u64,
    /// Whether it is the deployed version.
    pub deployed: bool,
}

// ---------------------------------------------------------------- events

/// Everything the lattice reports on `lattice.L.evt.<kind>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// A host's heartbeat: everything it says about itself.
    HostHeartbeat(HostInfo),
    /// A host joined the lattice.
    HostStarted {
        /// The host's id.
        host_id: String,
        /// Its labels.
        labels: BTreeMap<String, String>,
    },
    /// A host stopped politely (after draining).
    HostStopped {
        /// The host's id.
        host_id: String,
    },
    /// A host missed its heartbeats (published by the controller).
    HostLost {
        /// The host's id.
        host_id: String,
    },
    /// A host applied a workload.
    WorkloadApplied {
        /// The host's id.
        host_id: String,
        /// The app.
        app: String,
        /// The app's version.
        version: String,
    },
    /// A host removed an app's workload.
    WorkloadRemoved {
        /// The host's id.
        host_id: String,
        /// The app.
        app: String,
    },
    /// A host failed to apply a workload.
    WorkloadFailed {
        /// The host's id.
        host_id: String,
        /// The app.
        app: String,
        /// Why.
        error: String,
    },
    /// A component's instances on one host changed (0: it stopped there).
    ComponentScaled {
        /// The host's id.
        host_id: String,
        /// The app.
        app: String,
        /// The app's version.
        version: String,
        /// The component.
        component: String,
        /// Its instances on that host now.
        instances: u32,
    },
    /// An app version became the desired state.
    AppDeployed {
        /// The app.
        app: String,
        /// The version.
        version: String,
    },
    /// An app was undeployed.
    AppUndeployed {
        /// The app.
        app: String,
    },
    /// An app was deleted with its versions.
    AppDeleted {
        /// The app.
        app: String,
    },
    /// An app cannot reach its desired state.
    AppFailed {
        /// The app.
        app: String,
        /// Why, in a sentence a person can act on.
        reason: String,
    },
}

impl Event {
    /// The `<kind>` subject token of this event.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::HostHeartbeat(_) => "host_heartbeat",
            Event::HostStarted { .. } => "host_started",
            Event::HostStopped { .. } => "host_stopped",
            Event::HostLost { .. } => "host_lost",
            Event::WorkloadApplied { .. } => "workload_applied",
            Event::WorkloadRemoved { .. } => "workload_removed",
            Event::WorkloadFailed { .. } => "workload_failed",
            Event::ComponentScaled { .. } => "component_scaled",
            Event::AppDeployed { .. } => "app_deployed",
            Event::AppUndeployed { .. } => "app_undeployed",
            Event::AppDeleted { .. } => "app_deleted",
            Event::AppFailed { .. } => "app_failed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_carries_version() {
        let msg = HostCommand::Remove { app: "a".into() };
        let bytes = encode(&msg);
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains("\"v\":1"), "{text}");
        assert_eq!(decode::<HostCommand>(&bytes).unwrap(), msg);
    }

    #[test]
    fn refuses_other_versions_and_garbage() {
        let err = decode::<HostCommand>(br#"{"v":2,"command":"remove","app":"a"}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "message speaks protocol version 2; this peer speaks version 1"
        );
        let err = decode::<HostCommand>(br#"{"command":"remove","app":"a"}"#).unwrap_err();
        assert!(matches!(err, CodecError::MissingVersion));
        assert!(matches!(
            decode::<HostCommand>(b"\xff\x00").unwrap_err(),
            CodecError::NotJson { .. }
        ));
        let err = decode::<HostCommand>(br#"{"v":1,"command":"explode"}"#).unwrap_err();
        assert!(
            err.to_string().starts_with("malformed HostCommand"),
            "{err}"
        );
    }

    #[test]
    fn event_kind_matches_tag() {
        let e = Event::HostLost {
            host_id: "N1".into(),
        };
        let text = String::from_utf8(encode(&e)).unwrap();
        assert!(
            text.contains(&format!("\"kind\":\"{}\"", e.kind())),
            "{text}"
        );
    }

    #[test]
    fn api_reply_result() {
        let r: ApiReply<u32> = decode(&encode(&ApiReply::ok(3u32))).unwrap();
        assert_eq!(r.into_result(), Ok(3));
        let r: ApiReply<u32> = decode(&encode(&ApiReply::<u32>::error("nope"))).unwrap();
        assert_eq!(r.into_result(), Err("nope".to_string()));
    }
}
