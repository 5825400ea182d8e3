//! One guest TCP socket on its workload's [`Loopback`]: its state machine (unbound,
//! bound, listening, connected), the port it holds (released on drop) and its
//! options. The `wasi:sockets/tcp` functions that drive it are in [`super::tcp`].

use super::pipe::{PipeReader, PipeWriter};
use super::{Incoming, Loopback, DEFAULT_BACKLOG};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use tokio::sync::mpsc;
use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpAddressFamily};
use wasmtime_wasi::p2::Pollable;

pub(super) enum State {
    Unbound,
    Bound(SocketAddr),
    Listening {
        local: SocketAddr,
        incoming: mpsc::Receiver<Incoming>,
        next: Option<Incoming>,
    },
    Connected {
        local: SocketAddr,
        remote: SocketAddr,
    },
}

/// What `start-*` began and `finish-*` completes.
pub(super) enum Pending {
    Bind,
    Listen,
    Connect(Result<(SocketAddr, PipeReader, PipeWriter), ErrorCode>),
}

/// A guest's TCP socket on its workload's loopback.
pub struct VirtualTcpSocket {
    pub(super) net: Option<Arc<Loopback>>,
    pub(super) can_listen: bool,
    pub(super) family: IpAddressFamily,
    pub(super) state: State,
    pub(super) pending: Option<Pending>,
    /// The port this socket holds in `net`, released on drop.
    pub(super) port: Option<u16>,
    pub(super) backlog: usize,
    pub(super) keep_alive: bool,
    pub(super) keep_alive_idle: u64,
    pub(super) keep_alive_interval: u64,
    pub(super) keep_alive_count: u32,
    pub(super) hop_limit: u8,
    pub(super) receive_buffer: u64,
    pub(super) send_buffer: u64,
}

impl Drop for VirtualTcpSocket {
    fn drop(&mut self) {
        if let (Some(net), Some(port)) = (&self.net, self.port) {
            net.release(port);
        }
    }
}

impl VirtualTcpSocket {
    pub(super) fn new(
        net: Option<Arc<Loopback>>,
        can_listen: bool,
        family: IpAddressFamily,
    ) -> Self {
        Self {
            net,
            can_listen,
            family,
            state: State::Unbound,
            pending: None,
            port: None,
            backlog: DEFAULT_BACKLOG,
            keep_alive: false,
            keep_alive_idle: 7_200_000_000_000,
            keep_alive_interval: 75_000_000_000,
            keep_alive_count: 9,
            hop_limit: 64,
            receive_buffer: super::pipe::CAPACITY as u64,
            send_buffer: super::pipe::CAPACITY as u64,
        }
    }

    pub(super) fn loopback(&self) -> SocketAddr {
        match self.family {
            IpAddressFamily::Ipv4 => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            IpAddressFamily::Ipv6 => SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 0),
        }
    }

    pub(super) fn net(&self) -> Result<&Arc<Loopback>, ErrorCode> {
        self.net.as_ref().ok_or(ErrorCode::AccessDenied)
    }

    pub(super) fn family_of(addr: &SocketAddr) -> IpAddressFamily {
        match addr {
            SocketAddr::V4(_) => IpAddressFamily::Ipv4,
            SocketAddr::V6(_) => IpAddressFamily::Ipv6,
        }
    }

    pub(super) fn is_loopback(ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => v4.is_loopback(),
            IpAddr::V6(v6) => {
                v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
            }
        }
    }

    /// Bind to an ephemeral loopback port, as connecting or listening unbound does.
    pub(super) fn bind_ephemeral(&mut self) -> Result<SocketAddr, ErrorCode> {
        let port = self.net()?.bind(0)?;
        self.port = Some(port);
        let mut addr = self.loopback();
        addr.set_port(port);
        self.state = State::Bound(addr);
        Ok(addr)
    }

    pub(super) fn local(&self) -> Result<SocketAddr, ErrorCode> {
        match &self.state {
            State::Unbound => Err(ErrorCode::InvalidState),
            State::Bound(a)
            | State::Listening { local: a, .. }
            | State::Connected { local: a, .. } => Ok(*a),
        }
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for VirtualTcpSocket {
    async fn ready(&mut self) {
        if let State::Listening { incoming, next, .. } = &mut self.state {
            if next.is_none() {
                *next = incoming.recv().await;
            }
        }
    }
}
