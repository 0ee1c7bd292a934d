//! Route generation: goldens next to upstream's, semantic comparison with upstream's generator
//! output, behaviour on the real catalog, atomic writes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use bloud_agent::catalog::{AppMeta, Catalog, Routing};
use bloud_agent::routes::{
    self, generate, generate_with, write_atomic, RouteSettings, ROUTES_FILE,
};
use serde_json::Value;

const PUBLIC_URL: &str = "http://bloud.local";

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Upstream's generator output for a case, from upstream's fixture directory.
fn upstream_golden(dir: &Path, name: &str) -> String {
    let path = dir.join(format!("golden-{name}.yml"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Compares with `agent/tests/golden/<name>.yml`; `BLOUD_UPDATE_GOLDEN=1` rewrites it.
fn check_golden(name: &str, content: &str) {
    let path = manifest().join("tests/golden").join(format!("{name}.yml"));
    if std::env::var_os("BLOUD_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, content).unwrap();
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with BLOUD_UPDATE_GOLDEN=1)", path.display()));
    assert_eq!(content, expected, "golden {name} differs");
}

fn app(name: &str, port: u16) -> AppMeta {
    AppMeta {
        name: name.into(),
        display_name: name.into(),
        description: "test".into(),
        category: "productivity".into(),
        port: Some(port),
        ..AppMeta::default()
    }
}

/// The app sets of upstream's generator tests (`testdata/*.golden.yml`).
fn upstream_case(case: &str) -> (Catalog, Vec<&'static str>) {
    let apps = match case {
        "basic_app" => vec![app("miniflux", 8085)],
        "custom_headers" => {
            let mut a = app("actual-budget", 5006);
            a.routing = Some(Routing {
                headers: BTreeMap::from([
                    ("Cross-Origin-Embedder-Policy".into(), "require-corp".into()),
                    ("Cross-Origin-Opener-Policy".into(), "same-origin".into()),
                ]),
                ..Routing::default()
            });
            vec![a]
        }
        "multiple_apps" => vec![
            app("actual-budget", 5006),
            app("adguard-home", 3080),
            app("miniflux", 8085),
        ],
        "no_strip_prefix" => {
            let mut a = app("miniflux", 8085);
            a.routing = Some(Routing {
                strip_prefix: Some(false),
                ..Routing::default()
            });
            vec![a]
        }
        "empty" => vec![],
        other => panic!("no case {other}"),
    };
    let names: Vec<&'static str> = apps
        .iter()
        .map(|a| -> &'static str { Box::leak(a.name.clone().into_boxed_str()) })
        .collect();
    (Catalog::from_apps("/nonexistent", apps), names)
}

fn map<'a>(v: &'a Value, path: &[&str]) -> BTreeMap<String, &'a Value> {
    let mut cur = v;
    for key in path {
        match cur.get(*key) {
            Some(next) => cur = next,
            None => return BTreeMap::new(),
        }
    }
    cur.as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v)).collect())
        .unwrap_or_default()
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|s| s.iter().map(|x| x.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

const SHARED: [&str; 4] = [
    "iframe-headers",
    "embed-isolation",
    "shell-cookies",
    "no-identity-headers",
];

/// Ours and not upstream's: Bloud's login check and the shell's cookie guard (issue 10).
fn ours_only(app: &str, m: &str) -> bool {
    *m == format!("{app}-embed")
        || *m == format!("{app}-auth")
        || m == "shell-cookies"
        || m == "no-identity-headers"
}

/// Same routers, middlewares and services as upstream, in our rule form: segment-exact rule,
/// `<app>-embed` added after the strip, Bloud's login check and cookie guard first, shared middlewares defined here, 127.0.0.1 targets.
fn assert_equivalent_to_upstream(ours: &str, upstream: &str) {
    let ours: Value = serde_saphyr::from_str(ours).unwrap();
    let up: Value = serde_saphyr::from_str(upstream).unwrap();
    let (our_routers, up_routers) = (
        map(&ours, &["http", "routers"]),
        map(&up, &["http", "routers"]),
    );
    assert_eq!(
        our_routers.keys().collect::<Vec<_>>(),
        up_routers.keys().collect::<Vec<_>>(),
        "router names"
    );
    for (name, up_r) in &up_routers {
        let our_r = our_routers[name];
        assert_eq!(our_r["service"], up_r["service"], "{name}: service");
        assert_eq!(our_r["priority"], up_r["priority"], "{name}: priority");
        let app = name.trim_end_matches("-backend");
        assert_eq!(
            up_r["rule"].as_str().unwrap(),
            format!("PathPrefix(`/embed/{app}`)")
        );
        assert_eq!(
            our_r["rule"].as_str().unwrap(),
            format!("Path(`/embed/{app}`) || PathPrefix(`/embed/{app}/`)"),
            "{name}: segment-exact rule"
        );
        let our_chain: Vec<String> = strings(our_r.get("middlewares"))
            .into_iter()
            .filter(|m| !ours_only(app, m))
            .collect();
        // Upstream's `embed-forwarded-headers` hard-coded the host and scheme; ours leaves the
        // proxy's own X-Forwarded-* (the request's) to the app, so it has no counterpart.
        let up_chain: Vec<String> = strings(up_r.get("middlewares"))
            .into_iter()
            .filter(|m| m != "embed-forwarded-headers")
            .collect();
        assert_eq!(our_chain, up_chain, "{name}: middleware order");
        let stripped = our_chain.contains(&format!("{app}-stripprefix"));
        assert_eq!(
            strings(our_r.get("middlewares")).contains(&format!("{app}-embed")),
            stripped,
            "{name}: embed rewriting exactly for stripped apps"
        );
    }

    let (our_mw, up_mw) = (
        map(&ours, &["http", "middlewares"]),
        map(&up, &["http", "middlewares"]),
    );
    for (name, def) in &up_mw {
        let mine = our_mw
            .get(name)
            .unwrap_or_else(|| panic!("middleware {name} missing"));
        assert_eq!(mine, def, "middleware {name} content");
    }
    for name in our_mw.keys() {
        assert!(
            up_mw.contains_key(name)
                || SHARED.contains(&name.as_str())
                || name.ends_with("-embed")
                || name.ends_with("-auth"),
            "unexpected middleware {name}"
        );
    }

    let (our_svc, up_svc) = (
        map(&ours, &["http", "services"]),
        map(&up, &["http", "services"]),
    );
    assert_eq!(
        our_svc.keys().collect::<Vec<_>>(),
        up_svc.keys().collect::<Vec<_>>()
    );
    for (name, def) in &up_svc {
        let url = |v: &Value| {
            v["loadBalancer"]["servers"][0]["url"]
                .as_str()
                .unwrap()
                .to_string()
        };
        assert_eq!(
            url(our_svc[name]),
            url(def).replace("http://localhost:", "http://127.0.0.1:"),
            "service {name}"
        );
    }
}

/// Every router's middlewares and service are defined in the same file: it works on its own.
fn assert_self_contained(content: &str) {
    let doc: Value = serde_saphyr::from_str(content).unwrap();
    let mws = map(&doc, &["http", "middlewares"]);
    let svcs = map(&doc, &["http", "services"]);
    for (name, r) in map(&doc, &["http", "routers"]) {
        for m in strings(r.get("middlewares")) {
            assert!(mws.contains_key(&m), "{name} uses undefined middleware {m}");
        }
        assert!(
            svcs.contains_key(r["service"].as_str().unwrap()),
            "{name}: service"
        );
    }
}

#[test]
fn upstream_golden_cases() {
    // Our goldens are always checked; the comparison with upstream's output (the compatibility
    // suite) only where upstream's files are available.
    let upstream = bloud_testkit::upstream_fixtures("traefik", "upstream_golden_cases");
    for case in [
        "basic_app",
        "custom_headers",
        "multiple_apps",
        "no_strip_prefix",
        "empty",
    ] {
        let (catalog, installed) = upstream_case(case);
        let content = generate(&catalog, &installed, PUBLIC_URL, false).unwrap();
        check_golden(case, &content);
        if let Some(dir) = &upstream {
            assert_equivalent_to_upstream(&content, &upstream_golden(dir, case));
        }
        assert_self_contained(&content);
        // Same inputs, same bytes; input order does not matter.
        let reversed: Vec<&str> = installed.iter().rev().copied().collect();
        assert_eq!(
            generate(&catalog, &reversed, PUBLIC_URL, false).unwrap(),
            content
        );
    }
}

fn our_catalog() -> Catalog {
    let load = Catalog::load(&manifest().join("../apps"));
    assert!(load.errors.is_empty(), "{:#?}", load.errors);
    load.catalog
}

fn all_names(c: &Catalog) -> Vec<String> {
    c.apps().map(|a| a.name.clone()).collect()
}

fn router<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["http"]["routers"]
        .get(name)
        .unwrap_or_else(|| panic!("router {name}"))
}

#[test]
fn real_catalog_with_authentik() {
    let c = our_catalog();
    let content = generate(&c, all_names(&c), PUBLIC_URL, true).unwrap();
    check_golden("catalog_all", &content);
    assert_self_contained(&content);
    let doc: Value = serde_saphyr::from_str(&content).unwrap();

    // System apps get no route.
    for system in ["authentik", "postgres", "redis"] {
        assert!(doc["http"]["routers"]
            .get(format!("{system}-backend"))
            .is_none());
        assert!(doc["http"]["services"].get(system).is_none());
    }
    // Forward-auth apps: forwardAuth first, straight to Authentik (keeps X-Forwarded-Uri).
    let adguard = strings(router(&doc, "adguard-home-backend").get("middlewares"));
    assert_eq!(
        adguard,
        [
            "adguard-home-forwardauth",
            "no-identity-headers",
            "shell-cookies",
            "adguard-home-stripprefix",
            "adguard-home-embed",
            "iframe-headers",
            "embed-isolation",
        ]
    );
    let fa = &doc["http"]["middlewares"]["adguard-home-forwardauth"]["forwardAuth"];
    assert_eq!(
        fa["address"],
        "http://127.0.0.1:9001/outpost.goauthentik.io/auth/traefik"
    );
    assert_eq!(fa["trustForwardHeader"], true);
    assert_eq!(strings(fa.get("authResponseHeaders")).len(), 5);
    // native-oidc and ldap apps are not behind Authentik's forward auth, but behind Bloud's.
    for app in ["actual-budget", "affine", "jellyfin", "miniflux"] {
        let chain = strings(router(&doc, &format!("{app}-backend")).get("middlewares"));
        assert!(!chain.iter().any(|m| m.ends_with("-forwardauth")), "{app}");
        assert_eq!(
            chain[..2],
            [format!("{app}-auth"), "shell-cookies".into()],
            "{app}"
        );
    }
    // Miniflux keeps its prefix and is not rewritten.
    assert_eq!(
        strings(router(&doc, "miniflux-backend").get("middlewares")),
        [
            "miniflux-auth",
            "shell-cookies",
            "iframe-headers",
            "embed-isolation",
        ]
    );
    // Actual Budget: own COEP (no embed-isolation), its headers last, /openid at the root,
    // and its sign-in callback never prefixed.
    assert_eq!(
        strings(router(&doc, "actual-budget-backend").get("middlewares")),
        [
            "actual-budget-auth",
            "shell-cookies",
            "actual-budget-stripprefix",
            "actual-budget-embed",
            "iframe-headers",
            "actual-budget-headers"
        ]
    );
    let abs = router(&doc, "actual-budget-absolute-0");
    assert_eq!(abs["rule"], "PathPrefix(`/openid`)");
    assert_eq!(abs["priority"], 90);
    assert_eq!(abs["service"], "actual-budget");
    assert_eq!(
        strings(abs.get("middlewares")),
        [
            "actual-budget-auth",
            "shell-cookies",
            "iframe-headers",
            "actual-budget-absolute-0-headers"
        ]
    );
    let embed = &doc["http"]["middlewares"]["actual-budget-embed"]["embed"];
    assert_eq!(embed["prefix"], "/embed/actual-budget");
    assert!(strings(embed.get("exclude")).contains(&"/openid-cb".to_string()));
    assert_eq!(embed["cookiePath"], false);
    let iframe = &doc["http"]["middlewares"]["iframe-headers"]["headers"]["customResponseHeaders"];
    assert_eq!(iframe["X-Frame-Options"], "");
    assert_eq!(iframe["Content-Security-Policy"], "");
    assert_eq!(
        doc["http"]["services"]["qbittorrent"]["loadBalancer"]["servers"][0]["url"],
        "http://127.0.0.1:8086"
    );
}

/// Issue 10: without Authentik (the default) the apps that leave access control to the front
/// door (the *arr apps, qBittorrent, Flood) were open to the LAN. Every router of every app now
/// starts with Bloud's login check and the cookie guard.
#[test]
fn without_authentik_every_router_is_behind_blouds_login() {
    let c = our_catalog();
    let installed: Vec<String> = all_names(&c)
        .into_iter()
        .filter(|n| n != "authentik")
        .collect();
    let content = generate(&c, &installed, PUBLIC_URL, false).unwrap();
    check_golden("catalog_no_authentik", &content);
    assert!(!content.contains("-forwardauth"));
    let doc: Value = serde_saphyr::from_str(&content).unwrap();
    let routers = map(&doc, &["http", "routers"]);
    assert!(routers.len() > 10);
    for (name, r) in &routers {
        let app = r["service"].as_str().unwrap();
        assert_eq!(
            strings(r.get("middlewares"))[..2],
            [format!("{app}-auth"), "shell-cookies".to_string()],
            "{name}"
        );
    }
    for app in ["radarr", "sonarr", "prowlarr", "qbittorrent"] {
        let fa = &doc["http"]["middlewares"][format!("{app}-auth").as_str()]["forwardAuth"];
        assert_eq!(
            fa["address"],
            format!("http://127.0.0.1:3000/api/auth/forward/{app}")
        );
        // The login redirect is relative to the shell: never resolved against the agent.
        assert_eq!(fa["preserveLocationHeader"], true);
        assert!(fa.get("trustForwardHeader").is_none());
        assert_eq!(
            strings(fa.get("authResponseHeaders")),
            [
                "Remote-User",
                "Remote-Name",
                "Remote-Groups",
                "X-Bloud-User"
            ]
        );
        assert_eq!(
            strings(fa.get("authRequestHeaders")),
            ["Cookie", "Accept", "Sec-Fetch-Mode"]
        );
    }
    let sc = &doc["http"]["middlewares"]["shell-cookies"]["shellCookies"];
    assert_eq!(strings(sc.get("names")), ["bloud_session"]);
    // Embedded apps' cookies are scoped to their prefix unless the app opts out.
    let embed = &doc["http"]["middlewares"]["radarr-embed"]["embed"];
    assert_eq!(embed["cookiePath"], true);
    // Nobody skips the check, so nothing needs the identity headers removed.
    assert!(doc["http"]["middlewares"]
        .get("no-identity-headers")
        .is_none());
}

#[test]
fn public_apps_skip_the_login_and_lose_client_identity_headers() {
    let c = our_catalog();
    let public = vec!["jellyfin".to_string()];
    let settings = RouteSettings {
        public_url: PUBLIC_URL,
        authentik_installed: false,
        agent: "127.0.0.1:4123",
        public_apps: &public,
    };
    let content = generate_with(&c, ["jellyfin", "radarr"], &settings).unwrap();
    assert_self_contained(&content);
    let doc: Value = serde_saphyr::from_str(&content).unwrap();
    let jellyfin = strings(router(&doc, "jellyfin-backend").get("middlewares"));
    assert_eq!(jellyfin[..2], ["no-identity-headers", "shell-cookies"]);
    assert!(doc["http"]["middlewares"].get("jellyfin-auth").is_none());
    let radarr = strings(router(&doc, "radarr-backend").get("middlewares"));
    assert_eq!(radarr[..2], ["radarr-auth", "shell-cookies"]);
    assert_eq!(
        doc["http"]["middlewares"]["radarr-auth"]["forwardAuth"]["address"],
        "http://127.0.0.1:4123/api/auth/forward/radarr"
    );
    let cleared =
        &doc["http"]["middlewares"]["no-identity-headers"]["headers"]["customRequestHeaders"];
    for h in [
        "Remote-User",
        "Remote-Name",
        "Remote-Groups",
        "X-Bloud-User",
    ] {
        assert_eq!(cleared[h], "", "{h} is deleted");
    }
}

#[test]
fn the_agent_is_dialled_on_loopback_when_it_listens_on_all_addresses() {
    assert_eq!(
        routes::agent_address("0.0.0.0:3000".parse().unwrap()),
        "127.0.0.1:3000"
    );
    assert_eq!(
        routes::agent_address("[::]:3000".parse().unwrap()),
        "[::1]:3000"
    );
    assert_eq!(
        routes::agent_address("192.168.1.5:3000".parse().unwrap()),
        "192.168.1.5:3000"
    );
}

#[test]
fn apps_get_the_forwarded_headers_of_the_request_not_of_public_url() {
    // The proxy's own X-Forwarded-* (the scheme of the entry point, the Host the browser used)
    // reach the app; no generated middleware overrides them with publicUrl's.
    let c = our_catalog();
    let content = generate(&c, ["jellyfin"], "https://192.168.1.5:8443/", false).unwrap();
    assert!(!content.contains("X-Forwarded-Proto"), "{content}");
    assert!(!content.contains("X-Forwarded-Host"), "{content}");

    let err = generate(&c, ["jellyfin"], "bloud.local", false).unwrap_err();
    assert!(
        err.to_string().starts_with("publicUrl `bloud.local`"),
        "{err}"
    );
}

#[test]
fn unknown_and_unroutable_apps_are_skipped() {
    let c = our_catalog();
    let content = generate(&c, ["postgres", "redis", "ghost-app"], PUBLIC_URL, true).unwrap();
    assert!(content.contains("# No routable apps installed"));
    assert!(!content.contains("http:"));
    assert_eq!(
        content,
        generate(&c, Vec::<String>::new(), PUBLIC_URL, true).unwrap()
    );
}

#[test]
fn write_atomic_writes_once_and_skips_unchanged() {
    let c = our_catalog();
    let dir = tempfile::tempdir().unwrap();
    let routes_dir = dir.path().join("routes");
    let one = generate(&c, ["miniflux"], PUBLIC_URL, false).unwrap();
    let two = generate(&c, ["miniflux", "radarr"], PUBLIC_URL, false).unwrap();
    assert!(write_atomic(&routes_dir, &one).unwrap());
    assert!(
        !write_atomic(&routes_dir, &one).unwrap(),
        "unchanged: no write, no reload"
    );
    assert!(write_atomic(&routes_dir, &two).unwrap());
    let file = routes_dir.join(ROUTES_FILE);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), two);
    let names: BTreeSet<String> = std::fs::read_dir(&routes_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        names,
        BTreeSet::from([ROUTES_FILE.to_string()]),
        "no temp file left"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "the proxy's user can read it");
    }
}

#[test]
fn signal_proxy_with_missing_pid_file_is_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let outcome = routes::signal_proxy(&Path::new(dir.path()).join("none.pid")).unwrap();
    assert_eq!(outcome, routes::SignalOutcome::NoPidFile);
}
