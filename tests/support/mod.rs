//! Harness for the end-to-end tests: a whole Bloud system (the real `bloud-proxy` and
//! `bloud-agent` binaries, the agent in demo `command` rebuild mode) in a temp dir on free
//! loopback ports, plus an HTTP client that talks to it the way the shell does.
//!
//! Each test file includes this with `mod support;` and uses only part of it.
#![allow(dead_code)]

pub mod bins;
pub mod client;
pub mod layout;
pub mod ports;
pub mod process;
pub mod sse;
pub mod system;

use std::future::Future;
use std::time::Duration;

pub use client::Client;
pub use system::System;

/// The repository root (the root package's manifest directory).
pub fn repo_root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Polls `check` every 100 ms until it returns `Some`, or fails after `limit` with `what` and
/// the last value seen (so a failure says what was observed, not only that time ran out).
pub async fn wait_for<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let last = match check().await {
            Ok(v) => return Ok(v),
            Err(last) => last,
        };
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!("timed out after {limit:?} waiting for {what}; last seen: {last}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs a scenario with an overall time limit; on failure panics with the error chain (the
/// system, dropped while panicking, then prints its logs).
pub async fn run_scenario<Fut>(limit: Duration, scenario: Fut)
where
    Fut: Future<Output = anyhow::Result<()>>,
{
    let outcome = match tokio::time::timeout(limit, scenario).await {
        Ok(r) => r,
        Err(_) => Err(anyhow::anyhow!(
            "the scenario did not finish within {limit:?}"
        )),
    };
    if let Err(e) = outcome {
        panic!("{e:#}");
    }
}
