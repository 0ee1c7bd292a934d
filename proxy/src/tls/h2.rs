//! The TLS listener settings (rustls via Pingora, ALPN `h2` then `http/1.1`) and the HTTP/2
//! limits of an HTTPS entry point.

use std::sync::Arc;

use pingora::listeners::tls::TlsSettings;
use pingora::protocols::http::v2::server::default_h2_options;

use super::SniResolver;
use crate::limits::EntryLimits;
use crate::state::Shared;

/// Streams one client connection may have open at once (Pingora's default, said here so it is
/// a decision): a browser opens 6–20 for a page; upstream work per client stays bounded.
const MAX_CONCURRENT_STREAMS: u32 = 100;
/// Streams a client may open and reset before the proxy took them (the rapid-reset attack,
/// CVE-2023-44487): past this count h2 answers GOAWAY ENHANCE_YOUR_CALM and closes.
const MAX_PENDING_ACCEPT_RESETS: usize = 20;
/// Streams the proxy itself reset for protocol errors before it gives up on the connection.
const MAX_LOCAL_ERROR_RESETS: usize = 1024;

/// Rustls with TLS 1.2 and 1.3 only (Pingora's builder), the ring provider's cipher suites
/// (AEAD only, ECDHE only), ALPN `h2` preferred over `http/1.1`, and the certificate chosen per
/// handshake from the live route table.
pub fn listener_settings(shared: Arc<Shared>) -> Result<TlsSettings, String> {
    // Pingora's settings demand files or a resolver; the paths are unused with a resolver.
    let mut tls = TlsSettings::intermediate("", "").map_err(|e| e.to_string())?;
    tls.set_cert_resolver(Arc::new(SniResolver { shared }));
    tls.enable_h2();
    Ok(tls)
}

/// HTTP/2 options of the entry point's proxy: the header limit matches HTTP/1's
/// `maxHeaderBytes`; idle connections close after `idleTimeout`.
pub fn configure<A>(http: &mut pingora::proxy::HttpProxy<A>, limits: &EntryLimits) {
    let mut h2 = default_h2_options();
    h2.max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .max_pending_accept_reset_streams(MAX_PENDING_ACCEPT_RESETS)
        .max_local_error_reset_streams(Some(MAX_LOCAL_ERROR_RESETS))
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    http.h2_options = Some(h2);
    let mut opts = http.server_options.clone().unwrap_or_default();
    opts.h2_idle_timeout = limits.idle;
    http.server_options = Some(opts);
}
