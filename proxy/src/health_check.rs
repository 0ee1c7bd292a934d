//! Active health checks: a plain HTTP/1.1 GET of `healthCheck.path` per server every
//! `interval`; any status below 400 within `timeout` marks the server up, anything else down.
//! The load balancer skips servers that are down. Checks stop when their route table is gone.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::service::{HealthCheck, Service, Upstream};
use crate::table::RouteTable;

/// Starts one checking task per service with a `healthCheck` in the table.
pub fn spawn_for_table(rt: &tokio::runtime::Handle, table: &RouteTable) {
    for (name, info) in &table.services {
        if let Service::LoadBalancer(lb) = &*info.service {
            if let Some(hc) = lb.health_check.clone() {
                let weak = Arc::downgrade(&info.service);
                rt.spawn(run(name.clone(), weak, hc));
            }
        }
    }
}

async fn run(name: String, service: Weak<Service>, hc: HealthCheck) {
    loop {
        let Some(svc) = service.upgrade() else { return };
        if let Service::LoadBalancer(lb) = &*svc {
            for server in &lb.servers {
                let up = check(server, &hc).await;
                let was = server.set_healthy(up);
                if was != up {
                    if up {
                        tracing::info!(service = %name, server = %server.url, "health check: server is up again");
                    } else {
                        tracing::warn!(service = %name, server = %server.url, path = %hc.path, "health check failed: server marked down");
                    }
                }
            }
        }
        drop(svc);
        tokio::time::sleep(hc.interval).await;
    }
}

/// One probe of one server.
pub async fn check(server: &Upstream, hc: &HealthCheck) -> bool {
    let Some(addr) = server.addrs.first().copied() else {
        return false;
    };
    let path = format!("{}{}", server.base_path, hc.path);
    let probe = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: bloud-proxy-health-check\r\nConnection: close\r\n\r\n",
            server.authority
        );
        stream.write_all(req.as_bytes()).await.ok()?;
        let mut buf = [0u8; 64];
        let mut len = 0;
        while len < 12 {
            let n = stream.read(&mut buf[len..]).await.ok()?;
            if n == 0 {
                break;
            }
            len += n;
        }
        parse_status(&buf[..len])
    };
    match tokio::time::timeout(hc.timeout, probe).await {
        Ok(Some(status)) => status < 400,
        _ => false,
    }
}

fn parse_status(head: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(head.get(..12)?).ok()?;
    if !text.starts_with("HTTP/1.") {
        return None;
    }
    text.get(9..12)?.parse().ok()
}

/// Default check interval when none is configured (Traefik's 30 s).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::dynamic::{self, LoadBalancer as LbConfig, ServerConfig};
    use crate::service::LoadBalancer;
    use tokio::net::TcpListener;

    #[test]
    fn status_line() {
        assert_eq!(parse_status(b"HTTP/1.1 204 No Content\r\n"), Some(204));
        assert_eq!(parse_status(b"SSH-2.0-OpenSSH"), None);
        assert_eq!(parse_status(b"HTTP/1.1"), None);
    }

    async fn serve_once(listener: &TcpListener, status: &'static str) {
        if let Ok((mut s, _)) = listener.accept().await {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let _ = s
                .write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n").as_bytes())
                .await;
        }
    }

    #[tokio::test]
    async fn up_down_and_refused() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let lb = LoadBalancer::new(&LbConfig {
            servers: vec![ServerConfig {
                url: format!("http://127.0.0.1:{port}"),
            }],
            pass_host_header: None,
            health_check: Some(dynamic::HealthCheck {
                path: "/health".into(),
                interval: None,
                timeout: None,
            }),
        })
        .expect("valid");
        let hc = HealthCheck {
            path: "/health".into(),
            interval: DEFAULT_INTERVAL,
            timeout: Duration::from_secs(2),
        };
        let server = &lb.servers[0];
        let (up, _) = tokio::join!(check(server, &hc), serve_once(&listener, "200 OK"));
        assert!(up);
        let (up, _) = tokio::join!(
            check(server, &hc),
            serve_once(&listener, "503 Service Unavailable")
        );
        assert!(!up);
        drop(listener);
        assert!(!check(server, &hc).await, "refused connection means down");
    }
}
