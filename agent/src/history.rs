//! Generations and rollback.
//!
//! After every successful rebuild the agent records which apps the new generation has (the
//! `generations` table). On NixOS (`rebuild.systemProfile` set) the numbers are the system
//! profile's own (`<profile>-<n>-link`) and the list is the profile's links, each joined with our
//! record when there is one. Without a profile (demo mode) the numbers are our own sequence.
//!
//! A rollback goes through the queue like an install: it rewrites apps.nix and the state file to
//! the generation's app set (so the next rebuild keeps it), runs the rebuild command with
//! `--rollback <n>` (the root helper switches the profile and activates it; the demo rebuild
//! starts and stops demo apps), then brings the agent's app records and the proxy's routes in
//! line with that app set.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use crate::db::{GenerationApp, GenerationRecord};
use crate::health;
use crate::nixgen::{self, NixState};
use crate::queue::OpResult;
use crate::service::{status, Service};

/// Generations listed by the API.
const LIST_LIMIT: usize = 100;

/// One item of `GET /api/system/versions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Generation {
    pub number: i64,
    pub current: bool,
    /// RFC 3339: when the generation was made (the profile link's time on NixOS).
    pub created_at: String,
    /// The apps it had, from our records; None when the agent did not make it (installed by
    /// hand, or before the agent kept records): it cannot be rolled back to from here.
    pub apps: Option<Vec<GenerationAppInfo>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rebuild_id: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerationAppInfo {
    pub name: String,
    pub display_name: String,
}

/// `system-42-link` (for profile `system`) → 42. Anything else is not a generation link.
pub fn parse_link_name(profile_name: &str, file_name: &str) -> Option<i64> {
    let digits = file_name
        .strip_prefix(profile_name)?
        .strip_prefix('-')?
        .strip_suffix("-link")?;
    if digits.is_empty() || digits.len() > 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The generation the profile points at now.
pub fn current_profile_generation(profile: &Path) -> Option<i64> {
    let target = std::fs::read_link(profile).ok()?;
    let name = profile.file_name()?.to_str()?;
    parse_link_name(name, target.file_name()?.to_str()?)
}

/// `(number, created_at)` of every generation link of the profile, newest first.
fn profile_generations(profile: &Path) -> Vec<(i64, String)> {
    let (Some(dir), Some(name)) = (
        profile.parent(),
        profile.file_name().and_then(|n| n.to_str()),
    ) else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(i64, String)> = entries
        .flatten()
        .filter_map(|e| {
            let n = parse_link_name(name, e.file_name().to_str()?)?;
            let when = e
                .path()
                .symlink_metadata()
                .and_then(|m| m.modified())
                .ok()
                .map(time::OffsetDateTime::from)
                .and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .unwrap_or_default();
            Some((n, when))
        })
        .collect();
    out.sort_by_key(|g| std::cmp::Reverse(g.0));
    out.truncate(LIST_LIMIT);
    out
}

fn info(apps: &[GenerationApp]) -> Vec<GenerationAppInfo> {
    apps.iter()
        .map(|a| GenerationAppInfo {
            name: a.name.clone(),
            display_name: a.display_name.clone(),
        })
        .collect()
}

/// Newest first.
pub fn list(service: &Service) -> Result<Vec<Generation>, crate::db::DbError> {
    let records = service.db.list_generations(LIST_LIMIT)?;
    let Some(profile) = &service.config.system_profile else {
        return Ok(records
            .into_iter()
            .map(|r| Generation {
                number: r.number,
                current: r.current,
                created_at: r.created_at,
                apps: Some(info(&r.apps)),
                summary: Some(r.summary),
                rebuild_id: r.rebuild_id,
            })
            .collect());
    };
    let current = current_profile_generation(profile);
    Ok(profile_generations(profile)
        .into_iter()
        .map(|(number, created_at)| {
            let rec = records.iter().find(|r| r.number == number);
            Generation {
                number,
                current: current == Some(number),
                created_at: rec.map(|r| r.created_at.clone()).unwrap_or(created_at),
                apps: rec.map(|r| info(&r.apps)),
                summary: rec.map(|r| r.summary.clone()),
                rebuild_id: rec.and_then(|r| r.rebuild_id),
            }
        })
        .collect())
}

/// After a successful rebuild: records the new generation with the apps the agent now has.
pub fn record(service: &Service, summary: &str, rebuild_id: i64) {
    let number = match &service.config.system_profile {
        None => None,
        Some(profile) => match current_profile_generation(profile) {
            Some(n) => Some(n),
            None => {
                tracing::warn!(profile = %profile.display(), "cannot read the system profile's generation; this rebuild is not in the history");
                return;
            }
        },
    };
    let state = match nixgen::load_state(&service.nix_dir()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot record the generation's state");
            return;
        }
    };
    // Apps whose install failed are in the database but not in the generation.
    let apps: Vec<GenerationApp> = match service.db.list_apps() {
        Ok(list) => list
            .into_iter()
            .filter(|a| state.is_enabled(&a.name))
            .map(|a| GenerationApp {
                name: a.name,
                display_name: a.display_name,
                version: a.version,
                port: a.port,
                is_system: a.is_system,
                integration_config: a.integration_config.unwrap_or_default(),
            })
            .collect(),
        Err(e) => {
            tracing::error!(error = %e, "cannot record the generation's apps");
            return;
        }
    };
    match service
        .db
        .record_generation(number, summary, Some(rebuild_id), &apps, &state.to_json())
    {
        Ok(n) => tracing::info!(generation = n, apps = apps.len(), "generation recorded"),
        Err(e) => tracing::error!(error = %e, "cannot record the generation"),
    }
}

/// Why a rollback cannot start (checked before it is queued and again when it runs).
pub fn check(service: &Service, generation: u32) -> Result<GenerationRecord, (u16, String)> {
    let n = i64::from(generation);
    let listed = list(service).map_err(|e| (500, e.to_string()))?;
    let Some(g) = listed.iter().find(|g| g.number == n) else {
        return Err((404, format!("there is no generation {n}")));
    };
    if g.current {
        return Err((409, format!("generation {n} is the one running now")));
    }
    match service.db.generation(n) {
        Ok(Some(rec)) => Ok(rec),
        Ok(None) => Err((
            409,
            format!(
                "Bloud has no record of the apps of generation {n} (it was not made by Bloud); \
                 switch to it from a shell with `nixos-rebuild switch --rollback` if you must"
            ),
        )),
        Err(e) => Err((500, e.to_string())),
    }
}

/// The queued rollback.
pub async fn rollback(service: &Arc<Service>, generation: u32) -> OpResult {
    let app = crate::queue::ROLLBACK_APP;
    let target = match check(service, generation) {
        Ok(r) => r,
        Err((_, msg)) => return OpResult::failure(app, msg),
    };
    let Some(argv) = service.rebuilder.rollback_argv(generation) else {
        return OpResult::failure(
            app,
            "rollback needs rebuild.mode command (the root helper); in nixos mode run \
             `nixos-rebuild switch --rollback` yourself",
        );
    };
    let target_state: NixState = match serde_json::from_str(&target.state_json) {
        Ok(s) => s,
        Err(e) => {
            return OpResult::failure(
                app,
                format!("the record of generation {generation} is unreadable: {e}"),
            )
        }
    };
    let nix_dir = service.nix_dir();
    let previous = match nixgen::load_state(&nix_dir) {
        Ok(s) => s,
        Err(e) => return OpResult::failure(app, e.to_string()),
    };
    let installed: BTreeSet<String> = match service.db.installed_names() {
        Ok(n) => n,
        Err(e) => return OpResult::failure(app, e.to_string()),
    };
    let wanted: BTreeSet<String> = target.apps.iter().map(|a| a.name.clone()).collect();
    let leaving: Vec<String> = installed.difference(&wanted).cloned().collect();
    let coming: Vec<&GenerationApp> = target
        .apps
        .iter()
        .filter(|a| !installed.contains(&a.name))
        .collect();

    if let Err(e) = nixgen::write_atomic(&nix_dir, &target_state) {
        return OpResult::failure(app, e.to_string());
    }
    for name in &leaving {
        service.next_health_generation(name);
        service.set_status(name, status::UNINSTALLING);
    }
    for a in &coming {
        if let Err(e) = service.db.upsert_app(&a.record(), status::INSTALLING) {
            tracing::error!(app = %a.name, error = %e, "cannot record an app of the generation");
        }
    }
    service.notify_apps();

    let outcome = service
        .rebuilder
        .run_argv(&format!("rollback to generation {generation}"), argv)
        .await;
    if !outcome.success {
        // The box is still on the generation it was on: put everything back.
        if let Err(e) = nixgen::write_atomic(&nix_dir, &previous) {
            tracing::error!(error = %e, "cannot restore apps.nix after a failed rollback");
        }
        for a in &coming {
            let _ = service.db.delete_app(&a.name);
        }
        for name in &leaving {
            health::spawn_wait_healthy(service.clone(), name.clone());
        }
        service.notify_apps();
        let mut r = OpResult::failure(
            app,
            outcome.error.unwrap_or_else(|| "rollback failed".into()),
        );
        r.rebuild_id = Some(outcome.id);
        r.rebuild_output = Some(outcome.tail.join("\n"));
        return r;
    }

    for name in &leaving {
        if let Err(e) = service.db.delete_app(name) {
            tracing::error!(app = %name, error = %e, "cannot remove an app left behind by the rollback");
        }
    }
    service.notify_apps();
    if let Err(e) = service.regenerate_routes() {
        tracing::warn!(error = %e, "routes not updated after the rollback");
    }
    for a in &coming {
        health::spawn_wait_healthy(service.clone(), a.name.clone());
    }
    if let Err(e) = service.db.set_current_generation(i64::from(generation)) {
        tracing::error!(error = %e, "cannot mark the current generation");
    }
    OpResult {
        app: app.to_string(),
        success: true,
        apps_installed: Some(wanted.into_iter().collect()),
        unconfigured: Some(leaving),
        generation_info: Some(format!(
            "Rolled back to generation {generation} in {:.1}s",
            outcome.duration.as_secs_f64()
        )),
        rebuild_id: Some(outcome.id),
        ..OpResult::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_generation_links_are_generations() {
        assert_eq!(parse_link_name("system", "system-42-link"), Some(42));
        for bad in [
            "system-link",
            "system--link",
            "system-4a-link",
            "system-1-link.bak",
            "other-1-link",
            "system-1234567890-link",
            "system-+1-link",
        ] {
            assert_eq!(parse_link_name("system", bad), None, "{bad}");
        }
    }

    #[test]
    fn profile_links_are_listed_newest_first_with_the_current_one() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        for n in [1, 2, 10] {
            std::os::unix::fs::symlink("/nix/store/x", p.join(format!("system-{n}-link"))).unwrap();
        }
        std::os::unix::fs::symlink("system-2-link", p.join("system")).unwrap();
        std::fs::write(p.join("system-3-link.tmp"), "").unwrap();
        let profile = p.join("system");
        assert_eq!(current_profile_generation(&profile), Some(2));
        let got: Vec<i64> = profile_generations(&profile)
            .into_iter()
            .map(|g| g.0)
            .collect();
        assert_eq!(got, [10, 2, 1]);
    }
}
