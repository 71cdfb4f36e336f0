//! SQL text both database sinks run: the phases of a full-resync swap and of delete
//! reconciliation. Only statements without bind parameters live here (SQLite writes `?1`,
//! PostgreSQL `$1`); each sink runs them in its own transaction, with its own driver.
//!
//! A full resync's swap, in order, all in one transaction:
//! 1. [`count_removed`] and [`count_added_changed`]: what readers will see change;
//! 2. [`swap_in`]: the staging rows replace the live rows, and staging is dropped;
//! 3. [`count_live`]: the row count stored in `sync_state` with the new bookmark.

use super::Tables;

/// Live rows (not marked deleted) whose id the staging table lacks: one column, the count.
pub(crate) fn count_removed(t: &Tables) -> String {
    format!("SELECT count(*) FROM {l} WHERE {missing}", l = t.live, missing = t.live_rows_missing_from(&t.staging))
}

/// Staging ids readers did not see (new, or marked deleted and back), and staging ids whose
/// `data` or `date_modified` differs from the live row: two columns, the counts.
pub(crate) fn count_added_changed(t: &Tables) -> String {
    format!(
        "SELECT count(*) FILTER (WHERE l.id IS NULL),
                count(*) FILTER (WHERE l.id IS NOT NULL AND (l.data IS DISTINCT FROM s.data
                    OR l.date_modified IS DISTINCT FROM s.date_modified))
         FROM {s} AS s LEFT JOIN {l} AS l ON l.id = s.id AND l.deleted_at IS NULL",
        l = t.live,
        s = t.staging
    )
}

/// Replaces the live rows by the staging rows (none marked deleted) and drops the staging table.
pub(crate) fn swap_in(t: &Tables) -> String {
    format!(
        "DELETE FROM {l};
         INSERT INTO {l} (id, data, date_modified, synced_at, deleted_at)
             SELECT id, data, date_modified, synced_at, NULL FROM {s};
         DROP TABLE {s};",
        l = t.live,
        s = t.staging
    )
}

/// Live rows not marked deleted: one column, the count.
pub(crate) fn count_live(t: &Tables) -> String {
    format!("SELECT count(*) FROM {} WHERE deleted_at IS NULL", t.live)
}

/// The condition on live rows whose id the reconciliation's seen-ids table lacks.
pub(crate) fn unseen(t: &Tables) -> String {
    format!("NOT EXISTS (SELECT 1 FROM {s} WHERE {s}.id = {l}.id)", s = t.seen, l = t.live)
}

/// Removes the live rows a reconciliation did not see.
pub(crate) fn remove_unseen(t: &Tables) -> String {
    format!("DELETE FROM {} WHERE {}", t.live, unseen(t))
}

/// The counts [`count_added_changed`] and [`count_removed`] return, and the live count after
/// the swap, as the sink reports them (negative counts cannot happen; they read as 0).
pub(crate) fn full_swap(added: i64, changed: i64, removed: i64, row_count: i64) -> super::FullSwap {
    let n = |v: i64| v.max(0) as u64;
    super::FullSwap { added: n(added), changed: n(changed), removed: n(removed), row_count: n(row_count) }
}
