//! bloud-agent: app catalog, plans, queue, rebuilds, routes and the loopback API.

/// App catalog: `apps/*/metadata.yaml`.
pub mod catalog;
/// plan-install and plan-remove over the integration graph.
pub mod plan;
/// Generation of the proxy's `apps-routes.yml`.
pub mod routes;
/// Generation of `apps.nix` and the state file.
pub mod nixgen;
