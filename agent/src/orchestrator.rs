//! Executes queued operations: install (plan → record intent → apps.nix → rebuild → routes →
//! health checks) and uninstall (plan-remove → apps.nix → rebuild → delete → routes).
//!
//! Differences from upstream on purpose: a failed rebuild restores the previous apps.nix and
//! state file (the machine is still on the previous generation) and marks every app enabled by
//! the failed transaction `failed`, not just the requested one (upstream left dependencies in
//! `installing`); only the apps of the transaction are re-health-checked, not every app.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use crate::db::AppRecord;
use crate::health;
use crate::nixgen;
use crate::plan;
use crate::queue::{Executor, OpKind, OpResult, Operation};
use crate::service::{status, Service, RESERVED_DATA_NAMES};

/// Most output returned in `rebuildOutput`; the whole log is at `/api/rebuilds/<id>/log`.
const RESULT_OUTPUT_LINES: usize = 200;

pub struct Orchestrator {
    pub service: Arc<Service>,
}

impl Executor for Orchestrator {
    fn execute(&self, op: Operation) -> impl Future<Output = OpResult> + Send {
        let service = self.service.clone();
        async move {
            match op.kind {
                OpKind::Install { choices } => install(&service, &op.app, &choices).await,
                OpKind::Uninstall { clear_data } => uninstall(&service, &op.app, clear_data).await,
                OpKind::Restart => crate::restart::restart(&service, &op.app).await,
                OpKind::Rollback { generation } => {
                    crate::history::rollback(&service, generation).await
                }
            }
        }
    }
}

fn output_of(tail: &[String]) -> String {
    let start = tail.len().saturating_sub(RESULT_OUTPUT_LINES);
    tail[start..].join("\n")
}

async fn install(
    service: &Arc<Service>,
    app: &str,
    choices: &BTreeMap<String, String>,
) -> OpResult {
    let catalog = service.catalog();
    let installed = match service.installed() {
        Ok(i) => i,
        Err(e) => return OpResult::failure(app, e.to_string()),
    };
    let resolved = match plan::resolve_install(&catalog, &installed, app, choices) {
        Ok(r) => r,
        Err(e) => return OpResult::failure(app, format!("failed to plan install: {e}")),
    };
    let nix_dir = service.nix_dir();
    let previous = match nixgen::load_state(&nix_dir) {
        Ok(s) => s,
        Err(e) => return OpResult::failure(app, e.to_string()),
    };

    // Record the intent: the requested app and the dependencies this transaction adds. A
    // reinstall of a deployed app remembers its status: if the rebuild fails, the machine still
    // runs the previous generation with that app in it.
    let mut touched = Vec::new();
    let mut previous_status = None;
    for planned in &resolved.apps {
        let is_target = planned.name == app;
        if !is_target && installed.contains(&planned.name) {
            continue;
        }
        let Some(meta) = catalog.get(&planned.name) else {
            continue;
        };
        let record = AppRecord {
            name: meta.name.clone(),
            display_name: meta.display_name.clone(),
            version: meta.version.clone(),
            port: meta.port.filter(|p| *p > 0),
            is_system: meta.is_system,
            integration_config: planned.integrations.clone(),
        };
        if is_target && installed.contains(app) {
            previous_status = service.db.get_app(app).ok().flatten().map(|a| a.status);
        }
        if let Err(e) = service.db.upsert_app(&record, status::INSTALLING) {
            return OpResult::failure(app, e.to_string());
        }
        touched.push(planned.name.clone());
    }
    service.notify_apps();

    // Before the rebuild, so the app's env file (NixOS) or process (demo) gets the secret.
    for name in &touched {
        if let Err(e) = ensure_oidc_client(service, &catalog, name) {
            mark(service, &touched, status::FAILED);
            return OpResult::failure(app, e.to_string());
        }
    }

    let mut next = previous.clone();
    next.apply_install(&catalog, &resolved);
    if let Err(e) = nixgen::write_atomic(&nix_dir, &next) {
        mark(service, &touched, status::FAILED);
        return OpResult::failure(app, e.to_string());
    }

    let outcome = service.rebuilder.run(&format!("install {app}")).await;
    if !outcome.success {
        restore(service, &previous);
        for name in touched.iter().filter(|n| !installed.contains(*n)) {
            remove_oidc_client(service, name);
        }
        for name in &touched {
            match (&previous_status, name == app) {
                (Some(before), true) => service.set_status(name, before),
                _ => service.set_status(name, status::FAILED),
            }
        }
        let mut r = OpResult::failure(
            app,
            outcome
                .error
                .clone()
                .unwrap_or_else(|| "rebuild failed".into()),
        );
        r.rebuild_output = Some(output_of(&outcome.tail));
        r.rebuild_id = Some(outcome.id);
        return r;
    }

    if let Err(e) = service.regenerate_routes() {
        tracing::warn!(error = %e, "routes not updated after install");
    }
    crate::history::record(service, &format!("install {app}"), outcome.id);
    for name in &touched {
        health::spawn_wait_healthy(service.clone(), name.clone());
    }
    OpResult {
        app: app.to_string(),
        success: true,
        apps_installed: Some(resolved.apps.iter().map(|a| a.name.clone()).collect()),
        rebuild_output: Some(output_of(&outcome.tail)),
        generation_info: Some(format!(
            "Rebuild completed in {:.1}s",
            outcome.duration.as_secs_f64()
        )),
        rebuild_id: Some(outcome.id),
        ..OpResult::default()
    }
}

async fn uninstall(service: &Arc<Service>, app: &str, clear_data: bool) -> OpResult {
    let catalog = service.catalog();
    let row = match service.db.get_app(app) {
        Ok(r) => r,
        Err(e) => return OpResult::failure(app, e.to_string()),
    };
    if row.is_none() {
        return OpResult::failure(app, format!("app not installed: {app}"));
    }
    let installed = match service.installed() {
        Ok(i) => i,
        Err(e) => return OpResult::failure(app, e.to_string()),
    };
    let mut unconfigured = Vec::new();
    if catalog.contains(app) {
        match plan::plan_remove(&catalog, &installed, app) {
            Ok(p) if !p.can_remove => {
                return OpResult::failure(app, format!("cannot remove: {}", p.blockers.join("; ")))
            }
            Ok(p) => unconfigured = p.will_unconfigure,
            Err(e) => return OpResult::failure(app, e.to_string()),
        }
    }
    service.next_health_generation(app);
    service.set_status(app, status::UNINSTALLING);

    let nix_dir = service.nix_dir();
    let previous = match nixgen::load_state(&nix_dir) {
        Ok(s) => s,
        Err(e) => {
            service.set_status(app, status::ERROR);
            return OpResult::failure(app, e.to_string());
        }
    };
    let mut next = previous.clone();
    let mut rebuild_id = None;
    if next.apply_uninstall(&catalog, app) {
        if let Err(e) = nixgen::write_atomic(&nix_dir, &next) {
            service.set_status(app, status::ERROR);
            return OpResult::failure(app, e.to_string());
        }
        let outcome = service.rebuilder.run(&format!("uninstall {app}")).await;
        rebuild_id = Some(outcome.id);
        if !outcome.success {
            restore(service, &previous);
            service.set_status(app, status::ERROR);
            let mut r = OpResult::failure(
                app,
                outcome.error.unwrap_or_else(|| "rebuild failed".into()),
            );
            r.rebuild_id = rebuild_id;
            return r;
        }
    }
    if let Err(e) = service.db.delete_app(app) {
        return OpResult::failure(app, e.to_string());
    }
    // Before anyone is told the app is gone: its client goes with it.
    remove_oidc_client(service, app);
    service.notify_apps();
    if let Err(e) = service.regenerate_routes() {
        tracing::warn!(error = %e, "routes not updated after uninstall");
    }
    if let Some(id) = rebuild_id {
        crate::history::record(service, &format!("uninstall {app}"), id);
    }
    if clear_data {
        clear_app_data(service, app);
    }
    OpResult {
        app: app.to_string(),
        success: true,
        unconfigured: Some(unconfigured),
        rebuild_id,
        ..OpResult::default()
    }
}

/// Registers the app's OpenID Connect client if its catalog entry is native OIDC.
fn ensure_oidc_client(
    service: &Service,
    catalog: &crate::catalog::Catalog,
    app: &str,
) -> Result<(), crate::oidc::app_clients::AppClientError> {
    let Some(meta) = catalog.get(app) else {
        return Ok(());
    };
    crate::oidc::app_clients::ensure(
        &service.db,
        &service.config.data_dir,
        &service.config.public_url,
        meta,
    )
    .map(|_| ())
}

/// The app is gone: so are its client, the client's tokens, and the secret file.
fn remove_oidc_client(service: &Service, app: &str) {
    if let Err(e) = crate::oidc::app_clients::remove(&service.db, &service.config.data_dir, app) {
        tracing::warn!(error = %e, "OIDC client not removed");
    }
}

fn mark(service: &Service, apps: &[String], status: &str) {
    for a in apps {
        service.set_status(a, status);
    }
}

/// Puts back apps.nix and the state file of the generation the machine is still on.
fn restore(service: &Service, previous: &nixgen::NixState) {
    if let Err(e) = nixgen::write_atomic(&service.nix_dir(), previous) {
        tracing::error!(error = %e, "cannot restore apps.nix after a failed rebuild");
    }
}

/// Deletes `<dataDir>/<app>` (never one of the agent's own entries).
pub fn clear_app_data(service: &Service, app: &str) {
    if RESERVED_DATA_NAMES.contains(&app) || !safe_dir_name(app) {
        tracing::warn!(
            app,
            "not clearing data: the name is reserved for the agent's own files"
        );
        return;
    }
    let dir = service.config.data_dir.join(app);
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => tracing::info!(dir = %dir.display(), "app data cleared"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(dir = %dir.display(), error = %e, "cannot clear app data"),
    }
}

/// A plain directory name: no separators, no dot-segments.
fn safe_dir_name(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}
