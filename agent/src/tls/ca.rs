//! The box's certificate authority: created once, then loaded from `tls.dir` on every start.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DistinguishedName, DnType, GeneralSubtree,
    IsCa, Issuer, KeyPair, KeyUsagePurpose, NameConstraints, PKCS_ECDSA_P256_SHA256,
};
use time::{Duration, OffsetDateTime};

use super::cert_info::CertInfo;
use super::files::private_dir;
use super::names::{Permitted, PERMITTED_NETS};
use super::TlsError;
use crate::routes::write_file_mode;

pub const CA_CERT_FILE: &str = "ca.crt";
pub const CA_KEY_FILE: &str = "ca.key";
/// Ten years: users trust it by hand on every device, so it should outlive the box.
pub const CA_VALIDITY: Duration = Duration::days(3650);

/// A loaded CA: its certificate for clients, its key for signing.
pub struct LocalCa {
    pub info: CertInfo,
    pub(super) issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for LocalCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCa").field("info", &self.info).finish()
    }
}

impl LocalCa {
    pub fn permitted(&self) -> &Permitted {
        &self.info.permitted
    }
}

pub fn cert_path(dir: &Path) -> PathBuf {
    dir.join(CA_CERT_FILE)
}

/// Loads the CA from `dir`, creating it (and `dir`, mode 0700) when there is none. A CA that
/// exists but cannot be read is an error, never silently replaced: every device that trusts
/// it would stop trusting the box.
pub fn load_or_create(
    dir: &Path,
    host: Option<&str>,
    extra_names: &[String],
    extra_addresses: &[IpAddr],
    now: OffsetDateTime,
) -> Result<LocalCa, TlsError> {
    private_dir(dir, 0o700).map_err(TlsError::Io)?;
    let cert_file = dir.join(CA_CERT_FILE);
    let key_file = dir.join(CA_KEY_FILE);
    match (cert_file.exists(), key_file.exists()) {
        (true, true) => return load(&cert_file, &key_file),
        (false, false) => {}
        _ => {
            return Err(TlsError::Ca(format!(
                "{} has only one of {CA_CERT_FILE} and {CA_KEY_FILE}; restore the other, or \
                 remove both to create a new CA (every device must then trust the new one)",
                dir.display()
            )))
        }
    }
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(rcgen_err)?;
    let params = ca_params(host, extra_names, extra_addresses, now)?;
    let cert = params.self_signed(&key).map_err(rcgen_err)?;
    // Key first: a crash between the two leaves a key alone, reported above, not a
    // certificate users might trust without its key.
    write_file_mode(&key_file, key.serialize_pem().as_bytes(), 0o600).map_err(TlsError::Io)?;
    write_file_mode(&cert_file, cert.pem().as_bytes(), 0o644).map_err(TlsError::Io)?;
    tracing::info!(dir = %dir.display(), "created the box-local certificate authority");
    load(&cert_file, &key_file)
}

fn ca_params(
    host: Option<&str>,
    extra_names: &[String],
    extra_addresses: &[IpAddr],
    now: OffsetDateTime,
) -> Result<CertificateParams, TlsError> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        format!("Bloud local CA {}", host.unwrap_or("bloud")),
    );
    dn.push(DnType::OrganizationName, "Bloud");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = now - Duration::hours(1);
    params.not_after = now + CA_VALIDITY;
    params.serial_number = Some(super::random_serial());
    // Name constraints: even a stolen CA key can only vouch for names on the LAN.
    let mut dns: Vec<String> = vec!["local".into(), "localhost".into()];
    if let Some(h) = host {
        dns.push(h.to_string());
    }
    dns.extend(extra_names.iter().cloned());
    dns.sort();
    dns.dedup();
    let mut subtrees: Vec<GeneralSubtree> = dns.into_iter().map(GeneralSubtree::DnsName).collect();
    let mut nets: Vec<(IpAddr, u8)> = PERMITTED_NETS.to_vec();
    for ip in extra_addresses {
        if !nets.iter().any(|(n, p)| super::names::in_net(*ip, *n, *p)) {
            nets.push((*ip, if ip.is_ipv4() { 32 } else { 128 }));
        }
    }
    subtrees.extend(
        nets.into_iter().map(|(ip, prefix)| {
            GeneralSubtree::IpAddress(CidrSubnet::from_addr_prefix(ip, prefix))
        }),
    );
    params.name_constraints = Some(NameConstraints {
        permitted_subtrees: subtrees,
        excluded_subtrees: Vec::new(),
    });
    Ok(params)
}

fn load(cert_file: &Path, key_file: &Path) -> Result<LocalCa, TlsError> {
    let read = |p: &Path| {
        std::fs::read_to_string(p).map_err(|e| TlsError::Io(super::files::context(e, "read", p)))
    };
    let cert_pem = read(cert_file)?;
    let key_pem = read(key_file)?;
    let bad = |what: &str, p: &Path, e: String| {
        TlsError::Ca(format!(
            "{}: not a usable {what} ({e}); restore it from a backup, or remove {} and {} to \
             create a new CA (every device must then trust the new one)",
            p.display(),
            CA_CERT_FILE,
            CA_KEY_FILE
        ))
    };
    let info = CertInfo::from_pem(&cert_pem).map_err(|e| bad("CA certificate", cert_file, e))?;
    let key = KeyPair::from_pem(&key_pem).map_err(|e| bad("CA key", key_file, e.to_string()))?;
    if key.public_key_raw() != info.public_key.as_slice() {
        return Err(bad(
            "CA key",
            key_file,
            format!("it does not belong to {}", cert_file.display()),
        ));
    }
    let issuer = Issuer::from_ca_cert_pem(&cert_pem, key)
        .map_err(|e| bad("CA certificate", cert_file, e.to_string()))?;
    Ok(LocalCa { info, issuer })
}

pub(super) fn rcgen_err(e: rcgen::Error) -> TlsError {
    TlsError::Ca(format!("certificate generation: {e}"))
}
