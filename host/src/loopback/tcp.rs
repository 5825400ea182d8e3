//! `wasi:sockets/tcp` and `tcp-create-socket` on the workload's [`Loopback`]: the
//! host's one choke point for guest TCP. It shadows wasmtime-wasi's kernel-socket
//! implementation in the host's linker.
//!
//! Rules: `127.0.0.0/8` and `::1` are the workload's loopback; binding `0.0.0.0` or
//! `::` binds the loopback; any other address is refused (`access-denied` to
//! connect, `address-not-bindable` to bind). Only a service may listen.

use super::pipe::{PipeReader, PipeWriter};
pub use super::socket::VirtualTcpSocket;
use super::socket::{Pending, State};
use crate::ctx::Ctx;
use std::net::SocketAddr;
use wasmtime::component::ResourceTableError;
use wasmtime::component::{HasSelf, Linker, Resource};
use wasmtime_wasi::p2::bindings::sockets::network::{
    self, ErrorCode, IpAddressFamily, IpSocketAddress, Network,
};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, DynPollable, SocketError, SocketResult};

mod generated {
    wasmtime::component::bindgen!({
        path: "../wit/sockets",
        world: "lattice:sockets/virtual-tcp",
        imports: { default: trappable },
        require_store_data_send: true,
        trappable_error_type: {
            "wasi:sockets/network.error-code" => wasmtime_wasi::p2::SocketError,
        },
        with: {
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
            "wasi:sockets/network": wasmtime_wasi::p2::bindings::sockets::network,
            "wasi:sockets/tcp.tcp-socket": super::VirtualTcpSocket,
        },
    });
}

use generated::wasi::sockets::{tcp, tcp_create_socket};

/// Add the virtual TCP interfaces to `linker`, replacing wasmtime-wasi's.
pub fn add_to_linker(linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    tcp::add_to_linker::<Ctx, HasSelf<Ctx>>(linker, |c| c)?;
    tcp_create_socket::add_to_linker::<Ctx, HasSelf<Ctx>>(linker, |c| c)?;
    linker.allow_shadowing(false);
    Ok(())
}

fn new_streams(
    ctx: &mut Ctx,
    reader: PipeReader,
    writer: PipeWriter,
) -> Result<(Resource<DynInputStream>, Resource<DynOutputStream>), ResourceTableError> {
    let input: DynInputStream = Box::new(reader);
    let output: DynOutputStream = Box::new(writer);
    Ok((ctx.table.push(input)?, ctx.table.push(output)?))
}

impl tcp_create_socket::Host for Ctx {
    fn create_tcp_socket(
        &mut self,
        family: IpAddressFamily,
    ) -> SocketResult<Resource<VirtualTcpSocket>> {
        let socket = VirtualTcpSocket::new(self.env.loopback.clone(), self.env.can_listen, family);
        Ok(self.table.push(socket)?)
    }
}

impl tcp::Host for Ctx {}

// The generated `tcp` bindings convert errors through the `network` interface
// whose type they use; the interface itself stays wasmtime-wasi's in the linker.
impl network::Host for Ctx {
    fn convert_error_code(&mut self, error: SocketError) -> wasmtime::Result<ErrorCode> {
        error.downcast()
    }

    fn network_error_code(
        &mut self,
        _err: Resource<wasmtime::Error>,
    ) -> wasmtime::Result<Option<ErrorCode>> {
        Ok(None)
    }
}

impl network::HostNetwork for Ctx {
    fn drop(&mut self, this: Resource<Network>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

/// A socket option's getter and setter: the setter refuses values `valid` rejects
/// with `invalid-argument`.
macro_rules! option {
    ($get:ident, $set:ident, $field:ident: $ty:ty, $valid:expr) => {
        fn $get(&mut self, this: Resource<VirtualTcpSocket>) -> SocketResult<$ty> {
            Ok(self.table.get(&this)?.$field)
        }

        fn $set(&mut self, this: Resource<VirtualTcpSocket>, value: $ty) -> SocketResult<()> {
            let valid: fn($ty) -> bool = $valid;
            if !valid(value) {
                return Err(ErrorCode::InvalidArgument.into());
            }
            self.table.get_mut(&this)?.$field = value;
            Ok(())
        }
    };
}

impl tcp::HostTcpSocket for Ctx {
    fn start_bind(
        &mut self,
        this: Resource<VirtualTcpSocket>,
        network: Resource<Network>,
        local_address: IpSocketAddress,
    ) -> SocketResult<()> {
        self.table.get(&network)?;
        let socket = self.table.get_mut(&this)?;
        if socket.pending.is_some() {
            return Err(ErrorCode::ConcurrencyConflict.into());
        }
        if !matches!(socket.state, State::Unbound) {
            return Err(ErrorCode::InvalidState.into());
        }
        let addr: SocketAddr = local_address.into();
        if VirtualTcpSocket::family_of(&addr) != socket.family {
            return Err(ErrorCode::InvalidArgument.into());
        }
        if !addr.ip().is_unspecified() && !VirtualTcpSocket::is_loopback(addr.ip()) {
            return Err(ErrorCode::AddressNotBindable.into());
        }
        let port = socket.net()?.bind(addr.port())?;
        socket.port = Some(port);
        let mut local = socket.loopback();
        local.set_port(port);
        socket.state = State::Bound(local);
        socket.pending = Some(Pending::Bind);
        Ok(())
    }

    fn finish_bind(&mut self, this: Resource<VirtualTcpSocket>) -> SocketResult<()> {
        let socket = self.table.get_mut(&this)?;
        match socket.pending.take() {
            Some(Pending::Bind) => Ok(()),
            other => {
                socket.pending = other;
                Err(ErrorCode::NotInProgress.into())
            }
        }
    }

    fn start_connect(
        &mut self,
        this: Resource<VirtualTcpSocket>,
        network: Resource<Network>,
        remote_address: IpSocketAddress,
    ) -> SocketResult<()> {
        self.table.get(&network)?;
        let socket = self.table.get_mut(&this)?;
        if socket.pending.is_some() {
            return Err(ErrorCode::ConcurrencyConflict.into());
        }
        let remote: SocketAddr = remote_address.into();
        if VirtualTcpSocket::family_of(&remote) != socket.family || remote.port() == 0 {
            return Err(ErrorCode::InvalidArgument.into());
        }
        if remote.ip().is_unspecified() {
            return Err(ErrorCode::InvalidArgument.into());
        }
        if !VirtualTcpSocket::is_loopback(remote.ip()) {
            // Guests reach the outside through wasi:http and capabilities, never
            // through raw sockets.
            return Err(ErrorCode::AccessDenied.into());
        }
        let local = match socket.state {
            State::Unbound => socket.bind_ephemeral()?,
            State::Bound(a) => a,
            _ => return Err(ErrorCode::InvalidState.into()),
        };
        let result = socket
            .net()?
            .connect(remote.port(), local)
            .map(|(r, w)| (remote, r, w));
        socket.pending = Some(Pending::Connect(result));
        Ok(())
    }

    fn finish_connect(
        &mut self,
        this: Resource<VirtualTcpSocket>,
    ) -> SocketResult<(Resource<DynInputStream>, Resource<DynOutputStream>)> {
        let socket = self.table.get_mut(&this)?;
        let (remote, reader, writer) = match socket.pending.take() {
            Some(Pending::Connect(result)) => result?,
            other => {
                socket.pending = other;
                return Err(ErrorCode::NotInProgress.into());
            }
        };
        let local = socket.local()?;
        socket.state = State::Connected { local, remote };
        Ok(new_streams(self, reader, writer)?)
    }

    fn start_listen(&mut self, this: Resource<VirtualTcpSocket>) -> SocketResult<()> {
        let socket = self.table.get_mut(&this)?;
        if socket.pending.is_some() {
            return Err(ErrorCode::ConcurrencyConflict.into());
        }
        if !socket.can_listen {
            // Components answer requests; only a workload's service listens.
            return Err(ErrorCode::AccessDenied.into());
        }
        let local = match socket.state {
            State::Bound(a) => a,
            State::Unbound => socket.bind_ephemeral()?,
            _ => return Err(ErrorCode::InvalidState.into()),
        };
        let incoming = socket.net()?.listen(local.port(), socket.backlog)?;
        socket.state = State::Listening {
            local,
            incoming,
            next: None,
        };
        socket.pending = Some(Pending::Listen);
        Ok(())
    }

    fn finish_listen(&mut self, this: Resource<VirtualTcpSocket>) -> SocketResult<()> {
        let socket = self.table.get_mut(&this)?;
        match socket.pending.take() {
            Some(Pending::Listen) => Ok(()),
            other => {
                socket.pending = other;
                Err(ErrorCode::NotInProgress.into())
            }
        }
    }

    fn accept(
        &mut self,
        this: Resource<VirtualTcpSocket>,
    ) -> SocketResult<(
        Resource<VirtualTcpSocket>,
        Resource<DynInputStream>,
        Resource<DynOutputStream>,
    )> {
        let socket = self.table.get_mut(&this)?;
        let State::Listening {
            local,
            incoming,
            next,
        } = &mut socket.state
        else {
            return Err(ErrorCode::InvalidState.into());
        };
        let conn = match next.take() {
            Some(c) => c,
            None => incoming.try_recv().map_err(|_| ErrorCode::WouldBlock)?,
        };
        let mut accepted = VirtualTcpSocket::new(socket.net.clone(), false, socket.family);
        accepted.state = State::Connected {
            local: *local,
            remote: conn.remote,
        };
        let accepted = self.table.push(accepted)?;
        let (input, output) = new_streams(self, conn.reader, conn.writer)?;
        Ok((accepted, input, output))
    }

    fn local_address(&mut self, this: Resource<VirtualTcpSocket>) -> SocketResult<IpSocketAddress> {
        Ok(self.table.get(&this)?.local()?.into())
    }

    fn remote_address(
        &mut self,
        this: Resource<VirtualTcpSocket>,
    ) -> SocketResult<IpSocketAddress> {
        match self.table.get(&this)?.state {
            State::Connected { remote, .. } => Ok(remote.into()),
            _ => Err(ErrorCode::InvalidState.into()),
        }
    }

    fn is_listening(&mut self, this: Resource<VirtualTcpSocket>) -> wasmtime::Result<bool> {
        Ok(matches!(
            self.table.get(&this)?.state,
            State::Listening { .. }
        ))
    }

    fn address_family(
        &mut self,
        this: Resource<VirtualTcpSocket>,
    ) -> wasmtime::Result<IpAddressFamily> {
        Ok(self.table.get(&this)?.family)
    }

    fn set_listen_backlog_size(
        &mut self,
        this: Resource<VirtualTcpSocket>,
        value: u64,
    ) -> SocketResult<()> {
        if value == 0 {
            return Err(ErrorCode::InvalidArgument.into());
        }
        let socket = self.table.get_mut(&this)?;
        if matches!(socket.state, State::Listening { .. }) {
            return Err(ErrorCode::InvalidState.into());
        }
        socket.backlog = usize::try_from(value).unwrap_or(usize::MAX);
        Ok(())
    }

    // Options: kept and reported, with no effect on an in-memory connection.
    option!(keep_alive_enabled, set_keep_alive_enabled, keep_alive: bool, |_| true);
    option!(keep_alive_idle_time, set_keep_alive_idle_time, keep_alive_idle: u64, |v| v > 0);
    option!(keep_alive_interval, set_keep_alive_interval, keep_alive_interval: u64, |v| v > 0);
    option!(keep_alive_count, set_keep_alive_count, keep_alive_count: u32, |v| v > 0);
    option!(hop_limit, set_hop_limit, hop_limit: u8, |v| v > 0);
    option!(receive_buffer_size, set_receive_buffer_size, receive_buffer: u64, |v| v > 0);
    option!(send_buffer_size, set_send_buffer_size, send_buffer: u64, |v| v > 0);

    fn subscribe(
        &mut self,
        this: Resource<VirtualTcpSocket>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        wasmtime_wasi::p2::subscribe(&mut self.table, this)
    }

    fn shutdown(
        &mut self,
        this: Resource<VirtualTcpSocket>,
        _how: tcp::ShutdownType,
    ) -> SocketResult<()> {
        // The streams belong to the guest as their own resources; dropping them
        // closes each direction. Shutdown only checks the state.
        match self.table.get(&this)?.state {
            State::Connected { .. } => Ok(()),
            _ => Err(ErrorCode::InvalidState.into()),
        }
    }

    fn drop(&mut self, this: Resource<VirtualTcpSocket>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}
