//! App health: after an install an app is `starting` until its `healthCheck.path` answers
//! (2xx, 3xx, 401 or 403 count as up: the app is serving, maybe behind its own login), polled
//! every `interval` seconds for at most `timeout` seconds; then `running`, or `error`.
//! A monitor re-probes `running` and `error` apps so the status follows apps that die or recover.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::service::{status, Service};

/// Per-request timeout of one probe (upstream's client timeout).
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the monitor re-probes settled apps.
pub const MONITOR_INTERVAL: Duration = Duration::from_secs(30);

/// Whether an HTTP status means "the app is serving".
pub fn is_healthy_status(code: u16) -> bool {
    (200..400).contains(&code) || code == 401 || code == 403
}

fn client() -> Option<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(PROBE_TIMEOUT)
        .no_proxy()
        .build()
        .map_err(|e| tracing::error!(error = %e, "cannot build the health-check client"))
        .ok()
}

/// One probe of `http://127.0.0.1:<port><path>`.
pub async fn probe(client: &reqwest::Client, port: u16, path: &str, timeout: Duration) -> bool {
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    let url = format!("http://127.0.0.1:{port}{path}");
    match client
        .get(&url)
        .timeout(timeout.min(PROBE_TIMEOUT))
        .send()
        .await
    {
        Ok(resp) => is_healthy_status(resp.status().as_u16()),
        Err(_) => false,
    }
}

/// What to check for an app: port and path, or nothing (no port or no path: up once started).
fn target(service: &Service, app: &str) -> Option<(u16, String, Duration, Duration)> {
    let catalog = service.catalog();
    let meta = catalog.get(app)?;
    let port = meta.port.filter(|p| *p > 0)?;
    let hc = &meta.health_check;
    if hc.path.is_empty() {
        return None;
    }
    Some((
        port,
        hc.path.clone(),
        Duration::from_secs(u64::from(hc.interval_secs()).max(1)),
        Duration::from_secs(u64::from(hc.timeout_secs()).max(1)),
    ))
}

/// Marks `app` starting and waits in the background until it is healthy or times out.
pub fn spawn_wait_healthy(service: Arc<Service>, app: String) {
    let generation = service.next_health_generation(&app);
    service.set_status(&app, status::STARTING);
    tokio::spawn(async move {
        let result = match target(&service, &app) {
            None => status::RUNNING,
            Some((port, path, interval, timeout)) => match client() {
                None => status::ERROR,
                Some(client) => {
                    let deadline = Instant::now() + timeout;
                    loop {
                        if !service.is_current_health_generation(&app, generation) {
                            return;
                        }
                        let left = deadline.saturating_duration_since(Instant::now());
                        if probe(&client, port, &path, left).await {
                            break status::RUNNING;
                        }
                        if Instant::now() + interval > deadline {
                            tracing::warn!(
                                app,
                                port,
                                path,
                                secs = timeout.as_secs(),
                                "app did not become healthy"
                            );
                            break status::ERROR;
                        }
                        tokio::time::sleep(interval).await;
                    }
                }
            },
        };
        if service.is_current_health_generation(&app, generation) {
            transition(&service, &app, status::STARTING, result);
        }
    });
}

fn transition(service: &Service, app: &str, from: &str, to: &str) {
    match service.db.set_status_if(app, from, to) {
        Ok(true) => {
            tracing::info!(app, from, to, "app status");
            service.notify_apps();
        }
        Ok(false) => {}
        Err(e) => tracing::error!(app, error = %e, "cannot record the app status"),
    }
}

/// Re-probes settled apps forever (runs as a background task).
pub async fn monitor(service: Arc<Service>, every: Duration) {
    let Some(client) = client() else { return };
    loop {
        tokio::time::sleep(every).await;
        let apps = match service.db.list_apps() {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "health monitor cannot read apps");
                continue;
            }
        };
        for app in apps {
            if app.status != status::RUNNING && app.status != status::ERROR {
                continue;
            }
            let Some((port, path, _, _)) = target(&service, &app.name) else {
                continue;
            };
            let up = probe(&client, port, &path, PROBE_TIMEOUT).await;
            let to = if up { status::RUNNING } else { status::ERROR };
            if to != app.status {
                transition(&service, &app.name, &app.status, to);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthy_statuses() {
        for c in [200, 204, 301, 302, 304, 401, 403] {
            assert!(is_healthy_status(c), "{c}");
        }
        for c in [400, 404, 500, 502, 503] {
            assert!(!is_healthy_status(c), "{c}");
        }
    }
}
