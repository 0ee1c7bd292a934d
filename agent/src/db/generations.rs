//! Our own record of each generation: which apps it had. Written after every successful
//! rebuild, so the history page can say what a NixOS generation contained (NixOS itself only
//! knows store paths) and a rollback can bring the agent's app records back in line.

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::{now_rfc3339, AppRecord, Db, DbResult};

/// One installed app as it was in a generation (enough to re-create its record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerationApp {
    pub name: String,
    pub display_name: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub is_system: bool,
    #[serde(default)]
    pub integration_config: std::collections::BTreeMap<String, String>,
}

impl GenerationApp {
    pub fn record(&self) -> AppRecord {
        AppRecord {
            name: self.name.clone(),
            display_name: self.display_name.clone(),
            version: self.version.clone(),
            port: self.port,
            is_system: self.is_system,
            integration_config: self.integration_config.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerationRecord {
    /// The NixOS generation number, or (demo mode) our own sequence.
    pub number: i64,
    pub summary: String,
    pub rebuild_id: Option<i64>,
    pub created_at: String,
    pub apps: Vec<GenerationApp>,
    /// `apps-state.json` as it was: what apps.nix is rewritten from on a rollback.
    pub state_json: String,
    /// Demo mode's "current generation" (NixOS reads its profile link instead).
    pub current: bool,
}

pub(super) fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS generations (
            number INTEGER PRIMARY KEY,
            summary TEXT NOT NULL,
            rebuild_id INTEGER,
            created_at TEXT NOT NULL,
            apps TEXT NOT NULL,
            state TEXT NOT NULL,
            current INTEGER NOT NULL DEFAULT 0
        );",
    )
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<GenerationRecord> {
    let apps: String = r.get(4)?;
    Ok(GenerationRecord {
        number: r.get(0)?,
        summary: r.get(1)?,
        rebuild_id: r.get(2)?,
        created_at: r.get(3)?,
        apps: serde_json::from_str(&apps).unwrap_or_default(),
        state_json: r.get(5)?,
        current: r.get::<_, i64>(6)? != 0,
    })
}

const COLUMNS: &str = "number, summary, rebuild_id, created_at, apps, state, current";

impl Db {
    /// Records generation `number` (None: the next of our own sequence) as the current one.
    /// A number seen before (NixOS reuses none, but a test box may be reinstalled) is replaced.
    pub fn record_generation(
        &self,
        number: Option<i64>,
        summary: &str,
        rebuild_id: Option<i64>,
        apps: &[GenerationApp],
        state_json: &str,
    ) -> DbResult<i64> {
        let apps = serde_json::to_string(apps).unwrap_or_else(|_| "[]".into());
        let mut conn = self.conn();
        let tx = conn
            .transaction()
            .map_err(self.e("cannot record a generation"))?;
        let number = match number {
            Some(n) => n,
            None => tx
                .query_row(
                    "SELECT COALESCE(MAX(number), 0) + 1 FROM generations",
                    [],
                    |r| r.get(0),
                )
                .map_err(self.e("cannot number a generation"))?,
        };
        tx.execute("UPDATE generations SET current = 0", [])
            .map_err(self.e("cannot record a generation"))?;
        tx.execute(
            "INSERT OR REPLACE INTO generations (number, summary, rebuild_id, created_at, apps, state, current)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1)",
            params![number, summary, rebuild_id, now_rfc3339(), apps, state_json],
        )
        .map_err(self.e("cannot record a generation"))?;
        tx.commit().map_err(self.e("cannot record a generation"))?;
        Ok(number)
    }

    /// Newest first.
    pub fn list_generations(&self, limit: usize) -> DbResult<Vec<GenerationRecord>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM generations ORDER BY number DESC LIMIT ?1"
            ))
            .map_err(self.e("cannot list generations"))?;
        let rows = stmt
            .query_map(params![limit as i64], row)
            .map_err(self.e("cannot list generations"))?;
        rows.collect::<Result<_, _>>()
            .map_err(self.e("cannot list generations"))
    }

    pub fn generation(&self, number: i64) -> DbResult<Option<GenerationRecord>> {
        self.conn()
            .query_row(
                &format!("SELECT {COLUMNS} FROM generations WHERE number = ?1"),
                params![number],
                row,
            )
            .optional()
            .map_err(self.e("cannot read a generation"))
    }

    /// Marks `number` as the one the box runs (after a rollback to it).
    pub fn set_current_generation(&self, number: i64) -> DbResult<()> {
        self.conn()
            .execute(
                "UPDATE generations SET current = (number = ?1)",
                params![number],
            )
            .map(|_| ())
            .map_err(self.e("cannot mark the current generation"))
    }
}
