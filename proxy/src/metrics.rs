//! Prometheus metrics. Request paths only touch atomics; the per-router handles are looked up
//! (under a lock) when a route table is built, never per request.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "OTHER",
];
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
/// Histogram bucket upper bounds in seconds.
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Router label of requests no router matched.
pub const UNROUTED: &str = "none";

/// Counters of one router.
#[derive(Debug, Default)]
pub struct RouterMetrics {
    requests: [[AtomicU64; 5]; 8],
    buckets: [AtomicU64; 11],
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl RouterMetrics {
    pub fn observe(&self, method: &str, status: u16, elapsed: Duration) {
        let m = METHODS
            .iter()
            .position(|x| x.eq_ignore_ascii_case(method))
            .unwrap_or(METHODS.len() - 1);
        // Status 0: the client left before any response was written (nginx logs it as 499), a
        // client-side outcome, so 4xx rather than the 1xx a plain clamp would give.
        let c = match status {
            0 => 3,
            s => (s / 100).clamp(1, 5) as usize - 1,
        };
        self.requests[m][c].fetch_add(1, Ordering::Relaxed);
        let secs = elapsed.as_secs_f64();
        if let Some(b) = BUCKETS.iter().position(|le| secs <= *le) {
            self.buckets[b].fetch_add(1, Ordering::Relaxed);
        }
        self.sum_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }
}

/// Process-wide metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    routers: Mutex<BTreeMap<String, Arc<RouterMetrics>>>,
    pub upstream_connect_failures: AtomicU64,
    pub open_connections: AtomicI64,
    pub reload_success: AtomicU64,
    pub reload_failure: AtomicU64,
    /// Unix time (seconds) of the last successful load.
    pub last_success: AtomicU64,
    pub generation: AtomicU64,
    pub access_log_dropped: AtomicU64,
}

/// Counts one open downstream request (including upgraded connections) while alive.
#[derive(Debug)]
pub struct OpenGuard(Arc<Metrics>);

impl OpenGuard {
    pub fn new(m: Arc<Metrics>) -> Self {
        m.open_connections.fetch_add(1, Ordering::Relaxed);
        OpenGuard(m)
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open_connections.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    /// Handle for requests that matched no router (label `router="none"`).
    pub fn unrouted(&self) -> Arc<RouterMetrics> {
        self.router(UNROUTED)
    }

    /// Handle for a router name; the same handle survives reloads.
    pub fn router(&self, name: &str) -> Arc<RouterMetrics> {
        let mut map = self.routers.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(name.to_string()).or_default().clone()
    }

    pub fn record_reload(&self, ok: bool, generation: u64) {
        if ok {
            self.reload_success.fetch_add(1, Ordering::Relaxed);
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            self.last_success.store(now, Ordering::Relaxed);
            self.generation.store(generation, Ordering::Relaxed);
        } else {
            self.reload_failure.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let routers: Vec<(String, Arc<RouterMetrics>)> = {
            let map = self.routers.lock().unwrap_or_else(|p| p.into_inner());
            map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        out.push_str("# HELP bloud_proxy_requests_total Requests by router, method and status class.\n# TYPE bloud_proxy_requests_total counter\n");
        for (name, m) in &routers {
            for (mi, method) in METHODS.iter().enumerate() {
                for (ci, class) in CLASSES.iter().enumerate() {
                    let v = m.requests[mi][ci].load(Ordering::Relaxed);
                    if v > 0 {
                        let _ = writeln!(
                            out,
                            "bloud_proxy_requests_total{{router=\"{}\",method=\"{method}\",code=\"{class}\"}} {v}",
                            label(name)
                        );
                    }
                }
            }
        }
        out.push_str("# HELP bloud_proxy_request_duration_seconds Request duration by router.\n# TYPE bloud_proxy_request_duration_seconds histogram\n");
        for (name, m) in &routers {
            let count = m.count.load(Ordering::Relaxed);
            if count == 0 {
                continue;
            }
            let mut cumulative = 0;
            for (i, le) in BUCKETS.iter().enumerate() {
                cumulative += m.buckets[i].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "bloud_proxy_request_duration_seconds_bucket{{router=\"{}\",le=\"{le}\"}} {cumulative}",
                    label(name)
                );
            }
            let _ = writeln!(
                out,
                "bloud_proxy_request_duration_seconds_bucket{{router=\"{}\",le=\"+Inf\"}} {count}",
                label(name)
            );
            let _ = writeln!(
                out,
                "bloud_proxy_request_duration_seconds_sum{{router=\"{}\"}} {}",
                label(name),
                m.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
            );
            let _ = writeln!(
                out,
                "bloud_proxy_request_duration_seconds_count{{router=\"{}\"}} {count}",
                label(name)
            );
        }
        let simple = |out: &mut String, name: &str, kind: &str, help: &str, v: String| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
            );
        };
        simple(
            &mut out,
            "bloud_proxy_upstream_connect_failures_total",
            "counter",
            "Failed connection attempts to upstream servers.",
            self.upstream_connect_failures
                .load(Ordering::Relaxed)
                .to_string(),
        );
        simple(
            &mut out,
            "bloud_proxy_open_connections",
            "gauge",
            "Downstream requests in progress, including upgraded (WebSocket) connections.",
            self.open_connections.load(Ordering::Relaxed).to_string(),
        );
        let _ = writeln!(
            out,
            "# HELP bloud_proxy_config_reloads_total Configuration loads by result.\n# TYPE bloud_proxy_config_reloads_total counter\nbloud_proxy_config_reloads_total{{result=\"success\"}} {}\nbloud_proxy_config_reloads_total{{result=\"failure\"}} {}",
            self.reload_success.load(Ordering::Relaxed),
            self.reload_failure.load(Ordering::Relaxed)
        );
        simple(
            &mut out,
            "bloud_proxy_config_last_reload_success_timestamp_seconds",
            "gauge",
            "Unix time of the last successful configuration load.",
            self.last_success.load(Ordering::Relaxed).to_string(),
        );
        simple(
            &mut out,
            "bloud_proxy_config_generation",
            "gauge",
            "Generation of the live route table (increments on each successful load).",
            self.generation.load(Ordering::Relaxed).to_string(),
        );
        simple(
            &mut out,
            "bloud_proxy_access_log_dropped_total",
            "counter",
            "Access log lines dropped because the writer fell behind.",
            self.access_log_dropped.load(Ordering::Relaxed).to_string(),
        );
        out
    }
}

fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histogram_and_reloads() {
        let m = Metrics::default();
        let r = m.router("miniflux-backend");
        r.observe("GET", 200, Duration::from_millis(3));
        r.observe("post", 502, Duration::from_millis(30));
        r.observe("BREW", 404, Duration::from_secs(20));
        r.observe("DELETE", 0, Duration::from_millis(1));
        m.record_reload(true, 4);
        m.record_reload(false, 5);
        let text = m.render();
        assert!(text.contains("bloud_proxy_requests_total{router=\"miniflux-backend\",method=\"GET\",code=\"2xx\"} 1"), "{text}");
        assert!(text.contains("method=\"POST\",code=\"5xx\"} 1"));
        assert!(text.contains("method=\"OTHER\",code=\"4xx\"} 1"));
        assert!(
            text.contains("method=\"DELETE\",code=\"4xx\"} 1"),
            "client gone: {text}"
        );
        assert!(!text.contains("code=\"1xx\"} 1"), "{text}");
        assert!(text.contains("le=\"0.005\"} 2"));
        assert!(text.contains("le=\"0.05\"} 3"));
        assert!(text.contains("le=\"+Inf\"} 4"));
        assert!(text.contains("bloud_proxy_config_reloads_total{result=\"failure\"} 1"));
        assert!(text.contains("bloud_proxy_config_generation 4"));
        assert!(Arc::ptr_eq(&r, &m.router("miniflux-backend")));
    }
}
