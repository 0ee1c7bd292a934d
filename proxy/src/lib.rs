//! bloud-proxy: Traefik-compatible routing on Pingora.

/// Server-side rewriting for apps embedded under `/embed/<app>/` (pure functions, no Pingora).
pub mod embed;
