//! OpenID Connect clients (relying parties): id, the SHA-256 of the secret, and the exact
//! redirect and post-logout URIs. Removing a client removes its codes and tokens (cascade).

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::{now_rfc3339, Db, DbResult};

/// A registered client as stored (the secret only as its digest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OidcClient {
    pub client_id: String,
    pub name: String,
    /// The catalog app this client signs in to: only users who may open the app may sign in.
    /// `None` for clients that are not an app (every user may sign in).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    #[serde(skip)]
    pub secret_digest: String,
    pub created_at: String,
}

pub(super) fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS oidc_clients (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            app TEXT,
            secret_digest TEXT NOT NULL,
            redirect_uris TEXT NOT NULL,
            post_logout_uris TEXT NOT NULL,
            created_at TEXT NOT NULL
        );",
    )
}

fn list(text: String) -> Vec<String> {
    serde_json::from_str(&text).unwrap_or_default()
}

fn client_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<OidcClient> {
    Ok(OidcClient {
        client_id: r.get(0)?,
        name: r.get(1)?,
        secret_digest: r.get(2)?,
        redirect_uris: list(r.get(3)?),
        post_logout_redirect_uris: list(r.get(4)?),
        created_at: r.get(5)?,
        app: r.get(6)?,
    })
}

const COLUMNS: &str = "id, name, secret_digest, redirect_uris, post_logout_uris, created_at, app";

impl Db {
    /// Inserts or replaces a client (re-registering an app gives it a new secret and URIs).
    pub fn put_oidc_client(&self, client: &OidcClient) -> DbResult<()> {
        let json = |v: &Vec<String>| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
        self.conn()
            .execute(
                "INSERT INTO oidc_clients (id, name, secret_digest, redirect_uris, post_logout_uris, created_at, app)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT(id) DO UPDATE SET name = excluded.name, app = excluded.app,
                   secret_digest = excluded.secret_digest, redirect_uris = excluded.redirect_uris,
                   post_logout_uris = excluded.post_logout_uris",
                params![
                    client.client_id,
                    client.name,
                    client.secret_digest,
                    json(&client.redirect_uris),
                    json(&client.post_logout_redirect_uris),
                    now_rfc3339(),
                    client.app
                ],
            )
            .map_err(self.e("cannot save the OIDC client"))?;
        Ok(())
    }

    pub fn oidc_client(&self, id: &str) -> DbResult<Option<OidcClient>> {
        self.conn()
            .query_row(
                &format!("SELECT {COLUMNS} FROM oidc_clients WHERE id = ?1"),
                [id],
                client_from_row,
            )
            .optional()
            .map_err(self.e("cannot read the OIDC client"))
    }

    pub fn oidc_clients(&self) -> DbResult<Vec<OidcClient>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(&format!("SELECT {COLUMNS} FROM oidc_clients ORDER BY id"))
            .map_err(self.e("cannot list OIDC clients"))?;
        let rows = stmt
            .query_map([], client_from_row)
            .map_err(self.e("cannot list OIDC clients"))?;
        rows.collect::<Result<_, _>>()
            .map_err(self.e("cannot list OIDC clients"))
    }

    /// Removes a client with its codes and tokens; false when there was none.
    pub fn delete_oidc_client(&self, id: &str) -> DbResult<bool> {
        let n = self
            .conn()
            .execute("DELETE FROM oidc_clients WHERE id = ?1", [id])
            .map_err(self.e("cannot remove the OIDC client"))?;
        Ok(n > 0)
    }
}
