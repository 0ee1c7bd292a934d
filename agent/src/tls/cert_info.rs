//! What the agent reads back from a certificate it wrote: validity, names, key identifiers.

use std::collections::BTreeSet;
use std::net::IpAddr;

use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

use super::names::Permitted;

#[derive(Debug, Clone)]
pub struct CertInfo {
    pub der: Vec<u8>,
    pub not_after: OffsetDateTime,
    pub dns_names: BTreeSet<String>,
    pub addresses: BTreeSet<IpAddr>,
    pub subject_key_id: Option<Vec<u8>>,
    pub authority_key_id: Option<Vec<u8>>,
    /// The subject public key's bits (for an EC key, the point).
    pub public_key: Vec<u8>,
    pub permitted: Permitted,
    pub common_name: String,
}

impl CertInfo {
    pub fn from_pem(pem: &str) -> Result<CertInfo, String> {
        let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
            .map_err(|e| format!("no PEM certificate: {e}"))?;
        Self::from_der(&block.contents)
    }

    pub fn from_der(der: &[u8]) -> Result<CertInfo, String> {
        let (_, cert) = x509_parser::certificate::X509Certificate::from_der(der)
            .map_err(|e| format!("not an X.509 certificate: {e}"))?;
        let not_after = OffsetDateTime::from_unix_timestamp(cert.validity().not_after.timestamp())
            .map_err(|e| format!("bad notAfter: {e}"))?;
        let mut info = CertInfo {
            der: der.to_vec(),
            not_after,
            dns_names: BTreeSet::new(),
            addresses: BTreeSet::new(),
            subject_key_id: None,
            authority_key_id: None,
            public_key: cert.public_key().subject_public_key.data.to_vec(),
            permitted: Permitted::default(),
            common_name: cert
                .subject()
                .iter_common_name()
                .next()
                .and_then(|cn| cn.as_str().ok())
                .unwrap_or_default()
                .to_string(),
        };
        for ext in cert.extensions() {
            match ext.parsed_extension() {
                ParsedExtension::SubjectAlternativeName(san) => {
                    for name in &san.general_names {
                        match name {
                            GeneralName::DNSName(n) => {
                                info.dns_names.insert(n.to_ascii_lowercase());
                            }
                            GeneralName::IPAddress(b) => {
                                if let Some(ip) = ip_from_bytes(b) {
                                    info.addresses.insert(ip);
                                }
                            }
                            _ => {}
                        }
                    }
                }
                ParsedExtension::SubjectKeyIdentifier(k) => {
                    info.subject_key_id = Some(k.0.to_vec())
                }
                ParsedExtension::AuthorityKeyIdentifier(a) => {
                    info.authority_key_id = a.key_identifier.as_ref().map(|k| k.0.to_vec())
                }
                ParsedExtension::NameConstraints(nc) => {
                    let mut dns = Vec::new();
                    let mut ip = Vec::new();
                    for sub in nc.permitted_subtrees.iter().flatten() {
                        match &sub.base {
                            GeneralName::DNSName(n) => dns.push(n.to_ascii_lowercase()),
                            GeneralName::IPAddress(b) => {
                                if let Some(net) = net_from_bytes(b) {
                                    ip.push(net)
                                }
                            }
                            _ => {}
                        }
                    }
                    info.permitted = Permitted {
                        dns: (!dns.is_empty()).then_some(dns),
                        ip: (!ip.is_empty()).then_some(ip),
                    };
                }
                _ => {}
            }
        }
        Ok(info)
    }

    /// SHA-256 of the DER, as browsers and `openssl x509 -fingerprint -sha256` show it.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.der)
    }
}

pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn ip_from_bytes(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(b).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(b).ok()?)),
        _ => None,
    }
}

/// An address and mask (8 or 32 bytes) as address and prefix length.
fn net_from_bytes(b: &[u8]) -> Option<(IpAddr, u8)> {
    let half = b.len() / 2;
    if half != 4 && half != 16 {
        return None;
    }
    let ip = ip_from_bytes(&b[..half])?;
    let prefix: u32 = b[half..].iter().map(|m| m.count_ones()).sum();
    Some((ip, prefix as u8))
}
