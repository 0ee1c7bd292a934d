//! Bounds on what one client connection may hold: how many connections an entry point keeps
//! open, how long a request header may take to arrive, how long a kept-alive connection may sit
//! idle, and how long the proxy waits for an upstream's response header.
//!
//! Pingora 0.9 applies its downstream timeouts per read (a header dribbled a byte at a time
//! never times out), keeps HTTP/1.1 connections alive without a timer after the first request,
//! and has neither a connection cap nor a response-header timeout. So the accept path is wrapped
//! ([`Gate`]): it counts connections and runs each one next to a watchdog that closes it when a
//! deadline set by the request phases passes.

use std::os::fd::{BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::protocols::Stream;
use pingora::server::ShutdownWatch;
use tokio::io::AsyncWriteExt;

use crate::config::static_config::{EntryPoint, StaticConfig};
use crate::metrics::Metrics;

/// Request header block deadline (`respondingTimeouts.readTimeout`): nginx's
/// `client_header_timeout` and Traefik's `readTimeout` are 60 s.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest stall of one write to the client (nginx `send_timeout` 60 s).
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// Keep-alive wait for the next request (nginx `keepalive_timeout` 75 s).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(75);
/// Request line and headers (nginx 4 × 8 KiB, HAProxy 16 KiB buffers, Envoy 60 KiB).
pub const DEFAULT_MAX_HEADER_BYTES: usize = 32 * 1024;
/// Upstream response header wait (nginx `proxy_read_timeout` 60 s).
pub const DEFAULT_RESPONSE_HEADER_TIMEOUT: Duration = Duration::from_secs(60);
/// File descriptors kept free for listeners, logs, the route watcher, health checks and pooled
/// upstream connections when the connection cap is derived from `RLIMIT_NOFILE`.
pub const FD_HEADROOM: u64 = 256;

/// The limits of one entry point, resolved from the static configuration once.
#[derive(Debug, Clone, Copy)]
pub struct EntryLimits {
    /// `None`: no deadline.
    pub read: Option<Duration>,
    pub write: Option<Duration>,
    pub idle: Option<Duration>,
    pub max_header_bytes: usize,
    pub max_connections: usize,
}

impl EntryLimits {
    /// `fd_share`: this entry point's share of the descriptors, used when the file sets no cap.
    pub fn resolve(ep: &EntryPoint, fd_share: usize) -> EntryLimits {
        let t = ep
            .transport
            .as_ref()
            .and_then(|t| t.responding_timeouts.as_ref());
        let pick = |v: Option<crate::config::YamlDuration>, default: Duration| {
            let d = v.map_or(default, |d| d.0);
            (!d.is_zero()).then_some(d)
        };
        EntryLimits {
            read: pick(t.and_then(|t| t.read_timeout), DEFAULT_READ_TIMEOUT),
            write: pick(t.and_then(|t| t.write_timeout), DEFAULT_WRITE_TIMEOUT),
            idle: pick(t.and_then(|t| t.idle_timeout), DEFAULT_IDLE_TIMEOUT),
            max_header_bytes: ep
                .http
                .as_ref()
                .and_then(|h| h.max_header_bytes)
                .unwrap_or(DEFAULT_MAX_HEADER_BYTES),
            max_connections: ep
                .transport
                .as_ref()
                .and_then(|t| t.max_connections)
                .unwrap_or(fd_share),
        }
    }

    /// Seconds for Pingora's keep-alive timer, a backstop behind the watchdog's exact idle
    /// deadline (`Some(0)` would mean "forever" to Pingora).
    pub fn keepalive_secs(&self) -> u64 {
        self.idle
            .map_or(0, |d| d.as_secs().saturating_add(1).max(1))
    }
}

/// Size of a request header as sent: request line and `name: value` lines with their CRLFs.
pub fn header_bytes(req: &pingora::http::RequestHeader) -> usize {
    let line = req.method.as_str().len() + req.raw_path().len() + " HTTP/1.1\r\n".len() + 1;
    req.headers
        .iter()
        .fold(line, |n, (k, v)| n + k.as_str().len() + v.len() + 4)
}

/// Raises the soft descriptor limit to the hard one (as Go programs such as Traefik do at start)
/// and returns each entry point's share of it: every client connection may hold one upstream
/// connection, so half of what is left after [`FD_HEADROOM`], split evenly.
pub fn fd_share(cfg: &StaticConfig) -> usize {
    let soft = raise_nofile();
    let pairs = soft.saturating_sub(FD_HEADROOM) / 2;
    let n = cfg.entry_points.len().max(1) as u64;
    usize::try_from(pairs / n).unwrap_or(usize::MAX).max(16)
}

fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed by pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    lim.rlim_cur
}

/// Which deadline passed (the `kind` label of `bloud_proxy_timeouts_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deadline {
    /// The request header block did not arrive within `readTimeout`: the connection is closed.
    RequestHeader = 1,
    /// No complete request within `idleTimeout` after the previous response: closed.
    Idle = 2,
    /// The upstream sent no response header within `responseHeaderTimeout`: its socket is
    /// shut down, and the proxy answers 504.
    ResponseHeader = 3,
}

/// The deadline of one connection. The request phases only store atomics (no timer work per
/// request); the watchdog wakes at least every `tick` and compares, so a deadline set while it
/// sleeps passes at most one `tick` late (a quarter of the shortest timeout).
pub struct ConnState {
    base: Instant,
    /// Milliseconds after `base`; 0: none.
    deadline: AtomicU64,
    kind: AtomicU8,
    /// A duplicate of the upstream socket of the request waiting for its response header:
    /// shutting it down reaches the socket Pingora reads, and owning it means the number
    /// cannot be reused for another connection meanwhile.
    upstream: Mutex<Option<OwnedFd>>,
    /// The current request's upstream header was late.
    late: AtomicBool,
}

impl ConnState {
    fn new() -> ConnState {
        ConnState {
            base: Instant::now(),
            deadline: AtomicU64::new(0),
            kind: AtomicU8::new(0),
            upstream: Mutex::new(None),
            late: AtomicBool::new(false),
        }
    }

    fn set(&self, after: Option<Duration>, kind: Deadline) {
        let at = after.map_or(0, |d| {
            u64::try_from((self.base.elapsed() + d).as_millis())
                .unwrap_or(u64::MAX)
                .max(1)
        });
        self.kind.store(kind as u8, Ordering::Relaxed);
        self.deadline.store(at, Ordering::Release);
    }

    fn clear(&self) {
        self.deadline.store(0, Ordering::Release);
    }

    fn upstream(&self) -> std::sync::MutexGuard<'_, Option<OwnedFd>> {
        self.upstream.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Resolves when a deadline that closes the connection passes; shuts a late upstream down
    /// on the way.
    async fn expired(&self, tick: Duration, metrics: &Metrics) -> Deadline {
        let sleep = tokio::time::sleep(tick);
        tokio::pin!(sleep);
        loop {
            sleep.as_mut().await;
            let now = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX);
            let at = self.deadline.load(Ordering::Acquire);
            if at != 0 && now >= at {
                match self.kind.load(Ordering::Relaxed) {
                    1 => return Deadline::RequestHeader,
                    2 => return Deadline::Idle,
                    _ => {
                        self.clear();
                        if let Some(fd) = self.upstream().take() {
                            self.late.store(true, Ordering::Release);
                            metrics.timeout_response_header.inc();
                            let _ =
                                std::net::TcpStream::from(fd).shutdown(std::net::Shutdown::Both);
                        }
                    }
                }
            }
            let left = match self.deadline.load(Ordering::Acquire) {
                0 => tick,
                at => Duration::from_millis(at.saturating_sub(now)).min(tick),
            };
            sleep
                .as_mut()
                .reset(tokio::time::Instant::now() + left.max(Duration::from_millis(1)));
        }
    }
}

tokio::task_local! {
    /// The connection the current task serves (HTTP/1: the whole keep-alive loop runs in the
    /// task that accepted it).
    static CONN: Arc<ConnState>;
}

/// The request header has been read: no deadline while the request is served.
pub fn header_complete() {
    let _ = CONN.try_with(|c| c.clear());
}

/// A response is done: the connection may wait `idle` for its next complete request header.
pub fn response_done(idle: Option<Duration>) {
    let _ = CONN.try_with(|c| {
        *c.upstream() = None;
        c.set(idle, Deadline::Idle);
    });
}

/// Wraps an entry point's HTTP application: the connection cap and the deadline watchdog.
pub struct Gate<A> {
    pub inner: Arc<A>,
    pub limits: EntryLimits,
    pub metrics: Arc<Metrics>,
    /// How often the watchdog looks at its connection's deadline.
    tick: Duration,
    open: AtomicUsize,
}

impl<A> Gate<A> {
    pub fn new(
        inner: A,
        limits: EntryLimits,
        response_header: Option<Duration>,
        metrics: Arc<Metrics>,
    ) -> Gate<A> {
        let shortest = [limits.read, limits.idle, response_header]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(Duration::from_secs(3600));
        Gate {
            inner: Arc::new(inner),
            limits,
            metrics,
            tick: (shortest / 4).max(Duration::from_millis(50)),
            open: AtomicUsize::new(0),
        }
    }
}

/// One of the entry point's connection slots, given back on drop.
struct Slot<'a>(&'a AtomicUsize, &'a Metrics);

impl<'a> Slot<'a> {
    fn take(open: &'a AtomicUsize, max: usize, metrics: &'a Metrics) -> Option<Slot<'a>> {
        open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        })
        .ok()?;
        metrics.client_connections.inc();
        Some(Slot(open, metrics))
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
        self.1.client_connections.dec();
    }
}

const REFUSED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 38\r\nRetry-After: 1\r\nConnection: close\r\n\r\nToo many open connections; try again.\n";

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for Gate<A> {
    async fn process_new(
        self: &Arc<Self>,
        mut stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let Some(_slot) = Slot::take(&self.open, self.limits.max_connections, &self.metrics) else {
            self.metrics.refused_max_connections.inc();
            // Best effort and bounded: the client may not read at all.
            let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(REFUSED)).await;
            return None;
        };
        let conn = Arc::new(ConnState::new());
        // HTTP/2 serves each stream in its own task, outside this connection's scope, so the
        // HTTP/1 request phases never clear a deadline here; h2's own idle timeout and stream
        // limits govern such a connection (src/tls/h2.rs).
        let h2 = matches!(
            stream.selected_alpn_proto(),
            Some(pingora::protocols::ALPN::H2)
        );
        if !h2 {
            conn.set(self.limits.read, Deadline::RequestHeader);
        }
        let watchdog = conn.clone();
        let inner = self.inner.clone();
        CONN.scope(conn, async move {
            tokio::select! {
                r = inner.process_new(stream, shutdown) => r,
                kind = watchdog.expired(self.tick, &self.metrics) => {
                    // Nothing is in flight upstream in these phases: dropping the connection's
                    // future closes the socket.
                    match kind {
                        Deadline::RequestHeader => self.metrics.timeout_request_header.inc(),
                        Deadline::Idle => self.metrics.timeout_idle.inc(),
                        Deadline::ResponseHeader => {}
                    }
                    None
                }
            }
        })
        .await
    }

    async fn cleanup(&self) {
        self.inner.cleanup().await;
    }
}

/// The wait for one upstream response header. Pingora only has a per-read timeout that would
/// also cut quiet SSE streams; here the connection's watchdog shuts the upstream socket down
/// when the header is late, the proxy's read fails at once, and [`ResponseHeaderTimer::fired`]
/// turns that into a 504.
#[derive(Default)]
pub struct ResponseHeaderTimer {
    wait: Option<Duration>,
    request_sent: bool,
    armed: bool,
}

impl ResponseHeaderTimer {
    /// Connected (or reused) an upstream connection; `body_done`: no request body is left.
    pub fn connected(&mut self, fd: RawFd, body_done: bool, wait: Option<Duration>) {
        self.stop();
        self.wait = wait;
        if wait.is_none() {
            return;
        }
        let _ = CONN.try_with(|c| {
            // SAFETY: Pingora passes the descriptor of the connection it holds for this
            // request; it stays open for the duration of this call, and only a duplicate is kept.
            let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
            *c.upstream() = borrowed.try_clone_to_owned().ok();
            c.late.store(false, Ordering::Release);
        });
        self.request_sent = body_done;
        self.arm();
    }

    /// The last piece of the request body went out.
    pub fn request_body_done(&mut self) {
        self.request_sent = true;
        self.arm();
    }

    fn arm(&mut self) {
        if self.armed || !self.request_sent || self.wait.is_none() {
            return;
        }
        self.armed = true;
        let _ = CONN.try_with(|c| c.set(self.wait, Deadline::ResponseHeader));
    }

    /// The header arrived (or the request ended): the body is not limited.
    pub fn stop(&mut self) {
        if std::mem::take(&mut self.armed) {
            let _ = CONN.try_with(|c| {
                if c.kind.load(Ordering::Relaxed) == Deadline::ResponseHeader as u8 {
                    c.clear();
                }
                *c.upstream() = None;
            });
        }
        self.request_sent = false;
    }

    pub fn fired(&self) -> bool {
        CONN.try_with(|c| c.late.load(Ordering::Acquire))
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_zero_mean_off() {
        let ep: EntryPoint = crate::config::yaml::parse(
            "address: \":80\"\ntransport:\n  respondingTimeouts:\n    idleTimeout: 0s\n    readTimeout: 5s\n",
        )
        .expect("parses");
        let l = EntryLimits::resolve(&ep, 100);
        assert_eq!(l.read, Some(Duration::from_secs(5)));
        assert_eq!(l.idle, None);
        assert_eq!(l.keepalive_secs(), 0);
        assert_eq!(l.write, Some(DEFAULT_WRITE_TIMEOUT));
        assert_eq!(l.max_header_bytes, DEFAULT_MAX_HEADER_BYTES);
        assert_eq!(l.max_connections, 100);
    }

    #[tokio::test]
    async fn watchdog_follows_the_latest_deadline() {
        let m = Metrics::default();
        let c = ConnState::new();
        c.set(Some(Duration::from_secs(3600)), Deadline::RequestHeader);
        c.set(Some(Duration::from_millis(10)), Deadline::Idle);
        let kind = tokio::time::timeout(
            Duration::from_secs(5),
            c.expired(Duration::from_millis(20), &m),
        )
        .await
        .expect("fires");
        assert_eq!(kind, Deadline::Idle);
        c.clear();
        assert!(
            tokio::time::timeout(
                Duration::from_millis(100),
                c.expired(Duration::from_millis(20), &m)
            )
            .await
            .is_err(),
            "no deadline, no expiry"
        );
    }
}
