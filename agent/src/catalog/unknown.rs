//! Finds keys in a metadata document that the schema does not know.
//!
//! Upstream's YAML parser silently ignores unknown keys, so a typo such as `stripPrefx: false`
//! changes routing without a word. We keep upstream's tolerance (the app still loads) but report
//! every unknown key with its path so the catalog author sees it.

use serde_yaml::Value;

/// Expected shape of a YAML node.
enum Shape {
    /// A mapping with a fixed set of keys.
    Object(&'static [(&'static str, Shape)]),
    /// A mapping whose keys are free (names) and whose values share one shape.
    MapOf(&'static Shape),
    /// A sequence whose items share one shape.
    ListOf(&'static Shape),
    /// A scalar or free-form value: not inspected.
    Any,
}

use Shape::{Any, ListOf, MapOf, Object};

const COMPATIBLE: Shape = Object(&[("app", Any), ("default", Any), ("category", Any)]);
const INTEGRATION: Shape = Object(&[
    ("required", Any),
    ("multi", Any),
    ("compatible", ListOf(&COMPATIBLE)),
]);
const SSO_ENV: Shape = Object(&[
    ("clientId", Any),
    ("clientSecret", Any),
    ("discoveryUrl", Any),
    ("redirectUrl", Any),
    ("serverHostname", Any),
    ("issuer", Any),
    ("provider", Any),
    ("providerName", Any),
    ("userCreation", Any),
]);
const SSO: Shape = Object(&[
    ("strategy", Any),
    ("callbackPath", Any),
    ("providerName", Any),
    ("userCreation", Any),
    ("env", SSO_ENV),
]);
const ABSOLUTE_PATH: Shape = Object(&[("rule", Any), ("priority", Any), ("headers", Any)]);
const EMBED: Shape = Object(&[
    ("enabled", Any),
    ("location", Any),
    ("html", Any),
    ("css", Any),
    ("cookiePath", Any),
    ("exclude", Any),
    (
        "inject",
        Object(&[("config", Any), ("src", Any), ("script", Any)]),
    ),
]);
const ROUTING: Shape = Object(&[
    ("headers", Any),
    ("stripPrefix", Any),
    ("absolutePaths", ListOf(&ABSOLUTE_PATH)),
    ("embed", EMBED),
]);
const IDB_ENTRY: Shape = Object(&[("store", Any), ("key", Any), ("value", Any)]);
const INDEXED_DB: Shape = Object(&[
    ("database", Any),
    ("intercepts", ListOf(&IDB_ENTRY)),
    ("writes", ListOf(&IDB_ENTRY)),
    ("entries", ListOf(&IDB_ENTRY)),
]);
const LS_INTERCEPT: Shape = Object(&[("key", Any), ("value", Any), ("jsonPatch", Any)]);
const LOCAL_STORAGE: Shape = Object(&[("intercepts", ListOf(&LS_INTERCEPT))]);
const BOOTSTRAP: Shape = Object(&[("indexedDB", INDEXED_DB), ("localStorage", LOCAL_STORAGE)]);
const APP: Shape = Object(&[
    ("name", Any),
    ("displayName", Any),
    ("description", Any),
    ("category", Any),
    ("icon", Any),
    ("screenshots", Any),
    ("version", Any),
    ("port", Any),
    ("isSystem", Any),
    ("dependencies", Any),
    (
        "resources",
        Object(&[("minRam", Any), ("minDisk", Any), ("gpu", Any)]),
    ),
    ("integrations", MapOf(&INTEGRATION)),
    ("sso", SSO),
    ("defaultConfig", Any),
    (
        "healthCheck",
        Object(&[("path", Any), ("interval", Any), ("timeout", Any)]),
    ),
    ("docs", Object(&[("homepage", Any), ("source", Any)])),
    ("tags", Any),
    ("routing", ROUTING),
    ("bootstrap", BOOTSTRAP),
    ("traefikConfig", Any),
]);

/// Paths of unknown keys in a metadata document, e.g. `routing.stripPrefx`,
/// `routing.absolutePaths[0].prio`.
pub fn unknown_keys(doc: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(doc, &APP, "", &mut out);
    out
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

fn key_text(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        other => serde_yaml::to_string(other)
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "?".to_string()),
    }
}

fn walk(value: &Value, shape: &Shape, path: &str, out: &mut Vec<String>) {
    match (shape, value) {
        (Object(fields), Value::Mapping(map)) => {
            for (k, v) in map {
                let key = key_text(k);
                match fields.iter().find(|(name, _)| *name == key) {
                    Some((_, inner)) => walk(v, inner, &join(path, &key), out),
                    None => out.push(join(path, &key)),
                }
            }
        }
        (MapOf(inner), Value::Mapping(map)) => {
            for (k, v) in map {
                walk(v, inner, &join(path, &key_text(k)), out);
            }
        }
        (ListOf(inner), Value::Sequence(items)) => {
            for (i, v) in items.iter().enumerate() {
                walk(v, inner, &format!("{path}[{i}]"), out);
            }
        }
        // Type mismatches are reported by the typed parse; nothing to add here.
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_nested_unknown_keys_with_paths() {
        let doc: Value = serde_yaml::from_str(
            "name: x\nimage: foo\nrouting:\n  stripPrefx: false\n  absolutePaths:\n    - rule: a\n      prio: 3\nintegrations:\n  db:\n    required: true\n    compatible:\n      - app: postgres\n        defualt: true\n",
        )
        .unwrap();
        assert_eq!(
            unknown_keys(&doc),
            vec![
                "image",
                "routing.stripPrefx",
                "routing.absolutePaths[0].prio",
                "integrations.db.compatible[0].defualt"
            ]
        );
    }

    #[test]
    fn free_form_blocks_are_not_inspected() {
        let doc: Value = serde_yaml::from_str(
            "name: x\nrouting:\n  headers:\n    X-Anything: y\ntraefikConfig:\n  http: {}\ndefaultConfig:\n  foo: 1\n",
        )
        .unwrap();
        assert!(unknown_keys(&doc).is_empty());
    }
}
