//! Access log in Common Log Format or JSON, to a file or stdout. The request path only formats a
//! line and offers it to a bounded channel; a writer thread does the I/O. When the channel is
//! full the line is dropped and counted, so a slow disk never slows requests.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

use crate::config::static_config::{AccessLog as AccessLogConfig, AccessLogFormat};
use crate::metrics::Metrics;

/// Fields of one line.
pub struct Entry<'a> {
    pub client: Option<IpAddr>,
    pub method: &'a str,
    pub uri: &'a str,
    pub version: http::Version,
    pub status: u16,
    pub bytes: usize,
    pub router: Option<&'a str>,
    pub upstream: Option<SocketAddr>,
    pub host: &'a str,
    pub duration: Duration,
    pub user_agent: Option<&'a str>,
    pub referer: Option<&'a str>,
}

#[derive(Debug)]
pub struct AccessLog {
    tx: SyncSender<String>,
    format: AccessLogFormat,
    metrics: Arc<Metrics>,
}

impl AccessLog {
    /// Opens the destination and starts the writer thread.
    pub fn start(cfg: &AccessLogConfig, metrics: Arc<Metrics>) -> std::io::Result<AccessLog> {
        let mut out: Box<dyn Write + Send> = if cfg.file_path.is_empty() {
            Box::new(std::io::stdout())
        } else {
            let path = PathBuf::from(&cfg.file_path);
            Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .map_err(|e| {
                        std::io::Error::new(
                            e.kind(),
                            format!("accessLog.filePath {}: {e}", path.display()),
                        )
                    })?,
            )
        };
        let (tx, rx) = sync_channel::<String>(cfg.buffering_size.unwrap_or(4096).max(1));
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || {
                while let Ok(line) = rx.recv() {
                    let _ = out.write_all(line.as_bytes());
                    // Flush when the queue is drained, so lines appear promptly but batched.
                    let mut batch = rx.try_iter();
                    for more in batch.by_ref() {
                        let _ = out.write_all(more.as_bytes());
                    }
                    let _ = out.flush();
                }
            })?;
        Ok(AccessLog {
            tx,
            format: cfg.format,
            metrics,
        })
    }

    pub fn record(&self, e: Entry<'_>) {
        let line = match self.format {
            AccessLogFormat::Json => format_json(&e),
            AccessLogFormat::Common => format_common(&e),
        };
        match self.tx.try_send(line) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.metrics.access_log_dropped.inc();
            }
        }
    }
}

fn version(v: http::Version) -> &'static str {
    match v {
        http::Version::HTTP_09 => "HTTP/0.9",
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2.0",
        http::Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

fn now_common() -> String {
    // Common Log Format timestamp in UTC, e.g. 10/Oct/2000:13:55:36 +0000.
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (y, mo, d, h, mi, s) = civil(secs);
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{d:02}/{}/{y}:{h:02}:{mi:02}:{s:02} +0000",
        MONTHS[(mo - 1) as usize]
    )
}

fn now_rfc3339() -> String {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let (y, mo, d, h, mi, s) = civil(since.as_secs());
    format!(
        "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:03}Z",
        since.subsec_millis()
    )
}

/// Unix seconds to (year, month, day, hour, minute, second), UTC.
fn civil(secs: u64) -> (i64, u32, u32, u64, u64, u64) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's days-from-civil inverse.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, rem / 3600, rem % 3600 / 60, rem % 60)
}

fn format_common(e: &Entry<'_>) -> String {
    let q = |s: Option<&str>| {
        s.map(|s| s.replace('"', "\\\""))
            .unwrap_or_else(|| "-".into())
    };
    format!(
        "{} - - [{}] \"{} {} {}\" {} {} \"{}\" \"{}\" \"{}\" \"{}\" {}ms\n",
        e.client
            .map(|c| c.to_string())
            .unwrap_or_else(|| "-".into()),
        now_common(),
        e.method,
        e.uri,
        version(e.version),
        e.status,
        e.bytes,
        q(e.referer),
        q(e.user_agent),
        e.router.unwrap_or("-"),
        e.upstream
            .map(|u| format!("http://{u}"))
            .unwrap_or_else(|| "-".into()),
        e.duration.as_millis()
    )
}

fn format_json(e: &Entry<'_>) -> String {
    let v = serde_json::json!({
        "time": now_rfc3339(),
        "ClientHost": e.client.map(|c| c.to_string()),
        "RequestMethod": e.method,
        "RequestPath": e.uri,
        "RequestProtocol": version(e.version),
        "RequestHost": e.host,
        "DownstreamStatus": e.status,
        "DownstreamContentSize": e.bytes,
        "RouterName": e.router,
        "ServiceAddr": e.upstream.map(|u| u.to_string()),
        "Duration": e.duration.as_nanos() as u64,
        "request_User-Agent": e.user_agent,
        "request_Referer": e.referer,
    });
    let mut s = v.to_string();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry<'static> {
        Entry {
            client: "10.0.0.2".parse().ok(),
            method: "GET",
            uri: "/embed/miniflux/?a=\"b\"",
            version: http::Version::HTTP_11,
            status: 200,
            bytes: 12,
            router: Some("miniflux-backend"),
            upstream: "127.0.0.1:8085".parse().ok(),
            host: "bloud.local",
            duration: Duration::from_millis(7),
            user_agent: Some("curl/8"),
            referer: None,
        }
    }

    #[test]
    fn json_and_common_lines() {
        let j: serde_json::Value =
            serde_json::from_str(format_json(&entry()).trim()).expect("json");
        assert_eq!(j["DownstreamStatus"], 200);
        assert_eq!(j["RouterName"], "miniflux-backend");
        assert_eq!(j["RequestPath"], "/embed/miniflux/?a=\"b\"");
        let c = format_common(&entry());
        assert!(c.starts_with("10.0.0.2 - - ["), "{c}");
        assert!(
            c.contains("\"GET /embed/miniflux/?a=\"b\" HTTP/1.1\" 200 12"),
            "{c}"
        );
        assert!(c.ends_with("7ms\n"));
        assert_eq!(civil(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(civil(951_782_400), (2000, 2, 29, 0, 0, 0));
    }

    #[test]
    fn full_queue_drops_and_counts() {
        let metrics = Arc::new(Metrics::default());
        let (tx, _rx) = sync_channel(1);
        let log = AccessLog {
            tx,
            format: AccessLogFormat::Common,
            metrics: metrics.clone(),
        };
        for _ in 0..3 {
            log.record(entry());
        }
        assert_eq!(metrics.access_log_dropped.get(), 2);
    }

    #[test]
    fn writes_to_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("access.log");
        let cfg = AccessLogConfig {
            file_path: path.to_string_lossy().into_owned(),
            format: AccessLogFormat::Json,
            buffering_size: None,
        };
        let log = AccessLog::start(&cfg, Arc::new(Metrics::default())).expect("start");
        log.record(entry());
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if text.contains("miniflux-backend") {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "line not written");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
