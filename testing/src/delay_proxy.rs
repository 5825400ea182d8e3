//! A TCP proxy that delays every byte by a settable one-way latency, and can cut
//! and restore its link: the WAN between an edge site and the core in
//! [`topology`](crate::topology), where the kernel has no `netem`.
//!
//! Each accepted connection gets its own upstream connection and two pumps, one
//! per direction. A pump stamps every chunk it reads and writes it once its
//! stamp is `delay` old, so the delay adds to each byte's trip without limiting
//! throughput (chunks keep flowing while earlier ones wait). [`DelayProxy::cut`]
//! closes every connection and refuses new ones (as a link whose far end
//! answers with resets) until [`DelayProxy::restore`].

use anyhow::Context;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// Chunks read but not yet written, per direction of one connection.
const IN_FLIGHT_CHUNKS: usize = 1024;
/// The largest chunk one read takes.
const CHUNK: usize = 64 * 1024;

/// What every connection of one proxy reads: the delay and whether the link is up.
#[derive(Debug)]
struct Control {
    delay: watch::Sender<Duration>,
    up: watch::Sender<bool>,
    /// Connections open now.
    open: AtomicUsize,
}

/// A running proxy: `listen` to `upstream` with a one-way delay. Its tasks stop
/// when it is dropped.
#[derive(Debug)]
pub struct DelayProxy {
    listen: SocketAddr,
    control: Arc<Control>,
    accept: tokio::task::JoinHandle<()>,
}

impl DelayProxy {
    /// Listen on `listen` (port 0 for any) and forward each connection to
    /// `upstream`, every byte delayed by `delay` each way.
    pub async fn start(
        listen: SocketAddr,
        upstream: SocketAddr,
        delay: Duration,
    ) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding the delay proxy to {listen}"))?;
        let listen = listener.local_addr().context("the proxy's address")?;
        let control = Arc::new(Control {
            delay: watch::Sender::new(delay),
            up: watch::Sender::new(true),
            open: AtomicUsize::new(0),
        });
        let accept = tokio::spawn(accept_loop(listener, upstream, control.clone()));
        Ok(Self {
            listen,
            control,
            accept,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.listen
    }

    /// How many connections are open through it now.
    pub fn connections(&self) -> usize {
        self.control.open.load(Ordering::Relaxed)
    }

    /// Delay every byte by `delay` each way from now on (a chunk already waiting
    /// is written `delay` after it was read).
    pub fn set_delay(&self, delay: Duration) {
        self.control.delay.send_replace(delay);
    }

    /// Cut the link: close every connection and refuse new ones.
    pub fn cut(&self) {
        self.control.up.send_replace(false);
    }

    /// Restore the link: accept connections again.
    pub fn restore(&self) {
        self.control.up.send_replace(true);
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.accept.abort();
        // Every connection watches `up` and ends when it turns false.
        self.control.up.send_replace(false);
    }
}

async fn accept_loop(listener: TcpListener, upstream: SocketAddr, control: Arc<Control>) {
    loop {
        let Ok((down, _)) = listener.accept().await else {
            // Out of descriptors, say: do not spin.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        if !*control.up.borrow() {
            drop(down);
            continue;
        }
        let control = control.clone();
        tokio::spawn(async move {
            let mut up = control.up.subscribe();
            let Ok(far) = TcpStream::connect(upstream).await else {
                return;
            };
            control.open.fetch_add(1, Ordering::Relaxed);
            let _ = down.set_nodelay(true);
            let _ = far.set_nodelay(true);
            let (down_read, down_write) = down.into_split();
            let (far_read, far_write) = far.into_split();
            let delay = control.delay.subscribe();
            tokio::select! {
                _ = pump(down_read, far_write, delay.clone()) => {}
                _ = pump(far_read, down_write, delay) => {}
                _ = up.wait_for(|up| !*up) => {}
            }
            control.open.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// Copy `from` to `to`, each chunk written `delay` after it was read; returns
/// when either side closes or fails.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: watch::Receiver<Duration>,
) {
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(IN_FLIGHT_CHUNKS);
    let reader = async move {
        let mut buf = vec![0u8; CHUNK];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if tx.send((Instant::now(), buf[..n].to_vec())).await.is_err() {
                        return;
                    }
                }
            }
        }
    };
    let writer = async move {
        while let Some((read_at, chunk)) = rx.recv().await {
            let due = read_at + *delay.borrow();
            // A timer rounds up to the next millisecond: only wait when there is
            // something to wait for.
            if due > Instant::now() {
                tokio::time::sleep_until(due).await;
            }
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    // The writer drains what the reader stamped before a clean close.
    tokio::join!(reader, writer);
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    async fn round_trip(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
        s.write_all(b"ping").await?;
        let mut back = [0u8; 4];
        s.read_exact(&mut back).await?;
        Ok(back.to_vec())
    }

    /// A round trip takes the delay twice (paused clock: exact), and a cut link
    /// closes connections and refuses new ones until restored.
    #[tokio::test(start_paused = true)]
    async fn delays_both_ways_and_cuts_and_restores() {
        let echo = echo_server().await;
        let proxy = DelayProxy::start(
            "127.0.0.1:0".parse().unwrap(),
            echo,
            Duration::from_millis(50),
        )
        .await
        .unwrap();
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        let start = Instant::now();
        assert_eq!(round_trip(&mut s).await.unwrap(), b"ping");
        assert!(start.elapsed() >= Duration::from_millis(100));

        proxy.cut();
        let mut buf = [0u8; 1];
        let closed = s.read(&mut buf).await;
        assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");
        let mut refused = TcpStream::connect(proxy.addr()).await.unwrap();
        let answer = round_trip(&mut refused).await;
        assert!(answer.is_err(), "{answer:?}");

        proxy.restore();
        proxy.set_delay(Duration::ZERO);
        let mut again = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(round_trip(&mut again).await.unwrap(), b"ping");
    }
}
