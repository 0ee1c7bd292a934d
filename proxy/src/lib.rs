//! bloud-proxy: Traefik-compatible routing on Pingora.

pub(crate) mod access_log;
pub(crate) mod admin;
pub mod config;
pub(crate) mod edge;
/// Server-side rewriting for apps embedded under `/embed/<app>/` (pure functions, no Pingora).
pub mod embed;
pub(crate) mod error_page;
pub mod header_edit;
pub(crate) mod health_check;
pub(crate) mod ipnet;
pub mod limits;
pub mod metrics;
pub mod middleware;
pub(crate) mod proxy;
pub mod reload;
pub(crate) mod router;
pub mod rules;
pub mod server;
pub(crate) mod service;
pub(crate) mod state;
pub mod table;
pub mod tls;

pub use rules::RequestView;
pub use table::RouteTable;

/// A small deterministic random source for the property tests (xorshift64): the same inputs on
/// every run, no test dependency.
#[cfg(test)]
pub(crate) fn test_rng() -> impl FnMut() -> u64 {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}
