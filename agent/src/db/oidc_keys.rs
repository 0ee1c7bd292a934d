//! The OpenID Connect signing keys (PKCS#1 DER, in this owner-only database). The newest key
//! without `retired_at` signs; retired keys stay published until the tokens they signed expire.

use rusqlite::{params, Connection};

use super::{Db, DbResult};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub kid: String,
    pub private_der: Vec<u8>,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

pub(super) fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS oidc_keys (
            kid TEXT PRIMARY KEY,
            private_der BLOB NOT NULL,
            created_at INTEGER NOT NULL,
            retired_at INTEGER
        );",
    )
}

impl Db {
    /// Keys still worth keeping: the signing one and those retired after `keep_since`; older
    /// retired keys are deleted here. Newest first.
    pub fn oidc_keys(&self, keep_since: i64) -> DbResult<Vec<StoredKey>> {
        let conn = self.conn();
        conn.execute(
            "DELETE FROM oidc_keys WHERE retired_at IS NOT NULL AND retired_at < ?1",
            [keep_since],
        )
        .map_err(self.e("cannot prune OIDC keys"))?;
        let mut stmt = conn
            .prepare(
                "SELECT kid, private_der, created_at, retired_at FROM oidc_keys
                 ORDER BY created_at DESC, rowid DESC",
            )
            .map_err(self.e("cannot read OIDC keys"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(StoredKey {
                    kid: r.get(0)?,
                    private_der: r.get(1)?,
                    created_at: r.get(2)?,
                    retired_at: r.get(3)?,
                })
            })
            .map_err(self.e("cannot read OIDC keys"))?;
        rows.collect::<Result<_, _>>()
            .map_err(self.e("cannot read OIDC keys"))
    }

    /// Adds a signing key and retires every other one at `now`, in one transaction.
    pub fn add_oidc_key(&self, kid: &str, private_der: &[u8], now: i64) -> DbResult<()> {
        let mut conn = self.conn();
        let tx = conn
            .transaction()
            .map_err(self.e("cannot store the OIDC key"))?;
        tx.execute(
            "UPDATE oidc_keys SET retired_at = ?1 WHERE retired_at IS NULL",
            [now],
        )
        .map_err(self.e("cannot retire OIDC keys"))?;
        tx.execute(
            "INSERT INTO oidc_keys (kid, private_der, created_at) VALUES (?1, ?2, ?3)",
            params![kid, private_der, now],
        )
        .map_err(self.e("cannot store the OIDC key"))?;
        tx.commit().map_err(self.e("cannot store the OIDC key"))
    }
}
