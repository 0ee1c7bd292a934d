//! End to end through the proxy, as the shell uses the API: first-user setup, login, install a
//! catalog app (demo `command` rebuild), its rebuild log over SSE, health, the agent's route file
//! and the proxy's reload by SIGHUP, the app under `/embed/<app>/`, uninstall; and that no
//! protected route answers without a session, whatever forwarding headers a client sends.

mod support;

use std::time::Duration;

use anyhow::{bail, ensure, Context};
use reqwest::Method;
use serde_json::{json, Value};
use support::sse::Stream;
use support::{run_scenario, wait_for, Client, System};

/// A catalog app with a port, no required integrations and no SSO when Authentik is absent:
/// installing it alone needs no choices. Its routes strip the prefix and rewrite the app's HTML.
const APP: &str = "adguard-home";
const USER: &str = "alice";
const PASSWORD: &str = "correct horse battery";

const SCENARIO_LIMIT: Duration = Duration::from_secs(150);
/// The demo rebuild's pause after each log line in the install test.
const STEP: Duration = Duration::from_millis(100);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_through_the_proxy_then_uninstall() {
    let sys = match System::start_paced(STEP).await {
        Ok(s) => s,
        Err(e) => panic!("starting the system: {e:#}"),
    };
    run_scenario(SCENARIO_LIMIT, install_scenario(&sys)).await;
}

async fn install_scenario(sys: &System) -> anyhow::Result<()> {
    let mut client = sys.client()?;
    sign_up_and_log_in(&mut client).await?;

    // The shell follows the rebuild log and the installed list while the install runs.
    let mut log = Stream::open(client.stream("/api/rebuilds/stream"), "rebuild log stream").await?;
    let mut events = Stream::open(client.stream("/api/apps/events"), "apps event stream").await?;
    let first = events
        .next(Duration::from_secs(10))
        .await
        .context("the first apps snapshot")?;
    let first: Value = serde_json::from_str(&first).context("apps snapshot is not JSON")?;
    ensure!(
        installed_status(&first, APP).is_none(),
        "{APP} is listed before it was installed: {first}"
    );

    let queued = client
        .post_json(&format!("/api/apps/{APP}/install?wait=false"), &json!({}))
        .await?;
    ensure!(
        queued.status == 202,
        "install: expected 202 queued, got {}",
        queued.describe()
    );
    let q = queued.json()?;
    ensure!(
        q["queued"] == json!(true) && q["app"] == json!(APP),
        "install answer: {q}"
    );

    // The rebuild's output arrives line by line, then its successful completion.
    let line = log
        .until_json(
            "a rebuild output line naming the app",
            Duration::from_secs(60),
            |v| v["type"] == "output" && v["message"].as_str().is_some_and(|m| m.contains(APP)),
        )
        .await?;
    let rebuild_id = line["rebuildId"]
        .as_i64()
        .with_context(|| format!("output event without a rebuildId: {line}"))?;
    let done = log
        .until_json(
            "the rebuild's complete event",
            Duration::from_secs(60),
            |v| v["type"] == "complete",
        )
        .await?;
    ensure!(
        done["success"] == json!(true),
        "the rebuild failed: {done}\nlog so far:\n{}",
        log.seen.join("\n")
    );
    let streamed: Vec<String> = log
        .seen
        .iter()
        .filter_map(|f| serde_json::from_str::<Value>(f).ok())
        .filter(|v| v["type"] == "output" && v["rebuildId"].as_i64() == Some(rebuild_id))
        .filter_map(|v| v["message"].as_str().map(str::to_string))
        .collect();
    ensure!(
        streamed.len() >= 4,
        "expected several streamed log lines, got {streamed:?}"
    );
    // Streamed, not delivered at the end: the lines came while the rebuild was still running
    // (it pauses STEP after each), through the proxy without buffering.
    let first_at = log.arrived[log
        .seen
        .iter()
        .position(|f| f.contains("\"output\""))
        .context("no output frame")?];
    let done_at = *log.arrived.last().context("no frames")?;
    let spread = done_at - first_at;
    ensure!(
        spread >= STEP * 3,
        "the log lines arrived within {spread:?} of the end of a rebuild that paused {STEP:?} \
         after each of {} lines: the stream is buffered",
        streamed.len()
    );

    // The log is kept: the stored log has the lines that were streamed.
    let stored = client
        .get(&format!("/api/rebuilds/{rebuild_id}/log"))
        .await?;
    ensure!(
        stored.status == 200,
        "stored rebuild log: {}",
        stored.describe()
    );
    for l in &streamed {
        ensure!(
            stored.body.contains(l.as_str()),
            "stored log lacks streamed line `{l}`:\n{}",
            stored.body
        );
    }

    // Health: the app goes to running, and the live list showed the way there.
    let statuses = wait_running(&mut events).await?;
    ensure!(
        statuses.iter().any(|s| s != "running"),
        "the apps stream never showed {APP} before it was running (statuses {statuses:?})"
    );
    let installed = client.get("/api/apps/installed").await?;
    ensure!(
        installed_status(&installed.json()?, APP).as_deref() == Some("running"),
        "installed list: {}",
        installed.describe()
    );

    // The agent wrote the app's route, the proxy reloaded it on SIGHUP (file watching is off).
    let port = sys.app_port(APP)?;
    check_routes_file(sys, port).await?;
    let router = format!("{APP}-backend@file");
    wait_router(sys, &router, true).await?;

    // The app answers under /embed/<app>/, prefix stripped, its root links kept inside it.
    let page = wait_for(
        "the app page through the proxy",
        Duration::from_secs(20),
        || async {
            match client.get(&format!("/embed/{APP}/")).await {
                Ok(a) if a.status == 200 => Ok(a),
                Ok(a) => Err(a.describe()),
                Err(e) => Err(format!("{e:#}")),
            }
        },
    )
    .await?;
    ensure!(
        page.body.contains(&format!("<h1>{APP}</h1>")),
        "not the app's page: {}",
        page.describe()
    );
    ensure!(
        page.body.contains("<code>/</code>"),
        "the app did not see the path with /embed/{APP} stripped: {}",
        page.describe()
    );
    ensure!(
        page.body
            .contains(&format!("href=\"/embed/{APP}/settings\"")),
        "the app's root-absolute link was not rewritten into /embed/{APP}/: {}",
        page.describe()
    );
    ensure!(
        !page.body.contains("href=\"/settings\""),
        "a root-absolute link escaped the rewriting: {}",
        page.describe()
    );
    let css = client.get(&format!("/embed/{APP}/style.css")).await?;
    ensure!(css.status == 200, "stylesheet: {}", css.describe());
    let ctype = css
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    ensure!(
        ctype.starts_with("text/css"),
        "stylesheet content-type `{ctype}`"
    );

    // Uninstall: the route goes away, /embed/<app>/ is the agent's "not installed" page.
    let removed = client
        .post_json(&format!("/api/apps/{APP}/uninstall"), &json!({}))
        .await?;
    ensure!(removed.status == 200, "uninstall: {}", removed.describe());
    ensure!(
        removed.json()?["success"] == json!(true),
        "uninstall: {}",
        removed.describe()
    );
    let routes = std::fs::read_to_string(sys.routes_file()).unwrap_or_default();
    ensure!(
        !routes.contains(&format!("{APP}-backend")),
        "apps-routes.yml still routes {APP} after the uninstall:\n{routes}"
    );
    wait_router(sys, &router, false).await?;
    let gone = client.get(&format!("/embed/{APP}/")).await?;
    ensure!(
        gone.status == 404,
        "after uninstall: expected 404, got {}",
        gone.describe()
    );
    ensure!(
        gone.body.contains("App not installed"),
        "404 page: {}",
        gone.describe()
    );
    ensure!(
        gone.body.contains(APP),
        "the 404 page does not name the app: {}",
        gone.describe()
    );
    let installed = client.get("/api/apps/installed").await?;
    ensure!(
        installed_status(&installed.json()?, APP).is_none(),
        "{APP} still listed after the uninstall: {}",
        installed.describe()
    );
    wait_for("the demo app to stop", Duration::from_secs(15), || async {
        if support::ports::is_listening(port) {
            Err(format!("127.0.0.1:{port} still accepts connections"))
        } else {
            Ok(())
        }
    })
    .await
}

async fn sign_up_and_log_in(client: &mut Client) -> anyhow::Result<()> {
    let status = client.get("/api/setup/status").await?;
    ensure!(
        status.status == 200 && status.json()?["setupRequired"] == json!(true),
        "a fresh system must ask for setup: {}",
        status.describe()
    );
    let created = client
        .post_json(
            "/api/setup/create-user",
            &json!({"username": USER, "password": PASSWORD}),
        )
        .await?;
    ensure!(created.status == 200, "create-user: {}", created.describe());
    ensure!(
        created.json()?["success"] == json!(true),
        "create-user: {}",
        created.describe()
    );
    let again = client
        .post_json(
            "/api/setup/create-user",
            &json!({"username": "mallory", "password": PASSWORD}),
        )
        .await?;
    ensure!(
        again.status == 409,
        "a second create-user must be 409: {}",
        again.describe()
    );
    let status = client.get("/api/setup/status").await?;
    ensure!(
        status.json()?["setupRequired"] == json!(false),
        "setup status after setup: {}",
        status.describe()
    );

    let wrong = client
        .post_json(
            "/api/auth/login",
            &json!({"username": USER, "password": "not the password"}),
        )
        .await?;
    ensure!(
        wrong.status == 401,
        "login with a wrong password: {}",
        wrong.describe()
    );
    ensure!(
        wrong.set_cookie("bloud_session").is_none(),
        "a refused login set a session cookie"
    );

    let login = client
        .post_json(
            "/api/auth/login",
            &json!({"username": USER, "password": PASSWORD}),
        )
        .await?;
    ensure!(login.status == 200, "login: {}", login.describe());
    let cookie = client.keep_session(&login)?;
    let attrs = cookie.to_ascii_lowercase();
    for want in ["httponly", "samesite=lax", "path=/"] {
        ensure!(
            attrs.contains(want),
            "session cookie lacks {want}: {cookie}"
        );
    }
    let me = client.get("/api/auth/me").await?;
    ensure!(me.status == 200, "me with the session: {}", me.describe());
    ensure!(
        me.json()?["username"] == json!(USER),
        "me: {}",
        me.describe()
    );
    Ok(())
}

/// The app's status in an installed-apps list (`None` when absent).
fn installed_status(list: &Value, app: &str) -> Option<String> {
    list.as_array()?
        .iter()
        .find(|a| a["name"] == json!(app))
        .map(|a| a["status"].as_str().unwrap_or("").to_string())
}

/// Reads installed-list snapshots until the app is running; returns the statuses it went through.
async fn wait_running(events: &mut Stream) -> anyhow::Result<Vec<String>> {
    let mut statuses: Vec<String> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let frame = events.next(left).await.with_context(|| {
            format!("waiting for {APP} to be running; statuses seen: {statuses:?}")
        })?;
        let list: Value =
            serde_json::from_str(&frame).with_context(|| format!("apps event: {frame}"))?;
        if let Some(s) = installed_status(&list, APP) {
            if statuses.last() != Some(&s) {
                statuses.push(s.clone());
            }
            match s.as_str() {
                "running" => return Ok(statuses),
                "failed" | "error" => bail!("{APP} ended `{s}` instead of running: {list}"),
                _ => {}
            }
        }
    }
}

async fn check_routes_file(sys: &System, port: u16) -> anyhow::Result<()> {
    let path = sys.routes_file();
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("the agent did not write {}", path.display()))?;
    let doc: serde_json::Value = serde_saphyr::from_str(&text)
        .with_context(|| format!("{} is not YAML:\n{text}", path.display()))?;
    let router = &doc["http"]["routers"][format!("{APP}-backend").as_str()];
    let rule = router["rule"].as_str().unwrap_or("");
    ensure!(
        rule == format!("Path(`/embed/{APP}`) || PathPrefix(`/embed/{APP}/`)"),
        "router {APP}-backend rule is `{rule}`:\n{text}"
    );
    ensure!(
        text.contains(&format!("http://127.0.0.1:{port}")),
        "apps-routes.yml does not send {APP} to its port {port}:\n{text}"
    );
    Ok(())
}

/// Polls the proxy's admin API until `router` is (or is no longer) in the live table.
async fn wait_router(sys: &System, router: &str, present: bool) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .context("admin client")?;
    let url = sys.admin_url("/api/http/routers");
    let what = format!(
        "router {router} to be {} the proxy",
        if present { "live in" } else { "gone from" }
    );
    wait_for(&what, Duration::from_secs(20), || async {
        let resp = http.get(&url).send().await.map_err(|e| e.to_string())?;
        let list: Value = resp.json().await.map_err(|e| e.to_string())?;
        let names: Vec<&str> = list
            .as_array()
            .map(|a| a.iter().filter_map(|r| r["name"].as_str()).collect())
            .unwrap_or_default();
        if names.contains(&router) == present {
            Ok(())
        } else {
            Err(format!("routers: {names:?}"))
        }
    })
    .await
}

/// Every route the agent protects, as (method, path).
fn protected_routes() -> Vec<(Method, String)> {
    let g = |p: &str| (Method::GET, p.to_string());
    let p = |p: &str| (Method::POST, p.to_string());
    vec![
        g("/api/auth/me"),
        g("/api/apps"),
        g("/api/apps/installed"),
        g("/api/apps/events"),
        g(&format!("/api/apps/{APP}/plan-install")),
        g(&format!("/api/apps/{APP}/plan-remove")),
        g(&format!("/api/apps/{APP}/metadata")),
        p(&format!("/api/apps/{APP}/install")),
        p(&format!("/api/apps/{APP}/uninstall")),
        p("/api/apps/refresh-catalog"),
        g("/api/rebuilds"),
        g("/api/rebuilds/latest"),
        g("/api/rebuilds/stream"),
        g("/api/rebuilds/1"),
        g("/api/rebuilds/1/log"),
        g("/api/system/rebuild/stream"),
    ]
}

/// Headers a client could send to pass for the box itself.
fn spoofs() -> Vec<Vec<(&'static str, &'static str)>> {
    vec![
        vec![],
        vec![("X-Forwarded-For", "127.0.0.1")],
        vec![("X-Real-Ip", "127.0.0.1")],
        vec![("True-Client-IP", "127.0.0.1")],
        vec![("Forwarded", "for=127.0.0.1")],
        vec![
            ("X-Forwarded-For", "127.0.0.1"),
            ("X-Real-Ip", "127.0.0.1"),
            ("True-Client-IP", "::1"),
            ("Forwarded", "for=\"[::1]\";proto=http"),
            ("X-Forwarded-Host", "localhost"),
        ],
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_routes_need_a_session_whatever_the_headers() {
    let sys = match System::start().await {
        Ok(s) => s,
        Err(e) => panic!("starting the system: {e:#}"),
    };
    run_scenario(SCENARIO_LIMIT, auth_scenario(&sys)).await;
}

async fn auth_scenario(sys: &System) -> anyhow::Result<()> {
    let anonymous = sys.client()?;
    // Before setup (no user yet) and after it: auth never fails open.
    check_all_refused(&anonymous, "before setup").await?;
    let mut signed_in = sys.client()?;
    sign_up_and_log_in(&mut signed_in).await?;
    check_all_refused(&anonymous, "after setup").await?;
    // A made-up or revoked session is no session.
    let mut forged = sys.client()?;
    forged.session = Some("bloud_session=0123456789abcdef".into());
    check_all_refused(&forged, "with a forged cookie").await?;

    // Nothing the refused requests asked for happened.
    let installed = signed_in.get("/api/apps/installed").await?;
    ensure!(
        installed.status == 200,
        "installed with a session: {}",
        installed.describe()
    );
    let list = installed.json()?;
    ensure!(
        list.as_array().is_none_or(|a| a.is_empty()),
        "refused install requests installed something: {list}"
    );
    let rebuilds = signed_in.get("/api/rebuilds").await?;
    ensure!(
        rebuilds.status == 200,
        "rebuilds with a session: {}",
        rebuilds.describe()
    );
    let list = rebuilds.json()?;
    ensure!(
        list["rebuilds"].as_array().is_none_or(|a| a.is_empty()),
        "refused requests started a rebuild: {list}"
    );

    // Directly at the agent from the box itself, with or without proxy headers: no trust.
    let direct = Client::new(sys.agent_url(""))?;
    for spoof in spoofs() {
        let mut req = direct.request(Method::GET, "/api/apps/installed");
        for (k, v) in &spoof {
            req = req.header(*k, *v);
        }
        let a = direct.send(req).await?;
        ensure!(
            a.status == 401,
            "agent direct with {spoof:?}: expected 401, got {}",
            a.describe()
        );
    }
    // Signing out ends the session.
    let out = signed_in.post_json("/api/auth/logout", &json!({})).await?;
    ensure!(
        (200..400).contains(&out.status),
        "logout: {}",
        out.describe()
    );
    let me = signed_in.get("/api/auth/me").await?;
    ensure!(me.status == 401, "me after logout: {}", me.describe());
    Ok(())
}

async fn check_all_refused(client: &Client, when: &str) -> anyhow::Result<()> {
    let mut wrong = Vec::new();
    for (method, path) in protected_routes() {
        for spoof in spoofs() {
            let mut req = client.request(method.clone(), &path);
            for (k, v) in &spoof {
                req = req.header(*k, *v);
            }
            if method == Method::POST {
                req = req.json(&json!({}));
            }
            // Streams would not end: only the status line matters here.
            let resp = req
                .timeout(Duration::from_secs(10))
                .send()
                .await
                .with_context(|| format!("{method} {path} {when}"))?;
            let status = resp.status().as_u16();
            if status != 401 {
                let ctype = resp
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                let body = if ctype.starts_with("text/event-stream") {
                    "(event stream)".to_string()
                } else {
                    resp.text().await.unwrap_or_default()
                };
                let body: String = body.chars().take(200).collect();
                wrong.push(format!("{method} {path} {spoof:?}: HTTP {status} {body}"));
            }
        }
    }
    if !wrong.is_empty() {
        bail!(
            "{when}: {} protected requests through the proxy were not 401:\n{}",
            wrong.len(),
            wrong.join("\n")
        );
    }
    Ok(())
}

/// The `./bloud install <app>` habit: the CLI talks to the agent over its Unix socket (this test
/// runs as the agent's user, so no login) and prints the rebuild log; the same request over TCP
/// from the box itself, as an app could send it, is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_installs_and_uninstalls_through_the_local_api() {
    let sys = match System::start().await {
        Ok(s) => s,
        Err(e) => panic!("starting the system: {e:#}"),
    };
    run_scenario(SCENARIO_LIMIT, cli_scenario(&sys)).await;
}

const CLI_APP: &str = "jellyfin";

/// Runs `bloud-agent <args>` to completion (bounded); returns (success, stdout, stderr).
async fn agent_cli(sys: &System, args: &[&str]) -> anyhow::Result<(bool, String, String)> {
    let mut cmd = sys.agent_command()?;
    cmd.args(args);
    let out = tokio::time::timeout(Duration::from_secs(90), cmd.output())
        .await
        .with_context(|| format!("bloud-agent {args:?} did not finish within 90 s"))?
        .with_context(|| format!("cannot run bloud-agent {args:?}"))?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

async fn cli_scenario(sys: &System) -> anyhow::Result<()> {
    let config = sys.layout.agent_config.display().to_string();
    // App routes need a session (issue 10): the person looking at the app signs in.
    let mut viewer = sys.client()?;
    sign_up_and_log_in(&mut viewer).await?;

    // Over TCP, even from loopback and straight at the agent, there is no trust by address.
    let direct = Client::new(sys.agent_url(""))?;
    let refused = direct
        .post_json(&format!("/api/apps/{CLI_APP}/install"), &json!({}))
        .await?;
    ensure!(
        refused.status == 401,
        "install over loopback TCP without a session: {}",
        refused.describe()
    );

    let (ok, out, err) = agent_cli(sys, &["install", CLI_APP, "--config", &config]).await?;
    ensure!(ok, "bloud-agent install {CLI_APP} failed:\n{out}\n{err}");
    ensure!(
        out.contains(&format!("installed {CLI_APP}")),
        "install output:\n{out}\n{err}"
    );
    // The rebuild log is printed while it runs ("  | <line>").
    let log_lines: Vec<&str> = err.lines().filter(|l| l.starts_with("  | ")).collect();
    ensure!(
        log_lines.iter().any(|l| l.contains(CLI_APP)),
        "the CLI printed no rebuild log line naming {CLI_APP}:\n{err}"
    );

    let page = wait_for(
        "the CLI-installed app through the proxy",
        Duration::from_secs(30),
        || async {
            match viewer.get(&format!("/embed/{CLI_APP}/")).await {
                Ok(a) if a.status == 200 && a.body.contains(&format!("<h1>{CLI_APP}</h1>")) => {
                    Ok(a)
                }
                Ok(a) => Err(a.describe()),
                Err(e) => Err(format!("{e:#}")),
            }
        },
    )
    .await?;
    ensure!(
        page.body.contains(&format!("/embed/{CLI_APP}/")),
        "the app's links do not stay under /embed/{CLI_APP}/: {}",
        page.describe()
    );

    let (ok, out, err) = agent_cli(sys, &["uninstall", CLI_APP, "--config", &config]).await?;
    ensure!(ok, "bloud-agent uninstall {CLI_APP} failed:\n{out}\n{err}");
    ensure!(
        out.contains(&format!("uninstalled {CLI_APP}")),
        "uninstall output:\n{out}\n{err}"
    );
    wait_for(
        "the app's route to be gone",
        Duration::from_secs(20),
        || async {
            match viewer.get(&format!("/embed/{CLI_APP}/")).await {
                Ok(a) if a.status == 404 && a.body.contains("App not installed") => Ok(()),
                Ok(a) => Err(a.describe()),
                Err(e) => Err(format!("{e:#}")),
            }
        },
    )
    .await
}

/// An app that keeps its `/embed/<app>` prefix (`routing.stripPrefix: false`, Miniflux with its
/// BASE_URL) and needs an integration: the plan offers the database, the install with that
/// choice brings both, and the app sees its full path under the prefix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_with_a_dependency_and_an_unstripped_prefix() {
    let sys = match System::start().await {
        Ok(s) => s,
        Err(e) => panic!("starting the system: {e:#}"),
    };
    run_scenario(SCENARIO_LIMIT, dependency_scenario(&sys)).await;
}

async fn dependency_scenario(sys: &System) -> anyhow::Result<()> {
    let mut client = sys.client()?;
    sign_up_and_log_in(&mut client).await?;

    let plan = client.get("/api/apps/miniflux/plan-install").await?;
    ensure!(plan.status == 200, "plan-install: {}", plan.describe());
    let plan = plan.json()?;
    ensure!(plan["canInstall"] == json!(true), "plan-install: {plan}");
    let database = plan["choices"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["integration"] == json!("database")))
        .with_context(|| format!("the plan offers no database choice: {plan}"))?;
    ensure!(
        database["required"] == json!(true),
        "database is required: {plan}"
    );
    ensure!(
        database["recommended"] == json!("postgres"),
        "postgres is the recommended database: {plan}"
    );

    let done = client
        .post_json(
            "/api/apps/miniflux/install",
            &json!({"choices": {"database": "postgres"}}),
        )
        .await?;
    ensure!(done.status == 200, "install miniflux: {}", done.describe());
    let result = done.json()?;
    ensure!(
        result["success"] == json!(true),
        "install miniflux: {result}"
    );
    let installed = client.get("/api/apps/installed").await?.json()?;
    for app in ["miniflux", "postgres"] {
        ensure!(
            installed_status(&installed, app).is_some(),
            "{app} is not installed after installing miniflux: {installed}"
        );
    }

    let page = wait_for(
        "miniflux through the proxy",
        Duration::from_secs(30),
        || async {
            match client.get("/embed/miniflux/").await {
                Ok(a) if a.status == 200 && a.body.contains("<h1>miniflux</h1>") => Ok(a),
                Ok(a) => Err(a.describe()),
                Err(e) => Err(format!("{e:#}")),
            }
        },
    )
    .await?;
    ensure!(
        page.body.contains("<code>/embed/miniflux/</code>"),
        "miniflux must see its path with the prefix kept: {}",
        page.describe()
    );
    ensure!(
        !page.body.contains("x-forwarded-prefix"),
        "nothing was stripped, so no X-Forwarded-Prefix: {}",
        page.describe()
    );
    let routes = std::fs::read_to_string(sys.routes_file()).context("reading apps-routes.yml")?;
    let doc: serde_json::Value = serde_saphyr::from_str(&routes).context("apps-routes.yml")?;
    let mws: Vec<String> = doc["http"]["routers"]["miniflux-backend"]["middlewares"]
        .as_array()
        .map(|s| {
            s.iter()
                .filter_map(|m| m.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    ensure!(
        !mws.iter().any(|m| m.contains("strip")),
        "miniflux-backend strips its prefix: {mws:?}\n{routes}"
    );
    // The health check goes to the prefixed path and the app becomes running.
    wait_for(
        "miniflux to be running",
        Duration::from_secs(30),
        || async {
            let list = client
                .get("/api/apps/installed")
                .await
                .map_err(|e| format!("{e:#}"))?;
            let list = list.json().map_err(|e| format!("{e:#}"))?;
            match installed_status(&list, "miniflux").as_deref() {
                Some("running") => Ok(()),
                other => Err(format!("status {other:?}")),
            }
        },
    )
    .await
}

/// A restart of the agent (an upgrade, a crash) loses nothing a person would notice: still
/// signed in, the app still installed, running and reachable, its route still live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_restart_keeps_sessions_apps_and_routes() {
    let mut sys = match System::start().await {
        Ok(s) => s,
        Err(e) => panic!("starting the system: {e:#}"),
    };
    run_scenario(SCENARIO_LIMIT, restart_scenario(&mut sys)).await;
}

async fn restart_scenario(sys: &mut System) -> anyhow::Result<()> {
    let mut client = sys.client()?;
    sign_up_and_log_in(&mut client).await?;
    let done = client
        .post_json(&format!("/api/apps/{APP}/install"), &json!({}))
        .await?;
    ensure!(done.status == 200, "install: {}", done.describe());
    let router = format!("{APP}-backend@file");
    wait_router(sys, &router, true).await?;

    sys.restart_agent().await?;

    let me = client.get("/api/auth/me").await?;
    ensure!(
        me.status == 200,
        "the session did not survive the restart: {}",
        me.describe()
    );
    wait_for(
        "the app to be running after the restart",
        Duration::from_secs(30),
        || async {
            let list = client
                .get("/api/apps/installed")
                .await
                .map_err(|e| format!("{e:#}"))?;
            let list = list.json().map_err(|e| format!("{e:#}"))?;
            match installed_status(&list, APP).as_deref() {
                Some("running") => Ok(()),
                other => Err(format!("status {other:?}")),
            }
        },
    )
    .await?;
    wait_router(sys, &router, true).await?;
    let page = client.get(&format!("/embed/{APP}/")).await?;
    ensure!(
        page.status == 200 && page.body.contains(&format!("<h1>{APP}</h1>")),
        "the app is not reachable after the restart: {}",
        page.describe()
    );
    Ok(())
}
