//! Authentik blueprints (docs/sso.md, "When Authentik is installed"): goldens for a set of
//! catalog apps, the blueprint shape Authentik's importer expects (checked on the YAML parser's
//! events, tags included), stable output, and the directory the agent keeps.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use bloud_agent::authentik::{
    client_secret, generate, write_dir, BlueprintSettings, Blueprints, GENERATED_MARKER, LDAP_FILE,
    OUTPOST_FILE,
};
use bloud_agent::catalog::Catalog;
use serde_saphyr::granit_parser::{Event, Parser};

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-test-host-secret";

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn catalog() -> Catalog {
    let load = Catalog::load(&manifest().join("../apps"));
    assert!(load.errors.is_empty(), "{:#?}", load.errors);
    load.catalog
}

fn settings() -> BlueprintSettings<'static> {
    BlueprintSettings {
        public_url: "http://bloud.local",
        authentik_url: "http://bloud.local",
        host_secret: SECRET,
    }
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// Native OIDC (Miniflux, Actual Budget with its root callback, AFFiNE), forward-auth
/// (qBittorrent, Radarr, AdGuard Home), LDAP (Jellyfin), and apps without SSO.
const GOLDEN_SET: &[&str] = &[
    "authentik",
    "postgres",
    "redis",
    "miniflux",
    "actual-budget",
    "affine",
    "qbittorrent",
    "radarr",
    "adguard-home",
    "jellyfin",
];

/// Compares with `agent/tests/golden/authentik-blueprints/`; `BLOUD_UPDATE_GOLDEN=1` rewrites it.
#[test]
fn golden_blueprints_for_a_set_of_apps() {
    let files = generate(&catalog(), &set(GOLDEN_SET), &settings());
    let dir = manifest().join("tests/golden/authentik-blueprints");
    if std::env::var_os("BLOUD_UPDATE_GOLDEN").is_some() {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in &files {
            std::fs::write(dir.join(name), text).unwrap();
        }
    }
    let on_disk: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (run with BLOUD_UPDATE_GOLDEN=1)", dir.display()))
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let generated: BTreeSet<String> = files.keys().cloned().collect();
    assert_eq!(generated, on_disk, "the set of blueprint files");
    for (name, text) in &files {
        let expected = std::fs::read_to_string(dir.join(name)).unwrap();
        assert_eq!(text, &expected, "golden {name} differs");
    }
    // What the goldens must say, so a regenerated golden cannot quietly lose it.
    let miniflux = &files["miniflux.yaml"];
    assert!(miniflux.contains("client_id: \"miniflux-client\""));
    assert!(miniflux.contains(&format!(
        "client_secret: \"{}\"",
        client_secret(SECRET, "miniflux")
    )));
    assert!(miniflux.contains("url: \"http://bloud.local/embed/miniflux/oauth2/oidc/callback\""));
    let actual = &files["actual-budget.yaml"];
    assert!(
        actual.contains("url: \"http://bloud.local/openid/callback\""),
        "{actual}"
    );
    let outpost = &files[OUTPOST_FILE];
    for p in ["AdGuard Home", "qBittorrent", "Radarr"] {
        assert!(
            outpost.contains(&format!("[name, \"{p} Proxy Provider\"]")),
            "{outpost}"
        );
    }
    assert!(!files.contains_key("postgres.yaml") && !files.contains_key("authentik.yaml"));
}

#[test]
fn nothing_without_authentik() {
    let mut names = set(GOLDEN_SET);
    names.remove("authentik");
    assert!(generate(&catalog(), &names, &settings()).is_empty());
}

#[test]
fn output_is_stable_and_secrets_are_per_app_and_per_box() {
    let c = catalog();
    let all: BTreeSet<String> = c.apps().map(|a| a.name.clone()).collect();
    assert_eq!(
        generate(&c, &all, &settings()),
        generate(&c, &all, &settings())
    );
    let a = client_secret(SECRET, "miniflux");
    assert_eq!(a, client_secret(SECRET, "miniflux"));
    assert_ne!(a, client_secret(SECRET, "affine"));
    assert_ne!(
        a,
        client_secret(b"another box's secret, also long enough", "miniflux")
    );
    assert_eq!(a.len(), 43, "32 bytes, base64url without padding");
    assert!(!a.contains('='));
}

// ---- the blueprint shape -------------------------------------------------------------------

#[derive(Debug)]
enum Node {
    Scalar(String, Option<String>),
    Seq(Vec<Node>, Option<String>),
    Map(Vec<(String, Node)>),
}

fn tag_of(tag: &Option<std::borrow::Cow<'_, serde_saphyr::granit_parser::Tag>>) -> Option<String> {
    tag.as_ref()
        .map(|t| format!("{}{}", t.handle(), t.suffix()))
}

fn parse(text: &str) -> Node {
    let mut events = Parser::new_from_str(text).map(|e| e.expect("valid YAML").0);
    fn node<'a>(first: Event<'a>, ev: &mut impl Iterator<Item = Event<'a>>) -> Node {
        match first {
            Event::Scalar(v, _, _, tag) => Node::Scalar(v.into_owned(), tag_of(&tag)),
            Event::SequenceStart(_, _, tag) => {
                let mut items = Vec::new();
                loop {
                    match ev.next().unwrap() {
                        Event::SequenceEnd => break,
                        e => items.push(node(e, ev)),
                    }
                }
                Node::Seq(items, tag_of(&tag))
            }
            Event::MappingStart(_, _, tag) => {
                assert!(tag.is_none(), "no tagged mappings in a blueprint");
                let mut pairs = Vec::new();
                loop {
                    match ev.next().unwrap() {
                        Event::MappingEnd => break,
                        Event::Scalar(k, _, _, None) => {
                            let v = ev.next().unwrap();
                            pairs.push((k.into_owned(), node(v, ev)));
                        }
                        e => panic!("a mapping key that is not a plain scalar: {e:?}"),
                    }
                }
                Node::Map(pairs)
            }
            e => panic!("unexpected event {e:?} (aliases and anchors are not used)"),
        }
    }
    loop {
        match events.next().unwrap() {
            Event::StreamStart | Event::DocumentStart(..) => {}
            e => {
                let root = node(e, &mut events);
                assert!(matches!(events.next(), Some(Event::DocumentEnd)));
                assert!(
                    matches!(events.next(), Some(Event::StreamEnd)),
                    "one document"
                );
                return root;
            }
        }
    }
}

fn get<'a>(map: &'a [(String, Node)], key: &str) -> Option<&'a Node> {
    map.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

fn plain(n: &Node) -> &str {
    match n {
        Node::Scalar(s, None) => s,
        other => panic!("expected an untagged scalar, got {other:?}"),
    }
}

/// Authentik's models this agent writes, and what a `!Find` may look up.
const MODELS: &[&str] = &[
    "authentik_core.application",
    "authentik_core.group",
    "authentik_providers_oauth2.oauth2provider",
    "authentik_providers_proxy.proxyprovider",
    "authentik_outposts.outpost",
    "authentik_providers_ldap.ldapprovider",
];
const FIND_MODELS: &[&str] = &[
    "authentik_flows.flow",
    "authentik_core.group",
    "authentik_crypto.certificatekeypair",
    "authentik_providers_oauth2.scopemapping",
    "authentik_providers_proxy.proxyprovider",
];

/// Walks attrs: every tag is Authentik's `!KeyOf <earlier id>` (a scalar) or
/// `!Find [model, [field, value], …]` (a sequence).
fn check_tags(n: &Node, ids: &BTreeSet<String>, file: &str, finds: &mut usize) {
    match n {
        Node::Scalar(v, Some(t)) => {
            assert_eq!(t, "!KeyOf", "{file}: only !KeyOf tags scalars");
            assert!(
                ids.contains(v),
                "{file}: !KeyOf {v} names no earlier entry id"
            );
        }
        Node::Scalar(_, None) => {}
        Node::Seq(items, Some(t)) => {
            assert_eq!(t, "!Find", "{file}: only !Find tags sequences");
            *finds += 1;
            let (model, queries) = items.split_first().expect("!Find has a model");
            assert!(
                FIND_MODELS.contains(&plain(model)),
                "{file}: !Find on {model:?}"
            );
            assert!(!queries.is_empty(), "{file}: !Find needs a query");
            for q in queries {
                let Node::Seq(kv, None) = q else {
                    panic!("{file}: !Find query {q:?}")
                };
                assert_eq!(kv.len(), 2, "{file}: a !Find query is [field, value]");
                assert!(!plain(&kv[0]).is_empty() && !plain(&kv[1]).is_empty());
            }
        }
        Node::Seq(items, None) => items.iter().for_each(|i| check_tags(i, ids, file, finds)),
        Node::Map(pairs) => pairs
            .iter()
            .for_each(|(_, v)| check_tags(v, ids, file, finds)),
    }
}

fn check_blueprint(file: &str, text: &str) -> Vec<String> {
    assert!(text.starts_with(GENERATED_MARKER), "{file}: marker first");
    let Node::Map(root) = parse(text) else {
        panic!("{file}: the root is a mapping")
    };
    let keys: Vec<&str> = root.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["version", "metadata", "entries"], "{file}");
    assert_eq!(
        plain(get(&root, "version").unwrap()),
        "1",
        "{file}: version: 1"
    );
    let Some(Node::Map(meta)) = get(&root, "metadata") else {
        panic!("{file}: metadata")
    };
    assert!(!plain(get(meta, "name").unwrap()).is_empty());
    let Some(Node::Seq(entries, None)) = get(&root, "entries") else {
        panic!("{file}: entries")
    };
    assert!(!entries.is_empty(), "{file}: entries");
    let mut ids = BTreeSet::new();
    let mut models = Vec::new();
    let mut finds = 0;
    for e in entries {
        let Node::Map(e) = e else {
            panic!("{file}: an entry is a mapping")
        };
        for (k, _) in e {
            assert!(
                ["model", "id", "state", "identifiers", "attrs"].contains(&k.as_str()),
                "{file}: entry key {k}"
            );
        }
        let model = plain(get(e, "model").expect("model")).to_string();
        assert!(MODELS.contains(&model.as_str()), "{file}: model {model}");
        let Some(Node::Map(idents)) = get(e, "identifiers") else {
            panic!("{file}: identifiers")
        };
        assert!(!idents.is_empty(), "{file}: identifiers must not be empty");
        if let Some(state) = get(e, "state") {
            assert!(["present", "created", "must_created", "absent"].contains(&plain(state)));
        }
        if let Some(attrs) = get(e, "attrs") {
            assert!(matches!(attrs, Node::Map(_)), "{file}: attrs is a mapping");
            check_tags(attrs, &ids, file, &mut finds);
            if model == "authentik_providers_oauth2.oauth2provider" {
                let Node::Map(a) = attrs else { unreachable!() };
                let Some(Node::Seq(uris, None)) = get(a, "redirect_uris") else {
                    panic!("{file}: redirect_uris")
                };
                for u in uris {
                    let Node::Map(u) = u else {
                        panic!("{file}: a redirect URI is a mapping")
                    };
                    assert_eq!(plain(get(u, "matching_mode").unwrap()), "strict");
                    assert!(plain(get(u, "url").unwrap()).starts_with("http://bloud.local/"));
                }
            }
        }
        if let Some(id) = get(e, "id") {
            assert!(ids.insert(plain(id).to_string()), "{file}: id {id:?} twice");
        }
        models.push(model);
    }
    assert!(
        finds > 0
            || models
                .iter()
                .all(|m| m == "authentik_core.group" || m == "authentik_core.application"),
        "{file}: providers find their flows"
    );
    models
}

#[test]
fn every_blueprint_has_authentiks_shape() {
    let c = catalog();
    let all: BTreeSet<String> = c.apps().map(|a| a.name.clone()).collect();
    let files = generate(&c, &all, &settings());
    let mut by_file = BTreeMap::new();
    for (name, text) in &files {
        by_file.insert(name.clone(), check_blueprint(name, text));
    }
    // Each SSO app of the catalog has its file with a provider (or groups) and its application.
    for app in c.apps() {
        let want = match app.sso.strategy.as_str() {
            "native-oidc" => "authentik_providers_oauth2.oauth2provider",
            "forward-auth" => "authentik_providers_proxy.proxyprovider",
            "ldap" => "authentik_core.group",
            _ => continue,
        };
        let models = &by_file[&format!("{}.yaml", app.name)];
        assert_eq!(
            models.first().map(String::as_str),
            Some(want),
            "{}",
            app.name
        );
        assert_eq!(
            models.last().map(String::as_str),
            Some("authentik_core.application"),
            "{}",
            app.name
        );
    }
    assert_eq!(by_file[OUTPOST_FILE], ["authentik_outposts.outpost"]);
    assert_eq!(
        by_file[LDAP_FILE],
        [
            "authentik_providers_ldap.ldapprovider",
            "authentik_core.application",
            "authentik_outposts.outpost"
        ]
    );
}

#[test]
fn a_catalog_string_cannot_break_out_of_its_scalar() {
    // A display name with YAML syntax in it stays one string (an app's metadata is untrusted).
    let dir = tempfile::tempdir().unwrap();
    for (name, meta) in [
        ("authentik", "name: authentik\ndisplayName: Authentik\ndescription: x\ncategory: x\nport: 9001\n"),
        ("evil", "name: evil\ndisplayName: \"x\\\"\\n    client_type: public #\"\ndescription: x\ncategory: x\nport: 9100\nsso:\n  strategy: native-oidc\n  callbackPath: /cb\n"),
    ] {
        std::fs::create_dir_all(dir.path().join(name)).unwrap();
        std::fs::write(dir.path().join(name).join("metadata.yaml"), meta).unwrap();
    }
    let load = Catalog::load(dir.path());
    assert!(load.errors.is_empty(), "{:#?}", load.errors);
    let files = generate(&load.catalog, &set(&["authentik", "evil"]), &settings());
    let text = &files["evil.yaml"];
    check_blueprint("evil.yaml", text);
    let Node::Map(root) = parse(text) else {
        unreachable!()
    };
    let Some(Node::Seq(entries, _)) = get(&root, "entries") else {
        unreachable!()
    };
    let Node::Map(provider) = &entries[0] else {
        unreachable!()
    };
    let Some(Node::Map(attrs)) = get(provider, "attrs") else {
        unreachable!()
    };
    assert_eq!(plain(get(attrs, "client_type").unwrap()), "confidential");
    assert_eq!(attrs.iter().filter(|(k, _)| k == "client_type").count(), 1);
}

#[test]
fn the_directory_follows_installs_and_uninstalls_and_keeps_foreign_files() {
    let c = catalog();
    let dir = tempfile::tempdir().unwrap();
    let bp = dir.path().join("authentik-blueprints");
    std::fs::create_dir_all(&bp).unwrap();
    // apps/authentik's own branding blueprint, or an operator's: not ours, never removed.
    std::fs::write(bp.join("bloud-brand.yaml"), "version: 1\nentries: []\n").unwrap();

    let installed = set(&["authentik", "miniflux", "radarr"]);
    assert!(write_dir(&bp, &generate(&c, &installed, &settings())).unwrap());
    let names = |p: &std::path::Path| -> BTreeSet<String> {
        std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect()
    };
    assert_eq!(
        names(&bp),
        set(&[
            "bloud-brand.yaml",
            "bloud-outpost.yaml",
            "miniflux.yaml",
            "radarr.yaml"
        ])
    );
    // The same set again: nothing is rewritten (Authentik's watcher sees no change).
    assert!(!write_dir(&bp, &generate(&c, &installed, &settings())).unwrap());

    // Radarr uninstalled: its file and the outpost file (no forward-auth app left) go.
    let installed = set(&["authentik", "miniflux"]);
    assert!(write_dir(&bp, &generate(&c, &installed, &settings())).unwrap());
    assert_eq!(names(&bp), set(&["bloud-brand.yaml", "miniflux.yaml"]));

    // Authentik uninstalled: every file of ours goes.
    assert!(write_dir(&bp, &Blueprints::new()).unwrap());
    assert_eq!(names(&bp), set(&["bloud-brand.yaml"]));
}
