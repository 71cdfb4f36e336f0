//! Change history (`sync --history`): every version a run replaces is kept in `<entity>_history`,
//! a slowly-changing dimension of type 2.
//!
//! | column       | meaning                                                                 |
//! |--------------|-------------------------------------------------------------------------|
//! | `id`         | the record's key                                                        |
//! | `data`       | the replaced version, as it was in the live table                       |
//! | `valid_from` | when that version became current (see below)                            |
//! | `valid_to`   | the `now` of the run that replaced it                                   |
//! | `reason`     | `changed` (an upsert with different data), `deleted` (delete            |
//! |              | reconciliation marked or removed it), `full_resync` (a `--full` swap    |
//! |              | changed or dropped it)                                                  |
//!
//! Each statement here runs in the transaction of the write that replaces the versions it
//! copies, just before that write: a page's upsert, a reconciliation's mark/remove, a full
//! resync's swap. A run killed before the commit leaves neither, so history never holds a
//! version whose replacement was lost (nor the reverse). Only real changes are recorded: a row
//! re-sent with identical data makes no history row (SQLite compares the JSON text as received,
//! PostgreSQL the `jsonb` value, as the full swap's counts do).
//!
//! `valid_from`: when the previous version of the same id ended (the latest history row's
//! `valid_to`), unless that was a deletion or there is none; then the live row's `synced_at`.
//! `synced_at` is refreshed whenever skysync writes the row, identical data included, so for a
//! record's first known version (and one that came back after a deletion) `valid_from` is the
//! last time skysync wrote it, which can be later than when it first saw it.
//!
//! The SQL is shared by both databases; only the placeholder syntax differs (`?1` / `$1`), so
//! each function takes the sink's spelling of its parameters.

use skysync_core::catalog::Entity;

use super::{Tables, quote_ident};

/// Why a version left the live table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    /// An upsert replaced it with different data.
    Changed,
    /// Delete reconciliation marked or removed it.
    Deleted,
    /// A `--full` resync's swap replaced or dropped it.
    FullResync,
}

impl Reason {
    fn as_sql(self) -> &'static str {
        match self {
            Reason::Changed => "'changed'",
            Reason::Deleted => "'deleted'",
            Reason::FullResync => "'full_resync'",
        }
    }
}

/// The quoted name of `e`'s history table.
pub(crate) fn table(e: &Entity) -> String {
    quote_ident(&format!("{}_history", e.name))
}

/// DDL of the history table and its index, for SQLite (`json` = `TEXT`, `time` = `TEXT`) or
/// PostgreSQL (`jsonb`, `timestamptz`).
pub(crate) fn create(e: &Entity, json: &str, time: &str) -> String {
    let h = table(e);
    let index = quote_ident(&format!("{}_history__id", e.name));
    format!(
        "CREATE TABLE IF NOT EXISTS {h} (
             id TEXT NOT NULL,
             data {json} NOT NULL,
             valid_from {time},
             valid_to {time} NOT NULL,
             reason TEXT NOT NULL CHECK (reason IN ('changed', 'deleted', 'full_resync')));
         CREATE INDEX IF NOT EXISTS {index} ON {h} (id, valid_to);"
    )
}

/// `valid_from` of the live row being copied (see the module docs).
fn valid_from(e: &Entity, live: &str) -> String {
    let h = table(e);
    format!(
        "COALESCE((SELECT CASE WHEN p.reason = 'deleted' THEN NULL ELSE p.valid_to END
                   FROM {h} AS p WHERE p.id = {live}.id ORDER BY p.valid_to DESC LIMIT 1),
                  {live}.synced_at)"
    )
}

fn insert(e: &Entity, t: &Tables, reason: Reason, now: &str, from_where: &str) -> String {
    format!(
        "INSERT INTO {h} (id, data, valid_from, valid_to, reason)
         SELECT {l}.id, {l}.data, {from}, {now}, {reason} {from_where}",
        h = table(e),
        l = t.live,
        from = valid_from(e, &t.live),
        reason = reason.as_sql(),
    )
}

/// SQLite, before one row's upsert into the live table: copies the live version of `id` if its
/// data differs from the incoming `data`. Parameters: `?1` id, `?2` data, `?3` now.
pub(crate) fn sqlite_changed(e: &Entity, t: &Tables) -> String {
    let from_where =
        format!("FROM {l} WHERE {l}.id = ?1 AND {l}.deleted_at IS NULL AND {l}.data IS NOT ?2", l = t.live);
    insert(e, t, Reason::Changed, "?3", &from_where)
}

/// PostgreSQL, before a page's upsert into the live table: copies the live versions the page
/// changes. Parameters: `$1` ids (`text[]`), `$2` data (`text[]`, JSON), `$3` now (text).
pub(crate) fn pg_changed(e: &Entity, t: &Tables) -> String {
    let from_where = format!(
        "FROM {l} JOIN unnest($1::text[], $2::text[]) AS u(id, data) ON u.id = {l}.id
         WHERE {l}.deleted_at IS NULL AND {l}.data IS DISTINCT FROM u.data::jsonb",
        l = t.live
    );
    insert(e, t, Reason::Changed, "$3::text::timestamptz", &from_where)
}

/// Before a reconciliation marks or removes unseen rows: copies them (rows already marked
/// deleted were copied when they were marked). `now` is the sink's placeholder for the time.
pub(crate) fn deleted(e: &Entity, t: &Tables, now: &str) -> String {
    let from_where = format!("FROM {l} WHERE {l}.deleted_at IS NULL AND {}", super::sql::unseen(t), l = t.live);
    insert(e, t, Reason::Deleted, now, &from_where)
}

/// Before a full resync's swap: copies the live versions the staging set changes or lacks.
/// `now` is the sink's placeholder for the time.
pub(crate) fn full_resync(e: &Entity, t: &Tables, now: &str) -> String {
    let from_where = format!(
        "FROM {l} LEFT JOIN {s} AS s ON s.id = {l}.id
         WHERE {l}.deleted_at IS NULL AND (s.id IS NULL OR s.data IS DISTINCT FROM {l}.data)",
        l = t.live,
        s = t.staging
    );
    insert(e, t, Reason::FullResync, now, &from_where)
}

/// SQLite: runs [`sqlite_changed`] for each row of a page about to be upserted into the live table.
pub(crate) fn sqlite_record_changed(
    conn: &rusqlite::Connection,
    e: &Entity,
    t: &Tables,
    rows: &[super::PageRow<'_>],
    now: &str,
) -> rusqlite::Result<()> {
    let mut copy = conn.prepare_cached(&sqlite_changed(e, t))?;
    for r in rows {
        copy.execute(rusqlite::params![r.id, r.data, now])?;
    }
    Ok(())
}

/// PostgreSQL: runs [`pg_changed`] for a page about to be upserted into the live table.
pub(crate) async fn pg_record_changed(
    c: &impl tokio_postgres::GenericClient,
    e: &Entity,
    t: &Tables,
    ids: &[&str],
    data: &[&str],
    now: &str,
) -> Result<(), tokio_postgres::Error> {
    c.execute(&pg_changed(e, t), &[&ids, &data, &now]).await.map(|_| ())
}
