//! Signing keys: RSA 2048, RS256 (the algorithm every OpenID Connect relying party accepts).
//! Generated at first start and stored in the agent's database (owner-only file). Rotation adds
//! a new signing key and retires the old one, which stays in the JWKS until the last ID token
//! it signed has expired.

use std::sync::{Arc, RwLock};

use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use serde::Serialize;

use super::{OidcError, ID_TOKEN_TTL};
use crate::db::{random_hex, Db, StoredKey};

const BITS: usize = 2048;
/// A retired key stays published this long after the last ID token it signed expires, for
/// clocks that disagree a little.
const LEEWAY: i64 = 60;

/// The keys as loaded: one signs, all verify.
pub struct KeySet {
    kid: String,
    signing: EncodingKey,
    /// Each published key with its retirement time.
    jwks: Vec<(Option<i64>, Jwk)>,
    verifying: Vec<(String, DecodingKey)>,
}

pub struct Keys {
    set: RwLock<Arc<KeySet>>,
}

fn generate() -> Result<Vec<u8>, OidcError> {
    let key = rsa::PrivateKey::new(&mut getrandom::SysRng, BITS)
        .map_err(|e| OidcError::Key(format!("cannot generate: {e}")))?;
    let der = key
        .to_pkcs1_der()
        .map_err(|e| OidcError::Key(format!("cannot encode: {e}")))?;
    Ok(der.as_bytes().to_vec())
}

fn build(stored: &[StoredKey]) -> Result<KeySet, OidcError> {
    let mut jwks = Vec::new();
    let mut verifying = Vec::new();
    let mut signer = None;
    for key in stored {
        let encoding = EncodingKey::from_rsa_der(&key.private_der);
        let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::RS256)
            .map_err(|e| OidcError::Key(format!("key {}: {e}", key.kid)))?;
        jwk.common.key_id = Some(key.kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        let decoding = DecodingKey::from_jwk(&jwk)
            .map_err(|e| OidcError::Key(format!("key {}: {e}", key.kid)))?;
        verifying.push((key.kid.clone(), decoding));
        jwks.push((key.retired_at, jwk));
        if key.retired_at.is_none() && signer.is_none() {
            signer = Some((key.kid.clone(), encoding));
        }
    }
    let (kid, signing) = signer.ok_or_else(|| OidcError::Key("no signing key".into()))?;
    Ok(KeySet {
        kid,
        signing,
        jwks,
        verifying,
    })
}

/// Retired keys older than this are no longer needed by anyone.
fn keep_since(now: i64) -> i64 {
    now - ID_TOKEN_TTL.as_secs() as i64 - LEEWAY
}

impl Keys {
    pub fn load_or_create(db: &Db, now: i64) -> Result<Keys, OidcError> {
        let mut stored = db.oidc_keys(keep_since(now))?;
        if !stored.iter().any(|k| k.retired_at.is_none()) {
            let der = generate()?;
            db.add_oidc_key(&random_hex(8), &der, now)?;
            tracing::info!("OpenID Connect signing key generated");
            stored = db.oidc_keys(keep_since(now))?;
        }
        Ok(Keys {
            set: RwLock::new(Arc::new(build(&stored)?)),
        })
    }

    fn current(&self) -> Arc<KeySet> {
        self.set.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// A new signing key; the previous one keeps verifying until its tokens expire. Returns
    /// the new key's id. Key generation takes a while: call from a blocking task.
    pub fn rotate(&self, db: &Db, now: i64) -> Result<String, OidcError> {
        let der = generate()?;
        let kid = random_hex(8);
        db.add_oidc_key(&kid, &der, now)?;
        self.reload(db, now)?;
        tracing::info!(%kid, "OpenID Connect signing key rotated");
        Ok(kid)
    }

    /// Re-reads the keys (dropping retired ones nobody needs any more).
    pub fn reload(&self, db: &Db, now: i64) -> Result<(), OidcError> {
        let set = Arc::new(build(&db.oidc_keys(keep_since(now))?)?);
        *self.set.write().unwrap_or_else(|p| p.into_inner()) = set;
        Ok(())
    }

    /// The published keys: the signing key and retired keys within their overlap.
    pub fn jwks(&self, now: i64) -> JwkSet {
        let since = keep_since(now);
        JwkSet {
            keys: self
                .current()
                .jwks
                .iter()
                .filter(|(retired, _)| retired.is_none_or(|t| t >= since))
                .map(|(_, jwk)| jwk.clone())
                .collect(),
        }
    }

    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<String, OidcError> {
        let set = self.current();
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(set.kid.clone());
        jsonwebtoken::encode(&header, claims, &set.signing)
            .map_err(|e| OidcError::Key(format!("cannot sign: {e}")))
    }

    /// The key that verifies a token with this `kid`, if it is still published.
    pub fn verifying_key(&self, kid: &str) -> Option<DecodingKey> {
        self.current()
            .verifying
            .iter()
            .find(|(k, _)| k == kid)
            .map(|(_, d)| d.clone())
    }
}
