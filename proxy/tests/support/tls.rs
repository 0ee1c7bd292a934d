//! HTTPS test harness: a test CA and leaf certificates made with rcgen, a proxy with an HTTPS
//! entry point (`websecure`) next to its plain `web` one, and rustls/h2 clients.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;

use anyhow::Context;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};

use super::proxy::{free_port, Proxy, ProxyBuilder};

/// A certificate authority made for one test.
pub struct TestCa {
    key: KeyPair,
    cert: rcgen::Certificate,
}

/// A leaf certificate and its key, PEM, plus the DER to compare with what a handshake served.
#[derive(Clone)]
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: Vec<u8>,
    /// The SubjectPublicKeyInfo, DER (what browsers pin by hash).
    pub spki_der: Vec<u8>,
}

impl TestCa {
    pub fn new() -> anyhow::Result<TestCa> {
        let key = KeyPair::generate().context("CA key")?;
        let mut params = CertificateParams::new(Vec::<String>::new()).context("CA params")?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "bloud-proxy test CA");
        let cert = params.self_signed(&key).context("CA certificate")?;
        Ok(TestCa { key, cert })
    }

    pub fn der(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }

    /// A leaf for `names` (DNS names, or IP addresses), valid from 2020 to 2090 unless
    /// `expired`, which ends it in 2021.
    pub fn leaf(&self, names: &[&str], expired: bool) -> anyhow::Result<Leaf> {
        let key = KeyPair::generate().context("leaf key")?;
        let mut params = CertificateParams::default();
        for n in names {
            params.subject_alt_names.push(match n.parse() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName((*n).try_into().context("DNS name")?),
            });
        }
        params
            .distinguished_name
            .push(DnType::CommonName, names.first().copied().unwrap_or("leaf"));
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = if expired {
            rcgen::date_time_ymd(2021, 1, 1)
        } else {
            rcgen::date_time_ymd(2090, 1, 1)
        };
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .context("signing the leaf")?;
        Ok(Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
            spki_der: key.public_key_der(),
        })
    }
}

impl Leaf {
    /// Writes `<stem>.crt` and `<stem>.key` into `dir`, each by rename (as an agent renewing
    /// in place would), the certificate first.
    pub fn write(&self, dir: &Path, stem: &str) -> anyhow::Result<()> {
        for (ext, text) in [("crt", &self.cert_pem), ("key", &self.key_pem)] {
            let tmp = dir.join(format!("{stem}.{ext}.part"));
            std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
            std::fs::rename(&tmp, dir.join(format!("{stem}.{ext}")))
                .with_context(|| format!("renaming {}", tmp.display()))?;
        }
        Ok(())
    }
}

/// The `tls` section naming `<stem>.crt/.key` files beside the route file.
pub fn tls_yaml(certificates: &[&str], default: Option<&str>) -> String {
    let mut y = String::from("tls:\n  certificates:\n");
    for stem in certificates {
        y += &format!("    - certFile: {stem}.crt\n      keyFile: {stem}.key\n");
    }
    if let Some(stem) = default {
        y += &format!(
            "  stores:\n    default:\n      defaultCertificate:\n        certFile: {stem}.crt\n        keyFile: {stem}.key\n"
        );
    }
    y
}

/// Every path on both entry points goes to `upstream`.
pub fn catch_all_routes(upstream: &str) -> String {
    format!(
        r#"http:
  routers:
    all:
      rule: "PathPrefix(`/`)"
      service: app
  services:
    app:
      loadBalancer:
        servers:
          - url: "{upstream}"
"#
    )
}

/// A proxy from `builder` with an extra entry point `websecure` (`http.tls: {{}}`); returns
/// it and the HTTPS address.
pub async fn start_https(builder: ProxyBuilder) -> anyhow::Result<(Proxy, SocketAddr)> {
    let port = Arc::new(AtomicU16::new(0));
    let p = port.clone();
    let proxy = builder
        .static_config(move |ports, dir, routes| {
            let tls_port = free_port().unwrap_or(0);
            p.store(tls_port, Ordering::SeqCst);
            serde_json::json!({
                "entryPoints": {
                    "web": { "address": format!("127.0.0.1:{}", ports.web) },
                    "websecure": {
                        "address": format!("127.0.0.1:{tls_port}"),
                        "http": { "tls": {} },
                    },
                    "admin": { "address": format!("127.0.0.1:{}", ports.admin) },
                },
                "providers": { "file": { "directory": routes, "watch": false } },
                "ping": { "entryPoint": "web" },
                "metrics": { "prometheus": { "entryPoint": "admin" } },
                "api": { "entryPoint": "admin" },
                "accessLog": { "filePath": dir.join("access.log"), "format": "json" },
                "log": { "level": "info" },
                "pidFile": dir.join("bloud-proxy.pid"),
            })
        })
        .start()
        .await?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port.load(Ordering::SeqCst)));
    Ok((proxy, addr))
}

/// A rustls client trusting `ca` only, offering `alpn`.
pub fn connector(ca: &TestCa, alpn: &[&[u8]]) -> anyhow::Result<tokio_rustls::TlsConnector> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der()).context("adding the test CA")?;
    // The crate's only provider (ring), TLS 1.2 and 1.3.
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// Connects and handshakes; `server_name` is sent as SNI unless it is an IP address.
pub async fn connect(
    tls: &tokio_rustls::TlsConnector,
    addr: SocketAddr,
    server_name: &str,
) -> anyhow::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    let name = ServerName::try_from(server_name.to_string()).context("server name")?;
    tls.connect(name, tcp)
        .await
        .with_context(|| format!("TLS handshake with {addr} as {server_name}"))
}

/// The leaf certificate the server presented.
pub fn served_leaf(stream: &TlsStream<TcpStream>) -> Vec<u8> {
    stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .unwrap_or_default()
}

/// One GET over a fresh HTTP/2 connection on `stream`; returns status and body.
pub async fn h2_get(
    stream: TlsStream<TcpStream>,
    authority: &str,
    path: &str,
) -> anyhow::Result<(u16, bytes::Bytes)> {
    let (mut send, conn) = h2::client::handshake(stream)
        .await
        .context("HTTP/2 handshake")?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let result = h2_request(&mut send, authority, path).await;
    driver.abort();
    result
}

/// One GET on an open HTTP/2 connection.
pub async fn h2_request(
    send: &mut h2::client::SendRequest<bytes::Bytes>,
    authority: &str,
    path: &str,
) -> anyhow::Result<(u16, bytes::Bytes)> {
    let req = http::Request::get(format!("https://{authority}{path}"))
        .body(())
        .context("request")?;
    let mut ready = send.clone().ready().await.context("connection ready")?;
    let (resp, _) = ready.send_request(req, true).context("sending")?;
    let resp = resp.await.context("response header")?;
    let status = resp.status().as_u16();
    let mut body = resp.into_body();
    let mut out = bytes::BytesMut::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.context("response body")?;
        let _ = body.flow_control().release_capacity(chunk.len());
        out.extend_from_slice(&chunk);
    }
    Ok((status, out.freeze()))
}
