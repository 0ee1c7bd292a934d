//! The app catalog: `<appsDir>/<name>/metadata.yaml` (+ `icon.png`, `logo.png`).
//!
//! Public API (used by the service):
//! - [`Catalog::load`] reads every app directory. A broken app is reported in
//!   [`CatalogLoad::errors`] (file, line where known, field path, what to do) and left out; the
//!   others still load. Unknown keys are accepted, as upstream does, but reported in
//!   [`CatalogLoad::warnings`] with their path and line.
//! - [`Catalog::apps`], [`Catalog::get`], [`Catalog::store_apps`] (what `GET /api/apps` lists:
//!   everything but category `infrastructure`), [`Catalog::icon_path`].
//! - [`AppMeta`] serialises to upstream's catalog JSON shape.
//!
//! Differences from upstream on purpose: one invalid app no longer aborts the whole refresh; app
//! names are restricted to `[a-z][a-z0-9-]*` and must equal their directory name (they end up in
//! URLs, proxy rules, Nix attribute names and file paths); an unknown `sso.strategy` is an error
//! instead of silently meaning "no SSO".

mod schema;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

pub use schema::*;

/// File name of an app's metadata inside its directory.
pub const METADATA_FILE: &str = "metadata.yaml";
/// File name of an app's icon inside its directory (the generated initial, the fallback).
pub const ICON_FILE: &str = "icon.png";
/// The app project's own icon, when its licence lets us ship it (`ICON-SOURCE.md` next to it
/// says where it comes from); served instead of [`ICON_FILE`].
pub const LOGO_FILE: &str = "logo.png";
/// Category hidden from the app store (databases, caches).
pub const INFRASTRUCTURE_CATEGORY: &str = "infrastructure";

/// A problem found while loading one metadata file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct CatalogIssue {
    /// The metadata file (or the catalog directory when it cannot be read).
    pub file: PathBuf,
    /// 1-based line, when the parser or the key lookup found one.
    pub line: Option<usize>,
    /// Key path inside the document, e.g. `routing.absolutePaths[0].rule`.
    pub field: Option<String>,
    pub message: String,
}

/// An app that could not be loaded.
pub type CatalogError = CatalogIssue;
/// Something suspicious in an app that still loaded (e.g. an unknown key).
pub type CatalogWarning = CatalogIssue;

impl fmt::Display for CatalogIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        match &self.field {
            Some(field) => write!(f, ": {field}: {}", self.message),
            None => write!(f, ": {}", self.message),
        }
    }
}

/// Result of [`Catalog::load`]: the apps that loaded, and what went wrong with the others.
#[derive(Debug, Clone)]
pub struct CatalogLoad {
    pub catalog: Catalog,
    pub errors: Vec<CatalogError>,
    pub warnings: Vec<CatalogWarning>,
}

/// The loaded catalog, keyed and iterated by app name.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    dir: PathBuf,
    apps: BTreeMap<String, AppMeta>,
}

impl Catalog {
    /// Loads every `<dir>/<name>/metadata.yaml`, in name order. Directories without a metadata
    /// file and hidden directories are skipped.
    pub fn load(dir: &Path) -> CatalogLoad {
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        let mut apps = BTreeMap::new();

        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(err) => {
                errors.push(CatalogIssue {
                    file: dir.to_path_buf(),
                    line: None,
                    field: None,
                    message: format!(
                        "cannot read the apps directory: {err}; check the `appsDir` setting"
                    ),
                });
                let catalog = Catalog {
                    dir: dir.to_path_buf(),
                    apps,
                };
                return CatalogLoad {
                    catalog,
                    errors,
                    warnings,
                };
            }
        };
        let mut app_dirs: Vec<(String, PathBuf)> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .filter_map(|e| Some((e.file_name().into_string().ok()?, e.path())))
            .filter(|(name, path)| !name.starts_with('.') && path.join(METADATA_FILE).is_file())
            .collect();
        app_dirs.sort();

        for (dir_name, path) in app_dirs {
            let file = path.join(METADATA_FILE);
            match validate::load_app(&file, &dir_name) {
                Ok((app, app_warnings)) => {
                    warnings.extend(app_warnings);
                    apps.insert(app.name.clone(), app);
                }
                Err(app_errors) => errors.extend(app_errors),
            }
        }
        let catalog = Catalog {
            dir: dir.to_path_buf(),
            apps,
        };
        warnings.extend(validate::cross_app_warnings(&catalog));
        for e in &errors {
            tracing::error!(error = %e, "catalog app not loaded");
        }
        for w in &warnings {
            tracing::warn!(warning = %w, "catalog");
        }
        CatalogLoad {
            catalog,
            errors,
            warnings,
        }
    }

    /// A catalog built from already-parsed apps (tests, demo data). `dir` is where icons are
    /// looked up.
    pub fn from_apps(dir: impl Into<PathBuf>, apps: impl IntoIterator<Item = AppMeta>) -> Self {
        Catalog {
            dir: dir.into(),
            apps: apps.into_iter().map(|a| (a.name.clone(), a)).collect(),
        }
    }

    /// The apps directory this catalog was loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// All apps, sorted by name.
    pub fn apps(&self) -> impl Iterator<Item = &AppMeta> {
        self.apps.values()
    }

    /// Apps shown in the store (`GET /api/apps`): all but category `infrastructure`.
    pub fn store_apps(&self) -> impl Iterator<Item = &AppMeta> {
        self.apps
            .values()
            .filter(|a| a.category != INFRASTRUCTURE_CATEGORY)
    }

    pub fn get(&self, name: &str) -> Option<&AppMeta> {
        self.apps.get(name)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.apps.contains_key(name)
    }

    pub fn len(&self) -> usize {
        self.apps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.apps.is_empty()
    }

    /// `<dir>/<name>/logo.png`, else `<dir>/<name>/icon.png`, when the app is in the catalog
    /// and the file exists.
    pub fn icon_path(&self, name: &str) -> Option<PathBuf> {
        // Only catalog names (validated at load) reach the file system: no path tricks.
        let app = self.apps.get(name)?;
        let dir = self.dir.join(&app.name);
        [LOGO_FILE, ICON_FILE]
            .into_iter()
            .map(|f| dir.join(f))
            .find(|p| p.is_file())
    }
}
