//! Reading one certificate/key pair from PEM files and checking it: parsable, the key belongs to
//! the certificate, valid now, and which DNS names it serves.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

/// Why a certificate pair cannot be served. Each message names the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("cannot read {}: {source}; check the path and that the proxy's user may read it", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: no PEM certificate in it (expected a -----BEGIN CERTIFICATE----- block): {detail}", path.display())]
    NoCertificate { path: PathBuf, detail: String },
    #[error("{}: the certificate cannot be parsed: {detail}; regenerate it", path.display())]
    BadCertificate { path: PathBuf, detail: String },
    #[error("{}: no PEM private key in it (expected PKCS#8, PKCS#1 or SEC1): {detail}", path.display())]
    NoKey { path: PathBuf, detail: String },
    #[error("{}: the private key cannot be used: {detail}; use an RSA, ECDSA or Ed25519 key", path.display())]
    BadKey { path: PathBuf, detail: String },
    #[error("{}: the key in {} does not belong to this certificate; point keyFile at the certificate's own key", cert.display(), key.display())]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("{}: the certificate expired at {not_after} (UTC); renew it", path.display())]
    Expired { path: PathBuf, not_after: String },
    #[error("{}: the certificate is not valid before {not_before} (UTC); check the clock or the certificate", path.display())]
    NotYetValid { path: PathBuf, not_before: String },
}

/// A checked pair, ready for the handshake.
#[derive(Debug, Clone)]
pub struct LoadedCert {
    pub key: Arc<CertifiedKey>,
    /// DNS names of the subjectAltName extension, lower case (`*.example.org` for wildcards).
    pub names: Vec<String>,
    /// End of validity, Unix seconds.
    pub not_after: i64,
    pub cert_file: PathBuf,
}

/// Reads `cert_file` (the chain, leaf first) and `key_file` and checks them at time `now`
/// (Unix seconds).
pub fn load_pair(cert_file: &Path, key_file: &Path, now: i64) -> Result<LoadedCert, CertError> {
    let cert_pem = read(cert_file)?;
    let key_pem = read(key_file)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| CertError::NoCertificate {
            path: cert_file.to_path_buf(),
            detail: e.to_string(),
        })?;
    let Some(leaf) = chain.first() else {
        return Err(CertError::NoCertificate {
            path: cert_file.to_path_buf(),
            detail: "the file holds no certificate".into(),
        });
    };
    let (_, parsed) =
        x509_parser::parse_x509_certificate(leaf).map_err(|e| CertError::BadCertificate {
            path: cert_file.to_path_buf(),
            detail: e.to_string(),
        })?;
    let validity = parsed.validity();
    let not_before = validity.not_before.timestamp();
    let not_after = validity.not_after.timestamp();
    if now >= not_after {
        return Err(CertError::Expired {
            path: cert_file.to_path_buf(),
            not_after: validity.not_after.to_string(),
        });
    }
    if now < not_before {
        return Err(CertError::NotYetValid {
            path: cert_file.to_path_buf(),
            not_before: validity.not_before.to_string(),
        });
    }
    let names = dns_names(&parsed).map_err(|detail| CertError::BadCertificate {
        path: cert_file.to_path_buf(),
        detail,
    })?;

    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| CertError::NoKey {
        path: key_file.to_path_buf(),
        detail: e.to_string(),
    })?;
    let signing =
        rustls::crypto::ring::sign::any_supported_type(&key).map_err(|e| CertError::BadKey {
            path: key_file.to_path_buf(),
            detail: e.to_string(),
        })?;
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        // A key type that cannot tell its public half is let through, as rustls does.
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(rustls::Error::InconsistentKeys(_)) => {
            return Err(CertError::KeyMismatch {
                cert: cert_file.to_path_buf(),
                key: key_file.to_path_buf(),
            })
        }
        Err(other) => {
            return Err(CertError::BadCertificate {
                path: cert_file.to_path_buf(),
                detail: other.to_string(),
            })
        }
    }
    Ok(LoadedCert {
        key: Arc::new(certified),
        names,
        not_after,
        cert_file: cert_file.to_path_buf(),
    })
}

fn read(path: &Path) -> Result<Vec<u8>, CertError> {
    std::fs::read(path).map_err(|source| CertError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn dns_names(cert: &x509_parser::certificate::X509Certificate<'_>) -> Result<Vec<String>, String> {
    use x509_parser::extensions::GeneralName;
    let san = cert
        .subject_alternative_name()
        .map_err(|e| format!("subjectAltName: {e}"))?;
    Ok(san
        .map(|ext| {
            ext.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::DNSName(d) => Some(d.trim_end_matches('.').to_ascii_lowercase()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default())
}
