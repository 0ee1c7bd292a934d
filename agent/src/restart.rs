//! Restarting one app's service without a rebuild (the app menu's "Restart"), run by the queue
//! like installs so it never overlaps a rebuild of the same app.
//!
//! - A demo app (demo mode: `<dataDir>/demo`) is stopped and started again on its port.
//! - Otherwise the app's unit, `podman-<app>.service`, is restarted in the service user's
//!   systemd manager (`systemctl --user restart`): the agent runs as that user, which owns the
//!   app units (the same manager `/api/apps/<n>/logs` reads the journal of), so no root helper
//!   is involved.
//!
//! Then the app is health-checked again (`starting` → `running`/`error`), as after an install.

use std::sync::Arc;
use std::time::Duration;

use tokio::process::Command;

use crate::demo;
use crate::health;
use crate::queue::OpResult;
use crate::service::{status, Service};

/// systemctl by absolute path on NixOS (services get a bare PATH).
const SYSTEMCTL: &str = "/run/current-system/sw/bin/systemctl";
/// A unit that takes longer than this to restart is reported as failed (it keeps trying).
const UNIT_TIMEOUT: Duration = Duration::from_secs(120);

pub async fn restart(service: &Arc<Service>, app: &str) -> OpResult {
    match service.db.get_app(app) {
        Ok(Some(_)) => {}
        Ok(None) => return OpResult::failure(app, format!("app not installed: {app}")),
        Err(e) => return OpResult::failure(app, e.to_string()),
    }
    // Until the health check says otherwise; `starting` is also re-checked after an agent restart.
    service.next_health_generation(app);
    service.set_status(app, status::STARTING);

    let run_dir = service.config.data_dir.join("demo");
    let name = app.to_string();
    let demo = tokio::task::spawn_blocking(move || demo::restart_demo_app(&run_dir, &name)).await;
    let outcome = match demo {
        Ok(Ok(true)) => Ok(()),
        Ok(Ok(false)) => restart_unit(app).await,
        Ok(Err(e)) => Err(format!("{e:#}")),
        Err(e) => Err(format!("internal error: {e}")),
    };
    match outcome {
        Ok(()) => {
            tracing::info!(app, "app restarted");
            health::spawn_wait_healthy(service.clone(), app.to_string());
            OpResult {
                app: app.to_string(),
                success: true,
                ..OpResult::default()
            }
        }
        Err(e) => {
            tracing::warn!(app, error = %e, "restart failed");
            service.set_status(app, status::ERROR);
            OpResult::failure(app, e)
        }
    }
}

async fn restart_unit(app: &str) -> Result<(), String> {
    let program = if std::path::Path::new(SYSTEMCTL).exists() {
        SYSTEMCTL
    } else {
        "systemctl"
    };
    let unit = format!("podman-{app}.service");
    let mut cmd = Command::new(program);
    cmd.args(["--user", "restart", &unit]).kill_on_drop(true);
    let out = match tokio::time::timeout(UNIT_TIMEOUT, cmd.output()).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => return Err(format!("cannot run {program}: {e}")),
        Err(_) => {
            return Err(format!(
                "{unit} did not restart within {} s",
                UNIT_TIMEOUT.as_secs()
            ))
        }
    };
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    Err(format!(
        "systemctl --user restart {unit}: {} {}",
        out.status,
        stderr.trim()
    ))
}
