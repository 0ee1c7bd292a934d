//! HTTPS entry points: certificates named in the dynamic files (Traefik's `tls` section), read
//! and checked with each route load, and picked by SNI during the handshake.
//!
//! The certificate table lives in the route table, so a reload swaps routes and certificates in
//! one atomic store, and a rejected load keeps both. Pingora's rustls listener takes a custom
//! `ResolvesServerCert` ([`SniResolver`]); it reads the live table on every handshake, so new
//! handshakes see a new certificate at once while established connections keep theirs.

pub mod certs;
pub mod h2;
pub mod sni;

pub use certs::{load_pair, CertError, LoadedCert};
pub use sni::{CertTable, SniResolver};
