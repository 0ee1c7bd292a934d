//! Embedded SQLite storage: users, sessions, installed apps, rebuild records and the operation
//! queue. One connection behind a mutex: the agent's write rate is tiny, and a single connection
//! makes "create the first user only" a plain conditional insert, race-free by construction.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rand::RngCore;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

#[derive(Debug, thiserror::Error)]
#[error("database {}: {what}: {source}", path.display())]
pub struct DbError {
    path: PathBuf,
    what: &'static str,
    #[source]
    source: rusqlite::Error,
}

pub type DbResult<T> = Result<T, DbError>;

mod generations;
mod oidc_clients;
mod oidc_grants;
mod oidc_keys;
mod users;
pub use generations::{GenerationApp, GenerationRecord};
pub use oidc_clients::OidcClient;
pub use oidc_grants::{CodeGrant, NewToken, RefreshGrant, Taken, ACCESS, REFRESH};
pub use oidc_keys::StoredKey;
pub use users::{AdminChange, Role, UserInfo};

/// A signed-in (or first) user. The role is read with the session on every request, so a
/// change of role takes effect on the user's next request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: String,
    pub username: String,
    pub role: Role,
}

/// `GET /api/apps/installed` item: upstream's snake_case `InstalledApp`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstalledApp {
    pub id: i64,
    pub name: String,
    pub display_name: String,
    pub version: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    pub is_system: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub integration_config: Option<BTreeMap<String, String>>,
    pub installed_at: String,
    pub updated_at: String,
}

/// What gets recorded when an install starts.
#[derive(Debug, Clone, Default)]
pub struct AppRecord {
    pub name: String,
    pub display_name: String,
    pub version: String,
    pub port: Option<u16>,
    pub is_system: bool,
    pub integration_config: BTreeMap<String, String>,
}

/// One rebuild run, as listed by `GET /api/rebuilds`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RebuildRecord {
    pub id: i64,
    /// What the rebuild was for, e.g. `install miniflux`.
    pub summary: String,
    /// `running`, `success`, `failed` or `interrupted` (the agent stopped during it).
    pub status: String,
    pub started_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub lines: i64,
    #[serde(skip)]
    pub log_path: PathBuf,
}

/// A queued operation as stored (so it survives a restart).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredOp {
    pub id: i64,
    pub app: String,
    /// `install` or `uninstall`.
    pub kind: String,
    pub choices: BTreeMap<String, String>,
    pub clear_data: bool,
    /// `pending` or `running`.
    pub state: String,
}

pub fn now_rfc3339() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
}

/// What the database keeps of a session or step-up token: its SHA-256, hex. The index lookup
/// then compares digests, so its timing says nothing about the token's bytes, and a copy of
/// the database holds no usable session.
pub(crate) fn token_digest(token: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub(crate) fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

fn new_uuid() -> String {
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    layout TEXT NOT NULL DEFAULT '[]',
    created_at TEXT NOT NULL,
    role TEXT NOT NULL DEFAULT 'member'
);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS apps (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    version TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'stopped',
    port INTEGER,
    is_system INTEGER NOT NULL DEFAULT 0,
    integration_config TEXT,
    installed_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS apps_status ON apps(status);
CREATE TABLE IF NOT EXISTS rebuilds (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    summary TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    exit_code INTEGER,
    error TEXT,
    lines INTEGER NOT NULL DEFAULT 0,
    log_path TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    app TEXT NOT NULL,
    kind TEXT NOT NULL,
    choices TEXT NOT NULL DEFAULT '{}',
    clear_data INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'pending',
    enqueued_at TEXT NOT NULL
);
";

pub struct Db {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl Db {
    /// Opens (creating when missing) the database file and applies the schema.
    pub fn open(path: &Path) -> DbResult<Db> {
        let err = |what| {
            let path = path.to_path_buf();
            move |source| DbError { path, what, source }
        };
        let conn = Connection::open(path).map_err(err("cannot open"))?;
        // Password hashes and session tokens: owner only (SQLite gives -wal/-shm the same mode).
        {
            use std::os::unix::fs::PermissionsExt;
            if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
                tracing::warn!(path = %path.display(), error = %e, "cannot restrict database permissions");
            }
        }
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(err("cannot set busy timeout"))?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON; PRAGMA synchronous=NORMAL;",
        )
        .map_err(err("cannot set pragmas"))?;
        conn.execute_batch(SCHEMA)
            .map_err(err("cannot create the schema"))?;
        users::migrate(&conn).map_err(err("cannot add roles and app access"))?;
        oidc_clients::migrate(&conn)
            .and_then(|()| oidc_keys::migrate(&conn))
            .and_then(|()| oidc_grants::migrate(&conn))
            .map_err(err("cannot add the OpenID Connect tables"))?;
        generations::migrate(&conn).map_err(err("cannot add the generations table"))?;
        Ok(Db {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (statements are atomic), so a
        // poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn e(&self, what: &'static str) -> impl FnOnce(rusqlite::Error) -> DbError + '_ {
        move |source| DbError {
            path: self.path.clone(),
            what,
            source,
        }
    }

    // ---- users and sessions -------------------------------------------------------------

    pub fn has_users(&self) -> DbResult<bool> {
        self.conn()
            .query_row("SELECT EXISTS(SELECT 1 FROM users)", [], |r| r.get(0))
            .map_err(self.e("cannot count users"))
    }

    /// Creates the first user; `None` when a user already exists. A single conditional
    /// statement, so concurrent setups create exactly one user.
    pub fn create_first_user(&self, username: &str, password_hash: &str) -> DbResult<Option<User>> {
        let id = new_uuid();
        let n = self
            .conn()
            .execute(
                "INSERT INTO users (id, username, password_hash, created_at, role)
                 SELECT ?1, ?2, ?3, ?4, 'admin' WHERE NOT EXISTS (SELECT 1 FROM users)",
                params![id, username, password_hash, now_rfc3339()],
            )
            .map_err(self.e("cannot create the first user"))?;
        Ok((n == 1).then(|| User {
            id,
            username: username.to_string(),
            role: Role::Admin,
        }))
    }

    /// The user and their password hash.
    pub fn user_by_name(&self, username: &str) -> DbResult<Option<(User, String)>> {
        self.conn()
            .query_row(
                "SELECT id, username, role, password_hash FROM users WHERE username = ?1",
                [username],
                |r| Ok((users::user_from_row(r)?, r.get(3)?)),
            )
            .optional()
            .map_err(self.e("cannot look up the user"))
    }

    /// The user's stored home layout (JSON text, `[]` by default).
    pub fn user_layout(&self, user_id: &str) -> DbResult<Option<String>> {
        self.conn()
            .query_row("SELECT layout FROM users WHERE id = ?1", [user_id], |r| {
                r.get(0)
            })
            .optional()
            .map_err(self.e("cannot read the layout"))
    }

    pub fn set_user_layout(&self, user_id: &str, layout_json: &str) -> DbResult<bool> {
        let n = self
            .conn()
            .execute(
                "UPDATE users SET layout = ?2 WHERE id = ?1",
                params![user_id, layout_json],
            )
            .map_err(self.e("cannot save the layout"))?;
        Ok(n > 0)
    }

    /// Creates a session valid for `ttl`; returns its token (32 random bytes, hex). Only the
    /// token's digest is stored ([`token_digest`]).
    pub fn create_session(&self, user_id: &str, ttl: Duration) -> DbResult<String> {
        let token = random_hex(32);
        let expires = OffsetDateTime::now_utc().unix_timestamp() + ttl.as_secs() as i64;
        let conn = self.conn();
        // Expired sessions are swept here rather than by a timer.
        conn.execute(
            "DELETE FROM sessions WHERE expires_at < ?1",
            [OffsetDateTime::now_utc().unix_timestamp()],
        )
        .map_err(self.e("cannot sweep sessions"))?;
        conn.execute(
            "INSERT INTO sessions (id, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
            params![token_digest(&token), user_id, now_rfc3339(), expires],
        )
        .map_err(self.e("cannot create a session"))?;
        Ok(token)
    }

    /// The user of a live session; expired sessions count as absent.
    pub fn session_user(&self, token: &str) -> DbResult<Option<User>> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        self.conn()
            .query_row(
                "SELECT u.id, u.username, u.role FROM sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.id = ?1 AND s.expires_at >= ?2",
                params![token_digest(token), now],
                users::user_from_row,
            )
            .optional()
            .map_err(self.e("cannot read the session"))
    }

    pub fn delete_session(&self, token: &str) -> DbResult<()> {
        self.conn()
            .execute("DELETE FROM sessions WHERE id = ?1", [token_digest(token)])
            .map_err(self.e("cannot delete the session"))?;
        Ok(())
    }

    // ---- apps ---------------------------------------------------------------------------

    fn app_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<InstalledApp> {
        let port: Option<i64> = r.get(5)?;
        let config: Option<String> = r.get(7)?;
        Ok(InstalledApp {
            id: r.get(0)?,
            name: r.get(1)?,
            display_name: r.get(2)?,
            version: r.get(3)?,
            status: r.get(4)?,
            port: port.and_then(|p| u16::try_from(p).ok()).filter(|p| *p > 0),
            is_system: r.get::<_, i64>(6)? != 0,
            integration_config: config
                .and_then(|c| serde_json::from_str(&c).ok())
                .filter(|m: &BTreeMap<String, String>| !m.is_empty()),
            installed_at: r.get(8)?,
            updated_at: r.get(9)?,
        })
    }

    const APP_COLUMNS: &'static str = "id, name, display_name, version, status, port, is_system, integration_config, installed_at, updated_at";

    /// Installed apps ordered by name.
    pub fn list_apps(&self) -> DbResult<Vec<InstalledApp>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {} FROM apps ORDER BY name",
                Self::APP_COLUMNS
            ))
            .map_err(self.e("cannot list apps"))?;
        let rows = stmt
            .query_map([], Self::app_from_row)
            .map_err(self.e("cannot list apps"))?;
        rows.collect::<Result<_, _>>()
            .map_err(self.e("cannot list apps"))
    }

    pub fn get_app(&self, name: &str) -> DbResult<Option<InstalledApp>> {
        self.conn()
            .query_row(
                &format!("SELECT {} FROM apps WHERE name = ?1", Self::APP_COLUMNS),
                [name],
                Self::app_from_row,
            )
            .optional()
            .map_err(self.e("cannot read the app"))
    }

    /// Apps that count as installed for planning and routes: every row except failed installs.
    pub fn installed_names(&self) -> DbResult<BTreeSet<String>> {
        Ok(self
            .list_apps()?
            .into_iter()
            .filter(|a| a.status != "failed")
            .map(|a| a.name)
            .collect())
    }

    /// Inserts or updates an app row with the given status.
    pub fn upsert_app(&self, app: &AppRecord, status: &str) -> DbResult<()> {
        let now = now_rfc3339();
        let config = serde_json::to_string(&app.integration_config).unwrap_or_else(|_| "{}".into());
        self.conn()
            .execute(
                "INSERT INTO apps (name, display_name, version, status, port, is_system, integration_config, installed_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)
                 ON CONFLICT(name) DO UPDATE SET display_name = excluded.display_name,
                   version = excluded.version, status = excluded.status, port = excluded.port,
                   is_system = excluded.is_system, integration_config = excluded.integration_config,
                   updated_at = excluded.updated_at",
                params![
                    app.name,
                    app.display_name,
                    app.version,
                    status,
                    app.port.map(i64::from),
                    app.is_system as i64,
                    config,
                    now
                ],
            )
            .map_err(self.e("cannot record the app"))?;
        Ok(())
    }

    /// Sets an app's status; returns false when the app has no row.
    pub fn set_status(&self, name: &str, status: &str) -> DbResult<bool> {
        let n = self
            .conn()
            .execute(
                "UPDATE apps SET status = ?2, updated_at = ?3 WHERE name = ?1 AND status != ?2",
                params![name, status, now_rfc3339()],
            )
            .map_err(self.e("cannot update the app status"))?;
        Ok(n > 0)
    }

    /// Sets a status only if the app still has `from` (a health result must not overwrite an
    /// uninstall that started meanwhile).
    pub fn set_status_if(&self, name: &str, from: &str, to: &str) -> DbResult<bool> {
        let n = self
            .conn()
            .execute(
                "UPDATE apps SET status = ?3, updated_at = ?4 WHERE name = ?1 AND status = ?2",
                params![name, from, to, now_rfc3339()],
            )
            .map_err(self.e("cannot update the app status"))?;
        Ok(n > 0 && from != to)
    }

    /// Returns false when the app has no row.
    pub fn rename_app(&self, name: &str, display_name: &str) -> DbResult<bool> {
        let n = self
            .conn()
            .execute(
                "UPDATE apps SET display_name = ?2, updated_at = ?3 WHERE name = ?1",
                params![name, display_name, now_rfc3339()],
            )
            .map_err(self.e("cannot rename the app"))?;
        Ok(n > 0)
    }

    pub fn delete_app(&self, name: &str) -> DbResult<()> {
        self.conn()
            .execute("DELETE FROM apps WHERE name = ?1", [name])
            .map_err(self.e("cannot delete the app"))?;
        Ok(())
    }

    // ---- rebuilds -----------------------------------------------------------------------

    /// Records a starting rebuild whose log goes to `<log_dir>/<id>.log`.
    pub fn start_rebuild(&self, summary: &str, log_dir: &Path) -> DbResult<RebuildRecord> {
        let conn = self.conn();
        let started_at = now_rfc3339();
        conn.execute(
            "INSERT INTO rebuilds (summary, status, started_at, log_path) VALUES (?1, 'running', ?2, '')",
            params![summary, started_at],
        )
        .map_err(self.e("cannot record the rebuild"))?;
        let id = conn.last_insert_rowid();
        let log_path = log_dir.join(format!("{id}.log"));
        conn.execute(
            "UPDATE rebuilds SET log_path = ?2 WHERE id = ?1",
            params![id, log_path.display().to_string()],
        )
        .map_err(self.e("cannot record the rebuild"))?;
        Ok(RebuildRecord {
            id,
            summary: summary.to_string(),
            status: "running".into(),
            started_at,
            finished_at: None,
            exit_code: None,
            error: None,
            lines: 0,
            log_path,
        })
    }

    pub fn finish_rebuild(
        &self,
        id: i64,
        status: &str,
        exit_code: Option<i32>,
        error: Option<&str>,
        lines: i64,
    ) -> DbResult<()> {
        self.conn()
            .execute(
                "UPDATE rebuilds SET status = ?2, finished_at = ?3, exit_code = ?4, error = ?5, lines = ?6 WHERE id = ?1",
                params![id, status, now_rfc3339(), exit_code, error, lines],
            )
            .map_err(self.e("cannot record the rebuild result"))?;
        Ok(())
    }

    fn rebuild_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RebuildRecord> {
        Ok(RebuildRecord {
            id: r.get(0)?,
            summary: r.get(1)?,
            status: r.get(2)?,
            started_at: r.get(3)?,
            finished_at: r.get(4)?,
            exit_code: r.get(5)?,
            error: r.get(6)?,
            lines: r.get(7)?,
            log_path: PathBuf::from(r.get::<_, String>(8)?),
        })
    }

    /// Most recent first.
    pub fn list_rebuilds(&self, limit: usize) -> DbResult<Vec<RebuildRecord>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT id, summary, status, started_at, finished_at, exit_code, error, lines, log_path
                 FROM rebuilds ORDER BY id DESC LIMIT ?1",
            )
            .map_err(self.e("cannot list rebuilds"))?;
        let rows = stmt
            .query_map([limit as i64], Self::rebuild_from_row)
            .map_err(self.e("cannot list rebuilds"))?;
        rows.collect::<Result<_, _>>()
            .map_err(self.e("cannot list rebuilds"))
    }

    pub fn get_rebuild(&self, id: i64) -> DbResult<Option<RebuildRecord>> {
        self.conn()
            .query_row(
                "SELECT id, summary, status, started_at, finished_at, exit_code, error, lines, log_path
                 FROM rebuilds WHERE id = ?1",
                [id],
                Self::rebuild_from_row,
            )
            .optional()
            .map_err(self.e("cannot read the rebuild"))
    }

    /// Forgets all but the `keep` most recent rebuilds; returns the log files to delete.
    pub fn prune_rebuilds(&self, keep: usize) -> DbResult<Vec<PathBuf>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT log_path FROM rebuilds ORDER BY id DESC LIMIT -1 OFFSET ?1")
            .map_err(self.e("cannot prune rebuilds"))?;
        let paths = stmt
            .query_map([keep as i64], |r| r.get::<_, String>(0))
            .map_err(self.e("cannot prune rebuilds"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.e("cannot prune rebuilds"))?;
        conn.execute(
            "DELETE FROM rebuilds WHERE id NOT IN (SELECT id FROM rebuilds ORDER BY id DESC LIMIT ?1)",
            [keep as i64],
        )
        .map_err(self.e("cannot prune rebuilds"))?;
        Ok(paths.into_iter().map(PathBuf::from).collect())
    }

    /// Rebuilds still `running` at startup were cut by a restart.
    pub fn mark_interrupted_rebuilds(&self) -> DbResult<usize> {
        self.conn()
            .execute(
                "UPDATE rebuilds SET status = 'interrupted', finished_at = ?1,
                   error = 'the agent stopped while this rebuild ran'
                 WHERE status = 'running'",
                [now_rfc3339()],
            )
            .map_err(self.e("cannot mark interrupted rebuilds"))
    }

    // ---- queue --------------------------------------------------------------------------

    pub fn enqueue(
        &self,
        app: &str,
        kind: &str,
        choices: &BTreeMap<String, String>,
        clear_data: bool,
    ) -> DbResult<i64> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO queue (app, kind, choices, clear_data, enqueued_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                app,
                kind,
                serde_json::to_string(choices).unwrap_or_else(|_| "{}".into()),
                clear_data as i64,
                now_rfc3339()
            ],
        )
        .map_err(self.e("cannot queue the operation"))?;
        Ok(conn.last_insert_rowid())
    }

    /// Every stored operation, oldest first.
    pub fn queued_ops(&self) -> DbResult<Vec<StoredOp>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT id, app, kind, choices, clear_data, state FROM queue ORDER BY id")
            .map_err(self.e("cannot read the queue"))?;
        let rows = stmt
            .query_map([], |r| {
                let choices: String = r.get(3)?;
                Ok(StoredOp {
                    id: r.get(0)?,
                    app: r.get(1)?,
                    kind: r.get(2)?,
                    choices: serde_json::from_str(&choices).unwrap_or_default(),
                    clear_data: r.get::<_, i64>(4)? != 0,
                    state: r.get(5)?,
                })
            })
            .map_err(self.e("cannot read the queue"))?;
        rows.collect::<Result<_, _>>()
            .map_err(self.e("cannot read the queue"))
    }

    pub fn set_ops_state(&self, ids: &[i64], state: &str) -> DbResult<()> {
        let conn = self.conn();
        for id in ids {
            conn.execute(
                "UPDATE queue SET state = ?2 WHERE id = ?1",
                params![id, state],
            )
            .map_err(self.e("cannot update the queue"))?;
        }
        Ok(())
    }

    pub fn delete_ops(&self, ids: &[i64]) -> DbResult<()> {
        let conn = self.conn();
        for id in ids {
            conn.execute("DELETE FROM queue WHERE id = ?1", [id])
                .map_err(self.e("cannot update the queue"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("bloud.db")).unwrap();
        (dir, db)
    }

    #[test]
    fn only_the_first_user_is_created() {
        let (_d, db) = db();
        assert!(!db.has_users().unwrap());
        assert!(db.create_first_user("alice", "h1").unwrap().is_some());
        assert!(db.create_first_user("bob", "h2").unwrap().is_none());
        assert!(db.user_by_name("bob").unwrap().is_none());
        assert_eq!(db.user_by_name("alice").unwrap().unwrap().1, "h1");
    }

    #[test]
    fn the_database_keeps_no_usable_session_token() {
        let (_dir, db) = db();
        let user = db.create_first_user("alice", "hash").unwrap().unwrap();
        let token = db
            .create_session(&user.id, Duration::from_secs(60))
            .unwrap();
        let stored: String = db
            .conn()
            .query_row("SELECT id FROM sessions", [], |r| r.get(0))
            .unwrap();
        assert_ne!(stored, token, "the token itself must not be stored");
        assert_eq!(stored, token_digest(&token));
        assert!(db.session_user(&token).unwrap().is_some());
        // Presenting what a stolen database copy holds does not sign anyone in.
        assert!(db.session_user(&stored).unwrap().is_none());
    }

    #[test]
    fn sessions_expire_and_can_be_deleted() {
        let (_d, db) = db();
        let user = db.create_first_user("alice", "h").unwrap().unwrap();
        let live = db
            .create_session(&user.id, Duration::from_secs(60))
            .unwrap();
        assert_eq!(db.session_user(&live).unwrap(), Some(user.clone()));
        assert_eq!(live.len(), 64);
        db.delete_session(&live).unwrap();
        assert_eq!(db.session_user(&live).unwrap(), None);
        // A session whose expiry is in the past is not accepted.
        let token = db.create_session(&user.id, Duration::from_secs(0)).unwrap();
        db.conn()
            .execute(
                "UPDATE sessions SET expires_at = 0 WHERE id = ?1",
                [token_digest(&token)],
            )
            .unwrap();
        assert_eq!(db.session_user(&token).unwrap(), None);
    }

    #[test]
    fn old_rebuilds_are_pruned_with_their_logs() {
        let (dir, db) = db();
        for i in 0..5 {
            db.start_rebuild(&format!("install a{i}"), dir.path())
                .unwrap();
        }
        let gone = db.prune_rebuilds(2).unwrap();
        assert_eq!(
            gone,
            vec![
                dir.path().join("3.log"),
                dir.path().join("2.log"),
                dir.path().join("1.log")
            ]
        );
        let left: Vec<i64> = db.list_rebuilds(10).unwrap().iter().map(|r| r.id).collect();
        assert_eq!(left, vec![5, 4]);
    }

    #[test]
    fn the_database_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let (dir, _db) = db();
        let mode = std::fs::metadata(dir.path().join("bloud.db"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn apps_round_trip_in_upstream_shape() {
        let (_d, db) = db();
        let rec = AppRecord {
            name: "miniflux".into(),
            display_name: "Miniflux".into(),
            port: Some(8085),
            integration_config: [("database".to_string(), "postgres".to_string())].into(),
            ..Default::default()
        };
        db.upsert_app(&rec, "installing").unwrap();
        assert!(db.set_status("miniflux", "running").unwrap());
        let apps = db.list_apps().unwrap();
        let json = serde_json::to_value(&apps).unwrap();
        assert_eq!(json[0]["display_name"], "Miniflux");
        assert_eq!(json[0]["status"], "running");
        assert_eq!(json[0]["port"], 8085);
        assert_eq!(json[0]["integration_config"]["database"], "postgres");
        db.set_status("miniflux", "failed").unwrap();
        assert!(db.installed_names().unwrap().is_empty());
    }
}
