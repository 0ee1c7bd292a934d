//! The running service's shared state: configuration, database, catalog, event hub, rebuilder,
//! and the operations every part needs (status changes that notify SSE clients, route
//! regeneration, startup recovery).

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use crate::catalog::Catalog;
use crate::config::Config;
use crate::db::{Db, DbError};
use crate::events::Events;
use crate::rebuild::{RebuildEnv, Rebuilder};
use crate::routes;

/// App statuses (upstream's values).
pub mod status {
    pub const INSTALLING: &str = "installing";
    pub const STARTING: &str = "starting";
    pub const RUNNING: &str = "running";
    pub const ERROR: &str = "error";
    pub const FAILED: &str = "failed";
    pub const UNINSTALLING: &str = "uninstalling";
}

/// Names inside `dataDir` that belong to the agent, never to an app (`clearData` must not
/// delete them even if an app were named so).
pub const RESERVED_DATA_NAMES: &[&str] = &[
    "nix",
    "rebuilds",
    "routes",
    "demo",
    "bloud.db",
    "authentik-blueprints",
    "sso-host-secret",
];

pub struct Service {
    pub config: Config,
    pub db: Arc<Db>,
    pub events: Arc<Events>,
    pub rebuilder: Rebuilder,
    /// The OpenID Connect provider (its signing keys are loaded, or made, at start).
    pub oidc: Arc<crate::oidc::Provider>,
    catalog: RwLock<Arc<Catalog>>,
    /// Bumped whenever an app's health check is (re)started; an older check stops quietly.
    health_generation: Mutex<HashMap<String, u64>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Oidc(#[from] crate::oidc::OidcError),
    #[error("cannot create {}: {source}; check dataDir/routesDir and their permissions", path.display())]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Service {
    /// Opens the database under `dataDir` and loads the catalog.
    pub fn open(config: Config) -> Result<Service, ServiceError> {
        for dir in [config.data_dir.clone(), config.data_dir.join("nix")] {
            std::fs::create_dir_all(&dir).map_err(|source| ServiceError::Dir {
                path: dir.clone(),
                source,
            })?;
        }
        let db = Arc::new(Db::open(&config.data_dir.join("bloud.db"))?);
        let events = Arc::new(Events::new());
        let exe = std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "bloud-agent".to_string());
        let env = RebuildEnv {
            vars: vec![
                ("BLOUD_DATA_DIR".into(), abs(&config.data_dir)),
                ("BLOUD_APPS_DIR".into(), abs(&config.apps_dir)),
                ("BLOUD_NIX_DIR".into(), abs(&config.data_dir.join("nix"))),
                (
                    "BLOUD_APPS_STATE".into(),
                    abs(&config.data_dir.join("nix").join(crate::nixgen::STATE_FILE)),
                ),
                (
                    "BLOUD_APPS_NIX".into(),
                    abs(&config.data_dir.join("nix").join(crate::nixgen::APPS_NIX)),
                ),
                ("BLOUD_AGENT_EXE".into(), exe),
                // The issuer, for demo apps that sign in with the box's provider.
                ("BLOUD_PUBLIC_URL".into(), config.public_url.clone()),
            ],
        };
        let rebuilder = Rebuilder::new(
            config.rebuild.clone(),
            config.data_dir.join("rebuilds"),
            env,
            db.clone(),
            events.clone(),
        );
        let oidc = Arc::new(crate::oidc::Provider::open(&config.public_url, db.clone())?);
        let service = Service {
            oidc,
            catalog: RwLock::new(Arc::new(Catalog::default())),
            config,
            db,
            events,
            rebuilder,
            health_generation: Mutex::new(HashMap::new()),
        };
        service.refresh_catalog();
        service.reconcile_oidc_clients();
        Ok(service)
    }

    /// Installed native-OIDC apps keep their clients across restarts and `publicUrl` changes
    /// (redirect URIs follow it); the secret on disk is reused.
    fn reconcile_oidc_clients(&self) {
        let catalog = self.catalog();
        let Ok(installed) = self.installed() else {
            return;
        };
        for meta in installed.iter().filter_map(|a| catalog.get(a)) {
            if let Err(e) = crate::oidc::app_clients::ensure(
                &self.db,
                &self.config.data_dir,
                &self.config.public_url,
                meta,
            ) {
                tracing::warn!(error = %e, "OIDC client not reconciled");
            }
        }
    }

    pub fn nix_dir(&self) -> PathBuf {
        self.config.data_dir.join("nix")
    }

    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Reloads `appsDir`. Returns the load errors (apps left out), already logged.
    pub fn refresh_catalog(&self) -> Vec<String> {
        let load = Catalog::load(&self.config.apps_dir);
        tracing::info!(
            apps = load.catalog.len(),
            errors = load.errors.len(),
            dir = %self.config.apps_dir.display(),
            "catalog loaded"
        );
        *self.catalog.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(load.catalog);
        load.errors.iter().map(|e| e.to_string()).collect()
    }

    /// Sends the installed list to `/api/apps/events` clients.
    pub fn notify_apps(&self) {
        match self.db.list_apps() {
            Ok(apps) => match serde_json::to_string(&apps) {
                Ok(json) => self.events.publish_apps(json),
                Err(e) => tracing::error!(error = %e, "cannot encode the app list"),
            },
            Err(e) => tracing::error!(error = %e, "cannot read the app list for the event stream"),
        }
    }

    /// Sets a status and notifies; database errors are logged (the caller cannot do better).
    pub fn set_status(&self, app: &str, status: &str) {
        match self.db.set_status(app, status) {
            Ok(true) => {
                tracing::info!(app, status, "app status");
                self.notify_apps();
            }
            Ok(false) => {}
            Err(e) => tracing::error!(app, status, error = %e, "cannot record the app status"),
        }
    }

    pub fn installed(&self) -> Result<BTreeSet<String>, DbError> {
        self.db.installed_names()
    }

    /// Writes `apps-routes.yml` for the installed apps and, when it changed, signals the proxy.
    pub fn regenerate_routes(&self) -> Result<bool, String> {
        let installed = self.installed().map_err(|e| e.to_string())?;
        let catalog = self.catalog();
        let authentik = installed.contains("authentik");
        let agent = routes::agent_address(self.config.listen);
        let settings = routes::RouteSettings {
            public_url: &self.config.public_url,
            authentik_installed: authentik,
            agent: &agent,
            public_apps: &self.config.public_apps,
        };
        let content =
            routes::generate_with(&catalog, &installed, &settings).map_err(|e| e.to_string())?;
        std::fs::create_dir_all(&self.config.routes_dir).map_err(|e| {
            format!(
                "cannot create routesDir {}: {e}",
                self.config.routes_dir.display()
            )
        })?;
        let changed = routes::write_atomic(&self.config.routes_dir, &content).map_err(|e| {
            format!(
                "cannot write {}: {e}",
                self.config.routes_dir.join(routes::ROUTES_FILE).display()
            )
        })?;
        if changed {
            tracing::info!(dir = %self.config.routes_dir.display(), apps = installed.len(), "proxy routes written");
            if self.config.proxy_pid_file.as_os_str().is_empty() {
                // proxyPidFile "" (the NixOS module): no signal; the proxy's file watch reloads.
            } else if let Err(e) = routes::signal_proxy(&self.config.proxy_pid_file) {
                // The proxy's directory watch still picks the file up.
                tracing::warn!(error = %e, "cannot signal the proxy");
            }
        }
        // Authentik's objects follow the same installed set; a failure there leaves the routes.
        match crate::authentik::regenerate(self) {
            Ok(true) => tracing::info!("authentik blueprints written"),
            Ok(false) => {}
            Err(e) => tracing::error!(error = %e, "cannot write the authentik blueprints"),
        }
        Ok(changed)
    }

    /// Starts a new health-check generation for `app`; returns its number.
    pub fn next_health_generation(&self, app: &str) -> u64 {
        let mut map = self
            .health_generation
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let g = map.entry(app.to_string()).or_insert(0);
        *g += 1;
        *g
    }

    pub fn is_current_health_generation(&self, app: &str, generation: u64) -> bool {
        self.health_generation
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(app)
            .is_some_and(|g| *g == generation)
    }
}

fn abs(p: &std::path::Path) -> String {
    std::path::absolute(p)
        .unwrap_or_else(|_| p.to_path_buf())
        .display()
        .to_string()
}
