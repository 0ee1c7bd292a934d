//! State shared by every entry point and by the reload/health/signal tasks.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::access_log::AccessLog;
use crate::config::Problem;
use crate::metrics::Metrics;
use crate::table::RouteTable;

/// Upstream connection timeouts (`serversTransport.forwardingTimeouts`).
#[derive(Debug, Clone, Copy)]
pub struct UpstreamTimeouts {
    pub dial: Duration,
    /// Longest wait for the response header once the request is sent; `None` waits forever.
    /// The body is not limited (SSE, long polls after their header, downloads).
    pub response_header: Option<Duration>,
    /// How long an idle pooled upstream connection is kept; `None` keeps it until the upstream
    /// closes it or the pool (`upstream_keepalive_pool_size` per worker) evicts it. Not
    /// Traefik's 90 s by default: Pingora arms a timer for it each time a connection goes back
    /// to the pool, 3.3 k instructions per request (docs/proxy.md, docs/performance.md).
    pub idle: Option<Duration>,
}

impl Default for UpstreamTimeouts {
    fn default() -> Self {
        UpstreamTimeouts {
            dial: Duration::from_secs(30),
            response_header: Some(crate::limits::DEFAULT_RESPONSE_HEADER_TIMEOUT),
            idle: None,
        }
    }
}

/// Outcome of the latest configuration load, for the API.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ReloadReport {
    pub ok: bool,
    /// Unix time of the attempt.
    pub at: u64,
    pub generation: u64,
    pub problems: Vec<Problem>,
}

pub struct Shared {
    pub table: ArcSwap<RouteTable>,
    pub metrics: Arc<Metrics>,
    /// Counters of unrouted requests, looked up once (no lock per request).
    pub unrouted: Arc<crate::metrics::RouterMetrics>,
    pub access_log: Option<AccessLog>,
    pub timeouts: UpstreamTimeouts,
    /// This machine's name, sent as `X-Forwarded-Server`.
    pub hostname: http::HeaderValue,
    pub shutting_down: AtomicBool,
    pub next_generation: AtomicU64,
    pub last_reload: Mutex<ReloadReport>,
    /// Pooled client for forwardAuth calls (works on any of Pingora's runtimes).
    pub auth_connector: pingora::connectors::http::Connector,
}

impl Shared {
    pub fn new(
        table: RouteTable,
        metrics: Arc<Metrics>,
        access_log: Option<AccessLog>,
        timeouts: UpstreamTimeouts,
    ) -> Shared {
        let generation = table.generation;
        Shared {
            table: ArcSwap::from_pointee(table),
            unrouted: metrics.unrouted(),
            metrics,
            access_log,
            timeouts,
            hostname: http::HeaderValue::from_str(&hostname())
                .unwrap_or_else(|_| http::HeaderValue::from_static("bloud-proxy")),
            shutting_down: AtomicBool::new(false),
            next_generation: AtomicU64::new(generation + 1),
            last_reload: Mutex::new(ReloadReport::default()),
            auth_connector: pingora::connectors::http::Connector::new(None),
        }
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Relaxed)
    }

    pub fn reload_report(&self) -> ReloadReport {
        self.last_reload
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_reload_report(&self, report: ReloadReport) {
        *self.last_reload.lock().unwrap_or_else(|p| p.into_inner()) = report;
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "bloud-proxy".to_string())
}
