//! SQLite sink: one file, WAL mode, one transaction per page.
//!
//! rusqlite is blocking, so every call runs on tokio's blocking pool, one at a time and in order
//! ([`Blocking`]); the async runtime never waits on disk.
//!
//! `synchronous=NORMAL` with WAL: a committed page survives a crash of skysync; a power loss can
//! lose the last few commits, but rows and bookmark are in the same transaction, so they are lost
//! together and the next run fetches those pages again.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use skysync_core::catalog::Entity;
use skysync_core::sync::quota::QuotaLedger;

use time::OffsetDateTime;

use skysync_core::sync::ParentRow;

use super::blocking::Blocking;
use super::{
    DeleteMode, EntityState, FullSwap, PageCommit, PageRow, RunOutcome, SCHEMA_VERSION, Sink, SinkError, Tables,
    Target, entity, format_ts, history, page_rows, parents, parse_ts, sql, tables,
};

const COLUMNS: &str = "id TEXT PRIMARY KEY NOT NULL, data TEXT NOT NULL, date_modified TEXT, \
                       synced_at TEXT NOT NULL, deleted_at TEXT";

/// `page_size` of a database file skysync creates.
const NEW_FILE_PAGE_SIZE: i64 = 16384;

struct Db {
    conn: Connection,
    path: PathBuf,
}

/// Maps rusqlite errors of one action on one database file to [`SinkError::Sqlite`].
fn failer<'a>(path: &'a std::path::Path, action: &'a str) -> impl Fn(rusqlite::Error) -> SinkError + Copy + 'a {
    move |source| SinkError::Sqlite { path: path.to_owned(), action: action.to_owned(), source }
}

impl Db {
    fn err<'a>(&'a self, action: &'a str) -> impl Fn(rusqlite::Error) -> SinkError + Copy + 'a {
        failer(&self.path, action)
    }
}

/// A SQLite database file.
pub struct SqliteSink {
    path: PathBuf,
    db: Blocking<Db>,
    /// Entities whose tables are known to exist in this process.
    ensured: HashSet<&'static str>,
    /// `--history`: the run's time (see [`Sink::keep_history`]); `None` keeps no history.
    history: Option<OffsetDateTime>,
}

impl std::fmt::Debug for SqliteSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteSink").field("path", &self.path).finish_non_exhaustive()
    }
}

impl SqliteSink {
    /// Opens or creates the database (and its parent directories).
    pub async fn open(path: PathBuf) -> Result<Self, SinkError> {
        let p = path.clone();
        let db = tokio::task::spawn_blocking(move || open_blocking(p))
            .await
            .map_err(|e| SinkError::Worker(e.to_string()))??;
        Ok(SqliteSink { path, db: Blocking::new(db), ensured: HashSet::new(), history: None })
    }

    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Db) -> Result<T, SinkError> + Send + 'static,
    ) -> Result<T, SinkError> {
        self.db.call(f).await
    }

    /// Validates the name and makes sure the entity's live table exists.
    async fn ensure(&mut self, name: &str) -> Result<&'static Entity, SinkError> {
        let e = entity(name)?;
        if !self.ensured.contains(e.name) {
            let history = self.history.is_some();
            self.call(move |db| {
                init_meta(db)?;
                ensure_entity(db, e, history)
            })
            .await?;
            self.ensured.insert(e.name);
        }
        Ok(e)
    }
}

fn open_blocking(path: PathBuf) -> Result<Db, SinkError> {
    super::file_mode::private_umask();
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| SinkError::Io {
            path: parent.to_owned(),
            action: "creating the database directory".into(),
            source,
        })?;
    }
    let conn = Connection::open(&path).map_err(|source| SinkError::Sqlite {
        path: path.clone(),
        action: "opening the database".into(),
        source,
    })?;
    let db = Db { conn, path };
    db.conn.busy_timeout(Duration::from_secs(30)).map_err(db.err("setting busy_timeout"))?;
    // A new file gets 16 KiB pages (SQLite's default is 4 KiB): records are about 1 KB of JSON,
    // and bigger pages mean fewer pages to split, checksum and write per row (BENCHMARKS.md,
    // Ingest). The size is fixed once the file has content, and cannot change in WAL mode, so it
    // is set before WAL is enabled; an existing file keeps its own.
    db.conn.pragma_update(None, "page_size", NEW_FILE_PAGE_SIZE).map_err(db.err("setting page_size"))?;
    db.conn.pragma_update(None, "journal_mode", "WAL").map_err(db.err("enabling WAL mode"))?;
    db.conn.pragma_update(None, "synchronous", "NORMAL").map_err(db.err("setting synchronous=NORMAL"))?;
    Ok(db)
}

fn init_meta(db: &mut Db) -> Result<(), SinkError> {
    db.conn
        .execute_batch(
            "CREATE TABLE IF NOT EXISTS skysync_meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS sync_state (
                 entity TEXT PRIMARY KEY NOT NULL,
                 bookmark TEXT,
                 staging_bookmark TEXT,
                 reconcile_in_progress INTEGER NOT NULL DEFAULT 0,
                 last_run_at TEXT,
                 last_success_at TEXT,
                 last_reconcile_at TEXT,
                 row_count INTEGER NOT NULL DEFAULT 0,
                 last_error TEXT);
             INSERT INTO skysync_meta (key, value) VALUES ('schema_version', '1')
                 ON CONFLICT (key) DO NOTHING;",
        )
        .map_err(db.err("creating skysync_meta and sync_state"))?;
    let found: String = db
        .conn
        .query_row("SELECT value FROM skysync_meta WHERE key = 'schema_version'", [], |r| r.get(0))
        .map_err(db.err("reading the schema version"))?;
    let found: i64 = found.parse().unwrap_or(i64::MAX);
    if found > SCHEMA_VERSION {
        return Err(SinkError::SchemaTooNew {
            target: format!("SQLite {}", db.path.display()),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    // Version 1 is the first layout: nothing to migrate yet. Later versions add steps here.
    Ok(())
}

fn ensure_entity(db: &mut Db, e: &Entity, history: bool) -> Result<(), SinkError> {
    let t = tables(e);
    db.conn
        .execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS {} ({COLUMNS});
             CREATE INDEX IF NOT EXISTS {} ON {} (date_modified);",
            t.live, t.index, t.live
        ))
        .map_err(db.err(&format!("creating table {}", e.name)))?;
    if history {
        db.conn.execute_batch(&history::create(e, "TEXT", "TEXT")).map_err(db.err("creating the history table"))?;
    }
    Ok(())
}

fn table_exists(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    conn.query_row("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1", [name], |_| Ok(()))
        .optional()
        .map(|o| o.is_some())
}

fn ensure_state_row(conn: &Connection, entity: &str) -> rusqlite::Result<()> {
    conn.execute("INSERT INTO sync_state (entity) VALUES (?1) ON CONFLICT (entity) DO NOTHING", [entity]).map(|_| ())
}

fn ts(t: OffsetDateTime) -> String {
    format_ts(t).unwrap_or_default()
}

const STATE_COLUMNS: &str = "entity, bookmark, staging_bookmark, reconcile_in_progress, last_run_at, \
                             last_success_at, last_reconcile_at, row_count, last_error";

fn state_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<EntityState> {
    let t = |i: usize| -> rusqlite::Result<Option<time::OffsetDateTime>> {
        Ok(r.get::<_, Option<String>>(i)?.as_deref().and_then(parse_ts))
    };
    Ok(EntityState {
        entity: r.get(0)?,
        bookmark: r.get(1)?,
        staging_bookmark: r.get(2)?,
        reconcile_in_progress: r.get::<_, i64>(3)? != 0,
        last_run_at: t(4)?,
        last_success_at: t(5)?,
        last_reconcile_at: t(6)?,
        row_count: r.get::<_, i64>(7)?.max(0) as u64,
        last_error: r.get(8)?,
    })
}

#[async_trait::async_trait]
impl Sink for SqliteSink {
    fn describe(&self) -> String {
        format!("SQLite {}", self.path.display())
    }

    async fn prepare(&mut self, entities: &[&'static Entity]) -> Result<(), SinkError> {
        for e in entities {
            entity(e.name)?;
        }
        let list: Vec<&'static Entity> = entities.to_vec();
        let history = self.history.is_some();
        self.call(move |db| {
            // One transaction: tables, and the views over them (see `sink::views`).
            db.conn.execute_batch("BEGIN IMMEDIATE").map_err(db.err("starting the schema transaction"))?;
            let schema = (|| {
                init_meta(db)?;
                for e in &list {
                    ensure_entity(db, e, history)?;
                }
                super::views::refresh_sqlite(&db.conn).map_err(db.err("creating the views"))
            })();
            match schema {
                Ok(()) => db.conn.execute_batch("COMMIT").map_err(db.err("committing the schema")),
                Err(e) => {
                    let _ = db.conn.execute_batch("ROLLBACK");
                    Err(e)
                }
            }
        })
        .await?;
        self.ensured.extend(entities.iter().map(|e| e.name));
        Ok(())
    }

    async fn state(&mut self, name: &str) -> Result<Option<EntityState>, SinkError> {
        let e = self.ensure(name).await?;
        self.call(move |db| {
            db.conn
                .query_row(
                    &format!("SELECT {STATE_COLUMNS} FROM sync_state WHERE entity = ?1"),
                    [e.name],
                    state_from_row,
                )
                .optional()
                .map_err(db.err("reading sync_state"))
        })
        .await
    }

    async fn states(&mut self) -> Result<Vec<EntityState>, SinkError> {
        self.call(|db| {
            init_meta(db)?;
            let mut stmt = db
                .conn
                .prepare(&format!("SELECT {STATE_COLUMNS} FROM sync_state ORDER BY entity"))
                .map_err(db.err("reading sync_state"))?;
            stmt.query_map([], state_from_row)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(db.err("reading sync_state"))
        })
        .await
    }

    async fn commit_page(
        &mut self,
        name: &str,
        target: Target,
        rows: &[crate::sink::Row],
        bookmark: &str,
        now: OffsetDateTime,
    ) -> Result<PageCommit, SinkError> {
        let e = self.ensure(name).await?;
        // Cheap: ids, dates and handles on the page's shared JSON; no record text is copied.
        let rows = rows.to_vec();
        let bookmark = bookmark.to_owned();
        let history = self.history.is_some() && target == Target::Live;
        self.call(move |db| {
            let rows = page_rows(&rows);
            let t = tables(e);
            let synced_at = ts(now);
            let action = format!("writing a page of {}", e.name);
            let fail = failer(&db.path, &action);
            let tx = db.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(fail)?;
            if history {
                history::sqlite_record_changed(&tx, e, &t, &rows, &synced_at).map_err(fail)?;
            }
            let (table, column) = match target {
                Target::Live => (t.live, "bookmark"),
                Target::Staging => {
                    if !table_exists(&tx, &t.staging_raw).map_err(fail)? {
                        return Err(SinkError::NoFullResync { entity: e.name.to_owned() });
                    }
                    (t.staging, "staging_bookmark")
                }
            };
            let counts = upsert_rows(&tx, &table, &rows, &synced_at).map_err(fail)?;
            ensure_state_row(&tx, e.name).map_err(fail)?;
            tx.execute(&format!("UPDATE sync_state SET {column} = ?1 WHERE entity = ?2"), params![bookmark, e.name])
                .map_err(fail)?;
            tx.commit().map_err(fail)?;
            Ok(counts)
        })
        .await
    }

    async fn begin_full(&mut self, name: &str) -> Result<Option<String>, SinkError> {
        let e = self.ensure(name).await?;
        self.call(move |db| {
            let t = tables(e);
            let action = format!("starting a full resync of {}", e.name);
            let fail = failer(&db.path, &action);
            let tx = db.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(fail)?;
            ensure_state_row(&tx, e.name).map_err(fail)?;
            let resume: Option<String> = tx
                .query_row("SELECT staging_bookmark FROM sync_state WHERE entity = ?1", [e.name], |r| r.get(0))
                .map_err(fail)?;
            if let Some(b) = resume
                && table_exists(&tx, &t.staging_raw).map_err(fail)?
            {
                return Ok(Some(b));
            }
            tx.execute_batch(&format!("DROP TABLE IF EXISTS {s}; CREATE TABLE {s} ({COLUMNS});", s = t.staging))
                .map_err(fail)?;
            tx.execute("UPDATE sync_state SET staging_bookmark = NULL WHERE entity = ?1", [e.name]).map_err(fail)?;
            tx.commit().map_err(fail)?;
            Ok(None)
        })
        .await
    }

    async fn finish_full(&mut self, name: &str, bookmark: &str) -> Result<FullSwap, SinkError> {
        let e = self.ensure(name).await?;
        let bookmark = bookmark.to_owned();
        let history = self.history.map(ts);
        self.call(move |db| {
            let t = tables(e);
            let action = format!("swapping in the full resync of {}", e.name);
            let fail = failer(&db.path, &action);
            let tx = db.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(fail)?;
            if !table_exists(&tx, &t.staging_raw).map_err(fail)? {
                return Err(SinkError::NoFullResync { entity: e.name.to_owned() });
            }
            let (added, changed, removed) = count_swap(&tx, &t).map_err(fail)?;
            if let Some(now) = &history {
                tx.execute(&history::full_resync(e, &t, "?1"), [now]).map_err(fail)?;
            }
            tx.execute_batch(&sql::swap_in(&t)).map_err(fail)?;
            let row_count = record_swap(&tx, &t, e.name, &bookmark).map_err(fail)?;
            tx.commit().map_err(fail)?;
            Ok(sql::full_swap(added, changed, removed, row_count))
        })
        .await
    }

    async fn begin_reconcile(&mut self, name: &str) -> Result<(), SinkError> {
        let e = self.ensure(name).await?;
        self.call(move |db| {
            let t = tables(e);
            let action = format!("starting delete reconciliation of {}", e.name);
            let fail = failer(&db.path, &action);
            let tx = db.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(fail)?;
            tx.execute_batch(&format!(
                "DROP TABLE IF EXISTS {s}; CREATE TABLE {s} (id TEXT PRIMARY KEY NOT NULL);",
                s = t.seen
            ))
            .map_err(fail)?;
            ensure_state_row(&tx, e.name).map_err(fail)?;
            tx.execute("UPDATE sync_state SET reconcile_in_progress = 1 WHERE entity = ?1", [e.name]).map_err(fail)?;
            tx.commit().map_err(fail)
        })
        .await
    }

    async fn add_seen_ids(&mut self, name: &str, ids: &[String]) -> Result<(), SinkError> {
        let e = self.ensure(name).await?;
        let ids = ids.to_vec();
        self.call(move |db| {
            let t = tables(e);
            let action = format!("recording seen ids of {}", e.name);
            let fail = failer(&db.path, &action);
            let tx = db.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(fail)?;
            if !table_exists(&tx, &t.seen_raw).map_err(fail)? {
                return Err(SinkError::NoReconcile { entity: e.name.to_owned() });
            }
            {
                let mut ins = tx
                    .prepare_cached(&format!("INSERT INTO {} (id) VALUES (?1) ON CONFLICT (id) DO NOTHING", t.seen))
                    .map_err(fail)?;
                for id in &ids {
                    ins.execute([id]).map_err(fail)?;
                }
            }
            tx.commit().map_err(fail)
        })
        .await
    }

    async fn finish_reconcile(&mut self, name: &str, mode: DeleteMode, now: OffsetDateTime) -> Result<u64, SinkError> {
        let e = self.ensure(name).await?;
        let history = self.history.is_some();
        self.call(move |db| {
            let t = tables(e);
            let action = format!("finishing delete reconciliation of {}", e.name);
            let fail = failer(&db.path, &action);
            let tx = db.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(fail)?;
            if !table_exists(&tx, &t.seen_raw).map_err(fail)? {
                return Err(SinkError::NoReconcile { entity: e.name.to_owned() });
            }
            let stamp = ts(now);
            if history {
                tx.execute(&history::deleted(e, &t, "?1"), [&stamp]).map_err(fail)?;
            }
            let n = match mode {
                DeleteMode::Mark => tx.execute(
                    &format!("UPDATE {} SET deleted_at = ?1 WHERE deleted_at IS NULL AND {}", t.live, sql::unseen(&t)),
                    [&stamp],
                ),
                DeleteMode::Remove => tx.execute(&sql::remove_unseen(&t), []),
            }
            .map_err(fail)?;
            tx.execute_batch(&format!("DROP TABLE {}", t.seen)).map_err(fail)?;
            ensure_state_row(&tx, e.name).map_err(fail)?;
            tx.execute(
                "UPDATE sync_state SET reconcile_in_progress = 0, last_reconcile_at = ?1
                 WHERE entity = ?2",
                params![stamp, e.name],
            )
            .map_err(fail)?;
            tx.commit().map_err(fail)?;
            Ok(n as u64)
        })
        .await
    }

    async fn quota_ledger(&mut self, scope: &str) -> Result<Option<QuotaLedger>, SinkError> {
        let scope = scope.to_owned();
        self.call(move |db| super::quota::sqlite_read(&db.conn, &scope).map_err(db.err("reading skysync_quota"))).await
    }

    async fn save_quota_ledger(&mut self, scope: &str, ledger: &QuotaLedger) -> Result<(), SinkError> {
        let (scope, ledger) = (scope.to_owned(), ledger.clone());
        self.call(move |db| {
            super::quota::sqlite_write(&db.conn, &scope, &ledger).map_err(db.err("writing skysync_quota"))
        })
        .await
    }

    async fn finish_run(&mut self, name: &str, outcome: &RunOutcome, now: OffsetDateTime) -> Result<(), SinkError> {
        let e = self.ensure(name).await?;
        let outcome = outcome.clone();
        self.call(move |db| {
            let t = tables(e);
            let stamp = ts(now);
            let (ok, error) = match outcome {
                RunOutcome::Success => (true, None),
                RunOutcome::Failed(m) => (false, Some(m)),
            };
            let action = format!("recording the end of the {} run", e.name);
            let fail = failer(&db.path, &action);
            let tx = db.conn.transaction().map_err(fail)?;
            ensure_state_row(&tx, e.name).map_err(fail)?;
            tx.execute(
                &format!(
                    "UPDATE sync_state SET last_run_at = ?1,
                         last_success_at = CASE WHEN ?2 THEN ?1 ELSE last_success_at END,
                         last_error = ?3,
                         row_count = (SELECT count(*) FROM {} WHERE deleted_at IS NULL)
                     WHERE entity = ?4",
                    t.live
                ),
                params![stamp, ok, error, e.name],
            )
            .map_err(fail)?;
            tx.commit().map_err(fail)
        })
        .await
    }

    async fn parent_rows(&mut self, parent: &str, child: &str) -> Result<Vec<ParentRow>, SinkError> {
        let (p, c) = (self.ensure(parent).await?, self.ensure(child).await?);
        self.call(move |db| {
            let sql = parents::parent_rows_sql(p, c, parents::Dialect::Sqlite);
            let read = |r: &rusqlite::Row<'_>| {
                Ok(ParentRow { id: r.get(0)?, written_at: r.get(1)?, child_high_water: r.get(2)? })
            };
            let mut stmt = db.conn.prepare(&sql).map_err(db.err("listing parent rows"))?;
            let rows: rusqlite::Result<Vec<ParentRow>> = stmt.query_map([], read).and_then(Iterator::collect);
            rows.map_err(db.err("listing parent rows"))
        })
        .await
    }

    async fn keep_history(&mut self, now: OffsetDateTime) -> Result<(), SinkError> {
        self.history = Some(now);
        self.ensured.clear();
        Ok(())
    }
}

/// Upserts a page's rows (ids unique, see [`page_rows`]) into `table` and counts new ids (added)
/// and ids that were there (changed): an insert that does nothing when the id exists, then, only
/// for those, an update of the row. A new row costs one statement and one descent of the id
/// index; whether a row was new is the insert's change count.
///
/// Measured and not kept (BENCHMARKS.md, Ingest): an `exists` lookup before an upsert (the
/// layout before this one: one more statement per row), and telling new rows by the rowid an
/// `INSERT … RETURNING rowid` gives back (SQLite runs a RETURNING statement slower).
fn upsert_rows(conn: &Connection, table: &str, rows: &[PageRow<'_>], synced_at: &str) -> rusqlite::Result<PageCommit> {
    let mut insert = conn.prepare_cached(&format!(
        "INSERT INTO {table} (id, data, date_modified, synced_at, deleted_at)
         VALUES (?1, ?2, ?3, ?4, NULL) ON CONFLICT (id) DO NOTHING"
    ))?;
    let mut update = conn.prepare_cached(&format!(
        "UPDATE {table} SET data = ?2, date_modified = ?3, synced_at = ?4, deleted_at = NULL WHERE id = ?1"
    ))?;
    let mut counts = PageCommit::default();
    for r in rows {
        let values = params![r.id, r.data, r.date_modified, synced_at];
        if insert.execute(values)? == 1 {
            counts.added += 1;
        } else {
            update.execute(values)?;
            counts.changed += 1;
        }
    }
    Ok(counts)
}

/// The swap's first phase: (added, changed, removed) as readers will see them.
fn count_swap(conn: &Connection, t: &Tables) -> rusqlite::Result<(i64, i64, i64)> {
    let removed: i64 = conn.query_row(&sql::count_removed(t), [], |r| r.get(0))?;
    let (added, changed) = conn.query_row(&sql::count_added_changed(t), [], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok((added, changed, removed))
}

/// The swap's last phase: stores the new bookmark and live row count; returns the count.
fn record_swap(conn: &Connection, t: &Tables, entity: &str, bookmark: &str) -> rusqlite::Result<i64> {
    let count: i64 = conn.query_row(&sql::count_live(t), [], |r| r.get(0))?;
    ensure_state_row(conn, entity)?;
    conn.execute(
        "UPDATE sync_state SET bookmark = ?1, staging_bookmark = NULL, row_count = ?2
         WHERE entity = ?3",
        params![bookmark, count, entity],
    )?;
    Ok(count)
}

/// Path of the database, for tests and status output.
impl SqliteSink {
    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
