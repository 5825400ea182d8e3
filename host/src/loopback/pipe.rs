//! One direction of a virtual TCP connection: a bounded in-memory byte buffer with a
//! `wasi:io` input stream on one end and an output stream on the other. No task and
//! no channel per connection: a write wakes the reader directly.

use bytes::{Bytes, BytesMut};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;
use wasmtime_wasi::async_trait;
use wasmtime_wasi::p2::{InputStream, OutputStream, Pollable, StreamError, StreamResult};

/// Bytes one direction buffers before the writer must wait.
pub const CAPACITY: usize = 64 * 1024;

struct Shared {
    state: Mutex<State>,
    readable: Notify,
    writable: Notify,
}

struct State {
    buf: BytesMut,
    writer_open: bool,
    reader_open: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The reading end.
pub struct PipeReader(Arc<Shared>);

/// The writing end.
pub struct PipeWriter(Arc<Shared>);

/// A fresh pipe.
pub fn pipe() -> (PipeWriter, PipeReader) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            buf: BytesMut::new(),
            writer_open: true,
            reader_open: true,
        }),
        readable: Notify::new(),
        writable: Notify::new(),
    });
    (PipeWriter(shared.clone()), PipeReader(shared))
}

impl Drop for PipeReader {
    fn drop(&mut self) {
        self.0.lock().reader_open = false;
        self.0.writable.notify_one();
    }
}

impl Drop for PipeWriter {
    fn drop(&mut self) {
        self.0.lock().writer_open = false;
        self.0.readable.notify_one();
    }
}

impl InputStream for PipeReader {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        let mut state = self.0.lock();
        if state.buf.is_empty() {
            return if state.writer_open {
                Ok(Bytes::new())
            } else {
                Err(StreamError::Closed)
            };
        }
        let n = size.min(state.buf.len());
        let out = state.buf.split_to(n).freeze();
        drop(state);
        self.0.writable.notify_one();
        Ok(out)
    }
}

#[async_trait]
impl Pollable for PipeReader {
    async fn ready(&mut self) {
        loop {
            let notified = self.0.readable.notified();
            {
                let state = self.0.lock();
                if !state.buf.is_empty() || !state.writer_open {
                    return;
                }
            }
            notified.await;
        }
    }
}

impl OutputStream for PipeWriter {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        let mut state = self.0.lock();
        if !state.reader_open {
            return Err(StreamError::Closed);
        }
        if bytes.len() > CAPACITY - state.buf.len() {
            return Err(StreamError::trap(
                "write exceeds the budget check-write gave",
            ));
        }
        state.buf.extend_from_slice(&bytes);
        drop(state);
        self.0.readable.notify_one();
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        let state = self.0.lock();
        if !state.reader_open {
            return Err(StreamError::Closed);
        }
        Ok(CAPACITY - state.buf.len())
    }
}

#[async_trait]
impl Pollable for PipeWriter {
    async fn ready(&mut self) {
        loop {
            let notified = self.0.writable.notified();
            {
                let state = self.0.lock();
                if state.buf.len() < CAPACITY || !state.reader_open {
                    return;
                }
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bytes_flow_and_close_is_seen() {
        let (mut w, mut r) = pipe();
        assert_eq!(r.read(10).unwrap(), Bytes::new());
        assert_eq!(w.check_write().unwrap(), CAPACITY);
        w.write(Bytes::from_static(b"hello")).unwrap();
        r.ready().await;
        assert_eq!(r.read(3).unwrap(), Bytes::from_static(b"hel"));
        assert_eq!(r.read(10).unwrap(), Bytes::from_static(b"lo"));
        drop(w);
        r.ready().await;
        assert!(matches!(r.read(1), Err(StreamError::Closed)));
    }

    #[tokio::test]
    async fn a_full_pipe_makes_the_writer_wait_until_read() {
        let (mut w, mut r) = pipe();
        w.write(Bytes::from(vec![0; CAPACITY])).unwrap();
        assert_eq!(w.check_write().unwrap(), 0);
        assert!(w.write(Bytes::from_static(b"x")).is_err());
        let waiting = tokio::spawn(async move {
            w.ready().await;
            w.check_write().unwrap()
        });
        tokio::task::yield_now().await;
        assert_eq!(r.read(100).unwrap().len(), 100);
        assert_eq!(waiting.await.unwrap(), 100);
        drop(r);
    }
}
