//! What relying parties learn about the user: `sub` (the stable user id), `preferred_username`
//! and `name` (the Bloud username; there is no separate display name), and `groups`
//! (`["admin"]` or `["member"]`, so an app can map Bloud's roles). No e-mail is known.

use serde_json::{Map, Value};

use crate::db::User;

/// Whether a space-separated scope list holds `name`.
pub fn has_scope(scope: &str, name: &str) -> bool {
    scope.split(' ').any(|s| s == name)
}

/// The user's claims for this scope (`sub` always; `profile` adds names and groups, `groups`
/// adds groups).
pub fn user_claims(user: &User, scope: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("sub".into(), Value::String(user.id.clone()));
    if has_scope(scope, "profile") {
        m.insert(
            "preferred_username".into(),
            Value::String(user.username.clone()),
        );
        m.insert("name".into(), Value::String(user.username.clone()));
    }
    if has_scope(scope, "profile") || has_scope(scope, "groups") {
        m.insert(
            "groups".into(),
            Value::Array(vec![Value::String(user.role.as_str().into())]),
        );
    }
    m
}
