//! Root package: owns the end-to-end tests in `tests/` and the benchmarks in `benches/`.
//! The code lives in the `bloud-proxy` and `bloud-agent` crates.
pub use bloud_agent as agent;
pub use bloud_proxy as proxy;
