//! Lists that bloud-proxy, bloud-agent and the web shell must agree on, and the way both crates
//! read YAML, kept in one place so they cannot drift apart. Its dependencies are only what reading
//! YAML needs: both crates link it, so it must not pull in either one's runtime (Pingora, tokio,
//! axum).

pub mod authentik;
pub mod forwarding;
pub mod yaml;
