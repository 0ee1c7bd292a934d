//! Accounts beyond the first: roles, per-app access and step-up tokens.
//!
//! - Roles: `admin` manages apps and users; `member` uses the apps an admin gave them.
//! - Access: rows of (user, app name). Admins may open every app without rows; a new member
//!   has none until an admin grants them (fail closed: a new app is not visible to members
//!   by accident). Rows are per app name, so they survive a reinstall.
//! - Step-up tokens: single use, bound to one session and one action, short-lived. Their rows
//!   go with the session (`ON DELETE CASCADE`), so logout or a password reset voids them.

use std::collections::BTreeSet;
use std::time::Duration;

use rusqlite::types::{FromSql, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{new_uuid, now_rfc3339, random_hex, token_digest, Db, DbResult, User};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }
}

impl ToSql for Role {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for Role {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        // Anything but "admin" is a member: an unexpected value never grants more.
        Ok(match value.as_str()? {
            "admin" => Role::Admin,
            _ => Role::Member,
        })
    }
}

/// `GET /api/users` item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserInfo {
    pub id: String,
    pub username: String,
    pub role: Role,
    pub created_at: String,
    /// Apps the user may open (admins: every app, so empty here).
    pub apps: Vec<String>,
}

/// Outcome of a change that must keep at least one administrator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminChange {
    Done,
    NotFound,
    LastAdmin,
}

/// `id, username, role` columns.
pub(super) fn user_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: r.get(0)?,
        username: r.get(1)?,
        role: r.get(2)?,
    })
}

/// Brings an older database up to date: the `role` column (the first user becomes the
/// administrator), the access table and the step-up table.
pub(super) fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let has_role: bool = conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM pragma_table_info('users') WHERE name = 'role')",
        [],
        |r| r.get(0),
    )?;
    if !has_role {
        conn.execute_batch("ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'member';")?;
    }
    // Databases from before roles had exactly one user, the one who ran setup.
    conn.execute(
        "UPDATE users SET role = 'admin'
         WHERE id = (SELECT id FROM users ORDER BY created_at, rowid LIMIT 1)
           AND NOT EXISTS (SELECT 1 FROM users WHERE role = 'admin')",
        [],
    )?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS app_access (
            user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            app TEXT NOT NULL,
            PRIMARY KEY (user_id, app)
        );
        CREATE TABLE IF NOT EXISTS step_ups (
            token TEXT PRIMARY KEY,
            session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            action TEXT NOT NULL,
            expires_at INTEGER NOT NULL
        );",
    )
}

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

impl Db {
    pub fn user_by_id(&self, id: &str) -> DbResult<Option<User>> {
        self.conn()
            .query_row(
                "SELECT id, username, role FROM users WHERE id = ?1",
                [id],
                user_from_row,
            )
            .optional()
            .map_err(self.e("cannot look up the user"))
    }

    /// A password hash by user id (step-up checks the signed-in user's own password).
    pub fn password_hash(&self, user_id: &str) -> DbResult<Option<String>> {
        self.conn()
            .query_row(
                "SELECT password_hash FROM users WHERE id = ?1",
                [user_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.e("cannot look up the user"))
    }

    /// Every user with their app access, by name.
    pub fn list_users(&self) -> DbResult<Vec<UserInfo>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT u.id, u.username, u.role, u.created_at,
                        (SELECT group_concat(app, char(10)) FROM
                           (SELECT app FROM app_access a WHERE a.user_id = u.id ORDER BY app))
                 FROM users u ORDER BY u.username",
            )
            .map_err(self.e("cannot list users"))?;
        let rows = stmt
            .query_map([], |r| {
                let apps: Option<String> = r.get(4)?;
                Ok(UserInfo {
                    id: r.get(0)?,
                    username: r.get(1)?,
                    role: r.get(2)?,
                    created_at: r.get(3)?,
                    apps: apps
                        .map(|a| a.lines().map(str::to_string).collect())
                        .unwrap_or_default(),
                })
            })
            .map_err(self.e("cannot list users"))?;
        rows.collect::<Result<_, _>>()
            .map_err(self.e("cannot list users"))
    }

    /// Adds a user; `None` when the name is taken.
    pub fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        role: Role,
    ) -> DbResult<Option<User>> {
        let id = new_uuid();
        let n = self
            .conn()
            .execute(
                "INSERT INTO users (id, username, password_hash, created_at, role)
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(username) DO NOTHING",
                params![id, username, password_hash, now_rfc3339(), role],
            )
            .map_err(self.e("cannot create the user"))?;
        Ok((n == 1).then(|| User {
            id,
            username: username.to_string(),
            role,
        }))
    }

    /// Is `user_id` the only administrator? (Checked under the same lock as the change.)
    fn is_last_admin(conn: &Connection, user_id: &str) -> rusqlite::Result<bool> {
        conn.query_row(
            "SELECT EXISTS(SELECT 1 FROM users WHERE id = ?1 AND role = 'admin')
                AND (SELECT count(*) FROM users WHERE role = 'admin') = 1",
            [user_id],
            |r| r.get(0),
        )
    }

    /// Removes a user with their sessions, step-ups and access rows (cascade); never the
    /// last administrator.
    pub fn delete_user(&self, user_id: &str) -> DbResult<AdminChange> {
        let conn = self.conn();
        let last = Self::is_last_admin(&conn, user_id).map_err(self.e("cannot remove the user"))?;
        if last {
            return Ok(AdminChange::LastAdmin);
        }
        let n = conn
            .execute("DELETE FROM users WHERE id = ?1", [user_id])
            .map_err(self.e("cannot remove the user"))?;
        Ok(if n == 1 {
            AdminChange::Done
        } else {
            AdminChange::NotFound
        })
    }

    /// Changes a role; demoting the last administrator is refused.
    pub fn set_role(&self, user_id: &str, role: Role) -> DbResult<AdminChange> {
        let conn = self.conn();
        if role == Role::Member
            && Self::is_last_admin(&conn, user_id).map_err(self.e("cannot change the role"))?
        {
            return Ok(AdminChange::LastAdmin);
        }
        let n = conn
            .execute(
                "UPDATE users SET role = ?2 WHERE id = ?1",
                params![user_id, role],
            )
            .map_err(self.e("cannot change the role"))?;
        Ok(if n == 1 {
            AdminChange::Done
        } else {
            AdminChange::NotFound
        })
    }

    /// Sets a new password and ends the user's sessions, except `keep` (the admin's own
    /// session when they reset their own password). False when the user does not exist.
    pub fn set_password(
        &self,
        user_id: &str,
        password_hash: &str,
        keep: Option<&str>,
    ) -> DbResult<bool> {
        let conn = self.conn();
        let n = conn
            .execute(
                "UPDATE users SET password_hash = ?2 WHERE id = ?1",
                params![user_id, password_hash],
            )
            .map_err(self.e("cannot set the password"))?;
        conn.execute(
            "DELETE FROM sessions WHERE user_id = ?1 AND id IS NOT ?2",
            params![user_id, keep.map(token_digest)],
        )
        .map_err(self.e("cannot end the user's sessions"))?;
        Ok(n == 1)
    }

    /// The apps a user was given (admins need none).
    pub fn app_access(&self, user_id: &str) -> DbResult<BTreeSet<String>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT app FROM app_access WHERE user_id = ?1")
            .map_err(self.e("cannot read app access"))?;
        let rows = stmt
            .query_map([user_id], |r| r.get(0))
            .map_err(self.e("cannot read app access"))?;
        rows.collect::<Result<_, _>>()
            .map_err(self.e("cannot read app access"))
    }

    /// Replaces a user's app list; false when the user does not exist.
    pub fn set_app_access(&self, user_id: &str, apps: &BTreeSet<String>) -> DbResult<bool> {
        let mut conn = self.conn();
        let tx = conn
            .transaction()
            .map_err(self.e("cannot change app access"))?;
        let exists: bool = tx
            .query_row(
                "SELECT EXISTS(SELECT 1 FROM users WHERE id = ?1)",
                [user_id],
                |r| r.get(0),
            )
            .map_err(self.e("cannot change app access"))?;
        if !exists {
            return Ok(false);
        }
        tx.execute("DELETE FROM app_access WHERE user_id = ?1", [user_id])
            .map_err(self.e("cannot change app access"))?;
        for app in apps {
            tx.execute(
                "INSERT INTO app_access (user_id, app) VALUES (?1, ?2)",
                params![user_id, app],
            )
            .map_err(self.e("cannot change app access"))?;
        }
        tx.commit().map_err(self.e("cannot change app access"))?;
        Ok(true)
    }

    /// May this user open `app`? Admins may open every app; members the apps they were
    /// given. The forward-auth check calls this for each app request it has not cached. The
    /// role is read again from the database: a demoted or removed user is refused at once.
    pub fn user_may_open(&self, user: &User, app: &str) -> DbResult<bool> {
        self.conn()
            .query_row(
                "SELECT EXISTS(SELECT 1 FROM users WHERE id = ?1 AND role = 'admin')
                     OR EXISTS(SELECT 1 FROM app_access a JOIN users u ON u.id = a.user_id
                               WHERE a.user_id = ?1 AND a.app = ?2)",
                params![user.id, app],
                |r| r.get(0),
            )
            .map_err(self.e("cannot check app access"))
    }

    /// A new step-up token for `action`, usable once from `session` within `ttl`.
    pub fn create_step_up(&self, session: &str, action: &str, ttl: Duration) -> DbResult<String> {
        let token = random_hex(32);
        let conn = self.conn();
        conn.execute("DELETE FROM step_ups WHERE expires_at < ?1", [now()])
            .map_err(self.e("cannot sweep step-ups"))?;
        conn.execute(
            "INSERT INTO step_ups (token, session_id, action, expires_at) VALUES (?1, ?2, ?3, ?4)",
            params![
                token_digest(&token),
                token_digest(session),
                action,
                now() + ttl.as_secs() as i64
            ],
        )
        .map_err(self.e("cannot record the step-up"))?;
        Ok(token)
    }

    /// Uses up a step-up token: true only once, for its own session and action, before it
    /// expires. A token presented with the wrong session or action stays unused.
    pub fn consume_step_up(&self, session: &str, action: &str, token: &str) -> DbResult<bool> {
        let n = self
            .conn()
            .execute(
                "DELETE FROM step_ups
                 WHERE token = ?1 AND session_id = ?2 AND action = ?3 AND expires_at >= ?4",
                params![token_digest(token), token_digest(session), action, now()],
            )
            .map_err(self.e("cannot check the step-up"))?;
        Ok(n == 1)
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
    fn a_member_opens_only_the_apps_they_were_given_and_admins_open_all() {
        let (_d, db) = db();
        let admin = db.create_first_user("alice", "h").unwrap().unwrap();
        assert_eq!(admin.role, Role::Admin);
        let bob = db.create_user("bob", "h", Role::Member).unwrap().unwrap();
        assert!(db.user_may_open(&admin, "notes").unwrap());
        assert!(
            !db.user_may_open(&bob, "notes").unwrap(),
            "new member: none"
        );
        assert!(db
            .set_app_access(&bob.id, &["notes".to_string()].into())
            .unwrap());
        assert!(db.user_may_open(&bob, "notes").unwrap());
        assert!(!db.user_may_open(&bob, "photos").unwrap());
        // Taking access away works at once; so does removing the user.
        db.set_app_access(&bob.id, &BTreeSet::new()).unwrap();
        assert!(!db.user_may_open(&bob, "notes").unwrap());
        db.set_app_access(&bob.id, &["notes".to_string()].into())
            .unwrap();
        assert_eq!(db.delete_user(&bob.id).unwrap(), AdminChange::Done);
        assert!(!db.user_may_open(&bob, "notes").unwrap());
        // A stale User value claiming admin does not help: the role is read from the database.
        let fake = User {
            role: Role::Admin,
            ..bob
        };
        assert!(!db.user_may_open(&fake, "notes").unwrap());
    }

    #[test]
    fn the_last_admin_stays() {
        let (_d, db) = db();
        let alice = db.create_first_user("alice", "h").unwrap().unwrap();
        assert_eq!(db.delete_user(&alice.id).unwrap(), AdminChange::LastAdmin);
        assert_eq!(
            db.set_role(&alice.id, Role::Member).unwrap(),
            AdminChange::LastAdmin
        );
        let bob = db.create_user("bob", "h", Role::Admin).unwrap().unwrap();
        assert_eq!(
            db.set_role(&alice.id, Role::Member).unwrap(),
            AdminChange::Done
        );
        assert_eq!(db.delete_user(&bob.id).unwrap(), AdminChange::LastAdmin);
        assert!(db.create_user("bob", "h", Role::Member).unwrap().is_none());
        assert_eq!(db.delete_user("nobody").unwrap(), AdminChange::NotFound);
    }

    #[test]
    fn removing_a_user_or_resetting_the_password_ends_sessions() {
        let (_d, db) = db();
        let _alice = db.create_first_user("alice", "h").unwrap().unwrap();
        let bob = db.create_user("bob", "h", Role::Member).unwrap().unwrap();
        let ttl = Duration::from_secs(60);
        let (s1, s2) = (
            db.create_session(&bob.id, ttl).unwrap(),
            db.create_session(&bob.id, ttl).unwrap(),
        );
        assert!(db.set_password(&bob.id, "h2", Some(&s2)).unwrap());
        assert_eq!(db.session_user(&s1).unwrap(), None);
        assert!(db.session_user(&s2).unwrap().is_some(), "kept");
        assert!(db.set_password(&bob.id, "h3", None).unwrap());
        assert_eq!(db.session_user(&s2).unwrap(), None);
        let s3 = db.create_session(&bob.id, ttl).unwrap();
        db.delete_user(&bob.id).unwrap();
        assert_eq!(db.session_user(&s3).unwrap(), None);
    }

    #[test]
    fn step_up_tokens_are_single_use_and_bound_to_session_and_action() {
        let (_d, db) = db();
        let alice = db.create_first_user("alice", "h").unwrap().unwrap();
        let ttl = Duration::from_secs(60);
        let s = db.create_session(&alice.id, ttl).unwrap();
        let other = db.create_session(&alice.id, ttl).unwrap();
        let t = db.create_step_up(&s, "users.add", ttl).unwrap();
        assert!(!db.consume_step_up(&other, "users.add", &t).unwrap());
        assert!(!db.consume_step_up(&s, "apps.clear-data:x", &t).unwrap());
        assert!(db.consume_step_up(&s, "users.add", &t).unwrap());
        assert!(!db.consume_step_up(&s, "users.add", &t).unwrap(), "reused");
        let expired = db.create_step_up(&s, "users.add", ttl).unwrap();
        db.conn()
            .execute("UPDATE step_ups SET expires_at = 0", [])
            .unwrap();
        assert!(!db.consume_step_up(&s, "users.add", &expired).unwrap());
        // Logging out voids the session's tokens.
        let t = db.create_step_up(&s, "users.add", ttl).unwrap();
        db.delete_session(&s).unwrap();
        assert!(!db.consume_step_up(&s, "users.add", &t).unwrap());
    }

    #[test]
    fn an_old_database_gets_roles_and_its_first_user_is_admin() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bloud.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE users (id TEXT PRIMARY KEY, username TEXT NOT NULL UNIQUE,
                   password_hash TEXT NOT NULL, layout TEXT NOT NULL DEFAULT '[]',
                   created_at TEXT NOT NULL);
                 INSERT INTO users VALUES ('u1', 'alice', 'h', '[]', '2025-01-01T00:00:00Z');",
            )
            .unwrap();
        }
        let db = Db::open(&path).unwrap();
        let (alice, _) = db.user_by_name("alice").unwrap().unwrap();
        assert_eq!(alice.role, Role::Admin);
        let bob = db.create_user("bob", "h", Role::Member).unwrap().unwrap();
        drop(db);
        // Opening again changes nothing.
        let db = Db::open(&path).unwrap();
        assert_eq!(db.user_by_id(&bob.id).unwrap().unwrap().role, Role::Member);
        assert_eq!(db.user_by_id("u1").unwrap().unwrap().role, Role::Admin);
    }
}
