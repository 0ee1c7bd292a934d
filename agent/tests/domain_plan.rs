//! Install and removal plans on our catalog, for upstream's dependency cases.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use bloud_agent::catalog::{AppMeta, Catalog, CompatibleApp, Integration};
use bloud_agent::plan::{plan_install, plan_remove, resolve_install, PlanError};
use serde_json::json;

fn catalog() -> Catalog {
    let load = Catalog::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../apps"));
    assert!(load.errors.is_empty(), "{:#?}", load.errors);
    load.catalog
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn order(c: &Catalog, installed: &[&str], app: &str, choices: &[(&str, &str)]) -> Vec<String> {
    let choices: BTreeMap<String, String> = choices
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    resolve_install(c, &set(installed), app, &choices)
        .unwrap()
        .apps
        .into_iter()
        .map(|a| a.name)
        .collect()
}

#[test]
fn miniflux_needs_postgres() {
    let c = catalog();
    let plan = plan_install(&c, &set(&[]), "miniflux").unwrap();
    assert_eq!(
        serde_json::to_value(&plan).unwrap(),
        json!({
            "app": "miniflux",
            "canInstall": true,
            "blockers": [],
            "choices": [{
                "integration": "database",
                "required": true,
                "installed": [],
                "available": [{"app": "postgres", "default": true}],
                "recommended": "postgres"
            }],
            "autoConfig": [],
            "dependents": [],
            "signIn": []
        })
    );
    let resolved = resolve_install(&c, &set(&[]), "miniflux", &BTreeMap::new()).unwrap();
    assert_eq!(
        resolved.dependencies().collect::<Vec<_>>(),
        ["postgres"],
        "postgres is enabled with miniflux, before it"
    );
    assert_eq!(resolved.apps.last().unwrap().name, "miniflux");
    assert_eq!(resolved.integrations()["database"], "postgres");

    // With postgres installed: configured automatically, nothing else to install.
    let plan = plan_install(&c, &set(&["postgres"]), "miniflux").unwrap();
    assert!(plan.choices.is_empty());
    assert_eq!(
        serde_json::to_value(&plan.auto_config).unwrap(),
        json!([{"target": "miniflux", "source": "postgres", "integration": "database"}])
    );
    assert_eq!(order(&c, &["postgres"], "miniflux", &[]), ["miniflux"]);
}

#[test]
fn radarr_needs_qbittorrent() {
    let c = catalog();
    let plan = plan_install(&c, &set(&[]), "radarr").unwrap();
    assert_eq!(plan.choices.len(), 1);
    assert_eq!(plan.choices[0].integration, "downloadClient");
    assert!(plan.choices[0].required);
    assert_eq!(plan.choices[0].recommended.as_deref(), Some("qbittorrent"));
    assert_eq!(order(&c, &[], "radarr", &[]), ["qbittorrent", "radarr"]);
    assert_eq!(order(&c, &["qbittorrent"], "radarr", &[]), ["radarr"]);
}

#[test]
fn jellyseerr_requires_a_media_server_and_offers_radarr_and_sonarr() {
    let c = catalog();
    // Nothing installed: the required media server is a choice (no default in the metadata);
    // the optional movie/TV managers are skipped, as upstream.
    let plan = plan_install(&c, &set(&[]), "jellyseerr").unwrap();
    assert_eq!(
        serde_json::to_value(&plan.choices).unwrap(),
        json!([{
            "integration": "mediaServer",
            "required": true,
            "installed": [],
            "available": [{"app": "jellyfin", "default": false}]
        }])
    );
    // The only possible media server is used.
    assert_eq!(
        order(&c, &[], "jellyseerr", &[]),
        ["jellyfin", "jellyseerr"]
    );

    // Everything installed: all three slots are configured automatically, in name order.
    let plan = plan_install(&c, &set(&["jellyfin", "radarr", "sonarr"]), "jellyseerr").unwrap();
    assert!(plan.choices.is_empty());
    assert_eq!(
        serde_json::to_value(&plan.auto_config).unwrap(),
        json!([
            {"target": "jellyseerr", "source": "jellyfin", "integration": "mediaServer"},
            {"target": "jellyseerr", "source": "radarr", "integration": "movieManager"},
            {"target": "jellyseerr", "source": "sonarr", "integration": "tvManager"}
        ])
    );

    // Choosing an uninstalled Radarr pulls it in, and its download client before it.
    assert_eq!(
        order(&c, &[], "jellyseerr", &[("movieManager", "radarr")]),
        ["jellyfin", "qbittorrent", "radarr", "jellyseerr"]
    );
}

#[test]
fn bad_choices_are_rejected_with_the_options() {
    let c = catalog();
    let bad = BTreeMap::from([("movieManager".to_string(), "sonarr".to_string())]);
    let err = resolve_install(&c, &set(&[]), "jellyseerr", &bad).unwrap_err();
    assert!(matches!(err, PlanError::InvalidChoice { .. }));
    assert!(err.to_string().contains("choose one of: radarr"), "{err}");

    let bad = BTreeMap::from([("storage".to_string(), "postgres".to_string())]);
    let err = resolve_install(&c, &set(&[]), "miniflux", &bad).unwrap_err();
    assert!(
        err.to_string()
            .contains("miniflux has no integration `storage`"),
        "{err}"
    );
}

#[test]
fn installing_a_provider_lists_installed_dependents() {
    let c = catalog();
    let plan = plan_install(&c, &set(&["radarr", "sonarr", "prowlarr"]), "qbittorrent").unwrap();
    assert_eq!(
        serde_json::to_value(&plan.dependents).unwrap(),
        json!([
            {"target": "radarr", "source": "qbittorrent", "integration": "downloadClient"},
            {"target": "sonarr", "source": "qbittorrent", "integration": "downloadClient"}
        ])
    );
    let plan = plan_install(&c, &set(&["prowlarr", "jellyseerr"]), "radarr").unwrap();
    let targets: Vec<&str> = plan.dependents.iter().map(|d| d.target.as_str()).collect();
    assert_eq!(targets, ["jellyseerr", "prowlarr"]);
}

#[test]
fn authentik_pulls_in_its_database_and_cache() {
    let c = catalog();
    let apps = order(&c, &[], "authentik", &[]);
    assert_eq!(apps.last().map(String::as_str), Some("authentik"));
    assert_eq!(
        set(&apps.iter().map(String::as_str).collect::<Vec<_>>()),
        set(&["authentik", "postgres", "redis"])
    );
}

#[test]
fn removal_is_blocked_by_a_required_dependent() {
    let c = catalog();
    let plan = plan_remove(
        &c,
        &set(&["qbittorrent", "radarr", "sonarr"]),
        "qbittorrent",
    )
    .unwrap();
    assert_eq!(
        serde_json::to_value(&plan).unwrap(),
        json!({
            "app": "qbittorrent",
            "canRemove": false,
            "blockers": ["radarr requires a downloadClient", "sonarr requires a downloadClient"],
            "willUnconfigure": []
        })
    );

    let plan = plan_remove(&c, &set(&["postgres", "miniflux", "affine"]), "postgres").unwrap();
    assert!(!plan.can_remove);
    assert_eq!(
        plan.blockers,
        ["affine requires a database", "miniflux requires a database"]
    );

    // Optional dependents only lose the integration.
    let installed = set(&[
        "qbittorrent",
        "radarr",
        "prowlarr",
        "jellyseerr",
        "jellyfin",
    ]);
    let plan = plan_remove(&c, &installed, "radarr").unwrap();
    assert!(plan.can_remove);
    assert!(plan.blockers.is_empty());
    assert_eq!(plan.will_unconfigure, ["jellyseerr", "prowlarr"]);

    // Nothing depends on a leaf app.
    let plan = plan_remove(&c, &installed, "jellyseerr").unwrap();
    assert!(plan.can_remove && plan.will_unconfigure.is_empty());
}

#[test]
fn unknown_apps_are_404_material() {
    let c = catalog();
    let err = plan_install(&c, &set(&[]), "nope").unwrap_err();
    assert_eq!(err, PlanError::UnknownApp("nope".into()));
    assert_eq!(err.to_string(), "unknown app: nope");
    assert!(matches!(
        plan_remove(&c, &set(&[]), "nope"),
        Err(PlanError::UnknownApp(_))
    ));
}

fn app(name: &str, requires: &[(&str, &[&str])]) -> AppMeta {
    AppMeta {
        name: name.into(),
        display_name: name.into(),
        description: "test".into(),
        category: "media".into(),
        integrations: requires
            .iter()
            .map(|(slot, apps)| {
                let integration = Integration {
                    required: true,
                    multi: false,
                    compatible: apps
                        .iter()
                        .map(|a| CompatibleApp {
                            app: a.to_string(),
                            ..CompatibleApp::default()
                        })
                        .collect(),
                };
                (slot.to_string(), integration)
            })
            .collect(),
        ..AppMeta::default()
    }
}

#[test]
fn catalog_defects_give_clear_errors() {
    let c = Catalog::from_apps(
        "/tmp",
        [
            app("a", &[("b", &["b"])]),
            app("b", &[("a", &["a"])]),
            app("lonely", &[("db", &["missing"])]),
            app("picky", &[("db", &["x", "y"])]),
            app("x", &[]),
            app("y", &[]),
        ],
    );
    let none = BTreeMap::new();
    let err = resolve_install(&c, &set(&[]), "a", &none).unwrap_err();
    assert_eq!(err, PlanError::Cycle("a -> b -> a".into()));

    // A required slot no catalog app can fill: the plan says so instead of claiming success.
    let plan = plan_install(&c, &set(&[]), "lonely").unwrap();
    assert!(!plan.can_install);
    assert_eq!(plan.blockers.len(), 1);
    assert!(plan.blockers[0].contains("lonely requires a db"));
    assert!(matches!(
        resolve_install(&c, &set(&[]), "lonely", &none),
        Err(PlanError::Unsatisfiable { .. })
    ));

    // Two options and no default: the user has to choose.
    let err = resolve_install(&c, &set(&[]), "picky", &none).unwrap_err();
    assert!(err.to_string().contains("choose one of x, y"), "{err}");
    let choice = BTreeMap::from([("db".to_string(), "y".to_string())]);
    let resolved = resolve_install(&c, &set(&[]), "picky", &choice).unwrap();
    assert_eq!(resolved.dependencies().collect::<Vec<_>>(), ["y"]);
    // Two installed, not multi: a choice again, listing both as installed.
    let plan = plan_install(&c, &set(&["x", "y"]), "picky").unwrap();
    assert_eq!(plan.choices[0].installed.len(), 2);
    assert!(plan.auto_config.is_empty());
}

/// What the install dialog promises about signing in: the login check for every app behind
/// `/embed/`, OpenID Connect only for native-OIDC apps, nothing for public ones.
#[test]
fn sign_in_says_what_will_be_connected() {
    use bloud_agent::plan::sign_in;
    let c = catalog();
    let texts = |app: &str, public: bool| -> Vec<&str> {
        sign_in(c.get(app).unwrap(), public)
            .iter()
            .map(|s| s.text)
            .collect()
    };
    let oidc = "Sign in with your Bloud account (OpenID Connect)";
    let login = "Protected by Bloud's login";
    for app in ["miniflux", "affine", "actual-budget"] {
        assert_eq!(texts(app, false), [login, oidc], "{app}");
    }
    for app in ["radarr", "adguard-home", "jellyfin"] {
        assert_eq!(texts(app, false), [login], "{app}");
    }
    assert_eq!(texts("radarr", true), Vec::<&str>::new());
    // System apps have no route of their own: nothing to promise.
    assert_eq!(texts("postgres", false), Vec::<&str>::new());
}
