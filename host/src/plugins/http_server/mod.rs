//! `builtin://http-server`: HTTP listeners that route requests to the linked
//! component's `wasi:http/incoming-handler`.
//!
//! Each address is owned by one app. A second app asking for a taken address is
//! refused with a message naming both apps. An app that re-applies keeps its
//! listener and only swaps the target, so upgrades never drop the socket.
//!
//! Each listener is bounded ([`HttpServerLimits`]): a header-read timeout, a cap
//! on open connections (over it, a new connection is closed at once) and a body
//! limit (413). The link's source config may override each default, beside
//! `address`: `header_read_timeout` (`250ms`, `5s`, `2m`), `max_connections`,
//! `max_body_bytes`. A listener keeps the bounds it was bound with until the app
//! asks for another address.
//!
//! HTTPS: a link whose source config names `tls_cert_file` and `tls_priv_key_file`
//! (PEM, as wasmCloud's http-server takes them) gets a listener that speaks only
//! TLS ([`tls`]). The bounds hold for TLS connections too: the connection cap
//! counts them from the TCP accept, and the handshake must finish within the
//! header-read timeout (then the headers get their own). A re-apply swaps the
//! certificate with the target, so a new certificate takes effect without
//! dropping the socket.

mod tls;

use crate::capability::{AppGuard, AppStart, Capability};
use crate::component::{http, ComponentRuntime};
use crate::config::HttpServerLimits;
use futures::future::BoxFuture;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use lattice_protocol::manifest::{parse_timeout, Builtin, Image, Link, Manifest};
use std::collections::BTreeMap;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

type Target = Arc<RwLock<Arc<ComponentRuntime>>>;
/// The listener's TLS, `None` for plain HTTP; swapped on re-apply.
type Tls = Arc<RwLock<Option<TlsAcceptor>>>;

struct Listener {
    app: String,
    target: Target,
    tls: Tls,
    task: JoinHandle<()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Why an app cannot listen on an address.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// Another app listens there.
    #[error("address {addr} is already used by app '{owner}'; app '{app}' cannot listen there (pick another `address` in its http-server link)")]
    Taken {
        addr: SocketAddr,
        owner: String,
        app: String,
    },
    /// The operating system refused the socket (in use by another process, no
    /// such address, no permission).
    #[error("app '{app}' cannot listen on {addr}: {source}")]
    Os {
        app: String,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Every HTTP listener of the host.
#[derive(Default)]
pub struct HttpServer {
    listeners: Mutex<HashMap<SocketAddr, Listener>>,
    defaults: HttpServerLimits,
}

impl HttpServer {
    /// A host's listeners, bounded by `defaults` unless a link says otherwise.
    pub fn new(defaults: HttpServerLimits) -> Self {
        Self {
            listeners: Mutex::default(),
            defaults,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<SocketAddr, Listener>> {
        self.listeners.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Which app listens on `addr`, if any.
    pub fn owner(&self, addr: &SocketAddr) -> Option<String> {
        self.lock().get(addr).map(|l| l.app.clone())
    }

    /// Route `addr` to `target` for `app`, over TLS when `tls` is given: swap the
    /// target and TLS of the app's existing listener, or bind a new one bounded by
    /// `limits`. Must be called from within a tokio runtime.
    pub fn bind(
        &self,
        app: &str,
        addr: SocketAddr,
        target: Arc<ComponentRuntime>,
        limits: HttpServerLimits,
        tls: Option<TlsAcceptor>,
    ) -> Result<(), BindError> {
        let mut listeners = self.lock();
        if let Some(existing) = listeners.get(&addr) {
            if existing.app != app {
                return Err(BindError::Taken {
                    addr,
                    owner: existing.app.clone(),
                    app: app.to_owned(),
                });
            }
            *existing.target.write().unwrap_or_else(|p| p.into_inner()) = target;
            *existing.tls.write().unwrap_or_else(|p| p.into_inner()) = tls;
            return Ok(());
        }
        let socket = std::net::TcpListener::bind(addr)
            .and_then(|s| s.set_nonblocking(true).map(|()| s))
            .and_then(tokio::net::TcpListener::from_std)
            .map_err(|source| BindError::Os {
                app: app.to_owned(),
                addr,
                source,
            })?;
        let https = tls.is_some();
        let target: Target = Arc::new(RwLock::new(target));
        let tls: Tls = Arc::new(RwLock::new(tls));
        let task = tokio::spawn(accept_loop(socket, target.clone(), tls.clone(), limits));
        tracing::info!(%app, %addr, ?limits, https, "http-server listening");
        listeners.insert(
            addr,
            Listener {
                app: app.to_string(),
                target,
                tls,
                task,
            },
        );
        Ok(())
    }

    /// Close every listener of `app` whose address is not in `keep`.
    pub fn release(&self, app: &str, keep: &[SocketAddr]) {
        self.lock()
            .retain(|addr, l| l.app != app || keep.contains(addr));
    }
}

impl Capability for HttpServer {
    fn name(&self) -> &'static str {
        "http-server"
    }

    /// Listen on every address the app's http-server links ask for, and close the
    /// app's listeners on addresses it no longer asks for. All or nothing: every
    /// address is checked before any is bound. (It cannot be undone by a guard, as
    /// a re-applied app keeps its sockets: the registry starts it last.)
    fn start<'a>(
        &'a self,
        app: &'a AppStart<'a>,
    ) -> BoxFuture<'a, Result<Option<AppGuard>, String>> {
        Box::pin(async move {
            let name = &app.manifest.name;
            let routes = http_routes(app.manifest, app.placed, self.defaults)?;
            for Route { addr, .. } in &routes {
                if let Some(owner) = self.owner(addr).filter(|o| o != name) {
                    let app = name.clone();
                    return Err(BindError::Taken {
                        addr: *addr,
                        owner,
                        app,
                    }
                    .to_string());
                }
            }
            let before: Vec<SocketAddr> = self
                .lock()
                .iter()
                .filter(|(_, l)| &l.app == name)
                .map(|(a, _)| *a)
                .collect();
            let mut bound = Vec::new();
            for Route {
                addr,
                target,
                limits,
                tls,
            } in routes
            {
                if let Err(e) = self.bind(name, addr, target, limits, tls) {
                    // Close what this apply opened; keep what the app had.
                    let opened: Vec<_> = bound.iter().filter(|a| !before.contains(a)).collect();
                    self.lock()
                        .retain(|a, l| &l.app != name || !opened.contains(&a));
                    return Err(e.to_string());
                }
                bound.push(addr);
            }
            self.release(name, &bound);
            Ok(None)
        })
    }

    fn forget_app(&self, app: &str) {
        self.release(app, &[]);
    }

    fn drain(&self) {
        self.lock().clear();
    }
}

/// One listener an app asks for.
struct Route {
    addr: SocketAddr,
    target: Arc<ComponentRuntime>,
    limits: HttpServerLimits,
    tls: Option<TlsAcceptor>,
}

/// The HTTP listeners `manifest` asks for on this host: every link from a
/// `builtin://http-server` capability to a component placed here.
fn http_routes(
    manifest: &Manifest,
    placed: &BTreeMap<String, Arc<ComponentRuntime>>,
    defaults: HttpServerLimits,
) -> Result<Vec<Route>, String> {
    let mut routes: Vec<Route> = Vec::new();
    for (source, link) in manifest.links() {
        if source.image != Image::Builtin(Builtin::HttpServer) {
            continue;
        }
        let Some(rt) = placed.get(&link.target) else {
            continue;
        };
        let address = link.source_config.get("address").ok_or_else(|| {
            format!(
                "the http-server link from '{}' to '{}' has no `address` in its source config",
                source.name, link.target
            )
        })?;
        let addr: SocketAddr = address
            .parse()
            .map_err(|e| format!("http-server address '{address}' is not host:port: {e}"))?;
        if rt.proxy.is_none() {
            return Err(format!(
                "component '{}' of app '{}' is linked from the http-server but does not export wasi:http/incoming-handler",
                link.target, manifest.name
            ));
        }
        let limits = link_limits(link, defaults)
            .map_err(|e| format!("the http-server link to '{}': {e}", link.target))?;
        let tls = tls::acceptor(&link.source_config).map_err(|e| {
            format!(
                "the http-server link from '{}' to '{}' of app '{}': {e}",
                source.name, link.target, manifest.name
            )
        })?;
        if routes.iter().any(|r| r.addr == addr) {
            return Err(format!(
                "app '{}' asks for address {addr} twice",
                manifest.name
            ));
        }
        routes.push(Route {
            addr,
            target: rt.clone(),
            limits,
            tls,
        });
    }
    Ok(routes)
}

/// The link's overrides of the listener's bounds.
fn link_limits(link: &Link, defaults: HttpServerLimits) -> Result<HttpServerLimits, String> {
    let config = &link.source_config;
    let number = |key: &str| -> Result<Option<u64>, String> {
        config
            .get(key)
            .map(|v| {
                v.trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("`{key}: {v}` is not a number above zero"))
            })
            .transpose()
    };
    let mut limits = defaults;
    if let Some(t) = config.get("header_read_timeout") {
        limits.header_read_timeout =
            parse_timeout(t).map_err(|e| format!("`header_read_timeout`: {e}"))?;
    }
    if let Some(n) = number("max_connections")? {
        limits.max_connections = usize::try_from(n).unwrap_or(usize::MAX);
    }
    if let Some(n) = number("max_body_bytes")? {
        limits.max_body_bytes = n;
    }
    Ok(limits)
}

async fn accept_loop(
    socket: tokio::net::TcpListener,
    target: Target,
    tls: Tls,
    limits: HttpServerLimits,
) {
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let mut builder = http1::Builder::new();
    builder
        .keep_alive(true)
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let builder = Arc::new(builder);
    loop {
        let (stream, peer) = match socket.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            tracing::debug!(%peer, max_connections = limits.max_connections, "http connection closed: the listener is at its connection cap");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let target = target.clone();
        let builder = builder.clone();
        let tls = tls.read().unwrap_or_else(|p| p.into_inner()).clone();
        tokio::spawn(async move {
            let _permit = permit;
            let Some(acceptor) = tls else {
                return serve(&builder, stream, target, limits.max_body_bytes).await;
            };
            // The handshake has the header-read deadline: a client that opens a
            // connection and never finishes it holds a slot no longer than one
            // that never sends its headers.
            match tokio::time::timeout(limits.header_read_timeout, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => serve(&builder, stream, target, limits.max_body_bytes).await,
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "https handshake failed"),
                Err(_) => {
                    tracing::debug!(%peer, timeout = ?limits.header_read_timeout, "https connection closed: no handshake within the header-read timeout")
                }
            }
        });
    }
}

/// Serve HTTP/1.1 on one connection (plain or TLS) until it ends.
async fn serve(
    builder: &http1::Builder,
    io: impl AsyncRead + AsyncWrite + Unpin + Send + 'static,
    target: Target,
    max_body: u64,
) {
    let service = hyper::service::service_fn(move |req| {
        let rt = target.read().unwrap_or_else(|p| p.into_inner()).clone();
        http::handle(rt, req, max_body)
    });
    if let Err(e) = builder.serve_connection(TokioIo::new(io), service).await {
        tracing::debug!(error = %e, "http connection ended with an error");
    }
}
