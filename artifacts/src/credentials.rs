//! Registry credentials from where users keep them, looked up per registry
//! (`host[:port]`), first match wins:
//!
//! 1. `LATTICE_REGISTRY_USER` + `LATTICE_REGISTRY_PASSWORD`, for the one registry
//!    `LATTICE_REGISTRY_HOST` names (never for every registry: a manifest may
//!    name any registry, and the login must not travel to it);
//! 2. Docker's `config.json` (`--registry-config FILE`, else `$DOCKER_CONFIG/config.json`,
//!    else `~/.docker/config.json`): `auths` (base64 `user:password` in `auth`, or
//!    `username`/`password`), then `credHelpers[registry]`, then `credsStore`, both run
//!    as `docker-credential-NAME get` with a deadline;
//! 3. none: anonymous.
//!
//! A registry that answers 401 with no credentials found, or with wrong ones, is
//! reported by [`crate::oci`] as "unauthorized" with the registry's name.

use base64::Engine as _;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A user name and password (or token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Login {
    /// The user name (`<token>` for identity tokens, as Docker writes them).
    pub username: String,
    /// The password or token.
    pub password: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Where to look for registry credentials.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// From `LATTICE_REGISTRY_USER`/`_PASSWORD`, and the registry they are for.
    env: Option<(String, Login)>,
    /// Explicit per-registry logins (tests, embedders).
    explicit: BTreeMap<String, Login>,
    /// The Docker config file, if any.
    docker_config: Option<PathBuf>,
}

/// How long a `docker-credential-*` helper may take.
const HELPER_TIMEOUT: Duration = Duration::from_secs(10);

impl Credentials {
    /// No credentials at all (anonymous pulls).
    pub fn none() -> Self {
        Self::default()
    }

    /// The usual places: the `LATTICE_REGISTRY_*` variables and Docker's config
    /// file (`docker_config`, else `$DOCKER_CONFIG/config.json`, else
    /// `~/.docker/config.json`; a missing default file is no error).
    pub fn from_env(docker_config: Option<PathBuf>) -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let env = match (
            var("LATTICE_REGISTRY_USER"),
            var("LATTICE_REGISTRY_PASSWORD"),
        ) {
            (Some(username), Some(password)) => {
                var("LATTICE_REGISTRY_HOST").map(|host| (host, Login { username, password }))
            }
            _ => None,
        };
        let docker_config = docker_config.or_else(|| {
            let default = match var("DOCKER_CONFIG") {
                Some(dir) => PathBuf::from(dir).join("config.json"),
                None => dirs::home_dir()?.join(".docker").join("config.json"),
            };
            default.exists().then_some(default)
        });
        Self {
            env,
            explicit: BTreeMap::new(),
            docker_config,
        }
    }

    /// Add a login for one registry (`host[:port]`), before any other source.
    pub fn with_login(mut self, registry: &str, login: Login) -> Self {
        self.explicit.insert(normalize(registry), login);
        self
    }

    /// The login for `registry` (`host[:port]`), or `None` for anonymous access.
    pub async fn for_registry(&self, registry: &str) -> Result<Option<Login>, String> {
        let registry = normalize(registry);
        if let Some(login) = self.explicit.get(&registry) {
            return Ok(Some(login.clone()));
        }
        if let Some((only, login)) = &self.env {
            if normalize(only) == registry {
                return Ok(Some(login.clone()));
            }
        }
        match &self.docker_config {
            Some(path) => docker_login(path, &registry).await,
            None => Ok(None),
        }
    }
}

/// `https://host:port/v1/` → `host:port`; Docker Hub's names → `index.docker.io`.
fn normalize(registry: &str) -> String {
    let bare = registry
        .strip_prefix("https://")
        .or_else(|| registry.strip_prefix("http://"))
        .unwrap_or(registry);
    let host = bare.split('/').next().unwrap_or(bare).to_ascii_lowercase();
    match host.as_str() {
        "docker.io" | "registry-1.docker.io" => "index.docker.io".into(),
        _ => host,
    }
}

#[derive(serde::Deserialize, Default)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, DockerAuth>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(serde::Deserialize, Default)]
struct DockerAuth {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
}

async fn docker_login(path: &Path, registry: &str) -> Result<Option<Login>, String> {
    let text = match tokio::fs::read_to_string(path).await {
        Ok(t) => t,
        Err(e) => {
            return Err(format!(
                "cannot read registry credentials {}: {e}",
                path.display()
            ))
        }
    };
    let config: DockerConfig = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not a Docker config.json: {e}", path.display()))?;
    let found = config
        .auths
        .iter()
        .find(|(key, _)| normalize(key) == registry);
    if let Some((key, auth)) = found {
        if let Some(encoded) = auth.auth.as_deref().filter(|a| !a.is_empty()) {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| {
                    format!(
                        "{}: auths.\"{key}\".auth is not base64 of 'user:password'",
                        path.display()
                    )
                })?;
            let (username, password) = decoded.split_once(':').ok_or_else(|| {
                format!(
                    "{}: auths.\"{key}\".auth does not decode to 'user:password'",
                    path.display()
                )
            })?;
            return Ok(Some(Login {
                username: username.into(),
                password: password.into(),
            }));
        }
        if let (Some(username), Some(password)) = (&auth.username, &auth.password) {
            return Ok(Some(Login {
                username: username.clone(),
                password: password.clone(),
            }));
        }
        if let Some(token) = &auth.identitytoken {
            return Ok(Some(Login {
                username: "<token>".into(),
                password: token.clone(),
            }));
        }
    }
    let helper = config
        .cred_helpers
        .iter()
        .find(|(key, _)| normalize(key) == registry)
        .map(|(_, h)| h.clone())
        .or(config.creds_store);
    match helper {
        Some(helper) => run_helper(&helper, registry).await,
        None => Ok(None),
    }
}

/// `docker-credential-HELPER get` with the registry on stdin; its JSON answer
/// `{"Username": …, "Secret": …}`. "credentials not found" is anonymous access.
async fn run_helper(helper: &str, registry: &str) -> Result<Option<Login>, String> {
    use tokio::io::AsyncWriteExt as _;
    let program = format!("docker-credential-{helper}");
    let mut child = tokio::process::Command::new(&program)
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            format!("the Docker credential helper {program} (for {registry}) cannot run: {e}")
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(registry.as_bytes()).await;
    }
    let output = tokio::time::timeout(HELPER_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| {
            format!(
                "the Docker credential helper {program} did not answer for {registry} within {}s",
                HELPER_TIMEOUT.as_secs()
            )
        })?
        .map_err(|e| format!("the Docker credential helper {program}: {e}"))?;
    if !output.status.success() {
        let said = String::from_utf8_lossy(&output.stdout).to_string()
            + &String::from_utf8_lossy(&output.stderr);
        if said.to_ascii_lowercase().contains("not found") {
            return Ok(None);
        }
        return Err(format!(
            "the Docker credential helper {program} failed for {registry}: {}",
            said.trim()
        ));
    }
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(rename = "Username")]
        username: String,
        #[serde(rename = "Secret")]
        secret: String,
    }
    let answer: Answer = serde_json::from_slice(&output.stdout).map_err(|e| {
        format!("the Docker credential helper {program} answered no credentials JSON: {e}")
    })?;
    Ok(Some(Login {
        username: answer.username,
        password: answer.secret,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn an_env_login_goes_only_to_its_registry() {
        let login = Login {
            username: "alice".into(),
            password: "s3cret".into(),
        };
        let creds = Credentials {
            env: Some(("Registry.Example:5000".into(), login.clone())),
            ..Credentials::none()
        };
        assert_eq!(
            creds.for_registry("registry.example:5000").await.unwrap(),
            Some(login)
        );
        // A manifest naming another registry does not receive the login.
        assert_eq!(creds.for_registry("evil.example").await.unwrap(), None);
    }

    #[tokio::test]
    async fn docker_config_auths_are_found_by_registry() {
        let dir = std::env::temp_dir().join(format!("lattice-creds-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
        std::fs::write(
            &path,
            format!(r#"{{"auths":{{"https://reg.example:5000/v1/":{{"auth":"{auth}"}},"other.example":{{"username":"bob","password":"pw"}}}}}}"#),
        )
        .unwrap();
        let creds = Credentials {
            docker_config: Some(path.clone()),
            ..Credentials::default()
        };
        let login = creds
            .for_registry("reg.example:5000")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (login.username.as_str(), login.password.as_str()),
            ("alice", "s3cret")
        );
        let login = creds.for_registry("other.example").await.unwrap().unwrap();
        assert_eq!(login.username, "bob");
        assert!(creds
            .for_registry("nowhere.example")
            .await
            .unwrap()
            .is_none());
        assert!(!format!("{login:?}").contains("pw"));
        std::fs::write(&path, r#"{"auths":{"reg.example":{"auth":"!!"}}}"#).unwrap();
        let err = creds.for_registry("reg.example").await.unwrap_err();
        assert!(err.contains("not base64"), "{err}");
        std::fs::write(&path, r#"{"credsStore":"lattice-test-missing"}"#).unwrap();
        let err = creds.for_registry("reg.example").await.unwrap_err();
        assert!(
            err.contains("docker-credential-lattice-test-missing"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn registries_are_compared_by_host_and_port() {
        assert_eq!(
            normalize("https://Reg.example:5000/v1/"),
            "reg.example:5000"
        );
        assert_eq!(normalize("docker.io"), "index.docker.io");
    }
}
