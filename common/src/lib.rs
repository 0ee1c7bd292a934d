//! Lists that bloud-proxy, bloud-agent and the web shell must agree on, kept in one place so
//! they cannot drift apart. Dependency-free on purpose: bloud-agent links it, and must not pull
//! in the proxy's dependencies (Pingora).

pub mod authentik;
pub mod forwarding;
