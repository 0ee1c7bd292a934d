//! Every app route is behind Bloud's login (issue 10): through the real proxy and agent, a LAN
//! client (source address 127.0.0.2, which the proxy does not trust) without a session is sent to
//! the login (navigation) or refused (anything else) on every router of the generated
//! `apps-routes.yml`, and the app never sees the request; with a session the app answers, gets
//! `Remote-User` from the proxy and never the `bloud_session` cookie; a signed-out navigation to
//! an app comes back to it after login.

mod support;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::Duration;

use anyhow::{ensure, Context};
use reqwest::header::{ACCEPT, COOKIE, LOCATION};
use serde_json::{json, Value};
use support::{run_scenario, wait_for, Client, System};

const USER: &str = "alice";
const PASSWORD: &str = "correct horse battery";
const SCENARIO_LIMIT: Duration = Duration::from_secs(240);
/// A loopback address that is not the proxy's own and not in its `trustedIPs`: a LAN device.
const LAN: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
/// Marks the probe requests in the demo apps' request logs.
const PROBE: &str = "lan-probe";

/// What a probe is, the headers it sends, the status it must get.
type Probe = (&'static str, Vec<(&'static str, &'static str)>, u16);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_app_route_needs_a_session_and_the_session_stays_with_the_shell() {
    let sys = match System::start().await {
        Ok(s) => s,
        Err(e) => panic!("starting the system: {e:#}"),
    };
    run_scenario(SCENARIO_LIMIT, scenario(&sys)).await;
}

/// A client whose connections come from 127.0.0.2.
fn lan_client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .local_address(LAN)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .context("building the LAN client")
}

async fn sign_up(client: &mut Client) -> anyhow::Result<()> {
    let created = client
        .post_json(
            "/api/setup/create-user",
            &json!({"username": USER, "password": PASSWORD}),
        )
        .await?;
    ensure!(created.status == 200, "create-user: {}", created.describe());
    client.keep_session(&created)?;
    Ok(())
}

async fn install(client: &Client, app: &str, body: Value) -> anyhow::Result<()> {
    let done = client
        .post_json(&format!("/api/apps/{app}/install"), &body)
        .await?;
    ensure!(
        done.status == 200 && done.json()?["success"] == json!(true),
        "install {app}: {}",
        done.describe()
    );
    Ok(())
}

/// One request path per router: for a `PathPrefix` matcher a probe segment under it (so the
/// app's request log would show it), else the literal of its `Path` matcher.
fn probe_paths(routes_file: &Path) -> anyhow::Result<BTreeMap<String, (String, String)>> {
    let text = std::fs::read_to_string(routes_file)
        .with_context(|| format!("reading {}", routes_file.display()))?;
    let doc: Value = serde_saphyr::from_str(&text).context("parsing apps-routes.yml")?;
    let routers = doc["http"]["routers"]
        .as_object()
        .context("apps-routes.yml has no routers")?;
    let mut out = BTreeMap::new();
    for (name, r) in routers {
        let rule = r["rule"].as_str().context("router without rule")?;
        let service = r["service"].as_str().context("router without service")?;
        // Prefer a PathPrefix matcher: a probe segment under it is recognisable in the log.
        let path = matcher(rule, "PathPrefix(`")
            .map(|p| format!("{}{PROBE}", p.trim_end_matches('/').to_string() + "/"))
            .or_else(|| matcher(rule, "Path(`").map(str::to_string))
            .with_context(|| format!("{name}: cannot derive a path from rule {rule}"))?;
        out.insert(name.clone(), (path, service.to_string()));
    }
    Ok(out)
}

fn matcher<'a>(rule: &'a str, open: &str) -> Option<&'a str> {
    let start = rule.find(open)? + open.len();
    let len = rule[start..].find('`')?;
    Some(&rule[start..start + len])
}

/// Requests the demo app `app` received (one line per request in its log).
fn app_log(sys: &System, app: &str) -> String {
    std::fs::read_to_string(sys.layout.data_dir.join("demo").join(format!("{app}.log")))
        .unwrap_or_default()
}

async fn scenario(sys: &System) -> anyhow::Result<()> {
    let mut admin = sys.client()?;
    sign_up(&mut admin).await?;
    // A stripped app, an app with an absolute-path router, an app that keeps its prefix.
    install(&admin, "adguard-home", json!({})).await?;
    install(&admin, "actual-budget", json!({})).await?;
    install(
        &admin,
        "miniflux",
        json!({"choices": {"database": "postgres"}}),
    )
    .await?;

    let routes = wait_for(
        "all three apps in apps-routes.yml",
        Duration::from_secs(30),
        || async {
            match probe_paths(&sys.routes_file()) {
                Ok(r)
                    if ["adguard-home", "actual-budget", "miniflux"]
                        .iter()
                        .all(|a| r.contains_key(&format!("{a}-backend")))
                        && r.contains_key("actual-budget-absolute-0") =>
                {
                    Ok(r)
                }
                Ok(r) => Err(format!("routers so far: {:?}", r.keys())),
                Err(e) => Err(format!("{e:#}")),
            }
        },
    )
    .await?;
    // The proxy has them (reloaded by SIGHUP) once a signed-in request reaches each app.
    for (router, (path, _)) in &routes {
        wait_for(
            &format!("{router} to answer a signed-in client"),
            Duration::from_secs(30),
            || async {
                match admin.get(path).await {
                    Ok(a) if a.status < 400 => Ok(()),
                    Ok(a) => Err(a.describe()),
                    Err(e) => Err(format!("{e:#}")),
                }
            },
        )
        .await?;
    }

    let lan = lan_client()?;
    let before: BTreeMap<String, String> = routes
        .values()
        .map(|(_, svc)| (svc.clone(), app_log(sys, svc)))
        .collect();
    for (router, (path, _)) in &routes {
        let url = sys.url(path);
        let forged =
            "bloud_session=0000000000000000000000000000000000000000000000000000000000000000";
        let cases: [Probe; 4] = [
            ("navigation", vec![("sec-fetch-mode", "navigate")], 302),
            ("page load", vec![(ACCEPT.as_str(), "text/html,*/*")], 302),
            ("fetch", vec![(ACCEPT.as_str(), "application/json")], 401),
            (
                "forged session and identity",
                vec![(COOKIE.as_str(), forged), ("remote-user", USER)],
                401,
            ),
        ];
        for (what, headers, want) in cases {
            let mut req = lan.get(&url);
            for (k, v) in &headers {
                req = req.header(*k, *v);
            }
            let resp = req.send().await.with_context(|| format!("GET {path}"))?;
            ensure!(
                resp.status().as_u16() == want,
                "{router}: {what} without a session from {LAN} got {} (want {want})",
                resp.status()
            );
            if want == 302 {
                let location = resp
                    .headers()
                    .get(LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                ensure!(
                    location == format!("/login?next={path}"),
                    "{router}: the login redirect is {location:?}, not back to {path}"
                );
            }
        }
    }
    for (app, log) in &before {
        let after = app_log(sys, app);
        // Only the probes count: the agent's health monitor also calls the app now and then.
        let new = after.get(log.len()..).unwrap_or(&after);
        ensure!(
            !new.contains(PROBE),
            "{app} saw requests from a client without a session:\n{new}"
        );
    }

    // With a session the app answers, identity from the proxy, no session cookie.
    let mut signed_in = admin.clone();
    let session = signed_in.session.clone().context("no session")?;
    signed_in.session = Some(format!("theme=dark; {session}; lang=en"));
    let page = signed_in
        .send(
            signed_in
                .request(reqwest::Method::GET, "/embed/adguard-home/")
                .header("remote-user", "mallory"),
        )
        .await?;
    ensure!(page.status == 200, "signed in: {}", page.describe());
    ensure!(
        page.body.contains(&format!("remote-user: {USER}</code>")),
        "the app did not get Remote-User: {USER}: {}",
        page.describe()
    );
    ensure!(
        !page.body.contains("mallory"),
        "a client-sent Remote-User reached the app: {}",
        page.describe()
    );
    ensure!(
        page.body.contains("cookie: theme=dark; lang=en</code>"),
        "the app's own cookies did not arrive as sent: {}",
        page.describe()
    );
    ensure!(
        !page.body.contains("bloud_session"),
        "the app saw the session cookie: {}",
        page.describe()
    );

    // A signed-out navigation to an app: login page with the way back, then the app.
    let mut browser = sys.client()?;
    let first = browser
        .send(
            browser
                .request(reqwest::Method::GET, "/embed/adguard-home/settings?tab=1")
                .header("sec-fetch-mode", "navigate"),
        )
        .await?;
    ensure!(first.status == 302, "signed out: {}", first.describe());
    let location = first
        .headers
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    ensure!(
        location == "/login?next=/embed/adguard-home/settings%3Ftab%3D1",
        "login redirect: {location}"
    );
    let login_page = browser.get(&location).await?;
    ensure!(
        login_page.status == 200 && login_page.body.contains("<html"),
        "the login page: {}",
        login_page.describe()
    );
    let login = browser
        .post_json(
            "/api/auth/login",
            &json!({"username": USER, "password": PASSWORD}),
        )
        .await?;
    ensure!(login.status == 200, "login: {}", login.describe());
    browser.keep_session(&login)?;
    let back = browser.get("/embed/adguard-home/settings?tab=1").await?;
    ensure!(
        back.status == 200 && back.body.contains("/settings"),
        "back at the app after login: {}",
        back.describe()
    );

    // Logout is honoured by app routes within the session cache's lifetime (5 s).
    let out = browser.post_json("/api/auth/logout", &json!({})).await?;
    ensure!(out.status == 200, "logout: {}", out.describe());
    wait_for(
        "the app route to refuse the ended session",
        Duration::from_secs(10),
        || async {
            match browser.get("/embed/adguard-home/").await {
                Ok(a) if a.status == 401 => Ok(()),
                Ok(a) => Err(a.describe()),
                Err(e) => Err(format!("{e:#}")),
            }
        },
    )
    .await
}
