//! The HTTP client both exports post with: plain HTTP or HTTPS (rustls with
//! ring), trusting the system's roots, or only the CA in
//! `OTEL_EXPORTER_OTLP_CERTIFICATE`, and presenting the client certificate of
//! `OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE` and `OTEL_EXPORTER_OTLP_CLIENT_KEY`
//! when both are set. Each has a per-signal form (`..._TRACES_...`,
//! `..._METRICS_...`) that wins over it. Files are read when the process
//! starts, so a bad path is an error then, naming the variable.

use std::time::Duration;

/// What the client trusts and presents, read from the environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Tls {
    /// PEM certificates: the only roots trusted (system roots when `None`).
    ca: Option<Vec<u8>>,
    /// A PEM client certificate chain followed by its key.
    identity: Option<Vec<u8>>,
    timeout: Duration,
}

impl Tls {
    /// Read the variables of `signal` (`TRACES`, `METRICS`) through `var`.
    pub(crate) fn from_vars(
        var: &impl Fn(&str) -> Option<String>,
        signal: &str,
    ) -> Result<Self, String> {
        let set = |name: &str| {
            let own = format!("OTEL_EXPORTER_OTLP_{signal}_{name}");
            let general = format!("OTEL_EXPORTER_OTLP_{name}");
            [own, general]
                .into_iter()
                .find_map(|n| var(&n).filter(|v| !v.trim().is_empty()).map(|v| (n, v)))
        };
        let read = |(name, path): (String, String)| {
            std::fs::read(path.trim())
                .map_err(|e| format!("{name}={path}: cannot read it: {e}"))
                .map(|bytes| (name, path, bytes))
        };
        let ca = set("CERTIFICATE").map(read).transpose()?;
        if let Some((name, path, pem)) = &ca {
            reqwest::Certificate::from_pem_bundle(pem)
                .ok()
                .filter(|certs| !certs.is_empty())
                .ok_or_else(|| format!("{name}={path}: no PEM certificate in it"))?;
        }
        let identity = match (set("CLIENT_CERTIFICATE"), set("CLIENT_KEY")) {
            (None, None) => None,
            (Some(cert), Some(key)) => {
                let (cert_name, cert_path, mut pem) = read(cert)?;
                let (key_name, key_path, key) = read(key)?;
                pem.push(b'\n');
                pem.extend_from_slice(&key);
                reqwest::Identity::from_pem(&pem).map_err(|e| {
                    format!(
                        "{cert_name}={cert_path} and {key_name}={key_path} do not make a \
                         client certificate: {e}"
                    )
                })?;
                Some(pem)
            }
            (Some((name, _)), None) | (None, Some((name, _))) => {
                return Err(format!(
                    "{name} is set alone: a client certificate needs both \
                     OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and OTEL_EXPORTER_OTLP_CLIENT_KEY"
                ))
            }
        };
        let timeout = match set("TIMEOUT") {
            None => Duration::from_secs(10),
            Some((name, v)) => v
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|ms| *ms > 0)
                .map(Duration::from_millis)
                .ok_or_else(|| format!("{name}={v} is not a positive number of milliseconds"))?,
        };
        Ok(Self {
            ca: ca.map(|(_, _, pem)| pem),
            identity,
            timeout,
        })
    }

    /// The same with another deadline per request.
    pub(crate) fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// A blocking client; build it on a thread of its own or outside any async
    /// runtime (it starts one of its own).
    pub(crate) fn client(&self) -> Result<reqwest::blocking::Client, String> {
        // reqwest is built without a crypto provider of its own: ring, as the
        // rest of lattice uses. Already installed is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::blocking::Client::builder().timeout(self.timeout);
        if let Some(pem) = &self.ca {
            let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| e.to_string())?;
            builder = builder.tls_certs_only(certs);
        }
        if let Some(pem) = &self.identity {
            builder =
                builder.identity(reqwest::Identity::from_pem(pem).map_err(|e| e.to_string())?);
        }
        builder
            .build()
            .map_err(|e| format!("cannot set up the OTLP HTTP client: {e}"))
    }

    /// [`Tls::client`], built on a short-lived thread so it may be called from
    /// async code.
    pub(crate) fn client_off_runtime(&self) -> Result<reqwest::blocking::Client, String> {
        let tls = self.clone();
        std::thread::Builder::new()
            .name("otlp-client".into())
            .spawn(move || tls.client())
            .map_err(|e| format!("cannot start a thread for the OTLP HTTP client: {e}"))?
            .join()
            .map_err(|_| "building the OTLP HTTP client panicked".to_string())?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls(vars: &[(&str, &str)]) -> Result<Tls, String> {
        Tls::from_vars(
            &|name: &str| {
                vars.iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.to_string())
            },
            "METRICS",
        )
    }

    #[test]
    fn bad_files_and_lone_halves_are_named() {
        assert_eq!(
            tls(&[]).unwrap(),
            Tls {
                timeout: Duration::from_secs(10),
                ..Tls::default()
            }
        );
        let missing = tls(&[("OTEL_EXPORTER_OTLP_CERTIFICATE", "/no/such/ca.pem")]).unwrap_err();
        assert!(
            missing.starts_with("OTEL_EXPORTER_OTLP_CERTIFICATE=/no/such/ca.pem: cannot read it"),
            "{missing}"
        );
        let dir = std::env::temp_dir().join(format!("lattice-tls-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let not_pem = dir.join("ca.pem");
        std::fs::write(&not_pem, "hello").unwrap();
        let path = not_pem.to_str().unwrap();
        let bad = tls(&[("OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE", path)]).unwrap_err();
        assert_eq!(
            bad,
            format!("OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE={path}: no PEM certificate in it")
        );
        let alone = tls(&[("OTEL_EXPORTER_OTLP_CLIENT_KEY", path)]).unwrap_err();
        assert!(
            alone.starts_with("OTEL_EXPORTER_OTLP_CLIENT_KEY is set alone"),
            "{alone}"
        );
        let timeout = tls(&[("OTEL_EXPORTER_OTLP_TIMEOUT", "2500")]).unwrap();
        assert_eq!(timeout.timeout, Duration::from_millis(2500));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
