//! The proxy's server certificate, issued by the box's CA.

use std::collections::BTreeSet;
use std::net::IpAddr;

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, KeyPair,
    KeyUsagePurpose, SanType, PKCS_ECDSA_P256_SHA256,
};
use time::{Duration, OffsetDateTime};

use super::ca::{rcgen_err, LocalCa};
use super::cert_info::CertInfo;
use super::TlsError;

/// 90 days, like public CAs: a leaked proxy key is useful for a short time only.
pub const LEAF_VALIDITY: Duration = Duration::days(90);
/// Renewed once less than this is left (a third of its life), so a box that was off for weeks
/// still comes back with a valid certificate.
pub const RENEW_BEFORE: Duration = Duration::days(30);

/// A server certificate and its key, as PEM.
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub info: CertInfo,
}

pub fn issue(
    ca: &LocalCa,
    dns: &BTreeSet<String>,
    addresses: &BTreeSet<IpAddr>,
    now: OffsetDateTime,
) -> Result<Leaf, TlsError> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(rcgen_err)?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    let cn = if dns.contains(super::names::BOX_NAME) {
        super::names::BOX_NAME.to_string()
    } else {
        dns.iter().next().cloned().unwrap_or_default()
    };
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    params.subject_alt_names = dns
        .iter()
        .map(|n| {
            n.clone()
                .try_into()
                .map(SanType::DnsName)
                .map_err(rcgen_err)
        })
        .collect::<Result<Vec<_>, _>>()?;
    params
        .subject_alt_names
        .extend(addresses.iter().map(|ip| SanType::IpAddress(*ip)));
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = now - Duration::hours(1);
    params.not_after = now + LEAF_VALIDITY;
    params.serial_number = Some(super::random_serial());
    let cert = params.signed_by(&key, &ca.issuer).map_err(rcgen_err)?;
    let info = CertInfo::from_der(cert.der()).map_err(TlsError::Ca)?;
    Ok(Leaf {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        info,
    })
}

/// Why the current certificate must be replaced, or `None` when it is still good.
pub fn renewal_reason(
    current: Option<&CertInfo>,
    ca: &LocalCa,
    dns: &BTreeSet<String>,
    addresses: &BTreeSet<IpAddr>,
    now: OffsetDateTime,
) -> Option<String> {
    let Some(cur) = current else {
        return Some("no certificate yet".into());
    };
    if cur.authority_key_id.is_none() || cur.authority_key_id != ca.info.subject_key_id {
        return Some("issued by another CA".into());
    }
    if cur.not_after - now < RENEW_BEFORE {
        return Some(format!("expires {}", cur.not_after.date()));
    }
    if &cur.dns_names != dns || &cur.addresses != addresses {
        return Some("the box's names or addresses changed".into());
    }
    None
}
