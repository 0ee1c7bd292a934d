//! HTTPS on the LAN: a box-local certificate authority and the proxy's certificate.
//!
//! - At first start the agent creates a CA (ECDSA P-256, ten years, name-constrained to `.local`,
//!   `localhost`, the host name, `tls.names` and LAN address ranges) in `tls.dir`, mode 0700; its
//!   key never leaves that directory.
//! - It issues a 90-day server certificate for `bloud.local`, the host name (and `.local`),
//!   `localhost`, `tls.names` and the LAN addresses, and writes it with its key into the proxy's
//!   routes directory (key mode 0640: the proxy's group, through the directory's setgid bit),
//!   plus `tls.yml`, Traefik's `tls.certificates` / `tls.stores.default.defaultCertificate`.
//! - A periodic check renews it 30 days before expiry and whenever the names or addresses change.
//!   Each certificate gets new file names, and `tls.yml` is replaced last, so the proxy never
//!   sees a new certificate with an old key.
//! - An admin can turn on the HTTP-to-HTTPS redirect (`https-redirect.yml`), from a page loaded
//!   over HTTPS (proof that the browser trusts the CA).

mod ca;
pub mod cert_info;
mod files;
mod leaf;
pub mod names;
pub mod proxy_files;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

pub use ca::{cert_path as ca_cert_path, CA_CERT_FILE, CA_KEY_FILE, CA_VALIDITY};
pub use cert_info::{fingerprint, CertInfo};
pub use leaf::{LEAF_VALIDITY, RENEW_BEFORE};
pub use proxy_files::{HTTP_ENTRY_POINT, REDIRECT_FILE, TLS_FILE};

use crate::config::Config;
use crate::routes::write_file_mode;

/// How often the certificate is checked (expiry, names, addresses).
pub const CHECK_INTERVAL: Duration = Duration::from_secs(6 * 3600);
/// The agent's own copy of the current server certificate and key, in `tls.dir`.
pub const SERVER_CERT_FILE: &str = "server.crt";
pub const SERVER_KEY_FILE: &str = "server.key";
/// Present in `tls.dir` while the HTTP-to-HTTPS redirect is on.
pub const REDIRECT_FLAG: &str = "redirect-https";

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{0}")]
    Io(std::io::Error),
    #[error("box-local CA: {0}")]
    Ca(String),
}

/// The state after a check.
#[derive(Debug, Clone)]
pub struct Refresh {
    pub ca_fingerprint: String,
    pub not_after: OffsetDateTime,
    pub dns_names: BTreeSet<String>,
    pub addresses: BTreeSet<IpAddr>,
    /// Why a new certificate was issued, if one was.
    pub renewed: Option<String>,
    /// Whether a file the proxy reads changed.
    pub proxy_files_changed: bool,
}

/// The names and addresses the certificate should cover now, limited to what the CA may certify.
pub fn wanted(
    config: &Config,
    host: Option<&str>,
    permitted: &names::Permitted,
) -> (BTreeSet<String>, BTreeSet<IpAddr>) {
    let dns = names::dns_names(host, &config.tls.names);
    let addresses = match &config.tls.addresses {
        Some(list) => {
            let mut set: BTreeSet<IpAddr> = list.iter().copied().collect();
            set.insert(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
            set.insert(IpAddr::V6(std::net::Ipv6Addr::LOCALHOST));
            set
        }
        None => names::interface_addresses(),
    };
    let (dns, refused): (BTreeSet<_>, BTreeSet<_>) =
        dns.into_iter().partition(|n| permitted.allows_name(n));
    for name in refused {
        tracing::warn!(name, "the box-local CA's name constraints do not cover this name; left out of the certificate (remove the CA files in tls.dir to create a CA that covers it)");
    }
    let (addresses, refused): (BTreeSet<_>, BTreeSet<_>) = addresses
        .into_iter()
        .partition(|ip| permitted.allows_ip(*ip));
    for ip in refused {
        tracing::warn!(%ip, "not a LAN address the box-local CA may certify; left out of the certificate");
    }
    (dns, addresses)
}

/// Creates the CA if needed, renews the server certificate if needed, and brings the proxy's
/// files (certificate, key, `tls.yml`, the redirect) in line. Idempotent.
pub fn refresh(
    config: &Config,
    host: Option<&str>,
    now: OffsetDateTime,
) -> Result<Refresh, TlsError> {
    let dir = &config.tls.dir;
    let ca = ca::load_or_create(
        dir,
        host,
        &config.tls.names,
        config.tls.addresses.as_deref().unwrap_or_default(),
        now,
    )?;
    let (dns, addresses) = wanted(config, host, ca.permitted());
    let cert_file = dir.join(SERVER_CERT_FILE);
    let key_file = dir.join(SERVER_KEY_FILE);
    let current = match (
        std::fs::read_to_string(&cert_file),
        std::fs::read_to_string(&key_file),
    ) {
        (Ok(c), Ok(k)) if rcgen::KeyPair::from_pem(&k).is_ok() => {
            CertInfo::from_pem(&c).ok().map(|info| (c, k, info))
        }
        _ => None,
    };
    let reason = leaf::renewal_reason(current.as_ref().map(|c| &c.2), &ca, &dns, &addresses, now);
    let (cert_pem, key_pem, info) = match (reason.clone(), current) {
        (None, Some(cur)) => cur,
        (reason, _) => {
            let leaf = leaf::issue(&ca, &dns, &addresses, now)?;
            // Key before certificate: a crash in between leaves an unreadable pair, which
            // the next check replaces.
            write_file_mode(&key_file, leaf.key_pem.as_bytes(), 0o600).map_err(TlsError::Io)?;
            write_file_mode(&cert_file, leaf.cert_pem.as_bytes(), 0o644).map_err(TlsError::Io)?;
            tracing::info!(
                reason = reason.as_deref().unwrap_or_default(),
                not_after = %leaf.info.not_after.date(),
                names = ?dns,
                addresses = ?addresses,
                "issued the proxy's certificate"
            );
            (leaf.cert_pem, leaf.key_pem, leaf.info)
        }
    };
    // The proxy sends the CA after the leaf. Browsers that already trust the CA ignore it; a
    // client that pins the CA's key (Chromium's SPKI list, monitoring tools) needs to see it.
    let ca_pem = std::fs::read_to_string(ca::cert_path(dir)).map_err(TlsError::Io)?;
    let chain_pem = format!("{}\n{}", cert_pem.trim_end(), ca_pem.trim_start());
    let mut changed =
        proxy_files::write_certificate(&config.routes_dir, &chain_pem, &key_pem, &info)
            .map_err(TlsError::Io)?;
    changed |=
        proxy_files::write_redirect(config, redirect_enabled(config)).map_err(TlsError::Io)?;
    Ok(Refresh {
        ca_fingerprint: ca.info.fingerprint(),
        not_after: info.not_after,
        dns_names: dns,
        addresses,
        renewed: reason,
        proxy_files_changed: changed,
    })
}

/// Whether the admin turned on the HTTP-to-HTTPS redirect.
pub fn redirect_enabled(config: &Config) -> bool {
    config.tls.dir.join(REDIRECT_FLAG).exists()
}

/// Turns the redirect on or off and tells the proxy.
pub fn set_redirect(config: &Config, on: bool) -> Result<(), TlsError> {
    let flag = config.tls.dir.join(REDIRECT_FLAG);
    if on {
        write_file_mode(&flag, b"on\n", 0o600).map_err(TlsError::Io)?;
    } else if let Err(e) = std::fs::remove_file(&flag) {
        if e.kind() != std::io::ErrorKind::NotFound {
            return Err(TlsError::Io(files::context(e, "remove", &flag)));
        }
    }
    if proxy_files::write_redirect(config, on).map_err(TlsError::Io)? {
        signal(config);
    }
    Ok(())
}

/// The CA certificate (PEM) for clients, if the CA exists.
pub fn ca_certificate(config: &Config) -> Option<(String, CertInfo)> {
    let pem = std::fs::read_to_string(ca::cert_path(&config.tls.dir)).ok()?;
    let info = CertInfo::from_pem(&pem).ok()?;
    Some((pem, info))
}

/// The current server certificate, if any.
pub fn server_certificate(dir: &Path) -> Option<CertInfo> {
    let pem = std::fs::read_to_string(dir.join(SERVER_CERT_FILE)).ok()?;
    CertInfo::from_pem(&pem).ok()
}

/// Whether the request reached the proxy over HTTPS. bloud-proxy sets `X-Forwarded-Proto` on
/// every request it forwards and drops a client's own copy unless the client is a trusted
/// proxy, so a LAN client cannot claim HTTPS over plain HTTP.
pub fn request_is_https(headers: &http::HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

fn signal(config: &Config) {
    if config.proxy_pid_file.as_os_str().is_empty() {
        return;
    }
    if let Err(e) = crate::routes::signal_proxy(&config.proxy_pid_file) {
        tracing::warn!(error = %e, "the proxy's file watch will pick up the certificate");
    }
}

/// One check, logged; tells the proxy when its files changed.
pub fn check_once(config: &Config) {
    let host = names::host_name();
    match refresh(config, host.as_deref(), OffsetDateTime::now_utc()) {
        Ok(r) => {
            if r.proxy_files_changed {
                signal(config);
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "HTTPS certificate check failed; the proxy keeps its current certificate")
        }
    }
}

/// Checks at start and every `interval`, for as long as the agent runs.
pub async fn monitor(config: Arc<Config>, interval: Duration) {
    loop {
        let c = config.clone();
        let _ = tokio::task::spawn_blocking(move || check_once(&c)).await;
        tokio::time::sleep(interval).await;
    }
}

/// 127 random bits: unique serials without a counter to keep.
fn random_serial() -> rcgen::SerialNumber {
    let mut bytes = rand::random::<[u8; 16]>();
    bytes[0] &= 0x7f;
    rcgen::SerialNumber::from_slice(&bytes)
}
