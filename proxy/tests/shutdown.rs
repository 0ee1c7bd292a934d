//! SIGTERM drains: requests already in flight complete, and the process exits within
//! `lifeCycle.graceTimeOut` + 5 s.

mod support;

use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use support::proxy::Proxy;
use support::upstream::Upstream;

const GRACE: Duration = Duration::from_secs(5);
const IN_FLIGHT: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_slow_requests_finish_and_exits_within_grace() -> anyhow::Result<()> {
    let app = Upstream::start("slowapp").await?;
    let mut proxy = Proxy::builder()
        .grace(&format!("{}s", GRACE.as_secs()))
        .route_file(
            "apps-routes.yml",
            support::embed_app_routes("slowapp", &app.url(), &[]),
        )
        .start()
        .await?;

    let mut requests = Vec::new();
    for i in 0..IN_FLIGHT {
        let client = support::client()?;
        let url = proxy.url(&format!("/embed/slowapp/slow?ms=3000&i={i}"));
        requests.push(tokio::spawn(async move {
            let resp = client.get(&url).send().await?;
            let status = resp.status().as_u16();
            let body = resp.text().await?;
            Ok::<_, reqwest::Error>((status, body))
        }));
    }
    let upstream = &app;
    let all_in_flight = support::eventually(Duration::from_secs(10), move || async move {
        upstream.count() >= IN_FLIGHT
    })
    .await;
    ensure!(
        all_in_flight,
        "only {} of {IN_FLIGHT} slow requests reached the upstream",
        app.count()
    );

    let sigterm_at = Instant::now();
    proxy.signal(libc::SIGTERM)?;

    for (i, r) in requests.into_iter().enumerate() {
        let (status, body) = tokio::time::timeout(Duration::from_secs(20), r)
            .await
            .with_context(|| format!("in-flight request {i} did not finish"))?
            .context("request task panicked")?
            .with_context(|| format!("in-flight request {i} failed after SIGTERM"))?;
        ensure!(
            status == 200 && body == "slow response done",
            "in-flight request {i} got {status} {body:?}"
        );
    }

    let limit = GRACE + Duration::from_secs(5);
    let remaining = limit.saturating_sub(sigterm_at.elapsed());
    let exited = proxy.wait_exit(remaining).await?;
    let took = sigterm_at.elapsed();
    let Some(status) = exited else {
        anyhow::bail!("bloud-proxy still running {took:?} after SIGTERM (limit {limit:?})");
    };
    eprintln!("bloud-proxy exited {took:.1?} after SIGTERM with {status}");
    ensure!(
        status.success(),
        "a graceful shutdown must exit 0 (systemd reports anything else as a failure), got {status}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_when_idle_exits_within_grace() -> anyhow::Result<()> {
    let app = Upstream::start("idleapp").await?;
    let mut proxy = Proxy::builder()
        .grace(&format!("{}s", GRACE.as_secs()))
        .route_file(
            "apps-routes.yml",
            support::embed_app_routes("idleapp", &app.url(), &[]),
        )
        .start()
        .await?;
    let resp = support::client()?
        .get(proxy.url("/embed/idleapp/x"))
        .send()
        .await?;
    ensure!(resp.status().as_u16() == 200, "status {}", resp.status());
    let sigterm_at = Instant::now();
    proxy.signal(libc::SIGTERM)?;
    let limit = GRACE + Duration::from_secs(5);
    let exited = proxy.wait_exit(limit).await?;
    ensure!(
        exited.is_some(),
        "bloud-proxy still running {:?} after SIGTERM (limit {limit:?})",
        sigterm_at.elapsed()
    );
    Ok(())
}
