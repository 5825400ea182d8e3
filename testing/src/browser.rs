//! A real headless Chromium (Debian's `chromium`), driven over the DevTools
//! protocol: open a page, evaluate JavaScript in it, take a screenshot. Killed on
//! drop, with its profile folder.

use base64::Engine as _;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Where Debian's package puts it.
pub const CHROMIUM: &str = "/usr/bin/chromium";

pub struct Browser {
    child: Child,
    socket: Socket,
    next_id: u64,
    _profile: tempfile::TempDir,
}

/// One open tab.
pub struct Page {
    session: String,
}

impl Browser {
    /// Start Chromium headless with the flags this machine's closed network needs.
    pub async fn start() -> Self {
        let profile = tempfile::tempdir().unwrap();
        let child = Command::new(CHROMIUM)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-port=0",
                "--window-size=1280,900",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {CHROMIUM} (scripts/install-deps.sh installs it): {e}")
            });
        let url = devtools_url(profile.path()).await;
        let (socket, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .unwrap();
        Self {
            child,
            socket,
            next_id: 0,
            _profile: profile,
        }
    }

    /// Send one DevTools command (to a page's session, or the browser) and wait
    /// for its answer (events in between are skipped).
    pub async fn command(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            msg["sessionId"] = json!(session);
        }
        self.socket
            .send(Message::Text(msg.to_string().into()))
            .await
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let next = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .unwrap_or_else(|_| panic!("Chromium did not answer {method} within 30 s"));
            let Some(Ok(Message::Text(text))) = next else {
                continue;
            };
            let answer: Value = serde_json::from_str(&text).unwrap();
            if answer["id"] == json!(id) {
                assert!(answer.get("error").is_none(), "{method} failed: {answer}");
                return answer["result"].clone();
            }
        }
    }

    /// Open `url` in a new tab.
    pub async fn open(&mut self, url: &str) -> Page {
        let target = self
            .command(None, "Target.createTarget", json!({ "url": url }))
            .await;
        let attached = self
            .command(
                None,
                "Target.attachToTarget",
                json!({ "targetId": target["targetId"], "flatten": true }),
            )
            .await;
        Page {
            session: attached["sessionId"].as_str().unwrap().to_owned(),
        }
    }

    /// The value of `expression` in `page` (JSON).
    pub async fn eval(&mut self, page: &Page, expression: &str) -> Value {
        let result = self
            .command(
                Some(&page.session),
                "Runtime.evaluate",
                json!({ "expression": expression, "returnByValue": true }),
            )
            .await;
        result["result"]["value"].clone()
    }

    /// Wait until `expression` is true in `page`.
    pub async fn wait_for(&mut self, page: &Page, expression: &str, deadline: Duration) {
        let until = Instant::now() + deadline;
        while self.eval(page, expression).await != json!(true) {
            assert!(
                Instant::now() < until,
                "{expression} never held; the page says: {}",
                self.eval(page, "document.body.innerText").await
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// A PNG of what `page` shows.
    pub async fn screenshot(&mut self, page: &Page) -> Vec<u8> {
        let shot = self
            .command(
                Some(&page.session),
                "Page.captureScreenshot",
                json!({ "format": "png" }),
            )
            .await;
        base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The browser's DevTools address, from the file Chromium writes in its profile.
async fn devtools_url(profile: &Path) -> String {
    let file = profile.join("DevToolsActivePort");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(text) = std::fs::read_to_string(&file) {
            let mut lines = text.lines();
            if let (Some(port), Some(path)) = (lines.next(), lines.next()) {
                return format!("ws://127.0.0.1:{port}{path}");
            }
        }
        assert!(
            Instant::now() < deadline,
            "Chromium wrote no {}",
            file.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
