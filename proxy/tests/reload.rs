//! Hot reload: the route directory is rewritten (atomic rename) and SIGHUP sent over and over
//! while a concurrent client hammers the proxy; no request fails and no request sees a mix of
//! two route tables. A broken file keeps the previous table, and says so in /metrics, the
//! admin API and the log.

mod support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use support::proxy::{tail, Proxy};
use support::upstream::{echo_header, Upstream};

const ROUTE_FILE: &str = "apps-routes.yml";
const MIN_REQUESTS: u64 = 20_000;
const MIN_RELOADS: u64 = 100;
const CLIENTS: usize = 16;

/// Route table generation `generation`: even generations go to `even`, odd ones to `odd`, and
/// every request is stamped with `X-Route-Generation` by a headers middleware of the same
/// table, so a reply from the wrong upstream for its stamp is a mixed snapshot.
fn routes(generation: u64, even: &Upstream, odd: &Upstream) -> String {
    let url = if generation.is_multiple_of(2) {
        even.url()
    } else {
        odd.url()
    };
    format!(
        r#"# generation {generation}
http:
  routers:
    app-backend:
      rule: "Path(`/embed/app`) || PathPrefix(`/embed/app/`)"
      priority: 100
      middlewares:
        - app-stripprefix
        - app-generation
      service: app
  middlewares:
    app-stripprefix:
      stripPrefix:
        prefixes: ["/embed/app"]
    app-generation:
      headers:
        customRequestHeaders:
          X-Route-Generation: "{generation}"
  services:
    app:
      loadBalancer:
        servers:
          - url: "{url}"
"#
    )
}

/// Fetches `/embed/app/...` and returns the generation stamped on it, checking that the
/// upstream that answered belongs to that generation.
async fn fetch_generation(client: &reqwest::Client, proxy_url: &str) -> Result<u64, String> {
    let resp = client
        .get(proxy_url)
        .send()
        .await
        .map_err(|e| format!("request error: {e}"))?;
    let status = resp.status().as_u16();
    let body = resp.text().await.map_err(|e| format!("body error: {e}"))?;
    if status != 200 {
        return Err(format!("status {status}: {}", tail(&body, 200)));
    }
    let doc: serde_json::Value =
        serde_json::from_str(&body).map_err(|e| format!("not an echo reply ({e}): {body}"))?;
    let stamps = echo_header(&doc, "x-route-generation");
    let [stamp] = stamps.as_slice() else {
        return Err(format!("expected one X-Route-Generation, got {stamps:?}"));
    };
    let generation: u64 = stamp
        .parse()
        .map_err(|_| format!("bad generation stamp {stamp:?}"))?;
    let want = if generation.is_multiple_of(2) {
        "even"
    } else {
        "odd"
    };
    if doc["server"] != want {
        return Err(format!(
            "mixed snapshot: generation {generation} answered by {}",
            doc["server"]
        ));
    }
    Ok(generation)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_storm_under_load_fails_no_request() -> anyhow::Result<()> {
    let even = Upstream::start("even").await?;
    let odd = Upstream::start("odd").await?;
    let proxy = Proxy::builder()
        .watch(true)
        .route_file(ROUTE_FILE, routes(0, &even, &odd))
        .start()
        .await?;
    let url = proxy.url("/embed/app/storm");

    let done_requests = Arc::new(AtomicU64::new(0));
    let writer_done = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let failure_count = Arc::new(AtomicU64::new(0));
    let seen = Arc::new(Mutex::new(BTreeSet::new()));
    let started = Instant::now();
    let time_limit = Duration::from_secs(300);

    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let client = support::client()?;
        let url = url.clone();
        let done_requests = done_requests.clone();
        let writer_done = writer_done.clone();
        let failures = failures.clone();
        let failure_count = failure_count.clone();
        let seen = seen.clone();
        clients.push(tokio::spawn(async move {
            let mut local_seen = BTreeSet::new();
            loop {
                let enough = done_requests.load(Ordering::Relaxed) >= MIN_REQUESTS
                    && writer_done.load(Ordering::Relaxed);
                if enough || started.elapsed() > time_limit {
                    break;
                }
                match fetch_generation(&client, &url).await {
                    Ok(g) => {
                        local_seen.insert(g);
                    }
                    Err(e) => {
                        failure_count.fetch_add(1, Ordering::Relaxed);
                        if let Ok(mut f) = failures.lock() {
                            if f.len() < 20 {
                                f.push(e);
                            }
                        }
                    }
                }
                done_requests.fetch_add(1, Ordering::Relaxed);
            }
            if let Ok(mut s) = seen.lock() {
                s.extend(local_seen);
            }
        }));
    }

    // The writer: rewrite by atomic rename + SIGHUP until both quotas are met.
    let mut generation = 0u64;
    let mut reloads = 0u64;
    while (reloads < MIN_RELOADS || done_requests.load(Ordering::Relaxed) < MIN_REQUESTS)
        && started.elapsed() < time_limit
    {
        generation += 1;
        proxy.write_route_file(ROUTE_FILE, &routes(generation, &even, &odd))?;
        proxy.sighup()?;
        reloads += 1;
        // Bursts of rewrites 25 ms apart, then a quiet spell long enough for a debounced
        // reload to fire: both the coalescing and the swap happen under load.
        let pause = if reloads.is_multiple_of(4) { 400 } else { 25 };
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
    writer_done.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.context("client task panicked")?;
    }
    let total = done_requests.load(Ordering::Relaxed);
    let failed = failure_count.load(Ordering::Relaxed);
    let distinct = seen.lock().map(|s| s.len()).unwrap_or(0);
    eprintln!(
        "reload storm: {total} requests, {failed} failed, {reloads} rewrites+SIGHUPs, \
         {distinct} generations observed, {:.1?}",
        started.elapsed()
    );
    let first_failures = failures.lock().map(|f| f.join("\n")).unwrap_or_default();
    ensure!(
        failed == 0,
        "{failed} of {total} requests failed during reloads; first ones:\n{first_failures}"
    );
    ensure!(
        total >= MIN_REQUESTS,
        "only {total} requests in {time_limit:?}"
    );
    ensure!(
        reloads >= MIN_RELOADS,
        "only {reloads} reloads in {time_limit:?}"
    );
    ensure!(
        distinct >= 10,
        "only {distinct} route generations were ever served: reloads did not take effect under load"
    );

    // The last table written is the one that ends up live.
    let client = support::client()?;
    let (c, u) = (&client, &url);
    let live = support::eventually(Duration::from_secs(10), move || async move {
        fetch_generation(c, u).await == Ok(generation)
    })
    .await;
    ensure!(live, "generation {generation} never became live");

    let count = proxy.reload_count().await?;
    ensure!(
        count.failure == 0,
        "atomic rewrites must never be seen half-written, yet {} reloads failed",
        count.failure
    );
    ensure!(
        count.success >= 1,
        "bloud_proxy_config_reloads_total{{result=\"success\"}} missing or 0: {count:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_file_keeps_previous_routes_and_is_reported() -> anyhow::Result<()> {
    let even = Upstream::start("even").await?;
    let odd = Upstream::start("odd").await?;
    let proxy = Proxy::builder()
        .route_file(ROUTE_FILE, routes(1, &even, &odd))
        .start()
        .await?;
    let url = proxy.url("/embed/app/check");
    let client = support::client()?;
    ensure!(
        fetch_generation(&client, &url).await == Ok(1),
        "initial table"
    );

    // bloud-agent finds the pid in pidFile to send SIGHUP.
    let pid_text = std::fs::read_to_string(proxy.pid_file())
        .with_context(|| format!("reading {}", proxy.pid_file().display()))?;
    ensure!(
        pid_text.trim() == proxy.pid().to_string(),
        "pidFile holds {pid_text:?}, the proxy is {}",
        proxy.pid()
    );

    // 1. YAML that does not parse.
    let before = proxy.reload_count().await?;
    proxy.write_route_file(
        ROUTE_FILE,
        "http:\n  routers:\n    app-backend:\n      rule: \"Path(`/x`)\n      service: [\n",
    )?;
    proxy.sighup()?;
    let after = proxy.next_reload(before, Duration::from_secs(10)).await?;
    ensure!(
        after.failure == before.failure + 1,
        "a failed reload must increment bloud_proxy_config_reloads_total{{result=\"failure\"}}: \
         {before:?} -> {after:?}"
    );
    for _ in 0..20 {
        let got = fetch_generation(&client, &url).await;
        ensure!(
            got == Ok(1),
            "the previous table must stay live, got {got:?}"
        );
    }
    let routers = proxy.admin_json("/api/http/routers").await?;
    let routers_text = routers.to_string();
    ensure!(
        routers_text.contains("app-backend"),
        "the admin API must still list the live routers: {}",
        tail(&routers_text, 1000)
    );
    // The failed attempt itself, with the file it came from (the proxy's /api/reload).
    let report = proxy.admin_json("/api/reload").await?;
    ensure!(
        report["lastReload"]["ok"] == false && report.to_string().contains(ROUTE_FILE),
        "the admin API must report the failed reload and name {ROUTE_FILE}: {}",
        tail(&report.to_string(), 1500)
    );
    let logs = proxy.logs();
    ensure!(
        logs.contains(ROUTE_FILE),
        "the reload error must be logged with the file name:\n{}",
        tail(&logs, 3000)
    );

    // 2. Valid YAML that references a middleware nobody defines: also rejected as a whole.
    let dangling = routes(2, &even, &odd).replace("- app-generation", "- no-such-middleware");
    let before = proxy.reload_count().await?;
    proxy.write_route_file(ROUTE_FILE, &dangling)?;
    proxy.sighup()?;
    // The reload must be seen to finish, and fail: waiting a while and finding the old table
    // would also pass when the reload had simply not run yet.
    let after = proxy.next_reload(before, Duration::from_secs(10)).await?;
    ensure!(
        after.failure == before.failure + 1 && after.success == before.success,
        "a dangling middleware reference must fail the reload: {before:?} -> {after:?}"
    );
    let got = fetch_generation(&client, &url).await;
    ensure!(
        got == Ok(1),
        "a table with a dangling middleware reference must not go live, got {got:?}"
    );

    // 3. A good file next to a broken one: the reload is all or nothing.
    let before = proxy.reload_count().await?;
    proxy.write_route_file(ROUTE_FILE, &routes(3, &even, &odd))?;
    proxy.write_route_file("zz-extra.yml", "http:\n  routers: [not, a, map\n")?;
    proxy.sighup()?;
    let after = proxy.next_reload(before, Duration::from_secs(10)).await?;
    ensure!(
        after.failure == before.failure + 1 && after.success == before.success,
        "a broken sibling file must fail the whole reload: {before:?} -> {after:?}"
    );
    let got = fetch_generation(&client, &url).await;
    ensure!(
        got == Ok(1),
        "a broken sibling file must keep the old table, got {got:?}"
    );

    // 4. Fixing the directory makes the new table live.
    std::fs::remove_file(proxy.routes_dir.join("zz-extra.yml")).context("removing zz-extra.yml")?;
    proxy.sighup()?;
    let (c, u) = (&client, &url);
    let fixed = support::eventually(Duration::from_secs(10), move || async move {
        fetch_generation(c, u).await == Ok(3)
    })
    .await;
    ensure!(fixed, "after fixing the files the new table must go live");
    let report = proxy.admin_json("/api/reload").await?;
    ensure!(
        report["lastReload"]["ok"] == true,
        "after a good reload the admin API must say so: {}",
        tail(&report.to_string(), 1500)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watched_directory_reloads_without_a_signal() -> anyhow::Result<()> {
    let even = Upstream::start("even").await?;
    let odd = Upstream::start("odd").await?;
    let proxy = Proxy::builder()
        .watch(true)
        .route_file(ROUTE_FILE, routes(1, &even, &odd))
        .start()
        .await?;
    let url = proxy.url("/embed/app/watch");
    let client = support::client()?;
    ensure!(
        fetch_generation(&client, &url).await == Ok(1),
        "initial table"
    );

    proxy.write_route_file(ROUTE_FILE, &routes(2, &even, &odd))?;
    let (c, u) = (&client, &url);
    let switched = support::eventually(Duration::from_secs(10), move || async move {
        fetch_generation(c, u).await == Ok(2)
    })
    .await;
    ensure!(
        switched,
        "watch: true must pick up an atomic rewrite without SIGHUP"
    );

    // A new file appearing in the directory is picked up too (router from a second file).
    let other = Upstream::start("other").await?;
    proxy.write_route_file(
        "zz-other.yml",
        &support::embed_app_routes("other", &other.url(), &[]),
    )?;
    let other_url = proxy.url("/embed/other/x");
    let (c, u) = (&client, &other_url);
    let added = support::eventually(Duration::from_secs(10), move || async move {
        match c.get(u).send().await {
            Ok(r) => r.headers().get("x-upstream").is_some_and(|v| v == "other"),
            Err(_) => false,
        }
    })
    .await;
    ensure!(added, "a new route file must be picked up by the watcher");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_request_finishes_on_the_table_it_started_with() -> anyhow::Result<()> {
    let even = Upstream::start("even").await?;
    let odd = Upstream::start("odd").await?;
    let proxy = Proxy::builder()
        .route_file(ROUTE_FILE, routes(0, &even, &odd))
        .start()
        .await?;
    let slow_url = proxy.url("/embed/app/slow?ms=3000");
    let slow = tokio::spawn({
        let client = support::client()?;
        async move {
            let resp = client.get(&slow_url).send().await?;
            let upstream = resp
                .headers()
                .get("x-upstream")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let status = resp.status().as_u16();
            let body = resp.text().await?;
            Ok::<_, reqwest::Error>((status, upstream, body))
        }
    });
    let e = &even;
    let started = support::eventually(
        Duration::from_secs(10),
        move || async move { e.count() >= 1 },
    )
    .await;
    ensure!(started, "the slow request never reached the first upstream");

    proxy.write_route_file(ROUTE_FILE, &routes(1, &even, &odd))?;
    proxy.sighup()?;
    let client = support::client()?;
    let url = proxy.url("/embed/app/now");
    let (c, u) = (&client, &url);
    let switched = support::eventually(Duration::from_secs(10), move || async move {
        fetch_generation(c, u).await == Ok(1)
    })
    .await;
    ensure!(switched, "the new table never went live");

    let (status, upstream, body) = tokio::time::timeout(Duration::from_secs(20), slow)
        .await
        .context("the in-flight request did not finish")?
        .context("request task panicked")?
        .context("the in-flight request failed across the reload")?;
    ensure!(
        status == 200 && upstream == "even" && body == "slow response done",
        "the in-flight request must finish on its own table: {status} from {upstream:?}: {body:?}"
    );
    Ok(())
}
