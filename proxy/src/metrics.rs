//! Prometheus metrics, on the `prometheus` crate with a registry each [`Metrics`] owns (so tests
//! can make several). Request paths only touch atomics: a router's series (one counter per
//! method and status class, one histogram) are resolved to typed children when a route table is
//! built, never per request. Locks are taken only then and by a scrape.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::core::{Collector, Desc, Metric};
use prometheus::proto::{MetricFamily, MetricType};
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

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

/// The series of one router, resolved once: observing is a few atomic adds.
pub struct RouterMetrics {
    requests: [[IntCounter; CLASSES.len()]; METHODS.len()],
    duration: Histogram,
}

impl fmt::Debug for RouterMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouterMetrics")
            .field("observed", &self.duration.get_sample_count())
            .finish_non_exhaustive()
    }
}

impl RouterMetrics {
    fn new(requests: &IntCounterVec, duration: &HistogramVec, router: &str) -> Self {
        RouterMetrics {
            requests: std::array::from_fn(|m| {
                std::array::from_fn(|c| {
                    requests.with_label_values(&[router, METHODS[m], CLASSES[c]])
                })
            }),
            duration: duration.with_label_values(&[router]),
        }
    }

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
        self.requests[m][c].inc();
        self.duration.observe(elapsed.as_secs_f64());
    }
}

/// Process-wide metrics.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    /// Handles already resolved, so that a reload reuses them instead of looking up every
    /// method × class series again; the scrape reads the series through them.
    routers: Arc<Routers>,
    pub upstream_connect_failures: IntCounter,
    pub open_connections: IntGauge,
    reload_success: IntCounter,
    reload_failure: IntCounter,
    /// Unix time (seconds) of the last successful load.
    last_success: IntGauge,
    generation: IntGauge,
    pub access_log_dropped: IntCounter,
    /// Client connections open (all entry points).
    pub client_connections: IntGauge,
    pub refused_max_connections: IntCounter,
    pub refused_header_size: IntCounter,
    pub timeout_request_header: IntCounter,
    pub timeout_idle: IntCounter,
    pub timeout_response_header: IntCounter,
    pub embed_decompression_aborted: IntCounter,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics")
            .field("generation", &self.generation.get())
            .field("open_connections", &self.open_connections.get())
            .finish_non_exhaustive()
    }
}

/// Counts one open downstream request (including upgraded connections) while alive.
#[derive(Debug)]
pub struct OpenGuard(Arc<Metrics>);

impl OpenGuard {
    pub fn new(m: Arc<Metrics>) -> Self {
        m.open_connections.inc();
        OpenGuard(m)
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open_connections.dec();
    }
}

type Routers = Mutex<BTreeMap<String, Arc<RouterMetrics>>>;

/// The per-router families. Every method × class series of a router exists from the moment a
/// table names it (that is what keeps requests lock-free), but most stay at zero, and a scrape
/// leaves those out as Prometheus clients do for untouched series. Reading them through the
/// resolved handles builds only the series that are printed: the vectors' own `collect` builds
/// all 40 per router first, which made a scrape of 1,000 routers about ten times slower.
struct RouterSeries {
    requests: IntCounterVec,
    duration: HistogramVec,
    routers: Arc<Routers>,
}

impl Collector for RouterSeries {
    fn desc(&self) -> Vec<&Desc> {
        let mut descs = self.requests.desc();
        descs.extend(self.duration.desc());
        descs
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let routers: Vec<Arc<RouterMetrics>> = {
            let map = self.routers.lock().unwrap_or_else(|p| p.into_inner());
            map.values().cloned().collect()
        };
        let mut requests = family(&self.requests.desc(), MetricType::COUNTER);
        let mut duration = family(&self.duration.desc(), MetricType::HISTOGRAM);
        for r in &routers {
            for counter in r.requests.iter().flatten() {
                if counter.get() != 0 {
                    requests.mut_metric().push(counter.metric());
                }
            }
            if r.duration.get_sample_count() != 0 {
                duration.mut_metric().push(r.duration.metric());
            }
        }
        vec![requests, duration]
    }
}

/// An empty family named and described as the vector `descs` belongs to.
fn family(descs: &[&Desc], kind: MetricType) -> MetricFamily {
    let mut f = MetricFamily::default();
    if let Some(d) = descs.first() {
        f.set_name(d.fq_name.clone());
        f.set_help(d.help.clone());
    }
    f.set_field_type(kind);
    f
}

// The definitions below are constants: the names are valid and distinct, so construction and
// registration cannot fail (the unit test renders every family).
const DEFINED: &str = "constant metric definition";

impl Default for Metrics {
    fn default() -> Self {
        let registry = Registry::new();
        let register = |c: Box<dyn Collector>| registry.register(c).expect(DEFINED);
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect(DEFINED);
            register(Box::new(c.clone()));
            c
        };
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect(DEFINED);
            register(Box::new(g.clone()));
            g
        };

        let requests = IntCounterVec::new(
            Opts::new(
                "bloud_proxy_requests_total",
                "Requests by router, method and status class.",
            ),
            &["router", "method", "code"],
        )
        .expect(DEFINED);
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "bloud_proxy_request_duration_seconds",
                "Request duration by router.",
            )
            .buckets(BUCKETS.to_vec()),
            &["router"],
        )
        .expect(DEFINED);
        let routers = Arc::new(Routers::default());
        register(Box::new(RouterSeries {
            requests: requests.clone(),
            duration: duration.clone(),
            routers: routers.clone(),
        }));
        let reloads = IntCounterVec::new(
            Opts::new(
                "bloud_proxy_config_reloads_total",
                "Configuration loads by result.",
            ),
            &["result"],
        )
        .expect(DEFINED);
        register(Box::new(reloads.clone()));
        let refused = IntCounterVec::new(
            Opts::new(
                "bloud_proxy_connections_refused_total",
                "Client connections or requests refused by a limit, by reason.",
            ),
            &["reason"],
        )
        .expect(DEFINED);
        register(Box::new(refused.clone()));
        let timeouts = IntCounterVec::new(
            Opts::new(
                "bloud_proxy_timeouts_total",
                "Connections closed or requests answered because a deadline passed, by kind.",
            ),
            &["kind"],
        )
        .expect(DEFINED);
        register(Box::new(timeouts.clone()));

        Metrics {
            client_connections: gauge(
                "bloud_proxy_client_connections",
                "Client connections open on all entry points.",
            ),
            // Every reason and kind is shown from the start, at 0.
            refused_max_connections: refused.with_label_values(&["max_connections"]),
            refused_header_size: refused.with_label_values(&["header_size"]),
            timeout_request_header: timeouts.with_label_values(&["request_header"]),
            timeout_idle: timeouts.with_label_values(&["idle"]),
            timeout_response_header: timeouts.with_label_values(&["response_header"]),
            embed_decompression_aborted: counter(
                "bloud_proxy_embed_decompression_aborted_total",
                "Embedded-app responses cut because their decoded body passed the size or ratio cap.",
            ),

            upstream_connect_failures: counter(
                "bloud_proxy_upstream_connect_failures_total",
                "Failed connection attempts to upstream servers.",
            ),
            open_connections: gauge(
                "bloud_proxy_open_connections",
                "Downstream requests in progress, including upgraded (WebSocket) connections.",
            ),
            // Both results are shown from the start, a failure count of 0 included.
            reload_success: reloads.with_label_values(&["success"]),
            reload_failure: reloads.with_label_values(&["failure"]),
            last_success: gauge(
                "bloud_proxy_config_last_reload_success_timestamp_seconds",
                "Unix time of the last successful configuration load.",
            ),
            generation: gauge(
                "bloud_proxy_config_generation",
                "Generation of the live route table (increments on each successful load).",
            ),
            access_log_dropped: counter(
                "bloud_proxy_access_log_dropped_total",
                "Access log lines dropped because the writer fell behind.",
            ),
            routers,
            requests,
            duration,
            registry,
        }
    }
}

impl Metrics {
    /// Handle for requests that matched no router (label `router="none"`).
    pub fn unrouted(&self) -> Arc<RouterMetrics> {
        self.router(UNROUTED)
    }

    /// Handle for a router name; the same handle (and series) survives reloads.
    pub fn router(&self, name: &str) -> Arc<RouterMetrics> {
        let mut map = self.routers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = map.get(name) {
            return r.clone();
        }
        let r = Arc::new(RouterMetrics::new(&self.requests, &self.duration, name));
        map.insert(name.to_string(), r.clone());
        r
    }

    pub fn record_reload(&self, ok: bool, generation: u64) {
        if ok {
            self.reload_success.inc();
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            self.last_success
                .set(i64::try_from(now).unwrap_or(i64::MAX));
            self.generation
                .set(i64::try_from(generation).unwrap_or(i64::MAX));
        } else {
            self.reload_failure.inc();
        }
    }

    /// Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        if let Err(e) = TextEncoder::new().encode_utf8(&self.registry.gather(), &mut out) {
            // Only a malformed family fails, and the families are fixed: still, a scrape shows
            // what was written rather than nothing.
            tracing::error!(error = %e, "cannot encode the metrics");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each row: what a scrape must (or must not) contain after the observations below.
    #[test]
    fn renders_counters_histogram_and_reloads() {
        let m = Arc::new(Metrics::default());
        let r = m.router("miniflux-backend");
        r.observe("GET", 200, Duration::from_millis(3));
        r.observe("post", 502, Duration::from_millis(30));
        r.observe("BREW", 404, Duration::from_secs(20));
        r.observe("DELETE", 0, Duration::from_millis(1));
        m.router("idle-backend");
        m.upstream_connect_failures.inc();
        m.access_log_dropped.inc_by(2);
        let _open = OpenGuard::new(m.clone());
        drop(OpenGuard::new(m.clone()));
        m.record_reload(true, 4);
        m.record_reload(false, 5);
        let text = m.render();
        let present = [
            "# HELP bloud_proxy_requests_total Requests by router, method and status class.\n# TYPE bloud_proxy_requests_total counter\n",
            "bloud_proxy_requests_total{code=\"2xx\",method=\"GET\",router=\"miniflux-backend\"} 1\n",
            "bloud_proxy_requests_total{code=\"5xx\",method=\"POST\",router=\"miniflux-backend\"} 1\n",
            "bloud_proxy_requests_total{code=\"4xx\",method=\"OTHER\",router=\"miniflux-backend\"} 1\n",
            // The client went away: a client-side outcome.
            "bloud_proxy_requests_total{code=\"4xx\",method=\"DELETE\",router=\"miniflux-backend\"} 1\n",
            "# HELP bloud_proxy_request_duration_seconds Request duration by router.\n# TYPE bloud_proxy_request_duration_seconds histogram\n",
            "bloud_proxy_request_duration_seconds_bucket{router=\"miniflux-backend\",le=\"0.005\"} 2\n",
            "bloud_proxy_request_duration_seconds_bucket{router=\"miniflux-backend\",le=\"0.05\"} 3\n",
            "bloud_proxy_request_duration_seconds_bucket{router=\"miniflux-backend\",le=\"1\"} 3\n",
            "bloud_proxy_request_duration_seconds_bucket{router=\"miniflux-backend\",le=\"10\"} 3\n",
            "bloud_proxy_request_duration_seconds_bucket{router=\"miniflux-backend\",le=\"+Inf\"} 4\n",
            "bloud_proxy_request_duration_seconds_count{router=\"miniflux-backend\"} 4\n",
            "# HELP bloud_proxy_upstream_connect_failures_total Failed connection attempts to upstream servers.\n# TYPE bloud_proxy_upstream_connect_failures_total counter\nbloud_proxy_upstream_connect_failures_total 1\n",
            "# HELP bloud_proxy_open_connections Downstream requests in progress, including upgraded (WebSocket) connections.\n# TYPE bloud_proxy_open_connections gauge\nbloud_proxy_open_connections 1\n",
            "# HELP bloud_proxy_config_reloads_total Configuration loads by result.\n# TYPE bloud_proxy_config_reloads_total counter\n",
            "bloud_proxy_config_reloads_total{result=\"success\"} 1\n",
            "bloud_proxy_config_reloads_total{result=\"failure\"} 1\n",
            "# HELP bloud_proxy_config_last_reload_success_timestamp_seconds Unix time of the last successful configuration load.\n# TYPE bloud_proxy_config_last_reload_success_timestamp_seconds gauge\n",
            "# HELP bloud_proxy_config_generation Generation of the live route table (increments on each successful load).\n# TYPE bloud_proxy_config_generation gauge\nbloud_proxy_config_generation 4\n",
            "# HELP bloud_proxy_access_log_dropped_total Access log lines dropped because the writer fell behind.\n# TYPE bloud_proxy_access_log_dropped_total counter\nbloud_proxy_access_log_dropped_total 2\n",
        ];
        for want in present {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
        let absent = [
            // Series still at zero are not printed: nothing was 1xx, the idle router has none.
            "code=\"1xx\"",
            "method=\"HEAD\"",
            "idle-backend",
            "bloud_proxy_config_last_reload_success_timestamp_seconds 0\n",
        ];
        for unwanted in absent {
            assert!(
                !text.contains(unwanted),
                "unexpected {unwanted:?} in\n{text}"
            );
        }
        let sum: f64 = text
            .lines()
            .find_map(|l| {
                l.strip_prefix(
                    "bloud_proxy_request_duration_seconds_sum{router=\"miniflux-backend\"} ",
                )
            })
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN);
        assert!((sum - 20.034).abs() < 1e-9, "sum {sum} in\n{text}");
    }

    #[test]
    fn a_reload_keeps_the_series_of_a_router_name() {
        let m = Metrics::default();
        let before = m.router("app-backend");
        before.observe("GET", 200, Duration::from_millis(1));
        let after = m.router("app-backend");
        assert!(Arc::ptr_eq(&before, &after));
        after.observe("GET", 200, Duration::from_millis(1));
        let text = m.render();
        assert!(
            text.contains("{code=\"2xx\",method=\"GET\",router=\"app-backend\"} 2\n"),
            "{text}"
        );
    }

    #[test]
    fn label_values_are_escaped_and_registries_are_separate() {
        let a = Metrics::default();
        let b = Metrics::default();
        a.router("we\"ird\\name\n")
            .observe("GET", 301, Duration::from_millis(1));
        let text = a.render();
        assert!(text.contains(r#"router="we\"ird\\name\n"} 1"#), "{text}");
        assert!(!b.render().contains("weird"), "one registry per Metrics");
        assert!(!b.render().contains("ird"));
    }
}
