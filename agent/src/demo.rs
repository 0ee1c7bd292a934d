//! Demo mode, for machines without NixOS: `rebuild.mode: command` runs `demo/rebuild.sh`, which
//! calls `bloud-agent demo-rebuild`. That plays the part of `nixos-rebuild switch`: it prints a
//! build log, then starts a small web app (`bloud-agent demo-app`) on the catalog port of every
//! enabled app and stops the ones no longer enabled. Installing an app from the catalog then
//! gives a real HTTP server behind the proxy at `/embed/<app>/`.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};

use crate::catalog::Catalog;
use crate::nixgen;

/// Runs one demo app until killed.
pub async fn demo_app(port: u16, name: String) -> anyhow::Result<()> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("demo app {name}: cannot listen on {addr}"))?;
    // Plain stdout lines: the demo rebuild points them at <dataDir>/demo/<app>.log, which
    // `/api/apps/<app>/logs` follows.
    println!("{name}: demo app listening on {addr}");
    let rp = crate::demo_rp::RelyingParty::from_env()
        .with_context(|| format!("demo app {name}: OpenID Connect client"))?;
    if let Some(rp) = &rp {
        println!(
            "{name}: signs in with OpenID Connect as client {}",
            rp.client_id()
        );
    }
    let state = Arc::new(DemoApp { name, rp });
    let app = axum::Router::new().fallback(page).with_state(state);
    axum::serve(listener, app)
        .await
        .context("demo app server stopped")?;
    Ok(())
}

struct DemoApp {
    name: String,
    /// Present when the app's catalog entry is native OIDC and the agent registered its client.
    rp: Option<crate::demo_rp::RelyingParty>,
}

pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Every path answers: a page with root-absolute links (what the proxy's `embed` rewriting
/// keeps inside `/embed/<app>/`), a stylesheet, a text field (state a kept-alive tab must not
/// lose), the OpenID Connect sign-in of a native-OIDC app, and what the app saw of the request.
async fn page(State(demo): State<Arc<DemoApp>>, headers: HeaderMap, req: Request) -> Response {
    let name = &demo.name;
    let path = req.uri().path().to_string();
    println!("{name}: {} {path}", req.method());
    if path.ends_with("/style.css") {
        return (
            [(header::CONTENT_TYPE, "text/css")],
            "body{font-family:system-ui,sans-serif;margin:2rem;background:#f6f8fa}\
             .card{background:#fff;border:1px solid #ddd;border-radius:8px;padding:1rem 1.5rem}",
        )
            .into_response();
    }
    // Apps that keep the prefix (`routing.stripPrefix: false`, like Miniflux with BASE_URL) get
    // requests under /embed/<name> and build their links with it, as the real ones do.
    let own_prefix = format!("/embed/{name}");
    let base = if path == own_prefix || path.starts_with(&format!("{own_prefix}/")) {
        own_prefix.as_str()
    } else {
        ""
    };
    let seen: String = [
        "host",
        "x-forwarded-prefix",
        "x-forwarded-host",
        "x-forwarded-proto",
        // What the front door says about the user, and what cookies reached the app (the
        // shell's session must not).
        "remote-user",
        "remote-groups",
        "cookie",
    ]
    .iter()
    .filter_map(|h| {
        headers
            .get(*h)
            .and_then(|v| v.to_str().ok())
            .map(|v| format!("<li><code>{h}: {}</code></li>", escape(v)))
    })
    .collect();
    let sign_in = match &demo.rp {
        None => String::new(),
        Some(rp) => {
            let rel = &path[base.len()..];
            if rel == crate::demo_rp::LOGIN_PATH {
                return rp.login(base).await;
            }
            if rel == rp.callback_path {
                return rp
                    .callback(base, &headers, req.uri().query().unwrap_or(""))
                    .await;
            }
            match rp.signed_in(&headers) {
                Some(who) => format!(
                    "<p id=\"sign-in\">Signed in as <strong>{}</strong> with your Bloud account \
                     (OpenID Connect{})</p>",
                    escape(&who.user),
                    if who.groups.is_empty() {
                        String::new()
                    } else {
                        format!("; groups: {}", escape(&who.groups.join(", ")))
                    }
                ),
                None => format!(
                    "<p id=\"sign-in\"><a href=\"{}{}\">Sign in with Bloud</a></p>",
                    escape(base),
                    crate::demo_rp::LOGIN_PATH
                ),
            }
        }
    };
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{n} (demo)</title>\
         <link rel=\"stylesheet\" href=\"{b}/style.css\"></head><body><div class=\"card\">\
         <h1>{n}</h1><p>A Bloud demo app standing in for <strong>{n}</strong>.</p>\
         <p>This page is <code>{p}</code>.</p>{sign_in}\
         <nav><a href=\"{b}/\">Home</a> · <a href=\"{b}/settings\">Settings</a> · \
         <a href=\"{b}/about?from=demo\">About</a></nav>\
         <form><label>Note <input name=\"note\" type=\"text\"></label></form>\
         <h2>Request as the app saw it</h2><ul>{seen}</ul></div></body></html>",
        n = escape(name),
        p = escape(&path),
        b = escape(base),
    );
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

fn env_path(name: &str) -> anyhow::Result<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .with_context(|| {
            format!("{name} is not set: demo-rebuild is meant to be run by bloud-agent (rebuild.mode: command)")
        })
}

/// The demo rebuild: returns whether every enabled app is up.
pub fn demo_rebuild(rollback: Option<u32>) -> anyhow::Result<bool> {
    let state_file = env_path("BLOUD_APPS_STATE")?;
    let apps_dir = env_path("BLOUD_APPS_DIR")?;
    let data_dir = env_path("BLOUD_DATA_DIR")?;
    let exe = env_path("BLOUD_AGENT_EXE")?;
    let step = Duration::from_millis(
        std::env::var("BLOUD_DEMO_STEP_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(400),
    );
    let run_dir = data_dir.join("demo");
    std::fs::create_dir_all(&run_dir)
        .with_context(|| format!("cannot create {}", run_dir.display()))?;

    let public_url = std::env::var("BLOUD_PUBLIC_URL").unwrap_or_default();
    let state_dir = state_file.parent().unwrap_or(Path::new("."));
    let state = nixgen::load_state(state_dir)?;
    let catalog = Catalog::load(&apps_dir).catalog;
    let wanted: BTreeMap<String, Option<u16>> = state
        .enabled_apps()
        .map(|a| {
            let port = catalog.get(a).and_then(|m| m.port).filter(|p| *p > 0);
            (a.to_string(), port)
        })
        .collect();

    let say = |line: String| {
        println!("{line}");
        std::thread::sleep(step);
    };
    match rollback {
        None => say("demo rebuild: no NixOS here; standing in for `nixos-rebuild switch`".into()),
        Some(n) => say(format!(
            "demo rollback: no NixOS here; standing in for switching to generation {n}"
        )),
    }
    say(format!(
        "evaluating the configuration with {} enabled app(s): {}",
        wanted.len(),
        wanted.keys().cloned().collect::<Vec<_>>().join(", ")
    ));
    for app in wanted.keys() {
        say(format!("building '/nix/store/demo-bloud-app-{app}.drv'..."));
    }
    say("activating the configuration...".into());

    // The OpenID Connect client each native-OIDC app is to be started with, as the NixOS
    // module's env file would give it to the container.
    let oidc: BTreeMap<String, Vec<(String, String)>> = wanted
        .keys()
        .filter_map(|a| catalog.get(a))
        .filter_map(|meta| oidc_env(&data_dir, &public_url, meta).map(|e| (meta.name.clone(), e)))
        .collect();
    // Stop demo apps that are no longer wanted (or moved port). Found by their command line,
    // so apps whose pid files were deleted (a wiped state directory) are found too.
    let mut running = BTreeMap::new();
    let mut stopped = Vec::new();
    for (app, pid, port) in running_demo_apps(&run_dir) {
        // A changed client (a new secret) means a restart, as a changed env file would.
        let same_client = std::fs::read_to_string(run_dir.join(format!("{app}.oidc")))
            .unwrap_or_default()
            == oidc_fingerprint(oidc.get(&app));
        if wanted.get(&app).copied().flatten() == Some(port)
            && !running.contains_key(&app)
            && same_client
        {
            let _ = std::fs::write(
                run_dir.join(format!("{app}.pid")),
                format!("{pid} {port}\n"),
            );
            running.insert(app, (pid, port));
            continue;
        }
        println!("stopping podman-{app}.service (demo app pid {pid})");
        // SAFETY: kill(2) on a pid whose command line is our demo app; no memory involved.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let _ = std::fs::remove_file(run_dir.join(format!("{app}.pid")));
        stopped.push(pid);
    }
    // A restarted app takes the same port again: wait until the old process is gone.
    let deadline = Instant::now() + Duration::from_secs(5);
    while stopped
        .iter()
        .any(|pid| Path::new(&format!("/proc/{pid}")).exists())
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }

    let mut all_up = true;
    for (app, port) in &wanted {
        let Some(port) = port else {
            println!("{app}: no port, nothing to start in the demo");
            continue;
        };
        if running.contains_key(app) {
            println!("{app}: demo app already running on 127.0.0.1:{port}");
            continue;
        }
        if port_open(*port) {
            eprintln!(
                "{app}: port {port} is already taken by another program; stop it or change the app's port"
            );
            all_up = false;
            continue;
        }
        println!("starting podman-{app}.service (demo app on 127.0.0.1:{port})");
        let env = oidc.get(app).cloned().unwrap_or_default();
        match start_app(&exe, &run_dir, app, *port, &env) {
            Ok(pid) => {
                if wait_port(*port, Duration::from_secs(10)) {
                    println!("{app}: listening on 127.0.0.1:{port} (pid {pid})");
                } else {
                    eprintln!(
                        "{app}: did not start listening on {port}; see {}",
                        run_dir.join(format!("{app}.log")).display()
                    );
                    all_up = false;
                }
            }
            Err(e) => {
                eprintln!("{app}: {e:#}");
                all_up = false;
            }
        }
    }
    println!("{}", if all_up { "done" } else { "done, with errors" });
    Ok(all_up)
}

/// Stops the demo apps of `run_dir`: SIGTERM, then SIGKILL for any still there after 5 s.
/// Returns whether all of them are gone. Demo apps live in their own process group (they
/// outlive agent restarts, like app services on a real box), so whoever runs the whole demo
/// system has to stop them explicitly.
pub fn demo_stop(run_dir: &Path) -> anyhow::Result<bool> {
    let apps = running_demo_apps(run_dir);
    for (app, pid, port) in &apps {
        println!("stopping demo app {app} (pid {pid}, port {port})");
        // SAFETY: kill(2) on a pid whose command line is our demo app; no memory involved.
        unsafe {
            libc::kill(*pid, libc::SIGTERM);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut left = apps;
    while !left.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        left.retain(|(_, pid, _)| Path::new(&format!("/proc/{pid}")).exists());
    }
    for (app, pid, _) in &left {
        eprintln!("demo app {app} (pid {pid}) ignored SIGTERM; killing it");
        // SAFETY: as above.
        unsafe {
            libc::kill(*pid, libc::SIGKILL);
        }
    }
    if let Some((app, pid, _)) = running_demo_apps(run_dir).first() {
        eprintln!("demo app {app} (pid {pid}) is still running");
        return Ok(false);
    }
    if let Ok(entries) = std::fs::read_dir(run_dir) {
        for e in entries.flatten() {
            if e.path().extension().is_some_and(|x| x == "pid") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    Ok(true)
}

/// `BLOUD_OIDC_*` for a native-OIDC app whose client the agent registered (its secret file
/// exists); `None` otherwise.
fn oidc_env(
    data_dir: &Path,
    public_url: &str,
    meta: &crate::catalog::AppMeta,
) -> Option<Vec<(String, String)>> {
    use crate::oidc::app_clients;
    if !app_clients::wants_client(meta) || public_url.is_empty() {
        return None;
    }
    let secret = app_clients::read_secret(data_dir, &meta.name)?;
    let redirect = app_clients::redirect_uris(public_url, meta)
        .into_iter()
        .next()?;
    Some(vec![
        (
            "BLOUD_OIDC_ISSUER".into(),
            public_url.trim_end_matches('/').to_string(),
        ),
        ("BLOUD_OIDC_CLIENT_ID".into(), meta.name.clone()),
        ("BLOUD_OIDC_CLIENT_SECRET".into(), secret),
        ("BLOUD_OIDC_REDIRECT_URI".into(), redirect),
        (
            "BLOUD_OIDC_CALLBACK_PATH".into(),
            meta.sso.callback_path.clone(),
        ),
    ])
}

/// What `<app>.oidc` records about the client a demo app was started with: a digest, so the
/// secret itself is written nowhere else.
fn oidc_fingerprint(env: Option<&Vec<(String, String)>>) -> String {
    env.map(|vars| {
        let joined: Vec<String> = vars.iter().map(|(k, v)| format!("{k}={v}")).collect();
        crate::db::token_digest(&joined.join("\n"))
    })
    .unwrap_or_default()
}

/// Restarts `app`'s demo app, if one runs for `run_dir`: SIGTERM (SIGKILL after 5 s), then the
/// same binary again on the same port, its output appended to the same log. `Ok(false)` when no
/// demo app runs for it (then the app is not a demo app here).
pub fn restart_demo_app(run_dir: &Path, app: &str) -> anyhow::Result<bool> {
    let Some((_, pid, port)) = running_demo_apps(run_dir)
        .into_iter()
        .find(|(a, _, _)| a == app)
    else {
        return Ok(false);
    };
    // The client it was started with (a native-OIDC app), handed on as the demo rebuild gave it.
    let env = oidc_env_of(pid);
    // The running demo app's own binary: what the rebuild started it with.
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
        .or_else(|_| std::env::current_exe())
        .context("cannot find the bloud-agent binary to start the demo app with")?;
    tracing::info!(app, pid, "restarting the demo app");
    // SAFETY: kill(2) on a pid whose command line is our demo app; no memory involved.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if Path::new(&format!("/proc/{pid}")).exists() {
        // SAFETY: as above.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
    // The port is free once the old process is gone (the listener closes with it).
    let deadline = Instant::now() + Duration::from_secs(5);
    while port_open(port) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut child = spawn_app(&exe, run_dir, app, port, &env, true)?;
    let new_pid = child.id();
    // Started by the long-running agent: reap it when it ends, or it would stay a zombie (and
    // the next restart would wait for a /proc entry that never goes away).
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    anyhow::ensure!(
        wait_port(port, Duration::from_secs(10)),
        "{app}: the restarted demo app (pid {new_pid}) did not listen on {port} within 10 s; see {}",
        run_dir.join(format!("{app}.log")).display()
    );
    Ok(true)
}

fn start_app(
    exe: &Path,
    run_dir: &Path,
    app: &str,
    port: u16,
    env: &[(String, String)],
) -> anyhow::Result<u32> {
    // The demo rebuild exits right after: its children are adopted (and reaped) by init.
    spawn_app(exe, run_dir, app, port, env, false).map(|c| c.id())
}

/// The `BLOUD_OIDC_*` variables of a running demo app.
fn oidc_env_of(pid: i32) -> Vec<(String, String)> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    raw.split(|b| *b == 0)
        .filter_map(|kv| std::str::from_utf8(kv).ok()?.split_once('='))
        .filter(|(k, _)| k.starts_with("BLOUD_OIDC_"))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Starts one demo app; `append` keeps the log of the previous run (a restart).
fn spawn_app(
    exe: &Path,
    run_dir: &Path,
    app: &str,
    port: u16,
    env: &[(String, String)],
    append: bool,
) -> anyhow::Result<std::process::Child> {
    use std::os::unix::process::CommandExt;
    let log_path = run_dir.join(format!("{app}.log"));
    let log = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(&log_path)
        .with_context(|| format!("cannot create {}", log_path.display()))?;
    let err = log.try_clone().context("cannot duplicate the log handle")?;
    let child = std::process::Command::new(exe)
        .args([
            "demo-app",
            "--port",
            &port.to_string(),
            "--name",
            app,
            "--run-dir",
        ])
        .arg(run_dir)
        .env_remove("BLOUD_OIDC_CLIENT_SECRET")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        // Own process group: outlives this rebuild and signals sent to the agent's group.
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot start {}", exe.display()))?;
    let pid = child.id();
    let fingerprint = oidc_fingerprint((!env.is_empty()).then(|| env.to_vec()).as_ref());
    std::fs::write(run_dir.join(format!("{app}.oidc")), fingerprint)
        .context("cannot write the demo app's client record")?;
    std::fs::write(
        run_dir.join(format!("{app}.pid")),
        format!("{pid} {port}\n"),
    )
    .context("cannot write the demo pid file")?;
    Ok(child)
}

/// `(app, pid, port)` of live `demo-app` processes started for `run_dir`, from `/proc`.
fn running_demo_apps(run_dir: &Path) -> Vec<(String, i32, u16)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(raw) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        if let Some((app, port)) = parse_demo_cmdline(&raw, run_dir) {
            out.push((app, pid, port));
        }
    }
    out.sort();
    out
}

/// Name and port from a `demo-app` command line (NUL-separated) owned by `run_dir`.
fn parse_demo_cmdline(raw: &[u8], run_dir: &Path) -> Option<(String, u16)> {
    let args: Vec<&[u8]> = raw.split(|b| *b == 0).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| *a == flag.as_bytes())
            .and_then(|i| args.get(i + 1))
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    if args.get(1).copied() != Some(b"demo-app".as_slice()) {
        return None;
    }
    if value("--run-dir")? != run_dir.display().to_string() {
        return None;
    }
    Some((value("--name")?, value("--port")?.parse().ok()?))
}

fn port_open(port: u16) -> bool {
    TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(300),
    )
    .is_ok()
}

fn wait_port(port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if port_open(port) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_command_lines_are_matched_by_run_dir() {
        let dir = Path::new("/tmp/x/demo");
        let raw =
            b"/bin/bloud-agent\0demo-app\0--port\08085\0--name\0miniflux\0--run-dir\0/tmp/x/demo\0";
        assert_eq!(
            parse_demo_cmdline(raw, dir),
            Some(("miniflux".to_string(), 8085))
        );
        // Another agent's demo apps, and other programs, are left alone.
        assert_eq!(parse_demo_cmdline(raw, Path::new("/tmp/y/demo")), None);
        assert_eq!(parse_demo_cmdline(b"sleep\0demo-app\0", dir), None);
        assert_eq!(parse_demo_cmdline(b"/bin/bloud-agent\0serve\0", dir), None);
    }
}
