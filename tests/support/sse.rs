//! Reads a server-sent-events stream in the background and hands over each frame's data, so a
//! test can wait for the frames it expects while it does other requests.

use std::time::Duration;

use anyhow::{bail, Context};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// A frame's data, or why the stream broke, with when it was read off the socket.
type Item = (Instant, Result<String, String>);

pub struct Stream {
    rx: mpsc::UnboundedReceiver<Item>,
    task: JoinHandle<()>,
    /// Every frame received so far, for failure messages.
    pub seen: Vec<String>,
    /// When each frame of `seen` arrived.
    pub arrived: Vec<Instant>,
}

impl Stream {
    /// Sends `req`, checks for a 200 `text/event-stream` answer, then reads frames.
    pub async fn open(req: reqwest::RequestBuilder, what: &str) -> anyhow::Result<Stream> {
        let resp = tokio::time::timeout(Duration::from_secs(10), req.send())
            .await
            .with_context(|| format!("{what}: no response headers within 10 s"))?
            .with_context(|| format!("{what}: request failed"))?;
        let status = resp.status().as_u16();
        let ctype = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        if status != 200 || !ctype.starts_with("text/event-stream") {
            let body = resp.text().await.unwrap_or_default();
            bail!("{what}: expected 200 text/event-stream, got HTTP {status} `{ctype}`: {body}");
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(read_frames(resp, tx));
        Ok(Stream {
            rx,
            task,
            seen: Vec::new(),
            arrived: Vec::new(),
        })
    }

    /// The next frame's data, or an error when the stream ends or `limit` passes.
    pub async fn next(&mut self, limit: Duration) -> anyhow::Result<String> {
        match tokio::time::timeout(limit, self.rx.recv()).await {
            Ok(Some((at, Ok(data)))) => {
                self.seen.push(data.clone());
                self.arrived.push(at);
                Ok(data)
            }
            Ok(Some((_, Err(e)))) => bail!("the stream broke: {e}"),
            Ok(None) => bail!("the stream ended"),
            Err(_) => bail!("no frame within {limit:?}"),
        }
    }

    /// Reads frames until one parses as JSON and satisfies `pred`; returns it.
    pub async fn until_json(
        &mut self,
        what: &str,
        limit: Duration,
        mut pred: impl FnMut(&serde_json::Value) -> bool,
    ) -> anyhow::Result<serde_json::Value> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let data = self.next(left).await.with_context(|| {
                format!(
                    "waiting for {what}; frames so far:\n{}",
                    super::process::tail(&self.seen.join("\n"), 6000)
                )
            })?;
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&data) {
                if pred(&v) {
                    return Ok(v);
                }
            }
        }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// SSE framing: `data:` lines of one event joined by newlines, the event ends at a blank line;
/// comments (`: keep-alive`) and other fields are skipped.
async fn read_frames(mut resp: reqwest::Response, tx: mpsc::UnboundedSender<Item>) {
    let mut buf: Vec<u8> = Vec::new();
    let mut data: Vec<String> = Vec::new();
    loop {
        let chunk = match resp.chunk().await {
            Ok(Some(c)) => c,
            Ok(None) => return,
            Err(e) => {
                let _ = tx.send((Instant::now(), Err(e.to_string())));
                return;
            }
        };
        buf.extend_from_slice(&chunk);
        while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            let raw: Vec<u8> = buf.drain(..=pos).collect();
            let line = String::from_utf8_lossy(&raw);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if !data.is_empty() && tx.send((Instant::now(), Ok(data.join("\n")))).is_err() {
                    return;
                }
                data.clear();
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push(v.strip_prefix(' ').unwrap_or(v).to_string());
            }
        }
    }
}
