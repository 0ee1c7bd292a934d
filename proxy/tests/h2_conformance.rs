//! HTTP/2 on the HTTPS entry point, by frames written by hand over TLS (no h2spec package is
//! installable here): frame size, HPACK and flow-control errors, RST_STREAM on an idle
//! stream, SETTINGS/PING floods and the rapid-reset flood (CVE-2023-44487) while another
//! client keeps being served; SSE streams and WebSockets (over HTTP/1.1) keep working.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use support::proxy::Proxy;
use support::tls::{
    catch_all_routes, connect, connector, h2_request, start_https, tls_yaml, TestCa,
};
use support::upstream::Upstream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0;
const HEADERS: u8 = 1;
const RST_STREAM: u8 = 3;
const SETTINGS: u8 = 4;
const PING: u8 = 6;
const GOAWAY: u8 = 7;
const WINDOW_UPDATE: u8 = 8;
const END_STREAM: u8 = 1;
const END_HEADERS: u8 = 4;

const PROTOCOL_ERROR: u32 = 1;
const FLOW_CONTROL_ERROR: u32 = 3;
const FRAME_SIZE_ERROR: u32 = 6;
const COMPRESSION_ERROR: u32 = 9;
const ENHANCE_YOUR_CALM: u32 = 0xb;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// `GET /` for `a.test`: static-table indexes (:method GET, :scheme https, :path /) and a
/// literal :authority without indexing, so every copy decodes alike.
fn get_headers_block() -> Vec<u8> {
    let mut b = vec![0x82, 0x87, 0x84, 0x01, 6];
    b.extend_from_slice(b"a.test");
    b
}

struct Site {
    ca: TestCa,
    proxy: Proxy,
    https: SocketAddr,
    upstream: Upstream,
}

async fn site() -> anyhow::Result<Site> {
    let ca = TestCa::new()?;
    let leaf = ca.leaf(&["a.test"], false)?;
    let upstream = Upstream::start("app").await?;
    let (proxy, https) = start_https(
        Proxy::builder()
            .route_file("routes.yml", catch_all_routes(&upstream.url()))
            .route_file("tls.yml", tls_yaml(&["a"], None)),
    )
    .await?;
    leaf.write(&proxy.routes_dir, "a")?;
    let before = proxy.reload_count().await?;
    proxy.sighup()?;
    let after = proxy.next_reload(before, Duration::from_secs(10)).await?;
    ensure!(after.success > before.success, "certificate not loaded");
    Ok(Site {
        ca,
        proxy,
        https,
        upstream,
    })
}

/// A TLS connection that negotiated h2, after the client preface and an empty SETTINGS.
async fn raw_h2(s: &Site) -> anyhow::Result<TlsStream<TcpStream>> {
    let tls = connector(&s.ca, &[b"h2"])?;
    let mut conn = connect(&tls, s.https, "a.test").await?;
    ensure!(
        conn.get_ref().1.alpn_protocol() == Some(&b"h2"[..]),
        "no h2"
    );
    conn.write_all(PREFACE).await?;
    conn.write_all(&frame(SETTINGS, 0, 0, &[])).await?;
    Ok(conn)
}

/// Reads frames until GOAWAY (its error code) or the end of the connection (`None`).
async fn goaway(conn: &mut TlsStream<TcpStream>, limit: Duration) -> anyhow::Result<Option<u32>> {
    let read = async {
        loop {
            let mut head = [0u8; 9];
            if conn.read_exact(&mut head).await.is_err() {
                return Ok(None);
            }
            let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
            let mut payload = vec![0u8; len];
            if conn.read_exact(&mut payload).await.is_err() {
                return Ok(None);
            }
            if head[3] == GOAWAY && payload.len() >= 8 {
                return Ok(Some(u32::from_be_bytes([
                    payload[4], payload[5], payload[6], payload[7],
                ])));
            }
        }
    };
    tokio::time::timeout(limit, read)
        .await
        .context("no GOAWAY and no close in time")?
}

async fn expect_goaway(s: &Site, frames: &[u8], code: u32, what: &str) -> anyhow::Result<()> {
    let mut conn = raw_h2(s).await?;
    conn.write_all(frames).await?;
    let got = goaway(&mut conn, Duration::from_secs(10)).await?;
    ensure!(
        got == Some(code),
        "{what}: expected GOAWAY with error {code:#x}, got {got:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_errors_close_the_connection_with_the_right_code() -> anyhow::Result<()> {
    let s = site().await?;
    // A frame over SETTINGS_MAX_FRAME_SIZE (16384 by default).
    let mut big = get_headers_block();
    big.resize(16385, 0);
    expect_goaway(
        &s,
        &frame(HEADERS, END_HEADERS | END_STREAM, 1, &big),
        FRAME_SIZE_ERROR,
        "oversized frame",
    )
    .await?;
    // PING must be 8 bytes long. RFC 9113 §6.7 asks for FRAME_SIZE_ERROR; the h2 crate
    // answers PROTOCOL_ERROR. Either way the connection ends with an error.
    let mut conn = raw_h2(&s).await?;
    conn.write_all(&frame(PING, 0, 0, &[0; 7])).await?;
    let got = goaway(&mut conn, Duration::from_secs(10)).await?;
    ensure!(
        matches!(got, Some(PROTOCOL_ERROR | FRAME_SIZE_ERROR)),
        "short PING: expected a GOAWAY with an error, got {got:?}"
    );
    // HPACK index 0 does not exist. RFC 9113 §4.3 asks for COMPRESSION_ERROR; the h2 crate
    // answers every HPACK decoding failure with PROTOCOL_ERROR. Either way the connection (and
    // its now unusable decoder state) ends.
    let mut conn = raw_h2(&s).await?;
    conn.write_all(&frame(HEADERS, END_HEADERS | END_STREAM, 1, &[0x80]))
        .await?;
    let got = goaway(&mut conn, Duration::from_secs(10)).await?;
    ensure!(
        matches!(got, Some(PROTOCOL_ERROR | COMPRESSION_ERROR)),
        "HPACK index 0: expected a GOAWAY with an error, got {got:?}"
    );
    // A window past 2^31-1.
    expect_goaway(
        &s,
        &frame(WINDOW_UPDATE, 0, 0, &0x7fff_ffffu32.to_be_bytes()),
        FLOW_CONTROL_ERROR,
        "connection window overflow",
    )
    .await?;
    // RST_STREAM of a stream never opened (idle).
    expect_goaway(
        &s,
        &frame(RST_STREAM, 0, 1, &8u32.to_be_bytes()),
        PROTOCOL_ERROR,
        "RST_STREAM on an idle stream",
    )
    .await?;
    // DATA on a stream never opened.
    expect_goaway(
        &s,
        &frame(DATA, 0, 1, b"x"),
        PROTOCOL_ERROR,
        "DATA on an idle stream",
    )
    .await?;
    // After all of that a well-behaved request is still answered.
    let mut conn = raw_h2(&s).await?;
    conn.write_all(&frame(
        HEADERS,
        END_HEADERS | END_STREAM,
        1,
        &get_headers_block(),
    ))
    .await?;
    let mut saw_headers = false;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && !saw_headers {
        let mut head = [0u8; 9];
        conn.read_exact(&mut head).await?;
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let mut payload = vec![0u8; len];
        conn.read_exact(&mut payload).await?;
        saw_headers =
            head[3] == HEADERS && u32::from_be_bytes([head[5], head[6], head[7], head[8]]) == 1;
    }
    ensure!(
        saw_headers,
        "a plain GET over hand-written frames got no response"
    );
    Ok(())
}

/// A client doing GETs over one HTTP/2 connection until stopped; its results.
struct Victim {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<anyhow::Result<(usize, Duration)>>,
}

impl Victim {
    async fn start(s: &Site) -> anyhow::Result<Victim> {
        let tls = connector(&s.ca, &[b"h2"])?;
        let conn = connect(&tls, s.https, "a.test").await?;
        let (mut send, conn) = h2::client::handshake(conn).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let mut n = 0;
            let mut worst = Duration::ZERO;
            while !flag.load(Ordering::Relaxed) {
                let t = Instant::now();
                let (status, _) = tokio::time::timeout(
                    Duration::from_secs(10),
                    h2_request(&mut send, "a.test", "/victim"),
                )
                .await
                .context("a victim request took over 10 s")??;
                ensure!(status == 200, "victim request answered {status}");
                worst = worst.max(t.elapsed());
                n += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Ok((n, worst))
        });
        Ok(Victim { stop, task })
    }

    async fn finish(self) -> anyhow::Result<(usize, Duration)> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.context("victim task")?
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rapid_reset_flood_is_cut_off_and_others_stay_served() -> anyhow::Result<()> {
    const ATTACKERS: usize = 4;
    const STREAMS: u32 = 5000;
    let s = site().await?;
    let victim = Victim::start(&s).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let served_before = s.upstream.count();

    let block = get_headers_block();
    let mut attacks = Vec::new();
    for _ in 0..ATTACKERS {
        let mut conn = raw_h2(&s).await?;
        let block = block.clone();
        attacks.push(tokio::spawn(async move {
            // Open and cancel stream after stream, in large writes, as the attack does.
            let mut sent = 0u32;
            let mut buf = Vec::new();
            for i in 0..STREAMS {
                let id = 2 * i + 1;
                buf.extend(frame(HEADERS, END_HEADERS | END_STREAM, id, &block));
                buf.extend(frame(RST_STREAM, 0, id, &8u32.to_be_bytes()));
                if buf.len() > 16 * 1024 {
                    if conn.write_all(&buf).await.is_err() {
                        break;
                    }
                    buf.clear();
                }
                sent = i + 1;
            }
            let _ = conn.write_all(&buf).await;
            let code = goaway(&mut conn, Duration::from_secs(20)).await;
            (sent, code)
        }));
    }
    for a in attacks {
        let (_sent, code) = a.await.context("attacker task")?;
        let code = code?;
        ensure!(
            code == Some(ENHANCE_YOUR_CALM),
            "a rapid-reset connection was not told ENHANCE_YOUR_CALM (got {code:?})"
        );
    }
    let (n, worst) = victim.finish().await?;
    let reached = s.upstream.count().saturating_sub(served_before + n);
    eprintln!(
        "rapid reset: {} streams opened and reset, {reached} reached the upstream; victim {n} requests, worst {worst:?}",
        ATTACKERS as u32 * STREAMS
    );
    ensure!(n >= 5, "the victim made only {n} requests during the flood");
    ensure!(
        worst < Duration::from_secs(3),
        "a victim request took {worst:?} during the flood"
    );
    ensure!(
        reached < (ATTACKERS as u32 * STREAMS / 10) as usize,
        "{reached} of the reset streams were still sent upstream"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_and_ping_floods_stay_bounded_while_others_are_served() -> anyhow::Result<()> {
    const FRAMES: usize = 300_000;
    let s = site().await?;
    let rss_before = s.proxy.rss_kib()?;
    let victim = Victim::start(&s).await?;
    let mut floods = Vec::new();
    for kind in [SETTINGS, PING] {
        let mut conn = raw_h2(&s).await?;
        floods.push(tokio::spawn(async move {
            let one = if kind == SETTINGS {
                frame(SETTINGS, 0, 0, &[])
            } else {
                frame(PING, 0, 0, &[0; 8])
            };
            let chunk: Vec<u8> = one.iter().copied().cycle().take(one.len() * 1000).collect();
            // The flooder never reads: the proxy's answers back up and it must stop reading
            // rather than queue acknowledgements without bound.
            let mut written = 0;
            while written < FRAMES {
                match tokio::time::timeout(Duration::from_secs(2), conn.write_all(&chunk)).await {
                    Ok(Ok(())) => written += 1000,
                    _ => break,
                }
            }
            written
        }));
    }
    for f in floods {
        let written = f.await.context("flood task")?;
        eprintln!("flood: {written} frames written before the proxy stopped reading or closed");
    }
    let (n, worst) = victim.finish().await?;
    let rss_after = s.proxy.rss_kib()?;
    eprintln!("victim {n} requests, worst {worst:?}; RSS {rss_before} -> {rss_after} KiB");
    ensure!(n >= 1, "the victim made no request during the floods");
    ensure!(
        worst < Duration::from_secs(3),
        "a victim request took {worst:?} during the floods"
    );
    ensure!(
        rss_after < rss_before + 64 * 1024,
        "the proxy grew from {rss_before} to {rss_after} KiB during the floods"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_streams_over_h2_and_websockets_over_tls_http1() -> anyhow::Result<()> {
    let s = site().await?;
    // SSE: events arrive one by one over HTTP/2, not buffered to the end.
    let tls = connector(&s.ca, &[b"h2"])?;
    let conn = connect(&tls, s.https, "a.test").await?;
    let (send, conn) = h2::client::handshake(conn).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = http::Request::get("https://a.test/sse?n=4&gap_ms=400").body(())?;
    let (resp, _) = send.ready().await?.send_request(req, true)?;
    let resp = resp.await?;
    ensure!(resp.status() == 200, "SSE answered {}", resp.status());
    let mut body = resp.into_body();
    let start = Instant::now();
    let mut arrivals = Vec::new();
    let mut text = String::new();
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(10), body.data())
        .await
        .context("SSE stalled")?
    {
        let chunk = chunk?;
        let _ = body.flow_control().release_capacity(chunk.len());
        text.push_str(&String::from_utf8_lossy(&chunk));
        arrivals.push(start.elapsed());
    }
    ensure!(text.contains("data: event 3"), "SSE body: {text}");
    ensure!(
        arrivals.first().copied().unwrap_or_default() < Duration::from_millis(800),
        "the first event came only at {:?}: the stream was buffered",
        arrivals.first()
    );

    // WebSocket over TLS with HTTP/1.1 (ALPN http/1.1).
    let tls = connector(&s.ca, &[b"http/1.1"])?;
    let conn = connect(&tls, s.https, "a.test").await?;
    let (mut ws, _) = tokio_tungstenite::client_async("wss://a.test/ws", conn)
        .await
        .context("WebSocket handshake over TLS")?;
    use futures_util::{SinkExt, StreamExt};
    ws.send(tokio_tungstenite::tungstenite::Message::text(
        "hello over tls",
    ))
    .await?;
    let reply = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .context("no WebSocket echo")?
        .context("WebSocket closed")??;
    ensure!(
        reply.to_text()? == "hello over tls",
        "WebSocket echo: {reply:?}"
    );
    Ok(())
}
