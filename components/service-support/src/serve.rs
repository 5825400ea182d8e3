//! One thread serving many TCP connections at once: nonblocking `std::net` sockets and a
//! `poll(2)` loop. On `wasm32-wasip2`, wasi-libc implements `poll` with
//! `wasi:io/poll.poll` over each socket's pollables, so the loop sleeps in the host until
//! a socket is ready. The same code runs natively, which is how its tests run.
//!
//! Every connection is read as fast as it sends: what the [`Service`] answers is kept
//! until the peer reads it, so a peer may write a whole message before reading the
//! reply without deadlocking, at the cost of buffering that reply in memory.

use std::convert::Infallible;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;

/// A protocol served over TCP: what to send back for the bytes a connection received.
pub trait Service {
    /// State kept per connection, such as a partial line.
    type Connection: Default;

    /// `data` arrived on `connection`; append what to send back to `reply`.
    fn received(&mut self, connection: &mut Self::Connection, data: &[u8], reply: &mut Vec<u8>);
}

/// The most one read takes from a connection before the others get their turn.
const READ_CHUNK: usize = 64 * 1024;

/// Accepts connections on `listener` and serves them all with `service`, forever.
///
/// A connection ends when its peer has closed its sending side and every reply is sent,
/// or on an I/O error (reported on stderr). Returns only if accepting or polling fails.
pub fn serve<S: Service>(listener: &TcpListener, service: &mut S) -> io::Result<Infallible> {
    listener.set_nonblocking(true)?;
    let mut clients: Vec<Client<S::Connection>> = Vec::new();
    let mut buffer = vec![0; READ_CHUNK];
    let mut fds = Vec::new();
    loop {
        fds.clear();
        fds.push(pollfd(listener, libc::POLLIN));
        fds.extend(
            clients
                .iter()
                .map(|client| pollfd(&client.stream, client.events())),
        );
        wait(&mut fds)?;

        // Serve the ready connections before accepting, so `fds[1..]` still lines up
        // with `clients`.
        let mut ready = fds[1..].iter().map(|fd| fd.revents != 0);
        clients.retain_mut(|client| match ready.next() {
            Some(true) => client.step(service, &mut buffer),
            _ => true,
        });
        if fds[0].revents != 0 {
            accept_all(listener, &mut clients)?;
        }
    }
}

struct Client<C> {
    stream: TcpStream,
    peer: Option<SocketAddr>,
    state: C,
    /// Reply bytes the peer has not taken yet.
    pending: Vec<u8>,
    /// The peer closed its sending side.
    eof: bool,
}

impl<C> Client<C> {
    fn events(&self) -> libc::c_short {
        let mut events = 0;
        if !self.eof {
            events |= libc::POLLIN;
        }
        if !self.pending.is_empty() {
            events |= libc::POLLOUT;
        }
        events
    }

    /// Reads one chunk and writes what is pending; false once the connection is done.
    fn step<S: Service<Connection = C>>(&mut self, service: &mut S, buffer: &mut [u8]) -> bool {
        if !self.eof {
            match self.stream.read(buffer) {
                Ok(0) => self.eof = true,
                Ok(n) => service.received(&mut self.state, &buffer[..n], &mut self.pending),
                Err(e) if is_transient(&e) => {}
                Err(e) => return self.fail("reading", &e),
            }
        }
        while !self.pending.is_empty() {
            match self.stream.write(&self.pending) {
                Ok(0) => return self.fail("writing", &ErrorKind::WriteZero.into()),
                Ok(n) => drop(self.pending.drain(..n)),
                Err(e) if is_transient(&e) => break,
                Err(e) => return self.fail("writing", &e),
            }
        }
        !(self.eof && self.pending.is_empty())
    }

    fn fail(&self, doing: &str, error: &io::Error) -> bool {
        match self.peer {
            Some(peer) => eprintln!("connection from {peer}: {doing}: {error}"),
            None => eprintln!("connection: {doing}: {error}"),
        }
        false
    }
}

fn accept_all<C: Default>(listener: &TcpListener, clients: &mut Vec<Client<C>>) -> io::Result<()> {
    loop {
        match listener.accept() {
            Ok((stream, peer)) => match stream.set_nonblocking(true) {
                Ok(()) => clients.push(Client {
                    stream,
                    peer: Some(peer),
                    state: C::default(),
                    pending: Vec::new(),
                    eof: false,
                }),
                Err(e) => eprintln!("connection from {peer}: making it nonblocking: {e}"),
            },
            Err(e) if is_transient(&e) => return Ok(()),
            // The peer gave up before we took the connection: not the listener's fault.
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
                ) => {}
            Err(e) => return Err(e),
        }
    }
}

fn is_transient(error: &io::Error) -> bool {
    matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted)
}

fn pollfd(socket: &impl AsRawFd, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd: socket.as_raw_fd(),
        events,
        revents: 0,
    }
}

/// Blocks until at least one of `fds` is ready.
fn wait(fds: &mut [libc::pollfd]) -> io::Result<()> {
    loop {
        // SAFETY: `fds` is an exclusively borrowed slice of initialized `pollfd`s and
        // `poll` touches no more than the `fds.len()` entries it is told about.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if ready >= 0 {
            return Ok(());
        }
        let error = io::Error::last_os_error();
        if error.kind() != ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Shutdown;

    struct Echo;

    impl Service for Echo {
        type Connection = ();
        fn received(&mut self, _: &mut (), data: &[u8], reply: &mut Vec<u8>) {
            reply.extend_from_slice(data);
        }
    }

    fn start_echo() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        // The thread lives until the test process exits.
        std::thread::spawn(move || serve(&listener, &mut Echo));
        address
    }

    fn read_exactly(stream: &mut TcpStream, n: usize) -> Vec<u8> {
        let mut bytes = vec![0; n];
        stream.read_exact(&mut bytes).unwrap();
        bytes
    }

    #[test]
    fn serves_a_second_connection_while_the_first_stays_open() {
        let address = start_echo();
        let mut first = TcpStream::connect(address).unwrap();
        first.write_all(b"first").unwrap();
        let mut second = TcpStream::connect(address).unwrap();
        second.write_all(b"second").unwrap();
        assert_eq!(read_exactly(&mut second, 6), b"second");
        assert_eq!(read_exactly(&mut first, 5), b"first");
    }

    #[test]
    fn echoes_a_large_message_written_before_reading_and_closes_after_eof() {
        let address = start_echo();
        let mut stream = TcpStream::connect(address).unwrap();
        let message: Vec<u8> = (0..4 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
        stream.write_all(&message).unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        let mut echoed = Vec::new();
        stream.read_to_end(&mut echoed).unwrap();
        assert!(
            echoed == message,
            "echoed {} of {} bytes",
            echoed.len(),
            message.len()
        );
    }
}
