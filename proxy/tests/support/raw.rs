//! A raw TCP HTTP/1.1 client: sends bytes exactly as given (no path normalisation, no header
//! validation) and collects whatever comes back.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug)]
pub struct RawOutcome {
    pub bytes: Vec<u8>,
    /// The proxy closed (or reset) the connection; false when we stopped waiting instead.
    pub closed: bool,
}

impl RawOutcome {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    /// Status codes of every response found on the connection, in order.
    pub fn statuses(&self) -> Vec<u16> {
        let text = self.text();
        let mut out = Vec::new();
        let mut rest = text.as_str();
        let mut at_line_start = true;
        while !rest.is_empty() {
            if at_line_start && rest.starts_with("HTTP/1.") {
                if let Some(code) = rest.get(9..12).and_then(|c| c.parse::<u16>().ok()) {
                    out.push(code);
                }
            }
            let Some(nl) = rest.find('\n') else { break };
            rest = &rest[nl + 1..];
            at_line_start = true;
        }
        out
    }

    pub fn first_status(&self) -> Option<u16> {
        self.statuses().first().copied()
    }

    pub fn summary(&self) -> String {
        let text = self.text();
        let head: String = text.chars().take(300).collect();
        format!("closed={} response={head:?}", self.closed)
    }
}

/// Sends `request` and reads until the peer closes, `idle` passes without data, or `total`
/// elapses.
pub async fn send(
    addr: SocketAddr,
    request: &[u8],
    idle: Duration,
    total: Duration,
) -> anyhow::Result<RawOutcome> {
    let mut stream = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr))
        .await
        .with_context(|| format!("connecting to {addr} timed out"))?
        .with_context(|| format!("connecting to {addr}"))?;
    // A proxy may reject and close before reading everything we send; that is a valid answer.
    let write_ok = stream.write_all(request).await.is_ok();
    let _ = stream.flush().await;

    let deadline = tokio::time::Instant::now() + total;
    let mut bytes = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut closed = !write_ok;
    loop {
        let now = tokio::time::Instant::now();
        if now >= deadline {
            break;
        }
        let wait = idle.min(deadline - now);
        match tokio::time::timeout(wait, stream.read(&mut buf)).await {
            Ok(Ok(0)) => {
                closed = true;
                break;
            }
            Ok(Ok(n)) => bytes.extend_from_slice(&buf[..n]),
            Ok(Err(_)) => {
                closed = true;
                break;
            }
            Err(_) => break,
        }
    }
    Ok(RawOutcome { bytes, closed })
}

/// `send` with defaults suited to one request that ends with `Connection: close`.
pub async fn send_default(addr: SocketAddr, request: &[u8]) -> anyhow::Result<RawOutcome> {
    send(
        addr,
        request,
        Duration::from_millis(2000),
        Duration::from_secs(10),
    )
    .await
}
