//! The ledger: recon's own state in an embedded SQLite database under
//! `snapshots/ledger.sqlite`. Snapshots and plans stay Parquet; the ledger
//! remembers runs and the links between records of the two sides.
//!
//! The schema is versioned with `PRAGMA user_version`; each migration runs
//! once, in order, inside a transaction.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

/// Schema migrations, in order. Never edit one that has shipped: add another.
const MIGRATIONS: &[&str] = &[
    // 1: runs
    "CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        spec TEXT NOT NULL,
        command TEXT NOT NULL,
        started_at TEXT NOT NULL,
        ended_at TEXT,
        status TEXT NOT NULL,
        snapshots TEXT NOT NULL DEFAULT '[]',
        counts TEXT NOT NULL DEFAULT '{}',
        plan_dir TEXT,
        applied INTEGER NOT NULL DEFAULT 0,
        message TEXT
    );
    CREATE INDEX runs_spec ON runs(spec, id);",
    // 2: links between the two sides' records, the first match key of a plan
    "CREATE TABLE links (
        spec TEXT NOT NULL,
        left_id TEXT NOT NULL,
        right_id TEXT NOT NULL,
        key TEXT NOT NULL,
        run_id INTEGER,
        created_at TEXT NOT NULL,
        PRIMARY KEY (spec, left_id, right_id)
    );",
    // 3: where each side's next incremental pull starts
    "CREATE TABLE cursors (
        spec TEXT NOT NULL,
        side TEXT NOT NULL,
        cursor TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (spec, side)
    );",
    // 4: the values each pair held when last synced, for three-way compares
    "CREATE TABLE baselines (
        spec TEXT NOT NULL,
        left_id TEXT NOT NULL,
        right_id TEXT NOT NULL,
        synced TEXT NOT NULL,
        run_id INTEGER,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (spec, left_id, right_id)
    );",
    // 5: the apply journal: every plan row's way from planned to done
    "CREATE TABLE journal (
        plan TEXT NOT NULL,
        row INTEGER NOT NULL,
        spec TEXT NOT NULL,
        class TEXT NOT NULL,
        receiver TEXT,
        left_id TEXT,
        right_id TEXT,
        state TEXT NOT NULL,
        target_id TEXT,
        message TEXT,
        tries INTEGER NOT NULL DEFAULT 0,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (plan, row)
    );",
];

/// One plan row in the apply journal.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JournalRow {
    pub row: i64,
    pub class: String,
    pub receiver: Option<String>,
    pub left_id: Option<String>,
    pub right_id: Option<String>,
    /// `planned`, `sent`, `done`, `failed` or `stale`.
    pub state: String,
    pub target_id: Option<String>,
    pub message: Option<String>,
    pub tries: i64,
}

#[derive(Debug, thiserror::Error)]
#[error("ledger {path}: {source}")]
pub struct LedgerError {
    path: PathBuf,
    #[source]
    source: rusqlite::Error,
}

/// One run as the ledger keeps it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Run {
    pub id: i64,
    pub spec: String,
    pub command: String,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub status: String,
    pub snapshots: Vec<String>,
    pub counts: serde_json::Map<String, serde_json::Value>,
    pub plan_dir: Option<String>,
    pub applied: bool,
    pub message: Option<String>,
}

pub struct Ledger {
    conn: Connection,
    path: PathBuf,
}

impl Ledger {
    /// Open (creating and migrating) the ledger under `home/snapshots`.
    pub fn open(home: &Path) -> Result<Self, LedgerError> {
        let dir = home.join("snapshots");
        let path = dir.join("ledger.sqlite");
        let err = |source| LedgerError {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(&dir)
            .map_err(|e| err(rusqlite::Error::ToSqlConversionFailure(Box::new(e))))?;
        let conn = Connection::open(&path).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(err)?;
        let mut ledger = Self { conn, path };
        ledger.migrate()?;
        Ok(ledger)
    }

    fn err(&self, source: rusqlite::Error) -> LedgerError {
        LedgerError {
            path: self.path.clone(),
            source,
        }
    }

    fn migrate(&mut self) -> Result<(), LedgerError> {
        let version: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| self.err(e))?;
        for (n, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = self.conn.transaction().map_err(|e| LedgerError {
                path: self.path.clone(),
                source: e,
            })?;
            tx.execute_batch(sql)
                .and_then(|_| tx.pragma_update(None, "user_version", (n + 1) as i64))
                .and_then(|_| tx.commit())
                .map_err(|e| LedgerError {
                    path: self.path.clone(),
                    source: e,
                })?;
        }
        Ok(())
    }

    pub fn schema_version(&self) -> Result<usize, LedgerError> {
        self.conn
            .pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))
            .map(|v| v as usize)
            .map_err(|e| self.err(e))
    }

    /// Record the start of a run; returns its id.
    pub fn start_run(
        &self,
        spec: &str,
        command: &str,
        started_at: &str,
    ) -> Result<i64, LedgerError> {
        self.conn
            .execute(
                "INSERT INTO runs (spec, command, started_at, status) VALUES (?1, ?2, ?3, 'running')",
                params![spec, command, started_at],
            )
            .map_err(|e| self.err(e))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Record how a run ended.
    pub fn finish_run(
        &self,
        id: i64,
        ended_at: &str,
        status: &str,
        snapshots: &[String],
        counts: &serde_json::Map<String, serde_json::Value>,
        plan_dir: Option<&str>,
        message: Option<&str>,
    ) -> Result<(), LedgerError> {
        self.conn
            .execute(
                "UPDATE runs SET ended_at = ?2, status = ?3, snapshots = ?4, counts = ?5, plan_dir = ?6, message = ?7 WHERE id = ?1",
                params![
                    id,
                    ended_at,
                    status,
                    serde_json::to_string(snapshots).expect("strings serialize"),
                    serde_json::to_string(counts).expect("json serializes"),
                    plan_dir,
                    message
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The last `limit` runs of a spec, oldest first.
    pub fn runs(&self, spec: &str, limit: usize) -> Result<Vec<Run>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, spec, command, started_at, ended_at, status, snapshots, counts, plan_dir, applied, message
                 FROM runs WHERE spec = ?1 ORDER BY id DESC LIMIT ?2",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![spec, limit as i64], |r| {
                let snapshots: String = r.get(6)?;
                let counts: String = r.get(7)?;
                Ok(Run {
                    id: r.get(0)?,
                    spec: r.get(1)?,
                    command: r.get(2)?,
                    started_at: r.get(3)?,
                    ended_at: r.get(4)?,
                    status: r.get(5)?,
                    snapshots: serde_json::from_str(&snapshots).unwrap_or_default(),
                    counts: serde_json::from_str(&counts).unwrap_or_default(),
                    plan_dir: r.get(8)?,
                    applied: r.get::<_, i64>(9)? != 0,
                    message: r.get(10)?,
                })
            })
            .map_err(|e| self.err(e))?;
        let mut out: Vec<Run> = rows.collect::<Result<_, _>>().map_err(|e| self.err(e))?;
        out.reverse();
        Ok(out)
    }

    /// All links of a spec as (left id, right id).
    pub fn links(&self, spec: &str) -> Result<Vec<(String, String)>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT left_id, right_id FROM links WHERE spec = ?1 ORDER BY left_id, right_id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![spec], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// The stored cursor of a side, if an earlier pull left one.
    pub fn cursor(&self, spec: &str, side: &str) -> Result<Option<String>, LedgerError> {
        self.conn
            .query_row(
                "SELECT cursor FROM cursors WHERE spec = ?1 AND side = ?2",
                params![spec, side],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Store where the next incremental pull of a side starts.
    pub fn set_cursor(
        &self,
        spec: &str,
        side: &str,
        cursor: &str,
        at: &str,
    ) -> Result<(), LedgerError> {
        self.conn
            .execute(
                "INSERT INTO cursors (spec, side, cursor, updated_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (spec, side) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at",
                params![spec, side, cursor, at],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Every pair's baseline of a spec: (left id, right id, JSON of field texts).
    pub fn baselines(&self, spec: &str) -> Result<Vec<(String, String, String)>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare("SELECT left_id, right_id, synced FROM baselines WHERE spec = ?1 ORDER BY left_id, right_id")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![spec], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Store the values a pair holds after a sync.
    pub fn set_baseline(
        &self,
        spec: &str,
        left: &str,
        right: &str,
        synced: &str,
        run_id: i64,
        at: &str,
    ) -> Result<(), LedgerError> {
        self.conn
            .execute(
                "INSERT INTO baselines (spec, left_id, right_id, synced, run_id, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (spec, left_id, right_id) DO UPDATE SET synced = excluded.synced, run_id = excluded.run_id, updated_at = excluded.updated_at",
                params![spec, left, right, synced, run_id, at],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Run several ledger writes as one transaction.
    pub fn transaction<T>(
        &self,
        f: impl FnOnce() -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| self.err(e))?;
        match f() {
            Ok(v) => {
                self.conn.execute_batch("COMMIT").map_err(|e| self.err(e))?;
                Ok(v)
            }
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    /// Add a plan's rows to the journal as `planned` (rows already there keep
    /// their state: a rerun resumes).
    pub fn journal_start(
        &self,
        plan: &str,
        spec: &str,
        rows: &[JournalRow],
        at: &str,
    ) -> Result<(), LedgerError> {
        self.transaction(|| {
            let mut stmt = self
                .conn
                .prepare_cached(
                    "INSERT OR IGNORE INTO journal (plan, row, spec, class, receiver, left_id, right_id, state, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'planned', ?8)",
                )
                .map_err(|e| self.err(e))?;
            for r in rows {
                stmt.execute(params![plan, r.row, spec, r.class, r.receiver, r.left_id, r.right_id, at])
                    .map_err(|e| self.err(e))?;
            }
            Ok(())
        })
    }

    /// The journal of a plan, by row.
    pub fn journal(&self, plan: &str) -> Result<Vec<JournalRow>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT row, class, receiver, left_id, right_id, state, target_id, message, tries
                 FROM journal WHERE plan = ?1 ORDER BY row",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![plan], |r| {
                Ok(JournalRow {
                    row: r.get(0)?,
                    class: r.get(1)?,
                    receiver: r.get(2)?,
                    left_id: r.get(3)?,
                    right_id: r.get(4)?,
                    state: r.get(5)?,
                    target_id: r.get(6)?,
                    message: r.get(7)?,
                    tries: r.get(8)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Move rows to a state, durably, in one transaction.
    pub fn journal_set(
        &self,
        plan: &str,
        updates: &[(i64, &str, Option<&str>, Option<&str>)],
        at: &str,
    ) -> Result<(), LedgerError> {
        self.transaction(|| {
            let mut stmt = self
                .conn
                .prepare_cached(
                    "UPDATE journal SET state = ?3, target_id = coalesce(?4, target_id), message = ?5,
                       tries = tries + (CASE WHEN ?3 = 'sent' THEN 1 ELSE 0 END), updated_at = ?6
                     WHERE plan = ?1 AND row = ?2",
                )
                .map_err(|e| self.err(e))?;
            for (row, state, target, message) in updates {
                stmt.execute(params![plan, row, state, target, message, at]).map_err(|e| self.err(e))?;
            }
            Ok(())
        })
    }

    /// Mark the runs that wrote this plan folder as applied.
    pub fn mark_applied(&self, plan_dir: &str) -> Result<(), LedgerError> {
        self.conn
            .execute(
                "UPDATE runs SET applied = 1 WHERE plan_dir = ?1",
                params![plan_dir],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// A record got a new native id on one side (Reviso renumbering a
    /// customer): move its links and baseline to the new id. Returns how
    /// many links moved.
    pub fn relink(
        &self,
        spec: &str,
        left_side: bool,
        old: &str,
        new: &str,
    ) -> Result<usize, LedgerError> {
        let col = if left_side { "left_id" } else { "right_id" };
        self.transaction(|| {
            let n = self
                .conn
                .execute(
                    &format!(
                        "UPDATE OR REPLACE links SET {col} = ?3 WHERE spec = ?1 AND {col} = ?2"
                    ),
                    params![spec, old, new],
                )
                .map_err(|e| self.err(e))?;
            self.conn
                .execute(
                    &format!(
                        "UPDATE OR REPLACE baselines SET {col} = ?3 WHERE spec = ?1 AND {col} = ?2"
                    ),
                    params![spec, old, new],
                )
                .map_err(|e| self.err(e))?;
            Ok(n)
        })
    }

    /// Remember that two records are the same (idempotent).
    pub fn link(
        &self,
        spec: &str,
        left: &str,
        right: &str,
        key: &str,
        run_id: i64,
        at: &str,
    ) -> Result<(), LedgerError> {
        self.conn
            .execute(
                "INSERT OR IGNORE INTO links (spec, left_id, right_id, key, run_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![spec, left, right, key, run_id, at],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_once_and_records_runs() {
        let dir = tempfile::tempdir().unwrap();
        let l = Ledger::open(dir.path()).unwrap();
        assert_eq!(l.schema_version().unwrap(), MIGRATIONS.len());
        let id = l.start_run("s", "pull", "2026-01-01T00:00:00Z").unwrap();
        let mut counts = serde_json::Map::new();
        counts.insert("create".into(), 3.into());
        l.finish_run(
            id,
            "2026-01-01T00:00:01Z",
            "ok",
            &["a.parquet".into()],
            &counts,
            None,
            None,
        )
        .unwrap();
        drop(l);
        // Reopening runs no migration twice and keeps the data.
        let l = Ledger::open(dir.path()).unwrap();
        let runs = l.runs("s", 10).unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].status, "ok");
        assert_eq!(runs[0].counts["create"], 3);
        l.link("s", "a1", "b1", "email", id, "t").unwrap();
        l.link("s", "a1", "b1", "email", id, "t").unwrap();
        assert_eq!(
            l.links("s").unwrap(),
            vec![("a1".to_string(), "b1".to_string())]
        );
    }
}
