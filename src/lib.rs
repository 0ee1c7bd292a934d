//! Root package: owns the end-to-end tests in `tests/` (which drive the real `bloud-proxy` and
//! `bloud-agent` binaries as separate processes) and the benchmarks in `benches/`.
pub use bloud_proxy as proxy;
