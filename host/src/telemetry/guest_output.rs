//! Guests' stdout and stderr into the host's tracing, line by line.

use crate::env::ComponentEnv;
use crate::telemetry::trace::{KeyValue, SpanSlot};
use std::sync::Arc;

/// A guest's stdout or stderr: each line becomes one event of the host's tracing
/// (target `guest`, with `app`, `component` and `stream`; stderr at `warn`). A
/// line longer than [`MAX_LINE`] is cut into pieces, so a guest that never writes
/// a newline cannot grow the host's memory. Each line is also an event of the
/// invocation's span.
#[derive(Clone)]
pub struct GuestOutput {
    env: Arc<ComponentEnv>,
    stderr: bool,
    span: SpanSlot,
}

/// The longest line kept before it is logged in pieces.
pub const MAX_LINE: usize = 8 * 1024;

impl GuestOutput {
    pub fn stdout(env: Arc<ComponentEnv>, span: SpanSlot) -> Self {
        Self {
            env,
            stderr: false,
            span,
        }
    }

    pub fn stderr(env: Arc<ComponentEnv>, span: SpanSlot) -> Self {
        Self {
            env,
            stderr: true,
            span,
        }
    }

    fn emit(&self, line: &[u8]) {
        let line = String::from_utf8_lossy(line);
        let line = line.trim_end_matches('\r');
        let (app, component) = (&self.env.app, &self.env.component);
        let stream = if self.stderr { "stderr" } else { "stdout" };
        self.env.logs.send(app, component, stream, line);
        if let Some(span) = self.span.get() {
            span.event(
                "guest output",
                vec![
                    KeyValue::new("log.iostream", stream),
                    KeyValue::new("log.record.original", line.to_owned()),
                ],
            );
        }
        if self.stderr {
            tracing::warn!(target: "guest", app = %app, component = %component, stream = "stderr", "{line}");
        } else {
            tracing::info!(target: "guest", app = %app, component = %component, stream = "stdout", "{line}");
        }
    }
}

impl wasmtime_wasi::cli::IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl wasmtime_wasi::cli::StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(Lines {
            out: self.clone(),
            pending: Vec::new(),
        })
    }
}

/// Splits what a guest writes into lines.
struct Lines {
    out: GuestOutput,
    pending: Vec<u8>,
}

impl Lines {
    fn push(&mut self, bytes: &[u8]) {
        let out = &self.out;
        split_lines(&mut self.pending, bytes, |line| out.emit(line));
    }

    fn finish(&mut self) {
        if !self.pending.is_empty() {
            self.out.emit(&self.pending);
            self.pending.clear();
        }
    }
}

impl tokio::io::AsyncWrite for Lines {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.push(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.finish();
        std::task::Poll::Ready(Ok(()))
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Hand every complete line of `pending` + `bytes` to `emit` (without its
/// newline), and any [`MAX_LINE`] bytes without one; keep the rest in `pending`.
fn split_lines(pending: &mut Vec<u8>, mut bytes: &[u8], mut emit: impl FnMut(&[u8])) {
    while let Some(end) = bytes.iter().position(|b| *b == b'\n') {
        if pending.is_empty() {
            emit(&bytes[..end]);
        } else {
            pending.extend_from_slice(&bytes[..end]);
            emit(pending);
            pending.clear();
        }
        bytes = &bytes[end + 1..];
    }
    pending.extend_from_slice(bytes);
    while pending.len() >= MAX_LINE {
        let rest = pending.split_off(MAX_LINE);
        emit(pending);
        *pending = rest;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(writes: &[&[u8]]) -> (Vec<String>, Vec<u8>) {
        let mut pending = Vec::new();
        let mut out = Vec::new();
        for w in writes {
            split_lines(&mut pending, w, |l| {
                out.push(String::from_utf8_lossy(l).into_owned())
            });
        }
        (out, pending)
    }

    #[test]
    fn writes_become_lines() {
        let (out, rest) = lines(&[b"hel", b"lo\nwor", b"ld\n\nlast"]);
        assert_eq!(out, ["hello", "world", ""]);
        assert_eq!(rest, b"last");
    }

    #[test]
    fn endless_lines_are_cut() {
        let long = vec![b'x'; MAX_LINE * 2 + 10];
        let (out, rest) = lines(&[&long]);
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|l| l.len() == MAX_LINE));
        assert_eq!(rest.len(), 10);
    }
}
