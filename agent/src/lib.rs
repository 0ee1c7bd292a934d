//! bloud-agent: app catalog, plans, queue, rebuilds, routes and the API.

/// Generation of `apps.nix` and the state file.
pub mod apps_list;
/// App catalog: `apps/*/metadata.yaml`.
pub mod catalog;
pub mod nixgen;
/// plan-install and plan-remove over the integration graph.
pub mod plan;
/// Generation of the proxy's `apps-routes.yml`.
pub mod routes;

/// HTTP API and web shell.
pub mod api;
/// Per-app memory and storage, temperature.
pub mod app_usage;
/// Local accounts, sessions and the session gate.
pub mod auth;
/// Authentik blueprints for the installed apps, when Authentik is installed.
pub mod authentik;
/// Command line.
pub mod cli;
/// Configuration file and `BLOUD_*` environment.
pub mod config;
/// Cross-site request guard for state-changing requests.
pub mod csrf;
/// SQLite storage.
pub mod db;
/// Demo apps and the demo rebuild command.
pub mod demo;
pub mod demo_rp;
/// SSE event hub.
pub mod events;
/// App health checks.
pub mod health;
/// Generations (what apps each had) and rollback.
pub mod history;
/// Login flood and password-guessing limits.
pub mod login_limit;
/// The OpenID Connect provider apps sign in with.
pub mod oidc;
/// Executes install and uninstall operations.
pub mod orchestrator;
/// The operation queue.
pub mod queue;
/// Rebuild runner.
pub mod rebuild;
/// Restarting an app's service (queued).
pub mod restart;
/// Startup and serving.
pub mod server;
/// Shared service state.
pub mod service;
/// The CLI's Unix socket and its peer-credential check.
pub mod socket;
/// CPU, memory and disk use.
pub mod system_stats;
/// The box-local CA and the proxy's HTTPS certificate.
pub mod tls;
/// YAML parsing with key paths and positions.
pub mod yaml;
