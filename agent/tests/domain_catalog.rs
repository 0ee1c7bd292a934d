//! Catalog loading: our `apps/`, upstream's fixture catalog, broken files, the API JSON shape.

use std::fs;
use std::path::{Path, PathBuf};

use bloud_agent::catalog::{Catalog, SsoStrategy};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Copies a directory tree (fixtures are read-only; tests work on copies).
fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &dest);
        } else {
            fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

/// Upstream Bloud's real catalog (the compatibility suite), when it is available.
fn fixture_catalog(test: &str) -> Option<(tempfile::TempDir, Catalog)> {
    let upstream = bloud_testkit::upstream_fixtures("upstream-apps", test)?;
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&upstream, dir.path());
    let load = Catalog::load(dir.path());
    assert!(load.errors.is_empty(), "fixture errors: {:#?}", load.errors);
    assert!(
        load.warnings.is_empty(),
        "fixture warnings: {:#?}",
        load.warnings
    );
    Some((dir, load.catalog))
}

const OUR_APPS: [&str; 13] = [
    "actual-budget",
    "adguard-home",
    "affine",
    "authentik",
    "jellyfin",
    "jellyseerr",
    "miniflux",
    "postgres",
    "prowlarr",
    "qbittorrent",
    "radarr",
    "redis",
    "sonarr",
];

#[test]
fn our_catalog_loads_without_errors_or_warnings() {
    let load = Catalog::load(&repo_root().join("apps"));
    assert!(load.errors.is_empty(), "{:#?}", load.errors);
    assert!(load.warnings.is_empty(), "{:#?}", load.warnings);
    let names: Vec<&str> = load.catalog.apps().map(|a| a.name.as_str()).collect();
    assert_eq!(names, OUR_APPS);
    for name in OUR_APPS {
        let icon = load.catalog.icon_path(name).expect("icon.png present");
        let bytes = fs::read(&icon).unwrap();
        assert!(
            bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
            "{} is a PNG",
            icon.display()
        );
        assert!(bytes.len() > 100);
    }
    // The project's own icon wins over the generated initial, and says where it comes from.
    let radarr = load.catalog.icon_path("radarr").unwrap();
    assert!(radarr.ends_with("radarr/logo.png"), "{}", radarr.display());
    for name in OUR_APPS {
        let dir = repo_root().join("apps").join(name);
        if dir.join("logo.png").is_file() {
            let source = fs::read_to_string(dir.join("ICON-SOURCE.md")).unwrap_or_default();
            assert!(
                source.contains("Licence:"),
                "apps/{name}/logo.png needs an ICON-SOURCE.md naming its origin and licence"
            );
        }
    }
    assert_eq!(load.catalog.icon_path("nope"), None);
    assert_eq!(load.catalog.icon_path("../apps"), None);
}

#[test]
fn every_upstream_fixture_loads() {
    let Some((_dir, catalog)) = fixture_catalog("every_upstream_fixture_loads") else {
        return;
    };
    assert_eq!(catalog.len(), 14);
    let authentik = catalog.get("authentik").unwrap();
    assert!(authentik.is_system);
    assert!(
        authentik.traefik_config.is_some(),
        "traefikConfig kept for NixOS"
    );
    let miniflux = catalog.get("miniflux").unwrap();
    assert!(!miniflux.strip_prefix());
    assert_eq!(miniflux.port, Some(8085));
    assert_eq!(miniflux.sso_strategy(), SsoStrategy::NativeOidc);
    let actual = catalog.get("actual-budget").unwrap();
    assert_eq!(actual.absolute_paths()[0].rule, "PathPrefix(`/openid`)");
    assert_eq!(actual.absolute_paths()[0].priority, 90);
    assert_eq!(catalog.get("postgres").unwrap().port, None);
    assert_eq!(
        catalog.get("redis").unwrap().health_check.timeout_secs(),
        30
    );
    assert_eq!(
        catalog.get("adguard-home").unwrap().sso_strategy(),
        SsoStrategy::ForwardAuth
    );
}

/// Our catalog carries upstream's facts: ports, SSO, integrations, health checks and routing.
#[test]
fn our_apps_match_upstream_facts() {
    let Some((_dir, upstream)) = fixture_catalog("our_apps_match_upstream_facts") else {
        return;
    };
    let ours = Catalog::load(&repo_root().join("apps")).catalog;
    for app in ours.apps() {
        let up = upstream
            .get(&app.name)
            .unwrap_or_else(|| panic!("{} in upstream", app.name));
        assert_eq!(app.port, up.port, "{}: port", app.name);
        assert_eq!(app.is_system, up.is_system, "{}: isSystem", app.name);
        assert_eq!(app.category, up.category, "{}: category", app.name);
        assert_eq!(app.display_name, up.display_name, "{}", app.name);
        assert_eq!(
            app.integrations, up.integrations,
            "{}: integrations",
            app.name
        );
        assert_eq!(app.sso, up.sso, "{}: sso", app.name);
        assert_eq!(
            app.health_check, up.health_check,
            "{}: healthCheck",
            app.name
        );
        assert_eq!(
            app.strip_prefix(),
            up.strip_prefix(),
            "{}: stripPrefix",
            app.name
        );
        assert_eq!(
            app.routing_headers(),
            up.routing_headers(),
            "{}: headers",
            app.name
        );
        assert_eq!(app.absolute_paths(), up.absolute_paths(), "{}", app.name);
        assert_eq!(app.bootstrap, up.bootstrap, "{}: bootstrap", app.name);
    }
    // Our additions: Actual's sign-in callback is never prefixed; miniflux is not rewritten.
    let actual = ours.get("actual-budget").unwrap().embed_settings().unwrap();
    assert!(actual.exclude.contains(&"/openid-cb".to_string()));
    assert!(!actual.cookie_path());
    assert!(ours.get("miniflux").unwrap().embed_settings().is_none());
    assert!(ours
        .get("adguard-home")
        .unwrap()
        .embed_settings()
        .unwrap()
        .location());
}

fn write_app(dir: &Path, name: &str, yaml: &str) -> PathBuf {
    let app_dir = dir.join(name);
    fs::create_dir_all(&app_dir).unwrap();
    let file = app_dir.join("metadata.yaml");
    fs::write(&file, yaml).unwrap();
    file
}

#[test]
fn a_bad_app_is_reported_with_file_field_and_line_and_the_others_load() {
    let dir = tempfile::tempdir().unwrap();
    write_app(
        dir.path(),
        "good",
        "name: good\ndisplayName: Good\ndescription: fine\ncategory: media\nport: 8000\n",
    );
    let wrong_type = write_app(
        dir.path(),
        "wrongtype",
        "name: wrongtype\ndisplayName: W\ndescription: d\ncategory: media\nrouting:\n  stripPrefix: maybe\n",
    );
    let missing = write_app(
        dir.path(),
        "missing",
        "name: missing\ndescription: d\ncategory: media\nrouting:\n  headers:\n    X-Ok: fine\n    \"Bad Header\": x\n",
    );
    let mismatch = write_app(
        dir.path(),
        "dirname",
        "name: other\ndisplayName: O\ndescription: d\ncategory: media\n",
    );
    let bad_yaml = write_app(dir.path(), "badyaml", "name: [unclosed\n");
    let bad_sso = write_app(
        dir.path(),
        "badsso",
        "name: badsso\ndisplayName: B\ndescription: d\ncategory: media\nsso:\n  strategy: saml\n",
    );
    let typo = write_app(
        dir.path(),
        "typo",
        "name: typo\ndisplayName: T\ndescription: d\ncategory: media\nport: 8001\nrouting:\n  stripPrefx: false\n",
    );
    let dangling = write_app(
        dir.path(),
        "dangling",
        "name: dangling\ndisplayName: D\ndescription: d\ncategory: media\nintegrations:\n  db:\n    compatible:\n      - app: nosuchdb\n",
    );
    // Not an app: no metadata.yaml.
    fs::create_dir_all(dir.path().join("notes")).unwrap();

    let load = Catalog::load(dir.path());
    let names: Vec<&str> = load.catalog.apps().map(|a| a.name.as_str()).collect();
    assert_eq!(
        names,
        ["dangling", "good", "typo"],
        "errors: {:#?}",
        load.errors
    );

    let find = |file: &Path| {
        load.errors
            .iter()
            .filter(|e| e.file == file)
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
    };
    let e = find(&wrong_type);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].contains("wrongtype/metadata.yaml:6: routing.stripPrefix: invalid boolean"),
        "{}",
        e[0]
    );
    assert!(e[0].ends_with("(true or false expected)"), "{}", e[0]);

    let e = find(&missing);
    assert!(
        e.iter()
            .any(|m| m.contains("displayName") && m.contains("required")),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|m| m.contains("missing/metadata.yaml:7: routing.headers.Bad Header")),
        "{e:?}"
    );

    let e = find(&mismatch);
    assert!(
        e[0].contains("dirname/metadata.yaml:1: name") && e[0].contains("`dirname`"),
        "{e:?}"
    );
    let e = find(&bad_yaml);
    assert!(
        e[0].contains("badyaml/metadata.yaml:") && e[0].contains("YAML"),
        "{e:?}"
    );
    let e = find(&bad_sso);
    assert!(
        e[0].contains(":6: sso.strategy") && e[0].contains("saml"),
        "{e:?}"
    );

    let warnings: Vec<String> = load.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(warnings.len(), 2, "{warnings:#?}");
    assert!(
        warnings[0].starts_with(&format!("{}:7: routing.stripPrefx", typo.display())),
        "{warnings:?}"
    );
    assert!(
        warnings[1].starts_with(&format!(
            "{}:8: integrations.db.compatible[0].app: `nosuchdb` is not in the catalog",
            dangling.display()
        )),
        "{warnings:?}"
    );
    // Unknown keys are ignored as upstream does: the typo leaves stripPrefix at its default.
    assert!(load.catalog.get("typo").unwrap().strip_prefix());
}

#[test]
fn keys_left_empty_count_as_absent() {
    let dir = tempfile::tempdir().unwrap();
    write_app(
        dir.path(),
        "sparse",
        "name: sparse\ndisplayName: S\ndescription: d\ncategory: media\nport: 8002\nintegrations:\n  # none yet\nsso:\nrouting:\n  headers:\n  absolutePaths:\n",
    );
    let load = Catalog::load(dir.path());
    assert!(load.errors.is_empty(), "{:#?}", load.errors);
    let app = load.catalog.get("sparse").unwrap();
    assert!(app.integrations.is_empty());
    assert!(app.routing_headers().is_empty() && app.absolute_paths().is_empty());
    assert!(app.strip_prefix());
}

#[test]
fn unreadable_directory_is_one_error() {
    let load = Catalog::load(Path::new("/nonexistent/bloud/apps"));
    assert!(load.catalog.is_empty());
    assert_eq!(load.errors.len(), 1);
    assert!(load.errors[0].to_string().contains("appsDir"));
}

#[test]
fn json_shape_matches_upstream_catalog_entries() {
    let catalog = Catalog::load(&repo_root().join("apps")).catalog;
    let postgres = serde_json::to_value(catalog.get("postgres").unwrap()).unwrap();
    assert_eq!(postgres["name"], "postgres");
    assert_eq!(postgres["displayName"], "PostgreSQL");
    assert_eq!(postgres["isSystem"], true);
    assert_eq!(postgres["port"], 0);
    assert_eq!(postgres["integrations"], serde_json::json!({}));
    assert_eq!(postgres["sso"]["strategy"], "");
    assert_eq!(postgres["healthCheck"]["path"], "");
    assert_eq!(postgres["screenshots"], serde_json::Value::Null);
    assert!(postgres.get("routing").is_none());
    assert!(postgres.get("bootstrap").is_none());

    let authentik = serde_json::to_value(catalog.get("authentik").unwrap()).unwrap();
    assert!(authentik.get("traefikConfig").is_none());

    let actual = serde_json::to_value(catalog.get("actual-budget").unwrap()).unwrap();
    assert_eq!(actual["port"], 5006);
    assert_eq!(
        actual["integrations"]["sso"]["compatible"][0],
        serde_json::json!({"app": "authentik", "default": true})
    );
    assert_eq!(actual["sso"]["env"]["clientId"], "ACTUAL_OPENID_CLIENT_ID");
    assert_eq!(actual["routing"]["absolutePaths"][0]["priority"], 90);
    assert_eq!(
        actual["routing"]["headers"]["Cross-Origin-Embedder-Policy"],
        "credentialless"
    );
    assert_eq!(
        actual["bootstrap"]["indexedDB"]["intercepts"][0]["value"],
        "{{embedUrl}}"
    );

    let store: Vec<&str> = catalog.store_apps().map(|a| a.name.as_str()).collect();
    assert!(!store.contains(&"postgres") && !store.contains(&"redis"));
    assert!(store.contains(&"authentik") && store.contains(&"miniflux"));
}

#[test]
fn an_alias_bomb_in_free_form_metadata_is_refused_not_expanded() {
    let dir = tempfile::tempdir().unwrap();
    // traefikConfig is read as a free-form value, so every alias would be expanded: 10^10
    // strings. The parser's budget refuses the file instead.
    let mut bomb = String::from(
        "name: bomb\ndisplayName: B\ndescription: d\ncategory: media\ntraefikConfig:\n  a: &a [x, x, x, x, x, x, x, x, x, x]\n",
    );
    for (prev, name) in ["a", "b", "c", "d", "e", "f", "g", "h", "i"]
        .iter()
        .zip(["b", "c", "d", "e", "f", "g", "h", "i", "j"])
    {
        let refs = vec![format!("*{prev}"); 10].join(", ");
        bomb.push_str(&format!("  {name}: &{name} [{refs}]\n"));
    }
    let file = write_app(dir.path(), "bomb", &bomb);
    write_app(
        dir.path(),
        "good",
        "name: good\ndisplayName: Good\ndescription: fine\ncategory: media\n",
    );
    let load = Catalog::load(dir.path());
    assert!(load.catalog.get("good").is_some());
    assert!(load.catalog.get("bomb").is_none());
    let e: Vec<String> = load.errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with(&file.display().to_string()) && e[0].contains("too large or too complex"),
        "{e:?}"
    );
}
