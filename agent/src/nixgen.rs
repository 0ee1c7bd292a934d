//! Generation of `apps.nix` (what `nixos-rebuild` evaluates) and its state file
//! `apps-state.json` (upstream `nixgen/generator.go`).
//!
//! Public API:
//! - [`NixState`]: the transaction state, JSON-compatible with upstream's `apps-state.json`
//!   (Go field names). [`NixState::apply_install`] / [`NixState::apply_uninstall`] change it.
//! - [`generate_apps_nix`]: the Nix module for a state (enabled apps, names sorted).
//! - [`load_state`] / [`write_atomic`]: read and write `<dir>/apps-state.json`,
//!   `<dir>/apps.nix` and `<dir>/apps.list` (atomic, skipped when unchanged). The root rebuild
//!   helper reads only apps.list (names, validated against the catalog: [`crate::apps_list`]);
//!   apps.nix is for `rebuild.mode: nixos` and for reading.
//!
//! Difference from upstream on purpose: the Authentik LDAP flag is recomputed from the enabled
//! apps on every change (upstream set it on an LDAP app's install and reset it on *any*
//! uninstall, which turned LDAP off under Jellyfin when an unrelated app was removed).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::catalog::{Catalog, SsoStrategy};
use crate::plan::ResolvedInstall;
use crate::routes::write_file_atomic;

/// The generated Nix module, imported by the system configuration.
pub const APPS_NIX: &str = "apps.nix";
/// The transaction state next to it.
pub const STATE_FILE: &str = "apps-state.json";

/// `apps-state.json`: every app the agent ever enabled, and global switches.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NixState {
    #[serde(rename = "Apps", default)]
    pub apps: BTreeMap<String, AppState>,
    #[serde(rename = "Global", default)]
    pub global: GlobalState,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppState {
    #[serde(rename = "Name", default)]
    pub name: String,
    /// integration → source app; `null` when the app was enabled as a dependency.
    #[serde(rename = "Integrations", default)]
    pub integrations: Option<BTreeMap<String, String>>,
    /// Uninstalled apps stay in the state with `false`.
    #[serde(rename = "Enabled", default)]
    pub enabled: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlobalState {
    /// Authentik's LDAP outpost (needed by apps with `sso.strategy: ldap`).
    #[serde(rename = "AuthentikLDAPEnable", default)]
    pub authentik_ldap_enable: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum NixGenError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{}: not a valid state file ({source}); fix or remove it (the next install rewrites it)", path.display())]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
}

impl NixState {
    /// Names of the enabled apps, sorted.
    pub fn enabled_apps(&self) -> impl Iterator<Item = &str> {
        self.apps
            .values()
            .filter(|a| a.enabled)
            .map(|a| a.name.as_str())
    }

    pub fn is_enabled(&self, app: &str) -> bool {
        self.apps.get(app).is_some_and(|a| a.enabled)
    }

    /// Enables every app of a resolved install. The requested app gets its integration map;
    /// dependencies keep theirs when already enabled.
    pub fn apply_install(&mut self, catalog: &Catalog, install: &ResolvedInstall) {
        for planned in &install.apps {
            let is_target = planned.name == install.app;
            let entry = self
                .apps
                .entry(planned.name.clone())
                .or_insert_with(|| AppState {
                    name: planned.name.clone(),
                    ..AppState::default()
                });
            if is_target || !entry.enabled {
                entry.integrations = if is_target || !planned.integrations.is_empty() {
                    Some(planned.integrations.clone())
                } else {
                    None
                };
            }
            entry.name = planned.name.clone();
            entry.enabled = true;
        }
        self.recompute_global(catalog);
    }

    /// Disables `app` (it stays in the state, as upstream). Returns whether it was enabled.
    pub fn apply_uninstall(&mut self, catalog: &Catalog, app: &str) -> bool {
        let was_enabled = match self.apps.get_mut(app) {
            Some(entry) if entry.enabled => {
                entry.enabled = false;
                true
            }
            _ => false,
        };
        self.recompute_global(catalog);
        was_enabled
    }

    pub(crate) fn recompute_global(&mut self, catalog: &Catalog) {
        let ldap = self.enabled_apps().any(|name| {
            catalog
                .get(name)
                .is_some_and(|a| a.sso_strategy() == SsoStrategy::Ldap)
        });
        self.global.authentik_ldap_enable = ldap;
    }

    /// The state file's JSON (two-space indent, as upstream's `MarshalIndent`).
    pub fn to_json(&self) -> String {
        // Maps of strings and bools always serialise.
        let mut s = serde_json::to_string_pretty(self).unwrap_or_else(|_| "{}".to_string());
        s.push('\n');
        s
    }
}

/// A Nix attribute name: bare when it is an identifier, quoted otherwise.
fn attr(name: &str) -> String {
    let mut chars = name.chars();
    let ident = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '\'' | '-'));
    if ident {
        return name.to_string();
    }
    let mut out = String::from("\"");
    for c in name.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '$' => out.push_str("\\$"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `apps.nix` for `state`: one `bloud.apps.<name>.enable = true;` per enabled app, sorted,
/// preceded by the Authentik LDAP switch when set.
pub fn generate_apps_nix(state: &NixState) -> String {
    let mut out = String::from(
        "# Generated by Bloud - DO NOT EDIT MANUALLY\n\
         # This file is managed by the Bloud host agent\n\
         { config, lib, pkgs, ... }:\n\n{\n",
    );
    if state.global.authentik_ldap_enable {
        out.push_str("  bloud.apps.authentik.ldap.enable = true;\n");
    }
    for name in state.enabled_apps() {
        let _ = writeln!(out, "  bloud.apps.{}.enable = true;", attr(name));
    }
    out.push_str("}\n");
    out
}

/// Reads `<dir>/apps-state.json`; a missing file is an empty state.
pub fn load_state(dir: &Path) -> Result<NixState, NixGenError> {
    let path = dir.join(STATE_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(NixState::default()),
        Err(source) => return Err(NixGenError::Read { path, source }),
    };
    let mut state: NixState =
        serde_json::from_str(&text).map_err(|source| NixGenError::Parse { path, source })?;
    // Older files may lack names; the key is authoritative.
    for (key, app) in state.apps.iter_mut() {
        if app.name.is_empty() {
            app.name = key.clone();
        }
    }
    Ok(state)
}

/// Writes `<dir>/apps.nix`, `<dir>/apps.list` and `<dir>/apps-state.json` atomically. Returns whether either
/// changed.
pub fn write_atomic(dir: &Path, state: &NixState) -> Result<bool, NixGenError> {
    let mut changed = false;
    for (name, content) in [
        (APPS_NIX, generate_apps_nix(state)),
        (crate::apps_list::APPS_LIST, crate::apps_list::render(state)),
        (STATE_FILE, state.to_json()),
    ] {
        let path = dir.join(name);
        changed |= write_file_atomic(&path, content.as_bytes())
            .map_err(|source| NixGenError::Write { path, source })?;
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_names_are_quoted_only_when_needed() {
        assert_eq!(attr("actual-budget"), "actual-budget");
        assert_eq!(attr("9x"), "\"9x\"");
        assert_eq!(attr("a${b}"), "\"a\\${b}\"");
    }

    #[test]
    fn reads_upstream_state_shape() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(STATE_FILE),
            r#"{"Apps":{"miniflux":{"Name":"miniflux","Integrations":{"database":"postgres"},"Enabled":true},"postgres":{"Name":"postgres","Integrations":null,"Enabled":true},"radarr":{"Name":"radarr","Integrations":null,"Enabled":false}},"Global":{"AuthentikLDAPEnable":false}}"#,
        )
        .unwrap();
        let state = load_state(dir.path()).unwrap();
        assert_eq!(
            state.enabled_apps().collect::<Vec<_>>(),
            ["miniflux", "postgres"]
        );
        assert_eq!(
            generate_apps_nix(&state),
            "# Generated by Bloud - DO NOT EDIT MANUALLY\n# This file is managed by the Bloud host agent\n{ config, lib, pkgs, ... }:\n\n{\n  bloud.apps.miniflux.enable = true;\n  bloud.apps.postgres.enable = true;\n}\n"
        );
    }

    #[test]
    fn missing_state_is_empty_and_broken_state_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load_state(dir.path()).unwrap(), NixState::default());
        std::fs::write(dir.path().join(STATE_FILE), "{not json").unwrap();
        let err = load_state(dir.path()).unwrap_err().to_string();
        assert!(err.contains("apps-state.json"), "{err}");
    }
}
