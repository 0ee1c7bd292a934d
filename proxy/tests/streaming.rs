//! Responses stream through the proxy: SSE events and chunks arrive when they are sent, a
//! 1 GiB download passes with bounded proxy memory (and Range works), and a WebSocket stays
//! usable after 75 s of silence (longer than Pingora's 60 s default read timeout).
//!
//! The tests in this file run concurrently, so the 75 s idle overlaps the others.

mod support;

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use futures_util::{SinkExt, StreamExt};
use support::proxy::Proxy;
use support::upstream::{expected_slice, pattern_for_checks, Upstream, GIB, PATTERN_CHECK_MAX};
use tokio_tungstenite::tungstenite::Message;

/// The proxy's peak RSS budget while streaming 1 GiB.
const RSS_LIMIT_KIB: u64 = 64 * 1024;

async fn proxy_for(app: &Upstream, name: &str) -> anyhow::Result<Proxy> {
    Proxy::builder()
        .route_file(
            "apps-routes.yml",
            support::embed_app_routes_with(
                name,
                &app.url(),
                &["iframe-headers"],
                "    iframe-headers:\n      headers:\n        customResponseHeaders:\n          X-Frame-Options: \"\"\n",
            ),
        )
        .start()
        .await
}

/// Reads a streamed body and returns each item split by `sep` with the time it arrived.
async fn timed_items(
    resp: reqwest::Response,
    sep: &str,
    limit: Duration,
) -> anyhow::Result<Vec<(String, Instant)>> {
    let mut stream = resp.bytes_stream();
    let mut buf = String::new();
    let mut items = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let next = tokio::time::timeout_at(deadline, stream.next())
            .await
            .context("stream did not finish in time")?;
        let Some(chunk) = next else { break };
        let chunk = chunk.context("reading the streamed body")?;
        let now = Instant::now();
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(pos) = buf.find(sep) {
            let item: String = buf.drain(..pos + sep.len()).collect();
            items.push((item, now));
        }
    }
    if !buf.is_empty() {
        items.push((buf, Instant::now()));
    }
    Ok(items)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_events_arrive_when_sent_not_at_the_end() -> anyhow::Result<()> {
    let app = Upstream::start("events").await?;
    let proxy = proxy_for(&app, "events").await?;
    let gap = Duration::from_millis(500);
    let n = 6u32;
    let started = Instant::now();
    let resp = support::client()?
        .get(proxy.url(&format!(
            "/embed/events/sse?n={n}&gap_ms={}",
            gap.as_millis()
        )))
        .header("accept", "text/event-stream")
        .send()
        .await
        .context("GET sse")?;
    ensure!(resp.status().as_u16() == 200, "status {}", resp.status());
    let ctype = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    ensure!(
        ctype.starts_with("text/event-stream"),
        "content-type {ctype:?}"
    );
    let events = timed_items(resp, "\n\n", Duration::from_secs(30)).await?;
    ensure!(
        events.len() == n as usize,
        "expected {n} events, got {events:?}"
    );
    for (i, (text, _)) in events.iter().enumerate() {
        ensure!(
            text.contains(&format!("data: event {i}\n")),
            "event {i}: {text:?}"
        );
    }
    let first = events[0].1.duration_since(started);
    let total = gap * (n - 1);
    ensure!(
        first < total / 2,
        "the first event arrived after {first:?}; it was sent at once, the stream ends after {total:?}"
    );
    // Spread over time as sent (robust to one late event on a loaded machine): a buffering
    // proxy delivers them all within a few milliseconds of each other.
    let spread = events[events.len() - 1].1.duration_since(events[0].1);
    ensure!(
        spread >= total / 2,
        "the events arrived within {spread:?} of each other, but were sent over {total:?}: buffered"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_body_is_forwarded_chunk_by_chunk() -> anyhow::Result<()> {
    let app = Upstream::start("chunks").await?;
    let proxy = proxy_for(&app, "chunks").await?;
    let n = 5u32;
    let gap = Duration::from_millis(400);
    let started = Instant::now();
    let resp = support::client()?
        .get(proxy.url(&format!(
            "/embed/chunks/chunked?n={n}&gap_ms={}&size=32",
            gap.as_millis()
        )))
        .send()
        .await?;
    ensure!(resp.status().as_u16() == 200, "status {}", resp.status());
    let items = timed_items(resp, "|", Duration::from_secs(30)).await?;
    // Each chunk is "chunk-NNNN|" followed by padding; padding ends up in the next item.
    let joined: String = items.iter().map(|(t, _)| t.as_str()).collect();
    let expected: String = (0..n)
        .map(|i| format!("chunk-{i:04}|{}", ".".repeat(32 - 11)))
        .collect();
    ensure!(
        joined == expected,
        "body changed:\n{joined:?}\n{expected:?}"
    );
    let first = items[0].1.duration_since(started);
    ensure!(
        first < gap * (n - 1) / 2,
        "first chunk arrived after {first:?}: the body was buffered"
    );
    let last = items[n as usize - 1].1.duration_since(items[0].1);
    ensure!(
        last >= gap * (n - 1) / 2,
        "chunks sent over {:?} arrived within {last:?}: buffered",
        gap * (n - 1)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_still_echoes_after_75_s_idle() -> anyhow::Result<()> {
    let app = Upstream::start("wsapp").await?;
    let proxy = proxy_for(&app, "wsapp").await?;
    let url = format!("ws://{}/embed/wsapp/ws", proxy.web);
    let (mut ws, resp) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(url.as_str()),
    )
    .await
    .context("WebSocket handshake timed out")?
    .with_context(|| format!("WebSocket handshake with {url}"))?;
    ensure!(
        resp.status().as_u16() == 101,
        "handshake status {}",
        resp.status()
    );
    ensure!(
        app.paths().iter().any(|p| p == "/ws"),
        "upstream saw {:?}",
        app.paths()
    );

    async fn round_trip(
        ws: &mut tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
        >,
        msg: Message,
    ) -> anyhow::Result<()> {
        ws.send(msg.clone())
            .await
            .context("sending a WebSocket message")?;
        loop {
            let got = tokio::time::timeout(Duration::from_secs(10), ws.next())
                .await
                .context("no echo within 10 s")?
                .context("WebSocket closed before the echo")?
                .context("WebSocket read error")?;
            match got {
                Message::Ping(_) | Message::Pong(_) => continue,
                other => {
                    ensure!(other == msg, "echo mismatch: sent {msg:?}, got {other:?}");
                    return Ok(());
                }
            }
        }
    }

    round_trip(&mut ws, Message::Text("before idle".into())).await?;
    tokio::time::sleep(Duration::from_secs(75)).await;
    round_trip(&mut ws, Message::Text("after 75 s idle".into())).await?;
    let blob: Vec<u8> = (0..65536u32).map(|i| (i % 256) as u8).collect();
    round_trip(&mut ws, Message::Binary(blob.into())).await?;
    ws.close(None).await.context("closing the WebSocket")?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_gib_download_streams_with_bounded_proxy_memory() -> anyhow::Result<()> {
    let app = Upstream::start("files").await?;
    let proxy = proxy_for(&app, "files").await?;
    let rss_before = proxy.rss_kib()?;
    let pattern = pattern_for_checks();
    let started = Instant::now();
    let resp = support::client()?
        .get(proxy.url("/embed/files/large"))
        .timeout(Duration::from_secs(600))
        .send()
        .await
        .context("GET 1 GiB")?;
    ensure!(resp.status().as_u16() == 200, "status {}", resp.status());
    ensure!(
        resp.content_length() == Some(GIB),
        "Content-Length must pass through: {:?}",
        resp.headers().get("content-length")
    );
    let mut stream = resp.bytes_stream();
    let mut offset: u64 = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(540);
    let mut peak_during = 0;
    while let Some(chunk) = tokio::time::timeout_at(deadline, stream.next())
        .await
        .with_context(|| format!("download stalled or too slow at {offset} bytes"))?
    {
        let chunk = chunk.with_context(|| format!("download failed at {offset} bytes"))?;
        for piece in chunk.chunks(PATTERN_CHECK_MAX) {
            if piece != expected_slice(&pattern, offset, piece.len()) {
                bail!("downloaded bytes differ from the upstream's at offset {offset}");
            }
            offset += piece.len() as u64;
        }
        if offset % (64 << 20) < chunk.len() as u64 {
            peak_during = peak_during.max(proxy.rss_kib()?);
        }
    }
    let elapsed = started.elapsed();
    ensure!(offset == GIB, "received {offset} of {GIB} bytes");
    let hwm = proxy.peak_rss_kib()?;
    eprintln!(
        "1 GiB through bloud-proxy in {elapsed:.1?} ({:.0} MiB/s); proxy RSS before {rss_before} KiB, \
         sampled max during {peak_during} KiB, VmHWM {hwm} KiB",
        1024.0 / elapsed.as_secs_f64()
    );
    ensure!(
        hwm < RSS_LIMIT_KIB,
        "proxy peak RSS {hwm} KiB exceeds {RSS_LIMIT_KIB} KiB: the download was buffered"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_requests_on_a_large_file_pass_through() -> anyhow::Result<()> {
    let app = Upstream::start("files").await?;
    let proxy = proxy_for(&app, "files").await?;
    let pattern = pattern_for_checks();
    let client = support::client()?;
    for (start, end) in [(0u64, 0u64), (1_000_000, 1_000_999), (GIB - 4096, GIB - 1)] {
        let resp = client
            .get(proxy.url("/embed/files/large"))
            .header("range", format!("bytes={start}-{end}"))
            .send()
            .await?;
        ensure!(
            resp.status().as_u16() == 206,
            "{start}-{end}: status {}",
            resp.status()
        );
        let range = resp
            .headers()
            .get("content-range")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        ensure!(
            range == format!("bytes {start}-{end}/{GIB}"),
            "{start}-{end}: Content-Range {range:?}"
        );
        let body = resp.bytes().await?;
        let len = (end - start + 1) as usize;
        ensure!(body.len() == len, "{start}-{end}: {} bytes", body.len());
        ensure!(
            body.as_ref() == expected_slice(&pattern, start, len),
            "{start}-{end}: wrong bytes"
        );
    }
    let resp = client.head(proxy.url("/embed/files/large")).send().await?;
    ensure!(
        resp.status().as_u16() == 200,
        "HEAD status {}",
        resp.status()
    );
    ensure!(
        resp.headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            == Some(GIB.to_string().as_str()),
        "HEAD Content-Length: {:?}",
        resp.headers()
    );
    Ok(())
}
