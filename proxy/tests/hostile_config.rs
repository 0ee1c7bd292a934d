//! Route files written to hurt the proxy: a rule nested 2,000 levels deep (it overflowed the
//! stack on reload) and 30 chains that each list the next one twice (2^30 middlewares: memory
//! grew until the process was killed). Each must be an ordinary bad file: `check` rejects it
//! with the file, line and key, and a running proxy keeps its routes and keeps serving.

mod support;

use std::time::Duration;

use anyhow::{ensure, Context};
use support::proxy::{output_text, run_check, Proxy};
use support::upstream::Upstream;

const GOOD: &str = "good.yml";
const HOSTILE: &str = "hostile.yml";

fn good_routes(upstream: &Upstream) -> String {
    format!(
        "http:\n  routers:\n    app:\n      rule: PathPrefix(`/app`)\n      service: app\n  services:\n    app:\n      loadBalancer:\n        servers:\n          - url: \"{}\"\n",
        upstream.url()
    )
}

/// (case, file text, what the error must say, the key it must name).
fn hostile_files() -> Vec<(&'static str, String, &'static str, &'static str)> {
    let deep_rule = format!(
        "http:\n  routers:\n    deep:\n      rule: \"{}PathPrefix(`/deep`){}\"\n      service: noop@internal\n",
        "(".repeat(2_000),
        ")".repeat(2_000)
    );
    let mut chains = String::from(
        "http:\n  routers:\n    doubling:\n      rule: PathPrefix(`/doubling`)\n      service: noop@internal\n      middlewares: [c0]\n  middlewares:\n",
    );
    for i in 0..30 {
        chains.push_str(&format!(
            "    c{i}:\n      chain:\n        middlewares: [c{next}, c{next}]\n",
            next = i + 1
        ));
    }
    chains.push_str("    c30:\n      headers:\n        customRequestHeaders:\n          X-A: b\n");
    vec![
        (
            "rule nested 2,000 levels",
            deep_rule,
            "nest more than 32 levels",
            "http.routers.deep",
        ),
        (
            "30 doubling chains",
            chains,
            "nest more than 16 levels",
            "http.routers.doubling",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_route_files_are_errors_not_crashes() -> anyhow::Result<()> {
    let upstream = Upstream::start("app").await?;
    let proxy = Proxy::builder()
        .route_file(GOOD, good_routes(&upstream))
        .start()
        .await?;
    let client = support::client()?;
    for (case, text, message, key) in hostile_files() {
        // `check` on the same configuration: exit 1, the file, its line and the key.
        proxy.write_route_file(HOSTILE, &text)?;
        let out = tokio::time::timeout(Duration::from_secs(30), run_check(&proxy.config_path))
            .await
            .with_context(|| format!("{case}: check did not finish"))??;
        let report = output_text(&out);
        ensure!(
            out.status.code() == Some(1),
            "{case}: check must fail: {report}"
        );
        let error_line = report
            .lines()
            .find(|l| l.contains(message) && l.contains(key))
            .with_context(|| format!("{case}: no line says {message:?} for {key}: {report}"))?;
        ensure!(
            error_line.contains(HOSTILE) && error_line.contains("(line 3)"),
            "{case}: the error names {HOSTILE}, line 3 and {key}: {error_line}"
        );
        ensure!(
            error_line.len() < 500,
            "{case}: one readable line, not the whole rule: {} bytes",
            error_line.len()
        );

        // The running proxy: the reload fails, the process lives, the old routes still serve.
        let before = proxy.reload_count().await?;
        proxy.sighup()?;
        let after = proxy
            .next_reload(before, Duration::from_secs(30))
            .await
            .with_context(|| format!("{case}: {}", support::proxy::tail(&proxy.logs(), 3000)))?;
        ensure!(
            after.failure == before.failure + 1 && after.success == before.success,
            "{case}: the reload must fail: {before:?} -> {after:?}"
        );
        let resp = client.get(proxy.url("/app/x")).send().await?;
        ensure!(
            resp.status() == 200,
            "{case}: the previous routes keep serving, got {}",
            resp.status()
        );
        ensure!(
            proxy.logs().contains(message),
            "{case}: the log says why the reload failed"
        );
    }
    Ok(())
}
