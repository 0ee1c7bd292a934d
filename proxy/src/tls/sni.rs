//! The certificate table of one route load and the resolver the TLS listeners ask for a
//! certificate on every handshake.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::certs::{load_pair, LoadedCert};
use crate::config::dynamic::CertificateFiles;
use crate::config::file_provider::{MergedConfig, Sourced};
use crate::config::Problem;
use crate::state::Shared;

/// A certificate that expires sooner than this gets a warning from every load and `check`.
const EXPIRY_WARNING_SECS: i64 = 14 * 24 * 3600;

/// Certificates by the names they serve. Built once per route load; read per handshake.
#[derive(Debug, Default)]
pub struct CertTable {
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// `*.example.org` is stored under `example.org` and matches exactly one more label.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    default: Option<Arc<CertifiedKey>>,
    /// What was loaded, for the admin API.
    pub loaded: Vec<CertSummary>,
}

/// One loaded certificate as the admin API shows it.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertSummary {
    pub cert_file: PathBuf,
    pub names: Vec<String>,
    /// Unix seconds.
    pub not_after: i64,
    pub default: bool,
}

impl CertTable {
    /// Reads every certificate the merged files name. A pair that cannot be served is an error
    /// of the file naming it, so the whole load is rejected and the previous table (with its
    /// certificates) stays live.
    pub(crate) fn build(merged: &MergedConfig, now: i64) -> (CertTable, Vec<Problem>) {
        let mut table = CertTable::default();
        let mut problems = Vec::new();
        let mut first = None;
        for (i, entry) in merged.certificates.iter().enumerate() {
            let what = format!("tls.certificates[{i}]");
            let Some(c) = load(entry, &what, now, &mut problems) else {
                continue;
            };
            if c.names.is_empty() {
                problems.push(Problem::warning(
                    &entry.file,
                    entry.line,
                    format!(
                        "{what}: {} has no DNS name in subjectAltName, so SNI never selects it; \
                         it can only serve as the default certificate",
                        c.cert_file.display()
                    ),
                ));
            }
            for name in &c.names {
                // The first certificate naming a host wins, like the first definition of a route.
                match name.strip_prefix("*.") {
                    Some(parent) => table.wildcard.entry(parent.to_string()),
                    None => table.exact.entry(name.clone()),
                }
                .or_insert_with(|| c.key.clone());
            }
            first.get_or_insert_with(|| c.key.clone());
            table.loaded.push(CertSummary {
                cert_file: c.cert_file.clone(),
                names: c.names.clone(),
                not_after: c.not_after,
                default: false,
            });
        }
        let explicit = merged.default_certificate.as_ref().and_then(|entry| {
            load(
                entry,
                "tls.stores.default.defaultCertificate",
                now,
                &mut problems,
            )
            .inspect(|c| {
                table.loaded.push(CertSummary {
                    cert_file: c.cert_file.clone(),
                    names: c.names.clone(),
                    not_after: c.not_after,
                    default: true,
                })
            })
        });
        // Without a default, a client that sends no SNI (or an unknown name) gets the first
        // certificate rather than a failed handshake: a box reached by its IP address still
        // answers, and the browser shows why the name does not match.
        table.default = explicit.map(|c| c.key).or(first);
        (table, problems)
    }

    /// The certificate for a handshake's server name (none, exact, then wildcard, then default).
    pub fn pick(&self, server_name: Option<&str>) -> Option<Arc<CertifiedKey>> {
        if let Some(sni) = server_name {
            let name = sni.trim_end_matches('.').to_ascii_lowercase();
            if let Some(c) = self.exact.get(&name) {
                return Some(c.clone());
            }
            if let Some((_, parent)) = name.split_once('.') {
                if let Some(c) = self.wildcard.get(parent) {
                    return Some(c.clone());
                }
            }
        }
        self.default.clone()
    }

    pub fn is_empty(&self) -> bool {
        self.default.is_none()
    }
}

/// Reads one named pair; an unusable one becomes an error of the file naming it.
fn load(
    entry: &Sourced<CertificateFiles>,
    what: &str,
    now: i64,
    problems: &mut Vec<Problem>,
) -> Option<LoadedCert> {
    let base = entry.file.parent().unwrap_or(Path::new("."));
    let cert = base.join(&entry.value.cert_file);
    let key = base.join(&entry.value.key_file);
    match load_pair(&cert, &key, now) {
        Ok(c) => {
            let left = c.not_after - now;
            if left < EXPIRY_WARNING_SECS {
                problems.push(Problem::warning(
                    &entry.file,
                    entry.line,
                    format!(
                        "{what}: {} expires in {} hours; renew it",
                        cert.display(),
                        left / 3600
                    ),
                ));
            }
            Some(c)
        }
        Err(e) => {
            problems.push(Problem::error(
                &entry.file,
                entry.line,
                format!("{what}: {e}"),
            ));
            None
        }
    }
}

/// Plugged into Pingora's rustls listener: every handshake reads the live route table's
/// certificates, so a reload reaches the next handshake without touching open connections.
pub struct SniResolver {
    pub shared: Arc<Shared>,
}

impl std::fmt::Debug for SniResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SniResolver")
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let picked = self.shared.table.load().tls.pick(hello.server_name());
        if picked.is_none() {
            tracing::warn!(
                sni = hello.server_name().unwrap_or(""),
                "TLS handshake refused: no certificate loaded (tls.certificates in the route files)"
            );
        }
        picked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(tag: u8) -> Arc<CertifiedKey> {
        #[derive(Debug)]
        struct NoKey;
        impl rustls::sign::SigningKey for NoKey {
            fn choose_scheme(
                &self,
                _: &[rustls::SignatureScheme],
            ) -> Option<Box<dyn rustls::sign::Signer>> {
                None
            }
            fn algorithm(&self) -> rustls::SignatureAlgorithm {
                rustls::SignatureAlgorithm::ED25519
            }
        }
        Arc::new(CertifiedKey::new(
            vec![rustls::pki_types::CertificateDer::from(vec![tag])],
            Arc::new(NoKey),
        ))
    }

    fn tag(c: Option<Arc<CertifiedKey>>) -> Option<u8> {
        c.map(|c| c.cert[0].as_ref()[0])
    }

    #[test]
    fn exact_then_wildcard_of_one_label_then_default() {
        let mut t = CertTable::default();
        t.exact.insert("bloud.local".into(), key(1));
        t.wildcard.insert("apps.bloud.local".into(), key(2));
        t.default = Some(key(3));
        assert_eq!(tag(t.pick(Some("bloud.local"))), Some(1));
        assert_eq!(tag(t.pick(Some("BLOUD.local."))), Some(1));
        assert_eq!(tag(t.pick(Some("x.apps.bloud.local"))), Some(2));
        assert_eq!(tag(t.pick(Some("a.b.apps.bloud.local"))), Some(3));
        assert_eq!(tag(t.pick(Some("apps.bloud.local"))), Some(3));
        assert_eq!(tag(t.pick(None)), Some(3));
    }
}
