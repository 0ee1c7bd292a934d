//! Generation of bloud-proxy's `apps-routes.yml` (replaces upstream's `traefikgen`).
//!
//! Public API:
//! - [`generate`]: the file's content for the installed apps. Deterministic: same inputs, same
//!   bytes.
//! - [`write_atomic`]: `<routesDir>/apps-routes.yml` via `.tmp` + fsync + rename; no write when
//!   unchanged.
//! - [`signal_proxy`]: SIGHUP to the proxy's pid file.
//!
//! Per routable app (installed, not a system app, has a port), in name order:
//! - router `<app>-backend`: ``Path(`/embed/<app>`) || PathPrefix(`/embed/<app>/`)``, priority
//!   100, service `<app>`, middlewares in upstream's order with ours added: first the login
//!   check, `<app>-forwardauth` (Authentik's outpost: forward-auth SSO and Authentik installed)
//!   or else `<app>-auth` (Bloud's session, the agent's `/api/auth/forward/<app>`; left out for
//!   apps listed in `publicApps`), then `shell-cookies` (the shell's cookies never reach the app
//!   and the app cannot set them), `<app>-stripprefix`
//!   (unless `routing.stripPrefix: false`), `<app>-embed` (stripped apps, unless
//!   `routing.embed.enabled: false`), `iframe-headers`, `embed-isolation` (unless the app sets
//!   its own `Cross-Origin-Embedder-Policy`), `<app>-headers` (when
//!   `routing.headers` is set);
//! - router `<app>-absolute-<i>` per `routing.absolutePaths[i]`: the rule verbatim, its
//!   priority, the same login check and `shell-cookies`, `iframe-headers`, `embed-isolation` (only without route headers and app COEP),
//!   then `<app>-absolute-<i>-headers` or else `<app>-headers`;
//! - service `<app>`: `http://127.0.0.1:<port>`.
//!
//! Differences from upstream on purpose: the rule is segment-exact (upstream's
//! ``PathPrefix(`/embed/radarr`)`` also caught `/embed/radarr4k`); upstream's shared middlewares
//! lived in NixOS's `base.yml` with `X-Forwarded-Host: localhost:8080` hard-coded, ours are
//! defined in this file (so it works on its own), and apps get the proxy's own `X-Forwarded-*`
//! (the host and scheme the browser used); services target `127.0.0.1`, not `localhost` (no IPv6/IPv4 guessing).

mod atomic;
mod public_url;
mod signal;
mod yaml;

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

pub use atomic::{write_file_atomic, write_file_mode};
pub use public_url::PublicUrl;
pub use signal::{signal_pid_file, signal_proxy, SignalOutcome, PROXY_PROCESS_NAME};

use crate::catalog::{AppMeta, Catalog, EmbedSettings, SsoStrategy};

/// Name of the generated file inside the proxy's routes directory.
pub const ROUTES_FILE: &str = "apps-routes.yml";
/// Priority of every `<app>-backend` router (upstream's value).
pub const BACKEND_PRIORITY: u32 = 100;
/// Authentik's host port when the catalog does not say.
pub const DEFAULT_AUTHENTIK_PORT: u16 = 9001;
/// Headers Authentik's outpost answers with that the app receives (upstream's list).
pub const AUTH_RESPONSE_HEADERS: [&str; 5] = [
    "X-authentik-username",
    "X-authentik-groups",
    "X-authentik-email",
    "X-authentik-name",
    "X-authentik-uid",
];
/// Shared middleware: keeps the shell's cookies (the session) away from apps.
pub const SHELL_COOKIES: &str = "shell-cookies";
/// Shared middleware: removes client-sent identity headers on routes without Bloud's check.
pub const NO_IDENTITY_HEADERS: &str = "no-identity-headers";
/// Cookies the shell owns: removed from app requests, refused in app responses.
pub const SHELL_COOKIE_NAMES: [&str; 1] = [crate::auth::SESSION_COOKIE];
/// The agent's address when none is given (its default `listen`).
pub const DEFAULT_AGENT: &str = "127.0.0.1:3000";
/// Shared middleware: removes framing restrictions from app responses.
pub const IFRAME_HEADERS: &str = "iframe-headers";
/// Shared middleware: COOP/COEP matching the shell's, so the iframe may load.
pub const EMBED_ISOLATION: &str = "embed-isolation";

const COEP: &str = "Cross-Origin-Embedder-Policy";

#[derive(Debug, thiserror::Error)]
pub enum RoutesError {
    #[error("publicUrl `{url}`: {reason}")]
    InvalidPublicUrl { url: String, reason: String },
    #[error("cannot send SIGHUP to bloud-proxy (pid {pid}): {source}; check that the agent runs as the proxy's user or in its group")]
    Signal { pid: i32, source: io::Error },
}

/// One proxy router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Router {
    pub rule: String,
    pub priority: u32,
    pub middlewares: Vec<String>,
    pub service: String,
}

/// One proxy middleware, in the forms this generator emits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Middleware {
    ForwardAuth {
        address: String,
    },
    /// The agent's session check (`/api/auth/forward/<app>`).
    BloudAuth {
        address: String,
    },
    ShellCookies,
    StripPrefix {
        prefix: String,
    },
    Embed {
        prefix: String,
        settings: EmbedSettings,
    },
    ResponseHeaders(BTreeMap<String, String>),
    RequestHeaders(BTreeMap<String, String>),
}

/// The generated configuration before it is written out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RouteTable {
    pub routers: Vec<(String, Router)>,
    pub middlewares: Vec<(String, Middleware)>,
    pub services: Vec<(String, String)>,
    /// Whether a router uses [`NO_IDENTITY_HEADERS`].
    pub no_identity_used: bool,
}

/// What the generated routes depend on besides the catalog and the installed apps.
#[derive(Debug, Clone)]
pub struct RouteSettings<'a> {
    /// The `publicUrl` setting (e.g. `http://bloud.local`).
    pub public_url: &'a str,
    /// Turns on Authentik's forward-auth for apps whose SSO strategy is `forward-auth`.
    pub authentik_installed: bool,
    /// `host:port` where the proxy reaches the agent's forward-auth endpoint.
    pub agent: &'a str,
    /// Apps whose routes skip Bloud's login (`publicApps`).
    pub public_apps: &'a [String],
}

/// Content of `apps-routes.yml` for the `installed` apps (names; unknown ones are skipped with a
/// warning), with the agent at [`DEFAULT_AGENT`] and no public app. See [`generate_with`].
pub fn generate<I>(
    catalog: &Catalog,
    installed: I,
    public_url: &str,
    authentik_installed: bool,
) -> Result<String, RoutesError>
where
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    generate_with(
        catalog,
        installed,
        &RouteSettings {
            public_url,
            authentik_installed,
            agent: DEFAULT_AGENT,
            public_apps: &[],
        },
    )
}

/// Content of `apps-routes.yml` for the `installed` apps with explicit settings.
pub fn generate_with<I>(
    catalog: &Catalog,
    installed: I,
    settings: &RouteSettings<'_>,
) -> Result<String, RoutesError>
where
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    // Checked here so a bad publicUrl is refused at start (the routes no longer use it).
    PublicUrl::parse(settings.public_url)?;
    let table = build(catalog, installed, settings);
    Ok(yaml::render(&table))
}

/// The agent's `listen` as the proxy should dial it: an unspecified address (`0.0.0.0`, `::`)
/// becomes loopback.
pub fn agent_address(listen: std::net::SocketAddr) -> String {
    let ip = match listen.ip() {
        std::net::IpAddr::V4(v4) if v4.is_unspecified() => {
            std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
        }
        std::net::IpAddr::V6(v6) if v6.is_unspecified() => {
            std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)
        }
        ip => ip,
    };
    std::net::SocketAddr::new(ip, listen.port()).to_string()
}

pub(crate) fn build<I>(catalog: &Catalog, installed: I, settings: &RouteSettings<'_>) -> RouteTable
where
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    let mut apps: Vec<&AppMeta> = Vec::new();
    for name in installed {
        let name = name.as_ref();
        match catalog.get(name) {
            Some(app) if app.is_routable() => apps.push(app),
            Some(_) => {}
            None => tracing::warn!(app = name, "installed app is not in the catalog; no route"),
        }
    }
    apps.sort_by(|a, b| a.name.cmp(&b.name));
    apps.dedup_by(|a, b| a.name == b.name);

    let auth_port = catalog
        .get("authentik")
        .and_then(|a| a.port)
        .unwrap_or(DEFAULT_AUTHENTIK_PORT);
    let mut table = RouteTable::default();
    let mut shared_used = [false; 2];
    for app in apps {
        add_app(&mut table, &mut shared_used, app, settings, auth_port);
    }
    if !table.routers.is_empty() {
        table
            .middlewares
            .push((SHELL_COOKIES.to_string(), Middleware::ShellCookies));
    }
    if table.no_identity_used {
        // An empty value deletes the header.
        table.middlewares.push((
            NO_IDENTITY_HEADERS.to_string(),
            Middleware::RequestHeaders(
                crate::api::forward_auth::IDENTITY_HEADERS
                    .iter()
                    .map(|h| (h.to_string(), String::new()))
                    .collect(),
            ),
        ));
    }
    let [iframe, isolation] = shared_used;
    if isolation {
        table.middlewares.push((
            EMBED_ISOLATION.to_string(),
            Middleware::ResponseHeaders(BTreeMap::from([
                (
                    "Cross-Origin-Embedder-Policy".to_string(),
                    "credentialless".to_string(),
                ),
                (
                    "Cross-Origin-Opener-Policy".to_string(),
                    "same-origin".to_string(),
                ),
            ])),
        ));
    }
    if iframe {
        // An empty value deletes the header.
        table.middlewares.push((
            IFRAME_HEADERS.to_string(),
            Middleware::ResponseHeaders(BTreeMap::from([
                ("Content-Security-Policy".to_string(), String::new()),
                ("X-Frame-Options".to_string(), String::new()),
            ])),
        ));
    }
    table
}

fn add_app(
    table: &mut RouteTable,
    shared_used: &mut [bool; 2],
    app: &AppMeta,
    settings: &RouteSettings<'_>,
    auth_port: u16,
) {
    let name = &app.name;
    let prefix = format!("/embed/{name}");
    let app_headers = app.routing_headers();
    let app_coep = app_headers.contains_key(COEP);
    let headers_mw = format!("{name}-headers");
    // Every router of the app starts with the login check and the cookie guard.
    let mut guard = Vec::new();
    if settings.authentik_installed && app.sso_strategy() == SsoStrategy::ForwardAuth {
        let mw = format!("{name}-forwardauth");
        table.middlewares.push((
            mw.clone(),
            Middleware::ForwardAuth {
                address: format!(
                    "http://127.0.0.1:{auth_port}/outpost.goauthentik.io/auth/traefik"
                ),
            },
        ));
        guard.push(mw);
    } else if !settings.public_apps.iter().any(|p| p == name) {
        let mw = format!("{name}-auth");
        table.middlewares.push((
            mw.clone(),
            Middleware::BloudAuth {
                address: format!("http://{}/api/auth/forward/{name}", settings.agent),
            },
        ));
        guard.push(mw);
    }
    let bloud_checked = guard.first().is_some_and(|m| *m == format!("{name}-auth"));
    if !bloud_checked {
        // Without Bloud's check nothing removes a client's own `Remote-User: admin`.
        guard.push(NO_IDENTITY_HEADERS.to_string());
        table.no_identity_used = true;
    }
    guard.push(SHELL_COOKIES.to_string());
    let mut chain = guard.clone();

    if app.strip_prefix() {
        let mw = format!("{name}-stripprefix");
        table.middlewares.push((
            mw.clone(),
            Middleware::StripPrefix {
                prefix: prefix.clone(),
            },
        ));
        chain.push(mw);
    }
    if let Some(mut settings) = app.embed_settings() {
        // The app sends the browser to the box's provider (`Location`, links, form actions):
        // prefixing those with `/embed/<app>` would send it to the app instead.
        if crate::oidc::app_clients::wants_client(app) {
            for path in crate::oidc::PROVIDER_BROWSER_PATHS {
                if !settings.exclude.iter().any(|e| e == path) {
                    settings.exclude.push(path.to_string());
                }
            }
        }
        let mw = format!("{name}-embed");
        table.middlewares.push((
            mw.clone(),
            Middleware::Embed {
                prefix: prefix.clone(),
                settings,
            },
        ));
        chain.push(mw);
    }
    chain.push(IFRAME_HEADERS.to_string());
    shared_used[0] = true;
    if !app_coep {
        chain.push(EMBED_ISOLATION.to_string());
        shared_used[1] = true;
    }
    // No `embed-forwarded-headers` any more: the proxy sets X-Forwarded-Host/Proto/Port from
    // the request itself (and drops a client's copies), which is right for both entry points. A
    // fixed value from `publicUrl` told apps `http` on the HTTPS entry point, so the absolute
    // URLs they build were blocked as mixed content.
    if !app_headers.is_empty() {
        table.middlewares.push((
            headers_mw.clone(),
            Middleware::ResponseHeaders(app_headers.clone()),
        ));
        chain.push(headers_mw.clone());
    }
    table.routers.push((
        format!("{name}-backend"),
        Router {
            rule: format!("Path(`{prefix}`) || PathPrefix(`{prefix}/`)"),
            priority: BACKEND_PRIORITY,
            middlewares: chain,
            service: name.clone(),
        },
    ));

    for (i, abs) in app.absolute_paths().iter().enumerate() {
        let router = format!("{name}-absolute-{i}");
        let mut chain = guard.clone();
        chain.push(IFRAME_HEADERS.to_string());
        if abs.headers.is_empty() && !app_coep {
            chain.push(EMBED_ISOLATION.to_string());
            shared_used[1] = true;
        }
        if !abs.headers.is_empty() {
            let mw = format!("{router}-headers");
            table
                .middlewares
                .push((mw.clone(), Middleware::ResponseHeaders(abs.headers.clone())));
            chain.push(mw);
        } else if !app_headers.is_empty() {
            chain.push(headers_mw.clone());
        }
        table.routers.push((
            router,
            Router {
                rule: abs.rule.clone(),
                priority: abs.priority,
                middlewares: chain,
                service: name.clone(),
            },
        ));
    }

    let port = app.port.unwrap_or_default();
    table
        .services
        .push((name.clone(), format!("http://127.0.0.1:{port}")));
}

/// Writes `content` to `<dir>/apps-routes.yml` atomically. Returns whether the file changed
/// (false: identical content, nothing written, no reload needed).
pub fn write_atomic(dir: &Path, content: &str) -> io::Result<bool> {
    write_file_atomic(&dir.join(ROUTES_FILE), content.as_bytes())
}
