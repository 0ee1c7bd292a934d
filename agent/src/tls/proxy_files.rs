//! The files bloud-proxy reads: the certificate and key, `tls.yml`, `https-redirect.yml`.

use std::io;
use std::path::{Path, PathBuf};

use super::cert_info::CertInfo;
use super::files::context;
use crate::config::Config;
use crate::routes::write_file_mode;

/// Traefik's dynamic `tls` section for the box's certificate.
pub const TLS_FILE: &str = "tls.yml";
/// Routers and middleware of the HTTP-to-HTTPS redirect (present only while it is on).
pub const REDIRECT_FILE: &str = "https-redirect.yml";
/// The plain-HTTP entry point the redirect applies to (the NixOS module's and `scripts/run`'s).
pub const HTTP_ENTRY_POINT: &str = "web";
/// Prefix of the certificate and key files in the routes directory.
const PAIR_PREFIX: &str = "bloud-local-";

/// Writes the pair under names derived from the certificate, then `tls.yml` pointing at it,
/// then removes older pairs. Returns whether anything changed.
pub fn write_certificate(
    routes_dir: &Path,
    cert_pem: &str,
    key_pem: &str,
    info: &CertInfo,
) -> io::Result<bool> {
    std::fs::create_dir_all(routes_dir).map_err(|e| context(e, "create directory", routes_dir))?;
    let dir = std::path::absolute(routes_dir).map_err(|e| context(e, "resolve", routes_dir))?;
    let id: String = info.fingerprint().replace(':', "")[..16].to_ascii_lowercase();
    let base = format!("{PAIR_PREFIX}{id}");
    let cert_file = dir.join(format!("{base}.crt"));
    let key_file = dir.join(format!("{base}.key"));
    let mut changed = write_file_mode(&cert_file, cert_pem.as_bytes(), 0o644)?;
    // The proxy's group reads it through the routes directory's setgid group; others never.
    changed |= write_file_mode(&key_file, key_pem.as_bytes(), 0o640)?;
    changed |= write_file_mode(
        &dir.join(TLS_FILE),
        tls_yaml(&cert_file, &key_file).as_bytes(),
        0o644,
    )?;
    for entry in std::fs::read_dir(&dir).map_err(|e| context(e, "list", &dir))? {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name().to_string_lossy().into_owned();
        let old_pair = name.starts_with(PAIR_PREFIX)
            && (name.ends_with(".crt") || name.ends_with(".key"))
            && !name.starts_with(&base);
        if old_pair {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => changed = true,
                Err(e) => {
                    tracing::warn!(file = %entry.path().display(), error = %e, "cannot remove an old certificate file")
                }
            }
        }
    }
    Ok(changed)
}

fn quoted(p: &Path) -> String {
    serde_json::to_string(&p.display().to_string()).unwrap_or_default()
}

pub fn tls_yaml(cert: &Path, key: &Path) -> String {
    let (c, k) = (quoted(cert), quoted(key));
    format!(
        "# Written by bloud-agent (box-local CA); replaced on every renewal, do not edit.\n\
         tls:\n  certificates:\n    - certFile: {c}\n      keyFile: {k}\n  stores:\n    default:\n      defaultCertificate:\n        certFile: {c}\n        keyFile: {k}\n"
    )
}

/// The redirect's routes: every request on the `web` entry point gets a redirect to HTTPS,
/// except the CA download, so that a new device can still fetch the CA it must trust first.
pub fn redirect_yaml(agent: &str, https_port: u16) -> String {
    let ep = HTTP_ENTRY_POINT;
    format!(
        "# Written by bloud-agent: the admin turned on the HTTP-to-HTTPS redirect.\n\
         http:\n  routers:\n    https-redirect:\n      entryPoints: [{ep}]\n      rule: \"PathPrefix(`/`)\"\n      priority: 1000000\n      middlewares: [https-redirect]\n      service: bloud-tls-agent\n    https-redirect-ca:\n      entryPoints: [{ep}]\n      rule: \"Path(`/api/tls/ca.crt`) || Path(`/api/tls/ca.der`) || Path(`/api/tls/status`)\"\n      priority: 1000001\n      service: bloud-tls-agent\n  middlewares:\n    https-redirect:\n      redirectScheme:\n        scheme: https\n        port: {https_port}\n        permanent: false\n  services:\n    bloud-tls-agent:\n      loadBalancer:\n        servers:\n          - url: \"http://{agent}\"\n"
    )
}

/// Writes or removes `https-redirect.yml`. Returns whether it changed.
pub fn write_redirect(config: &Config, on: bool) -> io::Result<bool> {
    let path: PathBuf = config.routes_dir.join(REDIRECT_FILE);
    if on {
        let agent = crate::routes::agent_address(config.listen);
        write_file_mode(
            &path,
            redirect_yaml(&agent, config.tls.https_port).as_bytes(),
            0o644,
        )
    } else {
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(context(e, "remove", &path)),
        }
    }
}
