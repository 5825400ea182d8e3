//! The host's control lines on the provider's stdin: `init` first, then `links`
//! and `shutdown`; end of input means the host is gone.

use crate::ProviderError;
use lattice_protocol::provider::{ProviderInit, ProviderMessage};
use lattice_protocol::CodecError;
use std::io::BufRead;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::mpsc;

/// Lines as they arrive; the channel closes at end of input.
pub(crate) type Lines = mpsc::UnboundedReceiver<std::io::Result<String>>;

/// The process's stdin, read on a thread of its own: a blocking read cannot be
/// cancelled, and one on tokio's blocking pool would keep the runtime from shutting
/// down after `shutdown` while the host keeps stdin open.
pub(crate) fn stdin() -> Result<Lines, ProviderError> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::Builder::new()
        .name("provider-stdin".into())
        .spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let failed = line.is_err();
                if tx.send(line).is_err() || failed {
                    return;
                }
            }
        })
        .map_err(|source| ProviderError::Stdin { source })?;
    Ok(rx)
}

/// Any reader's lines (tests, embedding).
pub(crate) fn reader(input: impl AsyncRead + Send + Unpin + 'static) -> Lines {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut lines = BufReader::new(input).lines();
        loop {
            let line = lines.next_line().await.transpose();
            let Some(line) = line else { return };
            let failed = line.is_err();
            if tx.send(line).is_err() || failed {
                return;
            }
        }
    });
    rx
}

/// The first message, which must be `init`.
pub(crate) async fn read_init(lines: &mut Lines) -> Result<ProviderInit, ProviderError> {
    loop {
        let line = match lines.recv().await {
            None => return Err(ProviderError::NoInit),
            Some(Err(source)) => return Err(ProviderError::Stdin { source }),
            Some(Ok(line)) => line,
        };
        if line.trim().is_empty() {
            continue;
        }
        return match parse(&line) {
            Ok(ProviderMessage::Init(init)) => Ok(init),
            Ok(other) => Err(ProviderError::NotInit { got: name(&other) }),
            Err(source) => Err(ProviderError::BadInit { source }),
        };
    }
}

pub(crate) fn parse(line: &str) -> Result<ProviderMessage, CodecError> {
    lattice_protocol::decode(line.trim().as_bytes())
}

pub(crate) fn name(message: &ProviderMessage) -> &'static str {
    match message {
        ProviderMessage::Init(_) => "init",
        ProviderMessage::Links { .. } => "links",
        ProviderMessage::Locality { .. } => "locality",
        ProviderMessage::Shutdown => "shutdown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    const INIT: &str = r#"{"v":1,"message":"init","lattice":"default","nats_url":"nats://127.0.0.1:4222","app":"counter","name":"kv","host_id":"NB"}"#;

    async fn first(text: &str) -> Result<ProviderInit, ProviderError> {
        let (mut tx, rx) = tokio::io::duplex(4096);
        tx.write_all(text.as_bytes()).await.unwrap();
        drop(tx);
        read_init(&mut reader(rx)).await
    }

    #[tokio::test]
    async fn init_comes_first_after_blank_lines() {
        let init = first(&format!("\n  \n{INIT}\n")).await.unwrap();
        assert_eq!((init.app.as_str(), init.name.as_str()), ("counter", "kv"));
        assert!(init.links.is_empty() && init.config.is_empty());
    }

    #[tokio::test]
    async fn anything_else_first_is_a_clear_error() {
        let e = first("{\"v\":1,\"message\":\"shutdown\"}\n")
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "the first message on stdin is `shutdown`, expected `init`"
        );
        let e = first("hello\n").await.unwrap_err();
        assert!(matches!(e, ProviderError::BadInit { .. }), "{e}");
        let e = first(r#"{"v":2,"message":"init"}"#).await.unwrap_err();
        assert!(e.to_string().contains("version"), "{e}");
        let e = first("").await.unwrap_err();
        assert!(matches!(e, ProviderError::NoInit), "{e}");
    }

    #[test]
    fn later_messages_parse() {
        assert_eq!(
            parse(" {\"v\":1,\"message\":\"links\",\"links\":[]} ").unwrap(),
            ProviderMessage::Links { links: vec![] }
        );
        assert!(parse(r#"{"v":1,"message":"reboot"}"#).is_err());
    }
}
