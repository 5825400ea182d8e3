//! The one way a lattice process connects to NATS: [`connect`] with
//! [`ConnectSettings`] (URL, `.creds`, inbox prefix, TLS files, name, deadline).
//! The CLI's roles (host, controller, operator commands, built-in messaging's own
//! connection) and the provider SDK all come through here, so TLS, credentials and
//! the error a person reads are the same everywhere.

use lattice_protocol::nats_tls::{NatsTls, NatsTlsError};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where NATS is and how to connect to it.
#[derive(Debug, Clone)]
pub struct ConnectSettings {
    /// One URL or several, comma-separated (`nats://`, `tls://`).
    pub url: String,
    /// `.creds` text (a user JWT and its seed), for a NATS with decentralized auth.
    pub creds: Option<String>,
    /// The prefix of the connection's reply inboxes; default: the one the creds'
    /// user is allowed (see `lattice_protocol::creds::inbox_prefix_of`), else
    /// NATS's own.
    pub inbox_prefix: Option<String>,
    /// CA and client certificate files.
    pub tls: NatsTls,
    /// The connection's name, as the server's monitoring shows it.
    pub name: String,
    /// How long connecting may take, TLS handshake included.
    pub timeout: Duration,
}

impl ConnectSettings {
    /// Plain settings for `url`: no credentials, no TLS files, a 5 s deadline.
    pub fn new(url: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            creds: None,
            inbox_prefix: None,
            tls: NatsTls::default(),
            name: name.into(),
            timeout: Duration::from_secs(5),
        }
    }
}

/// Why a connection could not be made. The sentence names the file, the URL and,
/// where it can tell, what to change.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The `.creds` text is not NATS credentials.
    #[error("the NATS credentials are unreadable: {reason}")]
    Credentials { reason: String },
    /// The TLS settings contradict each other.
    #[error(transparent)]
    TlsSettings(#[from] NatsTlsError),
    /// A TLS file is missing, unreadable or not PEM.
    #[error("NATS TLS {what} {}: {reason}", path.display())]
    TlsFile {
        /// `CA file`, `client certificate` or `client key`.
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    /// The server refused the connection, or it failed on the way.
    #[error("cannot connect to NATS at {url}: {reason}{hint}")]
    Failed {
        url: String,
        reason: String,
        /// What to change, when the failure says (`""` otherwise).
        hint: String,
    },
    /// No answer in time.
    #[error("connecting to NATS at {url} timed out after {}s", after.as_secs_f64())]
    TimedOut { url: String, after: Duration },
}

/// Connect with `settings`: TLS required when a CA or client certificate is given or
/// the URL is `tls://`, every file checked first so a bad one is named.
pub async fn connect(settings: &ConnectSettings) -> Result<async_nats::Client, ConnectError> {
    let options = options(settings)?;
    let url = settings.url.as_str();
    let connecting = options
        .name(settings.name.as_str())
        .event_callback(log_event)
        .connection_timeout(settings.timeout)
        .connect(servers(url));
    let grace = settings.timeout + Duration::from_secs(1);
    match tokio::time::timeout(grace, connecting).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) => {
            let reason = error_chain(&e);
            Err(ConnectError::Failed {
                url: url.to_string(),
                hint: hint(&reason, &settings.tls),
                reason,
            })
        }
        Err(_) => Err(ConnectError::TimedOut {
            url: url.to_string(),
            after: grace,
        }),
    }
}

/// The servers of a URL list (`nats://a:4222,nats://b:4222`): the client picks one
/// and moves to another when it is lost.
fn servers(url: &str) -> Vec<&str> {
    url.split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .collect()
}

/// Log what happens to the connection: a lost server, the reconnect (after which
/// async-nats subscribes again by itself), a slow consumer. Reconnecting never
/// ends: async-nats retries without limit, with a delay that grows to 4 s.
async fn log_event(event: async_nats::Event) {
    use async_nats::Event;
    match event {
        Event::Connected => tracing::info!(target: "lattice::nats", "connected to NATS"),
        Event::Disconnected => {
            tracing::warn!(target: "lattice::nats", "disconnected from NATS; reconnecting")
        }
        Event::LameDuckMode => tracing::warn!(
            target: "lattice::nats",
            "the NATS server is shutting down (lame duck mode); reconnecting elsewhere soon"
        ),
        // Closed by the process itself (shutdown) or after giving up: not a fault.
        Event::Closed => tracing::info!(target: "lattice::nats", "the NATS connection is closed"),
        other => tracing::warn!(target: "lattice::nats", "NATS: {other}"),
    }
}

/// The client options `settings` ask for, the files checked.
pub fn options(settings: &ConnectSettings) -> Result<async_nats::ConnectOptions, ConnectError> {
    let mut options = match &settings.creds {
        Some(creds) => async_nats::ConnectOptions::with_credentials(creds).map_err(|e| {
            ConnectError::Credentials {
                reason: e.to_string(),
            }
        })?,
        None => async_nats::ConnectOptions::new(),
    };
    // A role's credentials allow replies under its own inbox prefix only.
    let inbox = settings.inbox_prefix.clone().or_else(|| {
        let creds = settings.creds.as_deref()?;
        lattice_protocol::creds::inbox_prefix_of(lattice_protocol::creds::creds_jwt(creds)?)
    });
    if let Some(prefix) = inbox {
        options = options.custom_inbox_prefix(prefix);
    }
    let tls = &settings.tls;
    if let Some(ca) = &tls.ca_file {
        check_pem(ca, "CA file", "CERTIFICATE")?;
        options = options.add_root_certificates(ca.clone());
    }
    if let Some((cert, key)) = tls.client_certificate()? {
        check_pem(cert, "client certificate", "CERTIFICATE")?;
        check_pem(key, "client key", "PRIVATE KEY")?;
        options = options.add_client_certificate(cert.to_path_buf(), key.to_path_buf());
    }
    Ok(options.require_tls(tls.required_for(&settings.url)))
}

/// The file is readable and holds a PEM block of `kind` (`CERTIFICATE`, or any
/// `... PRIVATE KEY`).
fn check_pem(path: &Path, what: &'static str, kind: &str) -> Result<(), ConnectError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConnectError::TlsFile {
        what,
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let found = text
        .lines()
        .any(|l| l.starts_with("-----BEGIN ") && l.contains(kind));
    if found {
        Ok(())
    } else {
        Err(ConnectError::TlsFile {
            what,
            path: path.to_path_buf(),
            reason: format!("no PEM `{kind}` block in it"),
        })
    }
}

/// An error and its sources, one sentence.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

/// What to change, read from what the TLS layer said.
fn hint(reason: &str, tls: &NatsTls) -> String {
    let r = reason.to_ascii_lowercase();
    let untrusted = [
        "unknownissuer",
        "unknown issuer",
        "invalid peer certificate",
    ];
    let no_client_cert = [
        "certificaterequired",
        "certificate required",
        "bad certificate",
        "badcertificate",
    ];
    if no_client_cert.iter().any(|s| r.contains(s)) {
        return if tls.cert_file.is_some() {
            ". The server did not accept the client certificate (is it signed by a CA the server trusts?)".into()
        } else {
            ". The server requires a client certificate: pass --nats-tls-cert and --nats-tls-key"
                .into()
        };
    }
    if untrusted.iter().any(|s| r.contains(s)) {
        return if tls.ca_file.is_some() {
            ". The server's certificate is not signed by the CA in --nats-tls-ca (or does not name this host)".into()
        } else {
            ". The server's certificate is not signed by a CA this process trusts: pass --nats-tls-ca with the CA that signed it".into()
        };
    }
    if r.contains("invalidcontenttype") || r.contains("corrupt message") {
        return ". TLS is required here (a CA or client certificate was given, or the URL is tls://) but the server did not answer in TLS: does its config have a `tls` block?".into();
    }
    String::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_non_pem_file_is_named() {
        let settings = ConnectSettings {
            tls: NatsTls {
                ca_file: Some("/nonexistent/ca.pem".into()),
                ..Default::default()
            },
            ..ConnectSettings::new("nats://127.0.0.1:1", "test")
        };
        let e = options(&settings).err().unwrap().to_string();
        assert!(e.contains("CA file /nonexistent/ca.pem"), "{e}");

        let dir = std::env::temp_dir().join(format!("lattice-bus-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let not_pem = dir.join("ca.pem");
        std::fs::write(&not_pem, "hello").unwrap();
        let settings = ConnectSettings {
            tls: NatsTls {
                ca_file: Some(not_pem.clone()),
                ..Default::default()
            },
            ..settings
        };
        let e = options(&settings).err().unwrap().to_string();
        assert!(e.contains("no PEM `CERTIFICATE` block"), "{e}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_url_list_is_several_servers() {
        assert_eq!(
            servers("nats://a:1, nats://b:2,"),
            ["nats://a:1", "nats://b:2"]
        );
        assert_eq!(servers("nats://a:1"), ["nats://a:1"]);
    }

    #[test]
    fn hints_name_the_missing_flag() {
        let none = NatsTls::default();
        assert!(hint("invalid peer certificate: UnknownIssuer", &none).contains("--nats-tls-ca"));
        assert!(
            hint("received fatal alert: CertificateRequired", &none).contains("--nats-tls-cert")
        );
        assert_eq!(hint("connection refused", &none), "");
    }
}
