//! Demo mode, for machines without NixOS: `rebuild.mode: command` runs `demo/rebuild.sh`, which
//! calls `bloud-agent demo-rebuild`. That plays the part of `nixos-rebuild switch`: it prints a
//! build log, then starts a small web app (`bloud-agent demo-app`) on the catalog port of every
//! enabled app and stops the ones no longer enabled. Installing an app from the catalog then
//! gives a real HTTP server behind the proxy at `/embed/<app>/`.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Stdio;
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
    let app = axum::Router::new().fallback(page).with_state(name);
    axum::serve(listener, app)
        .await
        .context("demo app server stopped")?;
    Ok(())
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Every path answers: a page with root-absolute links (what the proxy's `embed` rewriting
/// keeps inside `/embed/<app>/`), a stylesheet, and what the app saw of the request.
async fn page(State(name): State<String>, headers: HeaderMap, req: Request) -> Response {
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
    ]
    .iter()
    .filter_map(|h| {
        headers
            .get(*h)
            .and_then(|v| v.to_str().ok())
            .map(|v| format!("<li><code>{h}: {}</code></li>", escape(v)))
    })
    .collect();
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{n} (demo)</title>\
         <link rel=\"stylesheet\" href=\"{b}/style.css\"></head><body><div class=\"card\">\
         <h1>{n}</h1><p>A Bloud demo app standing in for <strong>{n}</strong>.</p>\
         <p>This page is <code>{p}</code>.</p>\
         <nav><a href=\"{b}/\">Home</a> · <a href=\"{b}/settings\">Settings</a> · \
         <a href=\"{b}/about?from=demo\">About</a></nav>\
         <h2>Request as the app saw it</h2><ul>{seen}</ul></div></body></html>",
        n = escape(&name),
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
pub fn demo_rebuild() -> anyhow::Result<bool> {
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
    say("demo rebuild: no NixOS here; standing in for `nixos-rebuild switch`".into());
    say(format!(
        "evaluating the configuration with {} enabled app(s): {}",
        wanted.len(),
        wanted.keys().cloned().collect::<Vec<_>>().join(", ")
    ));
    for app in wanted.keys() {
        say(format!("building '/nix/store/demo-bloud-app-{app}.drv'..."));
    }
    say("activating the configuration...".into());

    // Stop demo apps that are no longer wanted (or moved port).
    for (app, pid, port) in running_demo_apps(&run_dir) {
        if wanted.get(&app).copied().flatten() != Some(port) {
            println!("stopping podman-{app}.service (demo app pid {pid})");
            // SAFETY: kill(2) with a pid we started and checked in /proc; no memory involved.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
            let _ = std::fs::remove_file(run_dir.join(format!("{app}.pid")));
        }
    }

    let mut all_up = true;
    for (app, port) in &wanted {
        let Some(port) = port else {
            println!("{app}: no port, nothing to start in the demo");
            continue;
        };
        if demo_pid(&run_dir, app).is_some() {
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
        match start_app(&exe, &run_dir, app, *port) {
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

fn start_app(exe: &Path, run_dir: &Path, app: &str, port: u16) -> anyhow::Result<u32> {
    use std::os::unix::process::CommandExt;
    let log_path = run_dir.join(format!("{app}.log"));
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("cannot create {}", log_path.display()))?;
    let err = log.try_clone().context("cannot duplicate the log handle")?;
    let child = std::process::Command::new(exe)
        .args(["demo-app", "--port", &port.to_string(), "--name", app])
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        // Own process group: outlives this rebuild and signals sent to the agent's group.
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot start {}", exe.display()))?;
    let pid = child.id();
    std::fs::write(
        run_dir.join(format!("{app}.pid")),
        format!("{pid} {port}\n"),
    )
    .context("cannot write the demo pid file")?;
    Ok(pid)
}

/// `(app, pid, port)` of demo apps whose pid file points at a live demo-app process.
fn running_demo_apps(run_dir: &Path) -> Vec<(String, i32, u16)> {
    let Ok(entries) = std::fs::read_dir(run_dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(app) = name.strip_suffix(".pid") else {
            continue;
        };
        match demo_pid(run_dir, app) {
            Some((pid, port)) => out.push((app.to_string(), pid, port)),
            None => {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    out
}

fn demo_pid(run_dir: &Path, app: &str) -> Option<(i32, u16)> {
    let text = std::fs::read_to_string(run_dir.join(format!("{app}.pid"))).ok()?;
    let mut parts = text.split_whitespace();
    let pid: i32 = parts.next()?.parse().ok()?;
    let port: u16 = parts.next()?.parse().ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let cmdline = String::from_utf8_lossy(&cmdline);
    // A reused pid belongs to someone else: only our demo-app for this app counts.
    (cmdline.contains("demo-app") && cmdline.contains(app)).then_some((pid, port))
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
