//! `builtin://http-server`: HTTP listeners that route requests to the linked
//! component's `wasi:http/incoming-handler`.
//!
//! Each address is owned by one app. A second app asking for a taken address is
//! refused with a message naming both apps. An app that re-applies keeps its
//! listener and only swaps the target, so upgrades never drop the socket.

mod serve;
pub use serve::forward;

use crate::workload::ComponentRuntime;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use tokio::task::JoinHandle;

type Target = Arc<RwLock<Arc<ComponentRuntime>>>;

struct Listener {
    app: String,
    target: Target,
    task: JoinHandle<()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Every HTTP listener of the host.
#[derive(Default)]
pub struct HttpServer {
    listeners: Mutex<HashMap<SocketAddr, Listener>>,
}

impl HttpServer {
    fn lock(&self) -> MutexGuard<'_, HashMap<SocketAddr, Listener>> {
        self.listeners.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Which app listens on `addr`, if any.
    pub fn owner(&self, addr: &SocketAddr) -> Option<String> {
        self.lock().get(addr).map(|l| l.app.clone())
    }

    /// Route `addr` to `target` for `app`: swap the target of the app's existing
    /// listener, or bind a new one. Must be called from within a tokio runtime.
    pub fn bind(
        &self,
        app: &str,
        addr: SocketAddr,
        target: Arc<ComponentRuntime>,
    ) -> Result<(), String> {
        let mut listeners = self.lock();
        if let Some(existing) = listeners.get(&addr) {
            if existing.app != app {
                return Err(format!(
                    "address {addr} is already used by app '{}'; app '{app}' cannot listen there (pick another `address` in its http-server link)",
                    existing.app
                ));
            }
            *existing.target.write().unwrap_or_else(|p| p.into_inner()) = target;
            return Ok(());
        }
        let socket = std::net::TcpListener::bind(addr)
            .and_then(|s| s.set_nonblocking(true).map(|()| s))
            .and_then(tokio::net::TcpListener::from_std)
            .map_err(|e| format!("app '{app}' cannot listen on {addr}: {e}"))?;
        let target: Target = Arc::new(RwLock::new(target));
        let task = tokio::spawn(accept_loop(socket, target.clone()));
        tracing::info!(%app, %addr, "http-server listening");
        listeners.insert(
            addr,
            Listener {
                app: app.to_string(),
                target,
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

async fn accept_loop(socket: tokio::net::TcpListener, target: Target) {
    loop {
        let (stream, _peer) = match socket.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let target = target.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let rt = target.read().unwrap_or_else(|p| p.into_inner()).clone();
                serve::handle(rt, req)
            });
            if let Err(e) = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %e, "http connection ended with an error");
            }
        });
    }
}
