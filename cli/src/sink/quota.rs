//! The daily-quota bookkeeping: one `skysync_quota` row per profile with the calls counted in the
//! current quota day ([`QuotaLedger`]), written at the end of each run (and when Blackbaud answers
//! that the quota is used up). SQLite and PostgreSQL keep it in a table next to `sync_state`; a
//! JSONL directory keeps it in `quota.json` beside its `sync_state.json`.
//!
//! Written once per run, not with every page: a run killed before its end is not counted, so the
//! next run may believe more calls are left than are. Blackbaud's own `403` still stops that run
//! cleanly, and it records the day as used up.

use rusqlite::{Connection, OptionalExtension, params};
use skysync_core::sync::quota::QuotaLedger;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const COLUMNS: &str = "day_ends_at, calls_today, announced_reset, last_run_calls, last_run_estimate";

/// The table, created on first use (both databases accept this DDL).
const CREATE: &str = "CREATE TABLE IF NOT EXISTS skysync_quota (
    scope TEXT PRIMARY KEY NOT NULL,
    day_ends_at TEXT NOT NULL,
    calls_today BIGINT NOT NULL,
    announced_reset TEXT,
    last_run_calls BIGINT,
    last_run_estimate BIGINT)";

/// The JSONL sink's file.
pub(crate) const JSONL_FILE: &str = "quota.json";

fn text(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

fn time(s: Option<String>) -> Option<OffsetDateTime> {
    s.and_then(|s| OffsetDateTime::parse(&s, &Rfc3339).ok())
}

fn count(n: Option<u64>) -> Option<i64> {
    n.and_then(|n| i64::try_from(n).ok())
}

fn ledger(day_ends_at: String, calls: i64, reset: Option<String>, last: Option<i64>, est: Option<i64>) -> QuotaLedger {
    QuotaLedger {
        // An unreadable end is a day already over: the next run starts a fresh one.
        day_ends_at: time(Some(day_ends_at)).unwrap_or(OffsetDateTime::UNIX_EPOCH),
        calls_today: u64::try_from(calls).unwrap_or(0),
        announced_reset: time(reset),
        last_run_calls: last.and_then(|n| u64::try_from(n).ok()),
        last_run_estimate: est.and_then(|n| u64::try_from(n).ok()),
    }
}

/// SQLite: the stored ledger of `scope`.
pub(crate) fn sqlite_read(conn: &Connection, scope: &str) -> rusqlite::Result<Option<QuotaLedger>> {
    conn.execute_batch(CREATE)?;
    conn.query_row(&format!("SELECT {COLUMNS} FROM skysync_quota WHERE scope = ?1"), [scope], |r| {
        Ok(ledger(r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })
    .optional()
}

/// SQLite: stores the ledger of `scope`.
pub(crate) fn sqlite_write(conn: &Connection, scope: &str, l: &QuotaLedger) -> rusqlite::Result<()> {
    conn.execute_batch(CREATE)?;
    conn.execute(
        &format!(
            "INSERT INTO skysync_quota (scope, {COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (scope) DO UPDATE SET day_ends_at = excluded.day_ends_at,
                 calls_today = excluded.calls_today, announced_reset = excluded.announced_reset,
                 last_run_calls = excluded.last_run_calls, last_run_estimate = excluded.last_run_estimate"
        ),
        params![
            scope,
            text(l.day_ends_at),
            count(Some(l.calls_today)),
            l.announced_reset.map(text),
            count(l.last_run_calls),
            count(l.last_run_estimate)
        ],
    )
    .map(|_| ())
}

/// PostgreSQL: the stored ledger of `scope`.
pub(crate) async fn pg_read(
    c: &impl tokio_postgres::GenericClient,
    scope: &str,
) -> Result<Option<QuotaLedger>, tokio_postgres::Error> {
    c.batch_execute(CREATE).await?;
    let row = c.query_opt(&format!("SELECT {COLUMNS} FROM skysync_quota WHERE scope = $1"), &[&scope]).await?;
    Ok(row.map(|r| ledger(r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))))
}

/// PostgreSQL: stores the ledger of `scope`.
pub(crate) async fn pg_write(
    c: &impl tokio_postgres::GenericClient,
    scope: &str,
    l: &QuotaLedger,
) -> Result<(), tokio_postgres::Error> {
    c.batch_execute(CREATE).await?;
    c.execute(
        &format!(
            "INSERT INTO skysync_quota (scope, {COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (scope) DO UPDATE SET day_ends_at = excluded.day_ends_at,
                 calls_today = excluded.calls_today, announced_reset = excluded.announced_reset,
                 last_run_calls = excluded.last_run_calls, last_run_estimate = excluded.last_run_estimate"
        ),
        &[
            &scope,
            &text(l.day_ends_at),
            &count(Some(l.calls_today)),
            &l.announced_reset.map(text),
            &count(l.last_run_calls),
            &count(l.last_run_estimate),
        ],
    )
    .await
    .map(|_| ())
}

/// JSONL: every scope's ledger, from the file's bytes.
pub(crate) fn jsonl_parse(bytes: &[u8]) -> serde_json::Result<std::collections::BTreeMap<String, QuotaLedger>> {
    serde_json::from_slice(bytes)
}
