//! Where synced records land: SQLite (default), PostgreSQL, or JSON lines.
//!
//! Every sink keeps one table (or file) per catalog entity plus a `sync_state` record per entity. The
//! rows of a page and the bookmark that covers them are written in one transaction, so an interrupted
//! run resumes from a bookmark that never points past rows that were lost, and never behind rows that
//! were kept by more than one page (upserts by `id` make that repeat harmless).
//!
//! A `--full` resync writes into a shadow table (`<entity>__staging`) and swaps it in with
//! [`Sink::finish_full`]; delete reconciliation collects the ids seen in the source in a
//! `<entity>__seen` table, so neither needs memory proportional to the data set.

mod blocking;
pub mod file_mode;
mod history;
mod jsonl;
mod parents;
pub mod pg_auth;
mod pg_tls;
mod postgres;
mod quota;
pub mod run_lock;
mod spec;
mod sql;
mod sqlite;
#[cfg(test)]
mod tests;
mod views;

use std::collections::HashMap;
use std::path::PathBuf;

use serde::Serialize;
use skysync_core::catalog::{CATALOG, Entity};
use skysync_core::sync::ParentRow;
pub use skysync_core::sync::RecordJson;
use skysync_core::sync::quota::QuotaLedger;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

pub use jsonl::JsonlSink;
pub use postgres::PgSink;
pub(crate) use postgres::{Connected, connect_client, driver_message};
pub use spec::{JsonlOut, SinkSpec, redact_url};
pub(crate) use spec::{check_pg_url, url_secrets};
pub use sqlite::SqliteSink;

/// Version of the table layout this build writes. Stored in `skysync_meta`.
pub const SCHEMA_VERSION: i64 = 1;

/// One record of a SKY list page, as received.
#[derive(Debug, Clone)]
pub struct Row {
    /// The record's immutable system id.
    pub id: String,
    /// The record's `date_modified`, verbatim (ISO 8601 with offset), if it had one.
    pub date_modified: Option<String>,
    /// The record JSON exactly as the API sent it (a slice of its page's body, not a copy).
    pub data: RecordJson,
}

/// Which table a page goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The table readers use.
    Live,
    /// The shadow table of a `--full` resync in progress.
    Staging,
}

/// What delete reconciliation does with rows the source no longer has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteMode {
    /// Keep the row and set `deleted_at`.
    Mark,
    /// Delete the row.
    Remove,
}

/// What [`Sink::commit_page`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PageCommit {
    /// Rows whose id was new.
    pub added: u64,
    /// Rows whose id existed and were overwritten.
    pub changed: u64,
}

/// What [`Sink::finish_full`] did, counted against the live rows readers saw just before the swap
/// (rows marked `deleted_at` count as absent), not against the staging table the pages went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FullSwap {
    /// Ids of the new set that readers did not see before: new ids, and ids whose row was marked
    /// deleted and has come back.
    pub added: u64,
    /// Ids readers saw before whose `data` or `date_modified` differs in the new set. Ids whose row
    /// is identical count nowhere, so an unchanged table reports 0 added, 0 changed, 0 removed.
    /// (SQLite compares the JSON text as received, PostgreSQL the `jsonb` value.)
    pub changed: u64,
    /// Ids readers saw before that the new set does not have.
    pub removed: u64,
    /// Live rows after the swap.
    pub row_count: u64,
}

/// Saved progress and bookkeeping of one entity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct EntityState {
    /// Catalog name.
    pub entity: String,
    /// Where the next incremental run starts (opaque to the sink).
    pub bookmark: Option<String>,
    /// Where an interrupted `--full` resync resumes.
    pub staging_bookmark: Option<String>,
    /// A delete reconciliation was begun and not finished.
    pub reconcile_in_progress: bool,
    /// End of the last run, successful or not.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_run_at: Option<OffsetDateTime>,
    /// End of the last successful run.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_success_at: Option<OffsetDateTime>,
    /// End of the last finished delete reconciliation.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_reconcile_at: Option<OffsetDateTime>,
    /// Live rows not marked deleted, as of the last run (JSONL: lines in the live file).
    pub row_count: u64,
    /// Error of the last run, cleared by a successful one.
    pub last_error: Option<String>,
}

impl EntityState {
    /// A state with nothing recorded yet.
    pub fn new(entity: &str) -> Self {
        EntityState {
            entity: entity.to_owned(),
            bookmark: None,
            staging_bookmark: None,
            reconcile_in_progress: false,
            last_run_at: None,
            last_success_at: None,
            last_reconcile_at: None,
            row_count: 0,
            last_error: None,
        }
    }
}

/// How a run of one entity ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// Every page landed.
    Success,
    /// The run stopped with this error (stored as `last_error`).
    Failed(String),
}

/// Errors of every sink. Messages never contain a database password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// The `--db` / `--format` / `--out` combination is not usable.
    #[error("invalid output settings: {0}")]
    InvalidSpec(String),
    /// The entity is not in the catalog (table names come only from the catalog).
    #[error("unknown entity {0:?}: not in the skysync catalog (see `skysync sync --list`)")]
    UnknownEntity(String),
    /// A SQLite statement failed.
    #[error("SQLite {path}: {action} failed: {source}")]
    Sqlite {
        /// Database file.
        path: PathBuf,
        /// What the sink was doing.
        action: String,
        /// The driver error.
        #[source]
        source: rusqlite::Error,
    },
    /// A PostgreSQL statement or the connection failed. `message` is already redacted.
    #[error("PostgreSQL {target}: {action} failed: {message}")]
    Postgres {
        /// The server URL without its password.
        target: String,
        /// What the sink was doing.
        action: String,
        /// The driver's message (with server detail and hint), password removed.
        message: String,
    },
    /// A file of the JSONL sink (or the SQLite file's directory) could not be used.
    #[error("{path}: {action} failed: {source}")]
    Io {
        /// File or directory.
        path: PathBuf,
        /// What the sink was doing.
        action: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A saved state file is not readable JSON.
    #[error("{path}: saved sync state is corrupt ({source}); move it aside to start over")]
    CorruptState {
        /// The state file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The database was written by a newer skysync.
    #[error("{target}: schema version {found} is newer than this skysync supports ({supported}); upgrade skysync")]
    SchemaTooNew {
        /// Database description.
        target: String,
        /// Version found in `skysync_meta`.
        found: i64,
        /// [`SCHEMA_VERSION`].
        supported: i64,
    },
    /// A staging write or `finish_full` came without `begin_full`.
    #[error("{entity}: no full resync in progress (begin_full was not called or already finished)")]
    NoFullResync {
        /// Catalog name.
        entity: String,
    },
    /// `add_seen_ids` / `finish_reconcile` came without `begin_reconcile`.
    #[error("{entity}: no delete reconciliation in progress (begin_reconcile was not called)")]
    NoReconcile {
        /// Catalog name.
        entity: String,
    },
    /// The sink cannot do this at all.
    #[error("{sink} does not support {what}")]
    Unsupported {
        /// Sink description.
        sink: String,
        /// The operation.
        what: String,
    },
    /// A blocking database task panicked or was cancelled.
    #[error("database worker task failed: {0}")]
    Worker(String),
    /// Another run holds the database's sync lock (see [`run_lock`]).
    #[error("another sync is running on {target} ({}); try again later, or raise --lock-wait", busy_holder(holder))]
    Busy {
        /// Sink description.
        target: String,
        /// Who holds the lock, when it said so.
        holder: Option<run_lock::LockHolder>,
    },
}

fn busy_holder(holder: &Option<run_lock::LockHolder>) -> String {
    match holder {
        Some(h) => h.to_string(),
        None => "holder unknown".to_owned(),
    }
}

/// A destination for synced rows and their bookmarks. See the module docs for the guarantees.
#[async_trait::async_trait]
pub trait Sink: Send {
    /// Human description, e.g. `SQLite /path/skysync.db` (never a password).
    fn describe(&self) -> String;
    /// Creates missing tables for `entities` and the bookkeeping tables; idempotent.
    async fn prepare(&mut self, entities: &[&'static Entity]) -> Result<(), SinkError>;
    /// The saved state of `entity`, or `None` if nothing was ever recorded for it.
    async fn state(&mut self, entity: &str) -> Result<Option<EntityState>, SinkError>;
    /// Every saved state, ordered by entity name.
    async fn states(&mut self) -> Result<Vec<EntityState>, SinkError>;
    /// Upserts `rows` (by id, idempotent: same id twice → one row, latest data wins; a previously
    /// deleted_at row that reappears is un-deleted) into the live or staging table AND stores
    /// `bookmark` (the live bookmark or the staging bookmark) in the SAME transaction.
    /// `now` stamps the rows' `synced_at`.
    async fn commit_page(
        &mut self,
        entity: &str,
        target: Target,
        rows: &[Row],
        bookmark: &str,
        now: OffsetDateTime,
    ) -> Result<PageCommit, SinkError>;
    /// Starts (or resumes) a full resync: ensures the staging table exists. Returns the staging
    /// bookmark if a previous full resync was interrupted (resume), else `None` after clearing staging.
    async fn begin_full(&mut self, entity: &str) -> Result<Option<String>, SinkError>;
    /// Atomically replaces the live rows with the staging rows, sets the live bookmark and clears
    /// staging. Returns what changed for readers (see [`FullSwap`]), computed in the same
    /// transaction without loading rows into memory. (The [`PageCommit`]s of the staging pages
    /// count against the staging table and say nothing about readers.)
    async fn finish_full(&mut self, entity: &str, bookmark: &str) -> Result<FullSwap, SinkError>;
    /// Clears (or creates) the seen-ids table and marks the reconciliation in progress.
    async fn begin_reconcile(&mut self, entity: &str) -> Result<(), SinkError>;
    /// Records ids seen in the source.
    async fn add_seen_ids(&mut self, entity: &str, ids: &[String]) -> Result<(), SinkError>;
    /// Marks or removes live rows whose id was not seen; returns how many. `now` is the
    /// `deleted_at` of marked rows and the `last_reconcile_at`.
    async fn finish_reconcile(&mut self, entity: &str, mode: DeleteMode, now: OffsetDateTime)
    -> Result<u64, SinkError>;
    /// Records the end of a run at `now`: times, last error, refreshed row count.
    async fn finish_run(&mut self, entity: &str, outcome: &RunOutcome, now: OffsetDateTime) -> Result<(), SinkError>;
    /// The daily-quota bookkeeping of `scope` (a profile), if any was stored. A sink without
    /// saved state (JSONL on stdout) has none.
    async fn quota_ledger(&mut self, _scope: &str) -> Result<Option<QuotaLedger>, SinkError> {
        Ok(None)
    }
    /// Stores the daily-quota bookkeeping of `scope` (see [`Sink::quota_ledger`]).
    async fn save_quota_ledger(&mut self, _scope: &str, _ledger: &QuotaLedger) -> Result<(), SinkError> {
        Ok(())
    }
    /// The live rows of `parent` (an entity with children), each with when it was written and
    /// the newest `date_modified` of the `child` rows filed under it, in id order (see
    /// `skysync_core::sync::parent`). Only databases can.
    async fn parent_rows(&mut self, parent: &str, child: &str) -> Result<Vec<ParentRow>, SinkError> {
        let _ = (parent, child);
        Err(SinkError::Unsupported {
            sink: self.describe(),
            what: "per-parent lists such as event_participants (they need SQLite or PostgreSQL)".into(),
        })
    }
    /// From now on keeps every version this sink replaces in `<entity>_history` (`sync
    /// --history`, see `history.rs`); call before [`Sink::prepare`], which creates the tables.
    /// `now` is the `valid_to` of the versions a `--full` swap replaces. Only databases can.
    async fn keep_history(&mut self, now: OffsetDateTime) -> Result<(), SinkError> {
        let _ = now;
        Err(SinkError::Unsupported { sink: self.describe(), what: "--history (it needs SQLite or PostgreSQL)".into() })
    }
}

/// Opens (and for SQLite creates) the sink described by `spec`. Call [`Sink::prepare`] next.
pub async fn open(spec: &SinkSpec) -> Result<Box<dyn Sink>, SinkError> {
    Ok(match spec {
        SinkSpec::Sqlite(path) => Box::new(SqliteSink::open(path.clone()).await?),
        SinkSpec::Postgres { url, password_file } => Box::new(PgSink::connect(url, password_file.as_deref()).await?),
        SinkSpec::Jsonl(out) => Box::new(JsonlSink::open(out.clone())?),
    })
}

/// The catalog entry named exactly `name`: table names only ever come from here.
pub(crate) fn entity(name: &str) -> Result<&'static Entity, SinkError> {
    CATALOG.iter().find(|e| e.name == name).ok_or_else(|| SinkError::UnknownEntity(name.to_owned()))
}

/// Quotes an SQL identifier (both SQLite and PostgreSQL use `"…"` with `""` escapes).
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Table names of one entity.
pub(crate) struct Tables {
    pub live: String,
    pub staging: String,
    pub seen: String,
    pub staging_raw: String,
    pub seen_raw: String,
    pub index: String,
}

pub(crate) fn tables(e: &Entity) -> Tables {
    Tables {
        live: quote_ident(e.name),
        staging: quote_ident(&format!("{}__staging", e.name)),
        seen: quote_ident(&format!("{}__seen", e.name)),
        staging_raw: format!("{}__staging", e.name),
        seen_raw: format!("{}__seen", e.name),
        index: quote_ident(&format!("{}__date_modified", e.name)),
    }
}

impl Tables {
    /// SQL (both backends): live rows, not marked deleted, whose id is absent from `other`
    /// (the staging table of a full resync, or the seen-ids table of a reconciliation).
    pub fn live_rows_missing_from(&self, other: &str) -> String {
        format!("deleted_at IS NULL AND NOT EXISTS (SELECT 1 FROM {other} WHERE {other}.id = {l}.id)", l = self.live)
    }
}

/// A page row ready for a database: deduplicated, timestamp normalized; id and JSON borrowed
/// from the page's [`Row`]s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PageRow<'a> {
    pub id: &'a str,
    pub data: &'a str,
    pub date_modified: Option<String>,
}

/// Keeps the last occurrence of each id (latest data wins) in page order, and normalizes
/// `date_modified`. PostgreSQL refuses to upsert one id twice in a statement, and counting added vs
/// changed must not depend on the backend, so both SQL sinks go through this.
pub(crate) fn page_rows(rows: &[Row]) -> Vec<PageRow<'_>> {
    let mut last: HashMap<&str, usize> = HashMap::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        last.insert(r.id.as_str(), i);
    }
    rows.iter()
        .enumerate()
        .filter(|(i, r)| last.get(r.id.as_str()) == Some(i))
        .map(|(_, r)| PageRow {
            id: &r.id,
            data: r.data.get(),
            date_modified: r.date_modified.as_deref().and_then(normalize_timestamp),
        })
        .collect()
}

/// Fixed-width UTC form, so SQLite's text index sorts chronologically and PostgreSQL parses it.
/// Microseconds: PostgreSQL's precision, so both backends store the same value.
const UTC_MICROS: &[time::format_description::BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

/// Parses a SKY timestamp (RFC 3339, or the `1600-01-01 00:00:00.000 +00:00` form of historic
/// records) into the fixed-width UTC form; `None` if unparseable.
pub(crate) fn normalize_timestamp(s: &str) -> Option<String> {
    const SPACED: &[time::format_description::BorrowedFormatItem<'static>] = format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second][optional [.[subsecond]]] [offset_hour sign:mandatory]:[offset_minute]"
    );
    let s = s.trim();
    let t = OffsetDateTime::parse(s, &Rfc3339).or_else(|_| OffsetDateTime::parse(s, SPACED)).ok()?;
    format_ts(t)
}

/// Formats a time in the fixed-width UTC form.
pub(crate) fn format_ts(t: OffsetDateTime) -> Option<String> {
    t.to_offset(time::UtcOffset::UTC).format(UTC_MICROS).ok()
}

/// Parses what [`format_ts`] wrote (any RFC 3339 is accepted).
pub(crate) fn parse_ts(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

/// `t` truncated to microseconds, so it round-trips through both databases unchanged.
///
/// Sinks stamp bookkeeping times (`synced_at`, `last_run_at`, `deleted_at`) with the `now` their
/// caller passes (the engine's injected clock); no sink reads a clock of its own.
pub(crate) fn to_micros(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(t.nanosecond() / 1000 * 1000).unwrap_or(t)
}
