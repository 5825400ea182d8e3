//! The private loopback network of one workload: what `127.0.0.1` means to the
//! components and the service of one app on one host.
//!
//! The host implements `wasi:sockets/tcp` itself ([`tcp`]) on this network instead
//! of on the kernel's: a service listens on a port of its workload's [`Loopback`],
//! and a component of the same workload that connects to `127.0.0.1:PORT` gets an
//! in-memory connection ([`pipe`]) to it. Two workloads are two `Loopback`s, so both
//! may listen on 8080; neither can reach the other's, nor the host's real loopback.
//!
//! Invariant (the one choke point): every bind, listen and connect of every guest
//! goes through [`tcp`], which only ever resolves addresses in the guest's own
//! workload's `Loopback`; no kernel socket is created for a guest's TCP.

pub mod pipe;
mod socket;
pub mod tcp;

use pipe::{PipeReader, PipeWriter};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use tokio::sync::mpsc;
use wasmtime_wasi::p2::bindings::sockets::network::ErrorCode;

/// Connections a listener may have waiting to be accepted when its guest asks for
/// no backlog.
pub const DEFAULT_BACKLOG: usize = 128;

/// A connection waiting to be accepted: the listener's ends and the caller's
/// address.
pub struct Incoming {
    pub reader: PipeReader,
    pub writer: PipeWriter,
    pub remote: SocketAddr,
}

/// One workload's loopback network.
#[derive(Default)]
pub struct Loopback {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Listening ports.
    listeners: HashMap<u16, mpsc::Sender<Incoming>>,
    /// Ports bound but not (yet) listening.
    bound: HashMap<u16, usize>,
    /// The last ephemeral port handed out; they count down from 65535.
    last_ephemeral: u16,
}

impl Loopback {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reserve `port` (0: any free one) for a socket that binds it.
    pub fn bind(&self, port: u16) -> Result<u16, ErrorCode> {
        let mut inner = self.lock();
        let port = if port == 0 {
            inner.ephemeral().ok_or(ErrorCode::AddressInUse)?
        } else if inner.listeners.contains_key(&port) || inner.bound.contains_key(&port) {
            return Err(ErrorCode::AddressInUse);
        } else {
            port
        };
        *inner.bound.entry(port).or_default() += 1;
        Ok(port)
    }

    /// Give back a port reserved by [`Loopback::bind`] and, if listening, stop.
    pub fn release(&self, port: u16) {
        let mut inner = self.lock();
        inner.listeners.remove(&port);
        if let Some(n) = inner.bound.get_mut(&port) {
            *n -= 1;
            if *n == 0 {
                inner.bound.remove(&port);
            }
        }
    }

    /// Start listening on a bound `port`: connections arrive on the receiver.
    pub fn listen(&self, port: u16, backlog: usize) -> Result<mpsc::Receiver<Incoming>, ErrorCode> {
        let mut inner = self.lock();
        if inner.listeners.contains_key(&port) {
            return Err(ErrorCode::AddressInUse);
        }
        let (tx, rx) = mpsc::channel(backlog.clamp(1, 4096));
        inner.listeners.insert(port, tx);
        Ok(rx)
    }

    /// Connect `from` to `port`: the caller's ends of a fresh connection, or
    /// `ConnectionRefused` at once when nobody listens there (or its backlog is
    /// full).
    pub fn connect(
        &self,
        port: u16,
        from: SocketAddr,
    ) -> Result<(PipeReader, PipeWriter), ErrorCode> {
        let inner = self.lock();
        let listener = inner
            .listeners
            .get(&port)
            .ok_or(ErrorCode::ConnectionRefused)?;
        let (to_listener, listener_reads) = pipe::pipe();
        let (to_caller, caller_reads) = pipe::pipe();
        let incoming = Incoming {
            reader: listener_reads,
            writer: to_caller,
            remote: from,
        };
        listener
            .try_send(incoming)
            .map_err(|_| ErrorCode::ConnectionRefused)?;
        Ok((caller_reads, to_listener))
    }

    /// Ports listening now, for tests and status.
    pub fn listening(&self) -> Vec<u16> {
        let mut ports: Vec<u16> = self.lock().listeners.keys().copied().collect();
        ports.sort_unstable();
        ports
    }
}

impl Inner {
    fn ephemeral(&mut self) -> Option<u16> {
        for _ in 0..16_384 {
            self.last_ephemeral = match self.last_ephemeral {
                0..=49_152 => 65_535,
                p => p - 1,
            };
            let p = self.last_ephemeral;
            if !self.listeners.contains_key(&p) && !self.bound.contains_key(&p) {
                return Some(p);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_exclusive_and_released() {
        let net = Loopback::default();
        assert_eq!(net.bind(8080), Ok(8080));
        assert_eq!(net.bind(8080), Err(ErrorCode::AddressInUse));
        let _rx = net.listen(8080, 1).unwrap();
        assert_eq!(net.listening(), vec![8080]);
        net.release(8080);
        assert!(net.listening().is_empty());
        assert_eq!(net.bind(8080), Ok(8080));
        let a = net.bind(0).unwrap();
        let b = net.bind(0).unwrap();
        assert!(a > 49_152 && b > 49_152 && a != b);
    }

    #[test]
    fn connecting_to_nobody_is_refused_and_a_full_backlog_too() {
        let net = Loopback::default();
        let from: SocketAddr = "127.0.0.1:50000".parse().unwrap();
        assert_eq!(
            net.connect(9, from).err(),
            Some(ErrorCode::ConnectionRefused)
        );
        net.bind(9).unwrap();
        let mut rx = net.listen(9, 1).unwrap();
        assert!(net.connect(9, from).is_ok());
        assert_eq!(
            net.connect(9, from).err(),
            Some(ErrorCode::ConnectionRefused)
        );
        assert_eq!(rx.try_recv().unwrap().remote, from);
    }
}
