//! Database sinks against a real SQLite file and a real PostgreSQL server (see `skysync_tests::pg`).
//! Every behaviour test runs on both backends.

use serde_json::Value;
use skysync_cli::sink::{
    self, DeleteMode, FullSwap, JsonlOut, RecordJson, Row, RunOutcome, Sink, SinkError, SinkSpec, Target,
};
use skysync_core::catalog::{self, Entity};
use skysync_tests::db::{Reader, TestDb};
use skysync_tests::pg::PgServer;
use time::OffsetDateTime;

const E: &str = "gifts";

fn entities() -> Vec<&'static Entity> {
    vec![catalog::find("gifts").unwrap(), catalog::find("constituents").unwrap()]
}

fn row(id: &str, v: i64) -> Row {
    Row {
        id: id.to_owned(),
        date_modified: Some(format!("2024-01-0{}T10:00:00.1234567-05:00", (v % 9) + 1)),
        data: RecordJson::new(&format!(r#"{{"id":"{id}","v":{v}}}"#)).unwrap(),
    }
}

fn rows(ids: &[&str], v: i64) -> Vec<Row> {
    ids.iter().map(|id| row(id, v)).collect()
}

/// One backend with a fresh, empty database (in a directory that does not exist yet).
struct Fixture(TestDb);

impl Fixture {
    fn sqlite() -> Fixture {
        Fixture(TestDb::sqlite("nested/dir/skysync.db"))
    }

    fn postgres() -> Fixture {
        Fixture(TestDb::postgres())
    }

    async fn open(&self) -> Box<dyn Sink> {
        let mut s = sink::open(self.0.spec()).await.unwrap();
        s.prepare(&entities()).await.unwrap();
        s
    }

    /// A second, independent connection, as a reader of the database would have.
    async fn reader(&self) -> Reader {
        self.0.reader().await
    }

    fn is_pg(&self) -> bool {
        self.0.is_pg()
    }
}

/// A trigger that makes a page's bookmark write fail, and its removal.
trait BookmarkTrap {
    async fn break_bookmark_writes(&self);
    async fn fix_bookmark_writes(&self);
}

impl BookmarkTrap for Reader {
    /// Makes every later UPDATE of sync_state fail, i.e. the bookmark write of a page.
    async fn break_bookmark_writes(&self) {
        match self {
            Reader::Sqlite(_) => {
                self.exec(
                    "CREATE TRIGGER fail_state BEFORE UPDATE ON sync_state \
                     BEGIN SELECT RAISE(ABORT, 'injected bookmark failure'); END;",
                )
                .await
            }
            Reader::Pg(_) => {
                self.exec(
                    "CREATE FUNCTION fail_state() RETURNS trigger LANGUAGE plpgsql AS \
                     $$ BEGIN RAISE EXCEPTION 'injected bookmark failure'; END $$; \
                     CREATE TRIGGER fail_state BEFORE UPDATE ON sync_state \
                     FOR EACH ROW EXECUTE FUNCTION fail_state();",
                )
                .await
            }
        }
    }

    async fn fix_bookmark_writes(&self) {
        match self {
            Reader::Sqlite(_) => self.exec("DROP TRIGGER fail_state").await,
            Reader::Pg(_) => self.exec("DROP TRIGGER fail_state ON sync_state").await,
        }
    }
}

skysync_tests::both_backends!(
    sqlite = Fixture::sqlite(),
    postgres = Fixture::postgres();
    commit_page_upserts_and_counts_added_and_changed,
    same_id_twice_is_one_row_latest_wins,
    rows_and_bookmark_commit_together,
    full_resync_keeps_old_rows_visible_until_finish,
    a_reader_transaction_spanning_the_swap_sees_one_consistent_table,
    interrupted_full_resync_resumes_from_its_staging_bookmark,
    full_resync_counts_against_what_readers_saw,
    reconcile_marks_then_removes_and_reappearing_rows_are_undeleted,
    finish_run_records_times_error_and_row_count,
    reopening_keeps_rows_and_state,
    unknown_entities_are_refused,
    counts_stay_right_after_the_newest_rows_were_removed,
    a_page_of_new_and_known_ids_rewrites_the_known_rows_whole,
);

async fn commit_page_upserts_and_counts_added_and_changed(f: Fixture) {
    let mut s = f.open().await;
    assert_eq!(s.state(E).await.unwrap(), None);
    let c = s.commit_page(E, Target::Live, &rows(&["1", "2"], 1), "b1", now()).await.unwrap();
    assert_eq!((c.added, c.changed), (2, 0));
    let c = s.commit_page(E, Target::Live, &rows(&["2", "3"], 2), "b2", now()).await.unwrap();
    assert_eq!((c.added, c.changed), (1, 1));
    let c = s.commit_page(E, Target::Live, &[], "b3", now()).await.unwrap();
    assert_eq!((c.added, c.changed), (0, 0));

    let r = f.reader().await;
    let got = r.rows(E).await;
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].1["v"], 1);
    assert_eq!(got[1].1["v"], 2, "latest data wins");
    assert_eq!(got[2].1["v"], 2);
    assert!(got.iter().all(|r| !r.2));
    // 2024-01-03T10:00:00.1234567-05:00 → UTC, microseconds.
    assert_eq!(r.date_modified(E, "2").await.as_deref(), Some("2024-01-03T15:00:00.123456Z"));
    assert_eq!(s.state(E).await.unwrap().unwrap().bookmark.as_deref(), Some("b3"));

    // Absent or unparseable date_modified is stored as NULL, the row still lands.
    let mut odd = row("4", 4);
    odd.date_modified = Some("not a date".into());
    let mut none = row("5", 5);
    none.date_modified = None;
    s.commit_page(E, Target::Live, &[odd, none], "b4", now()).await.unwrap();
    assert_eq!(r.date_modified(E, "4").await, None);
    assert_eq!(r.date_modified(E, "5").await, None);
    // The other entity's table is untouched.
    assert!(r.rows("constituents").await.is_empty());
}

async fn same_id_twice_is_one_row_latest_wins(f: Fixture) {
    let mut s = f.open().await;
    let page = vec![row("7", 1), row("8", 1), row("7", 2)];
    let c = s.commit_page(E, Target::Live, &page, "b1", now()).await.unwrap();
    assert_eq!((c.added, c.changed), (2, 0));
    let c = s.commit_page(E, Target::Live, &page, "b1", now()).await.unwrap();
    assert_eq!((c.added, c.changed), (0, 2), "replaying a page is idempotent");
    let got = f.reader().await.rows(E).await;
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].0, "7");
    assert_eq!(got[0].1["v"], 2);
}

async fn rows_and_bookmark_commit_together(f: Fixture) {
    let mut s = f.open().await;
    s.commit_page(E, Target::Live, &rows(&["1"], 1), "b1", now()).await.unwrap();
    let r = f.reader().await;
    r.break_bookmark_writes().await;
    let err = s.commit_page(E, Target::Live, &rows(&["1", "2"], 2), "b2", now()).await.unwrap_err();
    assert!(err.to_string().contains("injected bookmark failure"), "{err}");
    r.fix_bookmark_writes().await;

    let got = r.rows(E).await;
    assert_eq!(got.len(), 1, "the page's rows were rolled back with its bookmark");
    assert_eq!(got[0].1["v"], 1);
    assert_eq!(s.state(E).await.unwrap().unwrap().bookmark.as_deref(), Some("b1"));

    // The sink is still usable after the failed transaction.
    s.commit_page(E, Target::Live, &rows(&["1", "2"], 2), "b2", now()).await.unwrap();
    assert_eq!(r.ids(E).await, ["1", "2"]);
    assert_eq!(s.state(E).await.unwrap().unwrap().bookmark.as_deref(), Some("b2"));
}

async fn full_resync_keeps_old_rows_visible_until_finish(f: Fixture) {
    let mut s = f.open().await;
    s.commit_page(E, Target::Live, &rows(&["1", "2", "3"], 1), "live1", now()).await.unwrap();
    let err = s.commit_page(E, Target::Staging, &rows(&["9"], 1), "x", now()).await.unwrap_err();
    assert!(matches!(err, SinkError::NoFullResync { .. }), "{err}");

    assert_eq!(s.begin_full(E).await.unwrap(), None);
    let c = s.commit_page(E, Target::Staging, &rows(&["2", "4"], 2), "s1", now()).await.unwrap();
    assert_eq!((c.added, c.changed), (2, 0), "counts are against the staging table");

    let r = f.reader().await;
    let live = r.rows(E).await;
    assert_eq!(live.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(), ["1", "2", "3"]);
    assert!(live.iter().all(|r| r.1["v"] == 1), "readers still see the old rows");
    let st = s.state(E).await.unwrap().unwrap();
    assert_eq!(st.bookmark.as_deref(), Some("live1"));
    assert_eq!(st.staging_bookmark.as_deref(), Some("s1"));

    // "2" changed (v1 → v2), "4" is new, "1" and "3" are gone.
    assert_eq!(s.finish_full(E, "live2").await.unwrap(), swap(1, 1, 2, 2));
    let live = r.rows(E).await;
    assert_eq!(live.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(), ["2", "4"]);
    assert!(live.iter().all(|r| r.1["v"] == 2));
    let st = s.state(E).await.unwrap().unwrap();
    assert_eq!(st.bookmark.as_deref(), Some("live2"));
    assert_eq!(st.staging_bookmark, None);
    assert_eq!(st.row_count, 2);
    // Staging is gone: a second finish has nothing to swap in.
    let err = s.finish_full(E, "again").await.unwrap_err();
    assert!(matches!(err, SinkError::NoFullResync { .. }), "{err}");
    assert_eq!(r.ids(E).await, ["2", "4"]);
}

/// A reader in the middle of a transaction when `--full` swaps the table in sees the old table
/// throughout (PostgreSQL: the swap waits for it; SQLite: its snapshot stays), never a mix or an
/// error, and its next transaction sees the new table.
async fn a_reader_transaction_spanning_the_swap_sees_one_consistent_table(f: Fixture) {
    let mut s = f.open().await;
    s.commit_page(E, Target::Live, &rows(&["1", "2", "3"], 1), "live1", now()).await.unwrap();
    s.begin_full(E).await.unwrap();
    s.commit_page(E, Target::Staging, &rows(&["2", "4"], 2), "s1", now()).await.unwrap();

    let r = f.reader().await;
    r.exec(if f.is_pg() { "BEGIN ISOLATION LEVEL REPEATABLE READ" } else { "BEGIN" }).await;
    let old = r.rows(E).await;
    assert_eq!(old.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(), ["1", "2", "3"]);
    // Run the swap until it is done or waits for a lock the reader holds (PostgreSQL, if the
    // swap replaces the table); only then read again inside the same transaction.
    let watcher = f.reader().await;
    let waiting = if f.is_pg() { "SELECT count(*) FROM pg_locks WHERE NOT granted" } else { "SELECT 0" };
    let finish = s.finish_full(E, "live2");
    tokio::pin!(finish);
    let done = loop {
        tokio::select! {
            swapped = &mut finish => break Some(swapped),
            n = watcher.count(waiting) => if n > 0 { break None },
        }
    };
    let again = r.rows(E).await;
    r.exec("COMMIT").await;
    let swapped = match done {
        Some(swapped) => swapped,
        None => finish.await,
    };
    assert_eq!(swapped.unwrap(), swap(1, 1, 2, 2));
    assert_eq!(again, old, "the same table throughout the reader's transaction");
    let new = r.rows(E).await;
    assert_eq!(new.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(), ["2", "4"], "the next transaction sees the swap");
}

async fn interrupted_full_resync_resumes_from_its_staging_bookmark(f: Fixture) {
    {
        let mut s = f.open().await;
        s.commit_page(E, Target::Live, &rows(&["1"], 1), "live1", now()).await.unwrap();
        assert_eq!(s.begin_full(E).await.unwrap(), None);
        s.commit_page(E, Target::Staging, &rows(&["5"], 2), "s1", now()).await.unwrap();
        // The process dies here.
    }
    let mut s = f.open().await;
    assert_eq!(s.begin_full(E).await.unwrap().as_deref(), Some("s1"));
    s.commit_page(E, Target::Staging, &rows(&["6"], 2), "s2", now()).await.unwrap();
    assert_eq!(s.finish_full(E, "live2").await.unwrap(), swap(2, 0, 1, 2));
    assert_eq!(f.reader().await.ids(E).await, ["5", "6"]);

    // A new full resync after a finished one starts clean.
    assert_eq!(s.begin_full(E).await.unwrap(), None);
    s.commit_page(E, Target::Staging, &rows(&["7"], 3), "t1", now()).await.unwrap();
    assert_eq!(s.finish_full(E, "live3").await.unwrap(), swap(1, 0, 2, 1));
    assert_eq!(f.reader().await.ids(E).await, ["7"]);
}

/// The caller's clock: a fixed time, far from the system clock's, so a sink that stamped its own
/// time would be seen. Microseconds: what both databases store.
fn now() -> OffsetDateTime {
    time::macros::datetime!(2031-02-03 04:05:06.123456 UTC)
}

fn swap(added: u64, changed: u64, removed: u64, row_count: u64) -> FullSwap {
    FullSwap { added, changed, removed, row_count }
}

/// A full resync's counts compare the new set with the live rows readers saw, not with staging.
async fn full_resync_counts_against_what_readers_saw(f: Fixture) {
    let mut s = f.open().await;
    s.commit_page(E, Target::Live, &rows(&["1", "2", "3", "4", "5"], 1), "live1", now()).await.unwrap();
    // "5" is marked deleted: readers do not see it as a live record.
    s.begin_reconcile(E).await.unwrap();
    s.add_seen_ids(E, &["1".into(), "2".into(), "3".into(), "4".into()]).await.unwrap();
    assert_eq!(s.finish_reconcile(E, DeleteMode::Mark, now()).await.unwrap(), 1);

    // The same set again: nothing changed for readers.
    assert_eq!(s.begin_full(E).await.unwrap(), None);
    s.commit_page(E, Target::Staging, &rows(&["1", "2"], 1), "s1", now()).await.unwrap();
    s.commit_page(E, Target::Staging, &rows(&["3", "4"], 1), "s2", now()).await.unwrap();
    assert_eq!(s.finish_full(E, "live2").await.unwrap(), swap(0, 0, 0, 4));

    // "1" unchanged, "2" new data, "3" only a new date_modified, "4" gone, "5" back, "6" new.
    assert_eq!(s.begin_full(E).await.unwrap(), None);
    let mut page = rows(&["1"], 1);
    page.extend(rows(&["2"], 2));
    let mut touched = row("3", 1);
    touched.date_modified = Some("2025-06-01T00:00:00Z".into());
    page.push(touched);
    page.extend(rows(&["5", "6"], 1));
    s.commit_page(E, Target::Staging, &page, "t1", now()).await.unwrap();
    assert_eq!(s.finish_full(E, "live3").await.unwrap(), swap(2, 2, 1, 5));
    assert_eq!(f.reader().await.ids(E).await, ["1", "2", "3", "5", "6"]);
    assert_eq!(s.state(E).await.unwrap().unwrap().row_count, 5);
}

async fn reconcile_marks_then_removes_and_reappearing_rows_are_undeleted(f: Fixture) {
    let mut s = f.open().await;
    s.commit_page(E, Target::Live, &rows(&["1", "2", "3", "4", "5"], 1), "b", now()).await.unwrap();
    let err = s.add_seen_ids(E, &["1".into()]).await.unwrap_err();
    assert!(matches!(err, SinkError::NoReconcile { .. }), "{err}");
    let err = s.finish_reconcile(E, DeleteMode::Mark, now()).await.unwrap_err();
    assert!(matches!(err, SinkError::NoReconcile { .. }), "{err}");

    s.begin_reconcile(E).await.unwrap();
    assert!(s.state(E).await.unwrap().unwrap().reconcile_in_progress);
    s.add_seen_ids(E, &["1".into(), "2".into()]).await.unwrap();
    s.add_seen_ids(E, &["3".into(), "3".into(), "99".into()]).await.unwrap();
    assert_eq!(s.finish_reconcile(E, DeleteMode::Mark, now()).await.unwrap(), 2);
    let st = s.state(E).await.unwrap().unwrap();
    assert!(!st.reconcile_in_progress);
    assert_eq!(st.last_reconcile_at, Some(now()), "the caller's time, not the sink's clock");

    let r = f.reader().await;
    let deleted: Vec<_> = r.rows(E).await.into_iter().filter(|r| r.2).map(|r| r.0).collect();
    assert_eq!(deleted, ["4", "5"]);
    s.finish_run(E, &RunOutcome::Success, now()).await.unwrap();
    assert_eq!(s.state(E).await.unwrap().unwrap().row_count, 3, "marked rows are not counted");

    // A marked row that comes back is live again (and it was known, so it counts as changed).
    let c = s.commit_page(E, Target::Live, &rows(&["4"], 2), "b2", now()).await.unwrap();
    assert_eq!((c.added, c.changed), (0, 1));
    let deleted: Vec<_> = r.rows(E).await.into_iter().filter(|r| r.2).map(|r| r.0).collect();
    assert_eq!(deleted, ["5"]);

    // A restarted reconciliation starts from an empty seen set.
    s.begin_reconcile(E).await.unwrap();
    s.add_seen_ids(E, &["3".into()]).await.unwrap();
    s.begin_reconcile(E).await.unwrap();
    s.add_seen_ids(E, &["1".into(), "2".into(), "4".into()]).await.unwrap();
    assert_eq!(s.finish_reconcile(E, DeleteMode::Remove, now()).await.unwrap(), 2, "3 and the marked 5");
    assert_eq!(r.ids(E).await, ["1", "2", "4"]);
    assert!(r.rows(E).await.iter().all(|r| !r.2));
}

/// Added and changed are counted against the table the page goes to, whatever happened to its
/// newest rows before (rowids of removed rows, a staging table).
async fn counts_stay_right_after_the_newest_rows_were_removed(f: Fixture) {
    let mut s = f.open().await;
    s.commit_page(E, Target::Live, &rows(&["1", "2", "3", "4"], 1), "b", now()).await.unwrap();
    s.begin_reconcile(E).await.unwrap();
    s.add_seen_ids(E, &["1".into(), "2".into()]).await.unwrap();
    assert_eq!(s.finish_reconcile(E, DeleteMode::Remove, now()).await.unwrap(), 2);
    // "4" and "3" (the newest) are gone: they are new again, among known and new ids.
    let c = s.commit_page(E, Target::Live, &rows(&["4", "1", "9", "3", "2"], 2), "b2", now()).await.unwrap();
    assert_eq!((c.added, c.changed), (3, 2));
    let c = s.commit_page(E, Target::Live, &rows(&["9", "10", "4"], 3), "b3", now()).await.unwrap();
    assert_eq!((c.added, c.changed), (1, 2));
    assert_eq!(f.reader().await.ids(E).await, ["1", "10", "2", "3", "4", "9"]);

    s.begin_full(E).await.unwrap();
    let c = s.commit_page(E, Target::Staging, &rows(&["2", "5"], 4), "s1", now()).await.unwrap();
    assert_eq!((c.added, c.changed), (2, 0), "counted against the staging table");
    let c = s.commit_page(E, Target::Staging, &rows(&["5", "6"], 4), "s2", now()).await.unwrap();
    assert_eq!((c.added, c.changed), (1, 1));
}

/// A page mixing new and known ids counts each once, and a known row gets every column of the
/// new version: data, `date_modified`, `synced_at`, and `deleted_at` cleared (SQLite writes a
/// known row with its own statement after the insert found the id taken).
async fn a_page_of_new_and_known_ids_rewrites_the_known_rows_whole(f: Fixture) {
    let mut s = f.open().await;
    let before = now() - time::Duration::days(1);
    s.commit_page(E, Target::Live, &rows(&["1", "2", "3"], 1), "b1", before).await.unwrap();
    s.begin_reconcile(E).await.unwrap();
    s.add_seen_ids(E, &["1".into(), "2".into()]).await.unwrap();
    s.finish_reconcile(E, DeleteMode::Mark, before).await.unwrap();

    let c = s.commit_page(E, Target::Live, &rows(&["4", "1", "5", "3", "2"], 2), "b2", now()).await.unwrap();
    assert_eq!((c.added, c.changed), (2, 3));
    let r = f.reader().await;
    let got = r.rows(E).await;
    assert_eq!(got.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(), ["1", "2", "3", "4", "5"]);
    assert!(got.iter().all(|r| r.1["v"] == 2 && !r.2), "new data everywhere, nothing marked deleted: {got:?}");
    // v = 2 → 2024-01-03T10:00:00.1234567-05:00.
    for id in ["1", "3", "4"] {
        assert_eq!(r.date_modified(E, id).await.as_deref(), Some("2024-01-03T15:00:00.123456Z"), "{id}");
    }
    assert_eq!(r.count(&format!("SELECT count(DISTINCT synced_at) FROM {E}")).await, 1, "every row stamped now");
    assert_eq!(s.state(E).await.unwrap().unwrap().bookmark.as_deref(), Some("b2"));
}

#[tokio::test]
async fn sqlite_new_files_get_16k_pages_and_existing_files_keep_theirs() {
    let page_size = |path: &std::path::Path| -> i64 {
        rusqlite::Connection::open(path).unwrap().query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let new = dir.path().join("new.db");
    let mut s = sink::open(&SinkSpec::Sqlite(new.clone())).await.unwrap();
    s.prepare(&entities()).await.unwrap();
    s.commit_page(E, Target::Live, &rows(&["1"], 1), "b", now()).await.unwrap();
    drop(s);
    assert_eq!(page_size(&new), 16384);

    // A file an older skysync made (4 KiB pages, WAL) keeps its page size and its rows.
    let old = dir.path().join("old.db");
    let conn = rusqlite::Connection::open(&old).unwrap();
    conn.execute_batch("PRAGMA page_size = 4096; PRAGMA journal_mode = WAL; CREATE TABLE t (x);").unwrap();
    drop(conn);
    let mut s = sink::open(&SinkSpec::Sqlite(old.clone())).await.unwrap();
    s.prepare(&entities()).await.unwrap();
    let c = s.commit_page(E, Target::Live, &rows(&["1", "2"], 1), "b", now()).await.unwrap();
    assert_eq!((c.added, c.changed), (2, 0));
    drop(s);
    assert_eq!(page_size(&old), 4096);
}

#[tokio::test]
async fn sqlite_counts_right_when_the_largest_rowid_is_taken() {
    // Only then does SQLite pick new rowids at random: counting must not rely on their order.
    let f = Fixture::sqlite();
    let mut s = f.open().await;
    s.commit_page(E, Target::Live, &rows(&["1"], 1), "b", now()).await.unwrap();
    let r = f.reader().await;
    r.exec(&format!("UPDATE {E} SET rowid = 9223372036854775807 WHERE id = '1'")).await;
    let c = s.commit_page(E, Target::Live, &rows(&["2", "1", "3"], 2), "b2", now()).await.unwrap();
    assert_eq!((c.added, c.changed), (2, 1));
    let c = s.commit_page(E, Target::Live, &rows(&["3", "4"], 3), "b3", now()).await.unwrap();
    assert_eq!((c.added, c.changed), (1, 1));
    assert_eq!(r.ids(E).await, ["1", "2", "3", "4"]);
}

async fn finish_run_records_times_error_and_row_count(f: Fixture) {
    let mut s = f.open().await;
    s.commit_page(E, Target::Live, &rows(&["1", "2"], 1), "b", now()).await.unwrap();
    s.finish_run(E, &RunOutcome::Failed("HTTP 503 from SKY".into()), now()).await.unwrap();
    let st = s.state(E).await.unwrap().unwrap();
    assert_eq!(st.last_run_at, Some(now()), "the caller's time, not the sink's clock");
    assert_eq!(st.last_success_at, None);
    assert_eq!(st.last_error.as_deref(), Some("HTTP 503 from SKY"));
    assert_eq!(st.row_count, 2);
    assert_eq!(st.bookmark.as_deref(), Some("b"));

    s.commit_page(E, Target::Live, &rows(&["3"], 1), "b2", now()).await.unwrap();
    s.finish_run(E, &RunOutcome::Success, now()).await.unwrap();
    let st2 = s.state(E).await.unwrap().unwrap();
    assert_eq!(st2.last_error, None, "success clears the error");
    let later = now() + time::Duration::minutes(5);
    s.finish_run(E, &RunOutcome::Success, later).await.unwrap();
    let st2 = s.state(E).await.unwrap().unwrap();
    assert_eq!((st2.last_run_at, st2.last_success_at), (Some(later), Some(later)));
    assert_eq!(st2.row_count, 3);

    // A run of an entity with no pages yet still gets a state.
    s.finish_run("constituents", &RunOutcome::Success, now()).await.unwrap();
    let names: Vec<_> = s.states().await.unwrap().into_iter().map(|s| s.entity).collect();
    assert_eq!(names, ["constituents", "gifts"]);
}

async fn reopening_keeps_rows_and_state(f: Fixture) {
    let before = {
        let mut s = f.open().await;
        s.commit_page(E, Target::Live, &rows(&["1", "2"], 1), "b1", now()).await.unwrap();
        s.finish_run(E, &RunOutcome::Success, now()).await.unwrap();
        s.state(E).await.unwrap().unwrap()
    };
    let mut s = f.open().await;
    s.prepare(&entities()).await.unwrap(); // idempotent
    assert_eq!(s.state(E).await.unwrap().unwrap(), before);
    assert_eq!(s.states().await.unwrap(), vec![before]);
    assert_eq!(f.reader().await.ids(E).await, ["1", "2"]);
    let c = s.commit_page(E, Target::Live, &rows(&["2"], 2), "b2", now()).await.unwrap();
    assert_eq!((c.added, c.changed), (0, 1));
    let d = s.describe();
    if f.is_pg() {
        assert!(d.starts_with("PostgreSQL postgres://"), "{d}");
    } else {
        assert!(d.starts_with("SQLite ") && d.ends_with("skysync.db"), "{d}");
    }
}

async fn unknown_entities_are_refused(f: Fixture) {
    let mut s = f.open().await;
    for name in ["nope", "sync_state", "gifts\"; DROP TABLE gifts; --", "Gifts"] {
        let err = s.commit_page(name, Target::Live, &rows(&["1"], 1), "b", now()).await.unwrap_err();
        assert!(matches!(err, SinkError::UnknownEntity(_)), "{name}: {err}");
        let err = s.state(name).await.unwrap_err();
        assert!(matches!(err, SinkError::UnknownEntity(_)), "{name}: {err}");
    }
    assert!(f.reader().await.rows(E).await.is_empty());
}

#[tokio::test]
async fn postgres_rejected_rows_leave_the_bookmark_alone() {
    skysync_tests::skip_in_fast_tier!("PostgreSQL");
    let f = Fixture::postgres();
    let mut s = f.open().await;
    s.commit_page(E, Target::Live, &rows(&["1"], 1), "b1", now()).await.unwrap();
    // Valid JSON that jsonb refuses: the insert fails inside the page's transaction.
    let bad =
        Row { id: "2".into(), date_modified: None, data: RecordJson::new(r#"{"note":"nul \u0000 byte"}"#).unwrap() };
    let err = s.commit_page(E, Target::Live, &[row("1", 2), bad], "b2", now()).await.unwrap_err();
    assert!(matches!(err, SinkError::Postgres { .. }), "{err}");
    assert_eq!(s.state(E).await.unwrap().unwrap().bookmark.as_deref(), Some("b1"));
    let got = f.reader().await.rows(E).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1["v"], 1);
}

#[tokio::test]
async fn postgres_errors_and_descriptions_never_contain_the_password() {
    skysync_tests::skip_in_fast_tier!("PostgreSQL");
    let pg = PgServer::start().unwrap();
    let secret = "hunter2-S3cr3t";
    // `sslmode=disable` written out: the test server has no TLS, and a password is never sent
    // over plain TCP otherwise.
    let with_pw = |db: &str| format!("postgres://skysync:{secret}@127.0.0.1:{}/{db}?sslmode=disable", pg.port());

    // The test server trusts loopback, so the password is accepted and ignored.
    let s = sink::open(&SinkSpec::postgres(with_pw(pg.db()))).await.unwrap();
    let text = format!("{} {:?}", s.describe(), SinkSpec::postgres(with_pw(pg.db())));
    assert!(!text.contains(secret), "{text}");
    assert!(text.contains("skysync@127.0.0.1"), "{text}");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let cases = [
        with_pw("no_such_database"),
        format!("postgres://skysync:{secret}@127.0.0.1:{closed}/x"),
        format!("postgres://skysync:{secret}@127.0.0.1:{}/x?sslmode=require", pg.port()),
        format!("postgres://skysync:{secret}@127.0.0.1:{}/x?connect_timeout=nope", pg.port()),
    ];
    for url in cases {
        let err = match sink::open(&SinkSpec::postgres(url.clone())).await {
            Ok(_) => panic!("{url} should fail"),
            Err(e) => e,
        };
        let text = format!("{err} {err:?}");
        assert!(!text.contains(secret), "{text}");
        assert!(text.contains("127.0.0.1"), "errors still say where: {text}");
    }
    let err = SinkSpec::parse(Some(&format!("postgres://u:{secret}@h/db?sslmode=verify")), None, None, "x".into())
        .unwrap_err();
    assert!(!format!("{err} {err:?}").contains(secret));
}

/// A URL for the TLS-only test server, which refuses TCP connections without TLS: a sink that
/// opens there has used TLS.
fn tls_url(pg: &PgServer, host: &str, query: &str) -> String {
    format!("postgres://skysync:pw-Z9q@{host}:{}/{}?{query}", pg.port(), pg.db())
}

fn ca_param(pg: &PgServer) -> String {
    format!("sslrootcert={}", pg.ca_file().expect("TLS server has a CA").display())
}

/// Opens the sink, writes a page and reads its bookmark back through a second connection.
async fn tls_round_trip(url: &str) -> Result<(), SinkError> {
    let spec = SinkSpec::parse(Some(url), None, None, "unused.db".into())?;
    let mut s = sink::open(&spec).await?;
    s.prepare(&entities()).await?;
    let bookmark = format!("b-{}", url.len());
    s.commit_page(E, Target::Live, &rows(&["1", "2"], 1), &bookmark, now()).await?;
    let mut again = sink::open(&spec).await?;
    assert_eq!(again.state(E).await?.and_then(|s| s.bookmark), Some(bookmark));
    Ok(())
}

/// The failure of `url`, as the operator would read it; never with the password.
async fn tls_failure(url: &str) -> String {
    let err = match tls_round_trip(url).await {
        Ok(()) => panic!("{url} should fail"),
        Err(e) => e,
    };
    let text = format!("{err} {err:?}");
    assert!(!text.contains("pw-Z9q"), "{text}");
    err.to_string()
}

#[tokio::test]
async fn postgres_tls_require_and_prefer_encrypt_without_verifying() {
    skysync_tests::skip_in_fast_tier!("PostgreSQL");
    let pg = PgServer::start_tls().unwrap();
    // 127.0.0.1 is not in the certificate and its CA is not trusted: require does not check.
    tls_round_trip(&tls_url(&pg, "127.0.0.1", "sslmode=require")).await.unwrap();
    // prefer (explicit, the default, or libpq's allow) takes TLS when the server offers it.
    tls_round_trip(&tls_url(&pg, "127.0.0.1", "sslmode=prefer")).await.unwrap();
    tls_round_trip(&tls_url(&pg, "127.0.0.1", "application_name=skysync-test")).await.unwrap();
    tls_round_trip(&tls_url(&pg, "127.0.0.1", "sslmode=allow")).await.unwrap();
}

#[tokio::test]
async fn postgres_tls_verify_full_checks_the_ca_and_the_host_name() {
    skysync_tests::skip_in_fast_tier!("PostgreSQL");
    let pg = PgServer::start_tls().unwrap();
    let ca = ca_param(&pg);
    tls_round_trip(&tls_url(&pg, "localhost", &format!("sslmode=verify-full&{ca}"))).await.unwrap();
    // The certificate names localhost only: verify-full refuses the IP address, verify-ca does not.
    let text = tls_failure(&tls_url(&pg, "127.0.0.1", &format!("sslmode=verify-full&{ca}"))).await;
    assert!(text.contains("connecting failed") && text.contains("does not name the host"), "{text}");
    assert!(text.contains("sslmode=verify-ca"), "says what to do: {text}");
    tls_round_trip(&tls_url(&pg, "127.0.0.1", &format!("sslmode=verify-ca&{ca}"))).await.unwrap();
    // With sslrootcert, require checks the chain (as libpq does).
    tls_round_trip(&tls_url(&pg, "127.0.0.1", &format!("sslmode=require&{ca}"))).await.unwrap();
}

#[tokio::test]
async fn postgres_tls_with_the_wrong_ca_fails_clearly() {
    skysync_tests::skip_in_fast_tier!("PostgreSQL");
    let pg = PgServer::start_tls().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other-ca.pem");
    std::fs::write(&other, skysync_tests::pg::TestCa::new("not the server's CA").unwrap().pem()).unwrap();
    for mode in ["verify-full", "verify-ca", "require"] {
        let url = tls_url(&pg, "localhost", &format!("sslmode={mode}&sslrootcert={}", other.display()));
        let text = tls_failure(&url).await;
        assert!(text.contains("connecting failed"), "{mode}: {text}");
        assert!(text.contains("not issued by a CA in sslrootcert"), "{mode}: {text}");
        assert!(text.contains(&other.display().to_string()), "names the file: {text}");
    }
    // verify-full without sslrootcert trusts only the system roots, which do not include the test CA.
    let text = tls_failure(&tls_url(&pg, "localhost", "sslmode=verify-full")).await;
    assert!(text.contains("not issued by a CA in the system's trusted roots"), "{text}");
    assert!(text.contains("sslrootcert=/path/ca.pem"), "{text}");
    // An unreadable or empty sslrootcert is named before any connection is tried.
    let missing = dir.path().join("missing.pem");
    let text =
        tls_failure(&tls_url(&pg, "localhost", &format!("sslmode=verify-full&sslrootcert={}", missing.display())))
            .await;
    assert!(text.contains("setting up TLS failed") && text.contains("missing.pem"), "{text}");
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let text =
        tls_failure(&tls_url(&pg, "localhost", &format!("sslmode=verify-full&sslrootcert={}", empty.display()))).await;
    assert!(text.contains("contains no PEM certificate"), "{text}");
}

#[tokio::test]
async fn postgres_tls_disable_against_a_tls_only_server_fails_clearly() {
    skysync_tests::skip_in_fast_tier!("PostgreSQL");
    let pg = PgServer::start_tls().unwrap();
    let text = tls_failure(&tls_url(&pg, "127.0.0.1", "sslmode=disable")).await;
    assert!(text.contains("no encryption"), "the server's reason: {text}");
    assert!(text.contains("only accepts TLS connections"), "what to do: {text}");
}

#[tokio::test]
async fn postgres_tls_required_but_the_server_has_none_fails_clearly() {
    skysync_tests::skip_in_fast_tier!("PostgreSQL");
    // The shared test server runs with ssl=off; prefer falls back to plain (every other test).
    let pg = PgServer::start().unwrap();
    for mode in ["require", "verify-full"] {
        let url = format!("postgres://skysync:pw-Z9q@127.0.0.1:{}/{}?sslmode={mode}", pg.port(), pg.db());
        let text = tls_failure(&url).await;
        assert!(text.contains(&format!("sslmode={mode} needs TLS")), "{text}");
    }
    tls_round_trip(&format!("postgres://skysync@127.0.0.1:{}/{}?sslmode=prefer", pg.port(), pg.db())).await.unwrap();
}

#[tokio::test]
async fn spec_parse_picks_the_backend() {
    let d = std::path::PathBuf::from("/var/lib/skysync/skysync.db");
    let p = |db, format, out| SinkSpec::parse(db, format, out, d.clone());
    assert_eq!(p(None, None, None).unwrap(), SinkSpec::Sqlite(d.clone()));
    assert_eq!(p(Some("postgres://u@h/db"), None, None).unwrap(), SinkSpec::postgres("postgres://u@h/db"));
    assert_eq!(p(Some("sqlite://rel.db"), None, None).unwrap(), SinkSpec::Sqlite("rel.db".into()));
    assert_eq!(p(None, Some("jsonl"), Some("-")).unwrap(), SinkSpec::Jsonl(JsonlOut::Stdout));
    let err = p(None, Some("jsonl"), None).unwrap_err();
    assert!(err.to_string().contains("--out"), "{err}");
    let err = p(Some("mysql://h/db"), None, None).unwrap_err();
    assert!(err.to_string().contains("mysql"), "{err}");
}

#[tokio::test]
async fn jsonl_dir_appends_lines_and_keeps_state() {
    let dir = tempfile::tempdir().unwrap();
    let spec = SinkSpec::Jsonl(JsonlOut::Dir(dir.path().join("out")));
    {
        let mut s = sink::open(&spec).await.unwrap();
        s.prepare(&entities()).await.unwrap();
        let c = s.commit_page(E, Target::Live, &rows(&["1", "2"], 1), "b1", now()).await.unwrap();
        assert_eq!(c.added, 2);
        s.finish_run(E, &RunOutcome::Success, now()).await.unwrap();
        let err = s.begin_reconcile(E).await.unwrap_err();
        assert!(matches!(err, SinkError::Unsupported { .. }), "{err}");
    }
    let text = std::fs::read_to_string(dir.path().join("out/gifts.jsonl")).unwrap();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["entity"], "gifts");
    assert_eq!(lines[0]["id"], "1");
    assert_eq!(lines[0]["data"]["v"], 1);
    assert_eq!(lines[0]["date_modified"], "2024-01-02T10:00:00.1234567-05:00");

    let mut s = sink::open(&spec).await.unwrap();
    let st = s.state(E).await.unwrap().unwrap();
    assert_eq!(st.bookmark.as_deref(), Some("b1"));
    assert!(st.last_success_at.is_some());

    // Full resync: staging file, resumable, renamed over the live file.
    assert_eq!(s.begin_full(E).await.unwrap(), None);
    s.commit_page(E, Target::Staging, &rows(&["3"], 2), "s1", now()).await.unwrap();
    drop(s);
    let mut s = sink::open(&spec).await.unwrap();
    assert_eq!(s.begin_full(E).await.unwrap().as_deref(), Some("s1"));
    // JSONL does not compare with the file it replaces: every line of the new file is "added".
    assert_eq!(s.finish_full(E, "b2").await.unwrap(), swap(1, 0, 0, 1));
    let text = std::fs::read_to_string(dir.path().join("out/gifts.jsonl")).unwrap();
    assert_eq!(text.lines().count(), 1);
    assert!(text.contains(r#""id":"3""#));
    assert_eq!(s.state(E).await.unwrap().unwrap().bookmark.as_deref(), Some("b2"));
}

#[tokio::test]
async fn jsonl_stdout_keeps_no_state() {
    let mut s = sink::open(&SinkSpec::Jsonl(JsonlOut::Stdout)).await.unwrap();
    assert!(s.describe().contains("every run starts from the beginning"), "{}", s.describe());
    s.commit_page(E, Target::Live, &rows(&["1"], 1), "b1", now()).await.unwrap();
    s.finish_run(E, &RunOutcome::Success, now()).await.unwrap();
    assert_eq!(s.state(E).await.unwrap(), None);
    assert!(s.states().await.unwrap().is_empty());
    // A full resync on stdout reports the lines it wrote.
    assert_eq!(s.begin_full(E).await.unwrap(), None);
    s.commit_page(E, Target::Staging, &rows(&["1", "2"], 1), "s1", now()).await.unwrap();
    assert_eq!(s.finish_full(E, "b2").await.unwrap(), swap(2, 0, 0, 2));
}

#[test]
fn dedicated_postgres_server_stops_on_drop() {
    skysync_tests::skip_in_fast_tier!("PostgreSQL");
    let pg = PgServer::start_dedicated().unwrap();
    let addr = format!("127.0.0.1:{}", pg.port());
    assert!(std::net::TcpStream::connect(&addr).is_ok());
    drop(pg);
    assert!(std::net::TcpStream::connect(&addr).is_err(), "server still listening after drop");
}
