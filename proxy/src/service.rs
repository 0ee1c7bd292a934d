//! Services: load-balanced upstream servers (round robin, skipping servers marked down by the
//! health check) and Traefik's internal services.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::config::dynamic::{LoadBalancer as LbConfig, ServiceConfig};

/// Traefik internal services a router may name with `@internal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Internal {
    Ping,
    Api,
    Noop,
    Prometheus,
}

impl Internal {
    pub fn from_name(name: &str) -> Option<Internal> {
        match name {
            "ping" => Some(Internal::Ping),
            "api" => Some(Internal::Api),
            "noop" => Some(Internal::Noop),
            "prometheus" => Some(Internal::Prometheus),
            _ => None,
        }
    }
}

#[derive(Debug)]
pub enum Service {
    LoadBalancer(LoadBalancer),
    Internal(Internal),
}

/// One upstream server.
#[derive(Debug)]
pub struct Upstream {
    pub url: String,
    /// Resolved addresses, IPv4 first (dev servers often listen on 127.0.0.1 only).
    pub addrs: Vec<SocketAddr>,
    /// `host:port` used as Host when `passHostHeader` is false.
    pub authority: String,
    /// `authority` as a header value, built once.
    pub host_header: http::HeaderValue,
    /// Path of the server URL (without trailing slash), prepended to every request path.
    pub base_path: String,
    healthy: AtomicBool,
}

impl Upstream {
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    pub fn set_healthy(&self, up: bool) -> bool {
        self.healthy.swap(up, Ordering::Relaxed)
    }
}

#[derive(Debug, Clone)]
pub struct HealthCheck {
    pub path: String,
    pub interval: Duration,
    pub timeout: Duration,
}

#[derive(Debug)]
pub struct LoadBalancer {
    pub servers: Vec<Upstream>,
    pub pass_host_header: bool,
    pub health_check: Option<HealthCheck>,
    next: AtomicUsize,
}

impl LoadBalancer {
    pub fn new(cfg: &LbConfig) -> Result<LoadBalancer, String> {
        if cfg.servers.is_empty() {
            return Err("loadBalancer.servers: at least one server is needed".into());
        }
        let servers = cfg
            .servers
            .iter()
            .enumerate()
            .map(|(i, s)| {
                parse_server(&s.url).map_err(|e| format!("loadBalancer.servers[{i}].url: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let health_check = match &cfg.health_check {
            Some(h) => {
                if !h.path.starts_with('/') {
                    return Err(format!(
                        "loadBalancer.healthCheck.path: {:?} must start with '/'",
                        h.path
                    ));
                }
                Some(HealthCheck {
                    path: h.path.clone(),
                    interval: h
                        .interval
                        .map(|d| d.0)
                        .unwrap_or(crate::health_check::DEFAULT_INTERVAL),
                    timeout: h.timeout.map(|d| d.0).unwrap_or(Duration::from_secs(5)),
                })
            }
            None => None,
        };
        Ok(LoadBalancer {
            servers,
            pass_host_header: cfg.pass_host_header.unwrap_or(true),
            health_check,
            next: AtomicUsize::new(0),
        })
    }

    /// Next healthy server in round-robin order, or `None` when all are down.
    pub fn pick(&self) -> Option<usize> {
        let n = self.servers.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n)
            .map(|i| (start + i) % n)
            .find(|&i| self.servers[i].is_healthy())
    }
}

impl Service {
    pub fn new(cfg: &ServiceConfig) -> Result<Service, String> {
        match &cfg.load_balancer {
            Some(lb) => LoadBalancer::new(lb).map(Service::LoadBalancer),
            None => Err("only loadBalancer services are supported; loadBalancer is missing".into()),
        }
    }
}

/// Parses `http://host:port[/base]` and resolves the host now, so requests never wait for DNS.
fn parse_server(url: &str) -> Result<Upstream, String> {
    let rest = if let Some(r) = url.strip_prefix("http://") {
        r
    } else if url.starts_with("https://") || url.starts_with("h2c://") {
        return Err(format!(
            "{url:?}: only http:// upstreams are supported (this build has no TLS)"
        ));
    } else {
        return Err(format!("{url:?} must start with http://"));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.is_empty() {
        return Err(format!("{url:?} has no host"));
    }
    let host_header = http::HeaderValue::from_str(authority)
        .map_err(|_| format!("{url:?}: the host cannot be sent in a Host header"))?;
    let with_port = if crate::edge::host_port(authority).is_some() {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let mut addrs: Vec<SocketAddr> = match with_port.to_socket_addrs() {
        Ok(a) => a.collect(),
        Err(e) => {
            // An unresolvable name is not a syntax error: keep the route, answer 502 until fixed.
            tracing::warn!(url, error = %e, "cannot resolve upstream host; requests to it get 502");
            Vec::new()
        }
    };
    addrs.sort_by_key(|a| !a.is_ipv4());
    addrs.dedup();
    Ok(Upstream {
        url: url.to_string(),
        addrs,
        authority: authority.to_string(),
        host_header,
        base_path: path.trim_end_matches('/').to_string(),
        healthy: AtomicBool::new(true),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::dynamic::ServerConfig;

    fn lb(urls: &[&str]) -> LoadBalancer {
        LoadBalancer::new(&LbConfig {
            servers: urls
                .iter()
                .map(|u| ServerConfig { url: u.to_string() })
                .collect(),
            pass_host_header: None,
            health_check: None,
        })
        .expect("valid")
    }

    #[test]
    fn parses_and_resolves_localhost_ipv4_first() {
        let l = lb(&["http://localhost:8085", "http://127.0.0.1:9/base/"]);
        assert!(l.pass_host_header);
        assert_eq!(l.servers[0].addrs.first().map(|a| a.port()), Some(8085));
        assert!(l.servers[0].addrs.first().is_some_and(|a| a.is_ipv4()));
        assert_eq!(l.servers[0].authority, "localhost:8085");
        assert_eq!(l.servers[1].base_path, "/base");
    }

    #[test]
    fn round_robin_skips_down_servers() {
        let l = lb(&[
            "http://127.0.0.1:1",
            "http://127.0.0.1:2",
            "http://127.0.0.1:3",
        ]);
        let picks: Vec<_> = (0..6).filter_map(|_| l.pick()).collect();
        assert_eq!(picks, vec![0, 1, 2, 0, 1, 2]);
        l.servers[1].set_healthy(false);
        let picks: Vec<_> = (0..4).filter_map(|_| l.pick()).collect();
        assert!(!picks.contains(&1));
        assert_eq!(picks.len(), 4);
        for s in &l.servers {
            s.set_healthy(false);
        }
        assert_eq!(l.pick(), None);
    }

    #[test]
    fn bad_urls() {
        for bad in ["https://x:1", "ftp://x", "http://", "localhost:80"] {
            let r = LoadBalancer::new(&LbConfig {
                servers: vec![ServerConfig { url: bad.into() }],
                pass_host_header: None,
                health_check: None,
            });
            assert!(r.is_err(), "{bad}");
        }
    }
}
