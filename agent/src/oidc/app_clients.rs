//! The OpenID Connect client of each installed app whose catalog entry says
//! `sso.strategy: native-oidc` (docs/sso.md). Installing the app registers the client
//! (id = the app's name) and writes its secret to `<dataDir>/secrets/values/oidc-<app>-client-secret`
//! (0600), where the NixOS module's `bloud-secrets` unit and the demo rebuild pick it up;
//! uninstalling removes both. The file is the only place the secret lives in clear (the
//! database keeps its SHA-256), so re-installing or restarting reuses it and the app keeps
//! working with the secret it already has.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::clients::{self, ClientError, NewClient};
use crate::catalog::{AppMeta, SsoStrategy};
use crate::db::{random_hex, token_digest, Db, DbError};

/// Shortest secret accepted from the file (what `clients::check` demands).
const MIN_SECRET_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum AppClientError {
    #[error("OIDC client of {app}: {source}")]
    Client {
        app: String,
        source: Box<ClientError>,
    },
    #[error("OIDC client of {app}: {source}")]
    Db { app: String, source: Box<DbError> },
    #[error("OIDC client secret of {app}: {path}: {source}")]
    File {
        app: String,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where the secrets of the apps live (`bloud.secrets.dir`'s default, `<dataDir>/secrets`).
pub fn secrets_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("secrets")
}

/// The secret's file name inside `<secrets>/values`: `@oidc-<app>-client-secret@` in an app
/// module's `envFiles`.
pub fn secret_name(app: &str) -> String {
    format!("oidc-{app}-client-secret")
}

pub fn secret_path(data_dir: &Path, app: &str) -> PathBuf {
    secrets_dir(data_dir).join("values").join(secret_name(app))
}

/// Whether the app signs users in with the box's provider.
pub fn wants_client(meta: &AppMeta) -> bool {
    meta.sso_strategy() == SsoStrategy::NativeOidc && !meta.sso.callback_path.is_empty()
}

/// Where the browser comes back: under the app's `/embed/<app>` route, and, for an app whose
/// callback is one of its root-level routes (`routing.absolutePaths`, Actual Budget's
/// `/openid`), at the root too.
pub fn redirect_uris(public_url: &str, meta: &AppMeta) -> Vec<String> {
    let base = public_url.trim_end_matches('/');
    let cb = &meta.sso.callback_path;
    let mut uris = vec![format!("{base}/embed/{}{cb}", meta.name)];
    let at_root = meta.absolute_paths().iter().any(|p| {
        p.rule
            .strip_prefix("PathPrefix(`")
            .and_then(|r| r.strip_suffix("`)"))
            .is_some_and(|prefix| {
                cb == prefix || cb.starts_with(&format!("{}/", prefix.trim_end_matches('/')))
            })
    });
    if at_root {
        uris.push(format!("{base}{cb}"));
    }
    uris
}

/// The secret the app was given, if a usable one is on disk.
pub fn read_secret(data_dir: &Path, app: &str) -> Option<String> {
    let text = std::fs::read_to_string(secret_path(data_dir, app)).ok()?;
    let secret = text.trim();
    (secret.len() >= MIN_SECRET_LEN && secret.is_ascii()).then(|| secret.to_string())
}

fn write_secret(data_dir: &Path, app: &str, secret: &str) -> Result<(), AppClientError> {
    let path = secret_path(data_dir, app);
    let file_err = |source| AppClientError::File {
        app: app.to_string(),
        path: path.clone(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(file_err)?;
    }
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(file_err)?;
    f.write_all(secret.as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(file_err)?;
    std::fs::rename(&tmp, &path).map_err(file_err)
}

/// What [`ensure`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ensured {
    /// The app has no native OIDC: nothing to do.
    NotOidc,
    /// Client and secret were already in place.
    Unchanged,
    /// The client was (re-)registered; `new_secret` when the secret file was written.
    Registered { new_secret: bool },
}

/// Makes sure `meta`'s app has its client and its secret file, reusing the secret on disk.
pub fn ensure(
    db: &Db,
    data_dir: &Path,
    public_url: &str,
    meta: &AppMeta,
) -> Result<Ensured, AppClientError> {
    if !wants_client(meta) {
        return Ok(Ensured::NotOidc);
    }
    let app = meta.name.as_str();
    let uris = redirect_uris(public_url, meta);
    let post_logout = vec![format!("{}/embed/{app}/", public_url.trim_end_matches('/'))];
    let on_disk = read_secret(data_dir, app);
    let stored = db.oidc_client(app).map_err(|source| AppClientError::Db {
        app: app.to_string(),
        source: Box::new(source),
    })?;
    if let (Some(secret), Some(client)) = (&on_disk, &stored) {
        if client.secret_digest == token_digest(secret)
            && client.redirect_uris == uris
            && client.post_logout_redirect_uris == post_logout
            && client.app.as_deref() == Some(app)
        {
            return Ok(Ensured::Unchanged);
        }
    }
    let new_secret = on_disk.is_none();
    let secret = match on_disk {
        Some(s) => s,
        None => {
            let s = random_hex(32);
            write_secret(data_dir, app, &s)?;
            s
        }
    };
    let name = if meta.display_name.is_empty() {
        app.to_string()
    } else {
        meta.display_name.clone()
    };
    clients::register(
        db,
        NewClient {
            client_id: Some(app.to_string()),
            name,
            app: Some(app.to_string()),
            redirect_uris: uris,
            post_logout_redirect_uris: post_logout,
            client_secret: Some(secret),
        },
    )
    .map_err(|source| AppClientError::Client {
        app: app.to_string(),
        source: Box::new(source),
    })?;
    Ok(Ensured::Registered { new_secret })
}

/// Removes the app's client (with its codes and tokens) and its secret file.
pub fn remove(db: &Db, data_dir: &Path, app: &str) -> Result<(), AppClientError> {
    clients::remove(db, app).map_err(|source| AppClientError::Db {
        app: app.to_string(),
        source: Box::new(source),
    })?;
    let path = secret_path(data_dir, app);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(AppClientError::File {
            app: app.to_string(),
            path,
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn meta(yaml: &str) -> AppMeta {
        crate::yaml::parse(yaml)
            .expect("metadata")
            .expect("not empty")
    }

    fn miniflux() -> AppMeta {
        meta("name: miniflux\nport: 8085\nsso:\n  strategy: native-oidc\n  callbackPath: /oauth2/oidc/callback\nrouting:\n  stripPrefix: false\n")
    }

    #[test]
    fn redirect_uris_follow_the_route() {
        assert_eq!(
            redirect_uris("http://bloud.local/", &miniflux()),
            vec!["http://bloud.local/embed/miniflux/oauth2/oidc/callback".to_string()]
        );
        let actual = meta(
            "name: actual-budget\nsso:\n  strategy: native-oidc\n  callbackPath: /openid/callback\nrouting:\n  absolutePaths:\n    - rule: \"PathPrefix(`/openid`)\"\n",
        );
        assert_eq!(
            redirect_uris("https://box.example", &actual),
            vec![
                "https://box.example/embed/actual-budget/openid/callback".to_string(),
                "https://box.example/openid/callback".to_string(),
            ]
        );
        // `/openidx` is not under `/openid`.
        let other = meta(
            "name: x\nsso:\n  strategy: native-oidc\n  callbackPath: /openidx/cb\nrouting:\n  absolutePaths:\n    - rule: \"PathPrefix(`/openid`)\"\n",
        );
        assert_eq!(redirect_uris("http://b", &other).len(), 1);
    }

    #[test]
    fn install_reinstall_and_uninstall() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(&dir.path().join("bloud.db")).expect("db");
        let m = miniflux();
        let first = ensure(&db, dir.path(), "http://b", &m).expect("ensure");
        assert_eq!(first, Ensured::Registered { new_secret: true });
        let path = secret_path(dir.path(), "miniflux");
        let mode = std::fs::metadata(&path).expect("file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let secret = read_secret(dir.path(), "miniflux").expect("secret");
        let client = db.oidc_client("miniflux").expect("db").expect("client");
        assert_eq!(client.secret_digest, token_digest(&secret));
        assert_eq!(client.app.as_deref(), Some("miniflux"));

        // Again (re-install, agent restart): same secret, no duplicate.
        assert_eq!(
            ensure(&db, dir.path(), "http://b", &m).expect("ensure"),
            Ensured::Unchanged
        );
        // A new public URL re-registers with the secret the app already has.
        assert_eq!(
            ensure(&db, dir.path(), "http://new", &m).expect("ensure"),
            Ensured::Registered { new_secret: false }
        );
        assert_eq!(
            read_secret(dir.path(), "miniflux").as_deref(),
            Some(&*secret)
        );
        assert_eq!(db.oidc_clients().expect("list").len(), 1);

        remove(&db, dir.path(), "miniflux").expect("remove");
        assert!(db.oidc_client("miniflux").expect("db").is_none());
        assert!(!path.exists());
        // Removing twice is fine (an uninstall retried).
        remove(&db, dir.path(), "miniflux").expect("remove again");
    }

    #[test]
    fn apps_without_native_oidc_get_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(&dir.path().join("bloud.db")).expect("db");
        let m = meta("name: radarr\nsso:\n  strategy: forward-auth\n");
        assert_eq!(
            ensure(&db, dir.path(), "http://b", &m).expect("ensure"),
            Ensured::NotOidc
        );
        assert!(db.oidc_clients().expect("list").is_empty());
    }
}
