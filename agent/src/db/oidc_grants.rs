//! What the OpenID Connect provider hands out: authorization codes and opaque access and
//! refresh tokens, stored as SHA-256 digests like sessions. Every grant is bound to the shell
//! session it came from: ending that session (logout, password reset, deleting the user)
//! deletes the grants with it (cascade). Tokens from one code share a `family` (the code's
//! digest), so a replayed code or refresh token revokes them all.

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::{users, Db, DbResult, User};

pub(super) fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS oidc_codes (
            digest TEXT PRIMARY KEY,
            client_id TEXT NOT NULL REFERENCES oidc_clients(id) ON DELETE CASCADE,
            session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            user_id TEXT NOT NULL,
            redirect_uri TEXT NOT NULL,
            code_challenge TEXT NOT NULL,
            nonce TEXT,
            scope TEXT NOT NULL,
            expires_at INTEGER NOT NULL,
            used INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE IF NOT EXISTS oidc_tokens (
            digest TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            client_id TEXT NOT NULL REFERENCES oidc_clients(id) ON DELETE CASCADE,
            session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            user_id TEXT NOT NULL,
            scope TEXT NOT NULL,
            family TEXT NOT NULL,
            expires_at INTEGER NOT NULL,
            used INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX IF NOT EXISTS oidc_tokens_family ON oidc_tokens(family);",
    )
}

/// An authorization code as issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeGrant {
    pub client_id: String,
    /// Digest of the session cookie the user had at the authorization endpoint.
    pub session_id: String,
    pub user_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub nonce: Option<String>,
    pub scope: String,
    pub expires_at: i64,
}

/// A refresh token as issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshGrant {
    pub client_id: String,
    pub session_id: String,
    pub user_id: String,
    pub scope: String,
    pub family: String,
    pub expires_at: i64,
}

/// What presenting a code or refresh token found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken<T> {
    /// First use; it is now spent.
    Fresh(T),
    /// Used before: every token of its family has just been revoked.
    Replayed,
    Unknown,
}

/// Which kind of token a row is.
pub const ACCESS: &str = "access";
pub const REFRESH: &str = "refresh";

/// A new token row.
pub struct NewToken<'a> {
    pub digest: &'a str,
    pub kind: &'a str,
    pub client_id: &'a str,
    pub session_id: &'a str,
    pub user_id: &'a str,
    pub scope: &'a str,
    pub family: &'a str,
    pub expires_at: i64,
}

fn revoke_family(tx: &Transaction<'_>, family: &str) -> rusqlite::Result<usize> {
    tx.execute("DELETE FROM oidc_tokens WHERE family = ?1", [family])
}

impl Db {
    pub fn insert_oidc_code(&self, digest: &str, code: &CodeGrant) -> DbResult<()> {
        let conn = self.conn();
        // Spent and expired codes are swept here rather than by a timer (a spent code's row is
        // what makes a replay detectable, so it stays until it would have expired).
        conn.execute(
            "DELETE FROM oidc_codes WHERE expires_at < ?1",
            [code.expires_at - 3600],
        )
        .map_err(self.e("cannot sweep OIDC codes"))?;
        conn.execute(
            "INSERT INTO oidc_codes (digest, client_id, session_id, user_id, redirect_uri,
               code_challenge, nonce, scope, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                digest,
                code.client_id,
                code.session_id,
                code.user_id,
                code.redirect_uri,
                code.code_challenge,
                code.nonce,
                code.scope,
                code.expires_at
            ],
        )
        .map_err(self.e("cannot store the OIDC code"))?;
        Ok(())
    }

    /// Spends a code. A second presentation revokes the tokens issued from the first.
    pub fn take_oidc_code(&self, digest: &str) -> DbResult<Taken<CodeGrant>> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(self.e("cannot read the code"))?;
        let found = tx
            .query_row(
                "SELECT client_id, session_id, user_id, redirect_uri, code_challenge, nonce,
                   scope, expires_at, used FROM oidc_codes WHERE digest = ?1",
                [digest],
                |r| {
                    Ok((
                        CodeGrant {
                            client_id: r.get(0)?,
                            session_id: r.get(1)?,
                            user_id: r.get(2)?,
                            redirect_uri: r.get(3)?,
                            code_challenge: r.get(4)?,
                            nonce: r.get(5)?,
                            scope: r.get(6)?,
                            expires_at: r.get(7)?,
                        },
                        r.get::<_, i64>(8)? != 0,
                    ))
                },
            )
            .optional()
            .map_err(self.e("cannot read the code"))?;
        let taken = match found {
            None => Taken::Unknown,
            Some((_, true)) => {
                revoke_family(&tx, digest).map_err(self.e("cannot revoke tokens"))?;
                Taken::Replayed
            }
            Some((code, false)) => {
                tx.execute("UPDATE oidc_codes SET used = 1 WHERE digest = ?1", [digest])
                    .map_err(self.e("cannot spend the code"))?;
                Taken::Fresh(code)
            }
        };
        tx.commit().map_err(self.e("cannot spend the code"))?;
        Ok(taken)
    }

    pub fn insert_oidc_token(&self, t: &NewToken<'_>) -> DbResult<()> {
        let conn = self.conn();
        conn.execute(
            "DELETE FROM oidc_tokens WHERE expires_at < ?1",
            [time::OffsetDateTime::now_utc().unix_timestamp() - 24 * 3600],
        )
        .map_err(self.e("cannot sweep OIDC tokens"))?;
        conn.execute(
            "INSERT INTO oidc_tokens (digest, kind, client_id, session_id, user_id, scope, family, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                t.digest,
                t.kind,
                t.client_id,
                t.session_id,
                t.user_id,
                t.scope,
                t.family,
                t.expires_at
            ],
        )
        .map_err(self.e("cannot store the OIDC token"))?;
        Ok(())
    }

    /// Spends a refresh token. A second presentation revokes its whole family.
    pub fn take_refresh_token(&self, digest: &str) -> DbResult<Taken<RefreshGrant>> {
        let mut conn = self.conn();
        let tx = conn
            .transaction()
            .map_err(self.e("cannot read the token"))?;
        let found = tx
            .query_row(
                "SELECT client_id, session_id, user_id, scope, family, expires_at, used
                 FROM oidc_tokens WHERE digest = ?1 AND kind = ?2",
                [digest, REFRESH],
                |r| {
                    Ok((
                        RefreshGrant {
                            client_id: r.get(0)?,
                            session_id: r.get(1)?,
                            user_id: r.get(2)?,
                            scope: r.get(3)?,
                            family: r.get(4)?,
                            expires_at: r.get(5)?,
                        },
                        r.get::<_, i64>(6)? != 0,
                    ))
                },
            )
            .optional()
            .map_err(self.e("cannot read the token"))?;
        let taken = match found {
            None => Taken::Unknown,
            Some((grant, true)) => {
                revoke_family(&tx, &grant.family).map_err(self.e("cannot revoke tokens"))?;
                Taken::Replayed
            }
            Some((grant, false)) => {
                tx.execute(
                    "UPDATE oidc_tokens SET used = 1 WHERE digest = ?1",
                    [digest],
                )
                .map_err(self.e("cannot spend the token"))?;
                Taken::Fresh(grant)
            }
        };
        tx.commit().map_err(self.e("cannot spend the token"))?;
        Ok(taken)
    }

    /// The user of a live session, by the session's digest (grants store digests).
    pub fn session_user_by_digest(&self, session_id: &str, now: i64) -> DbResult<Option<User>> {
        self.conn()
            .query_row(
                "SELECT u.id, u.username, u.role FROM sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.id = ?1 AND s.expires_at >= ?2",
                params![session_id, now],
                users::user_from_row,
            )
            .optional()
            .map_err(self.e("cannot read the session"))
    }

    /// The user and scope of a live access token: the token unexpired, and the session it was
    /// issued under still open.
    pub fn access_token_user(&self, digest: &str, now: i64) -> DbResult<Option<(User, String)>> {
        self.conn()
            .query_row(
                "SELECT u.id, u.username, u.role, t.scope FROM oidc_tokens t
                 JOIN sessions s ON s.id = t.session_id
                 JOIN users u ON u.id = t.user_id AND u.id = s.user_id
                 WHERE t.digest = ?1 AND t.kind = ?2 AND t.expires_at > ?3 AND s.expires_at >= ?3",
                params![digest, ACCESS, now],
                |r| Ok((users::user_from_row(r)?, r.get(3)?)),
            )
            .optional()
            .map_err(self.e("cannot read the access token"))
    }
}
