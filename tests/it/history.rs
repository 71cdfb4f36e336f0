//! `sync --history`: replaced versions land in `<entity>_history`, in the transaction of the write
//! that replaced them, on SQLite and on a real PostgreSQL server. Sink-level tests pin the
//! semantics (times, reasons, only real changes); engine tests run against the simulator.

use serde_json::Value;
use skysync_cli::sink::{self, DeleteMode, RecordJson, Row, Sink, Target};
use skysync_cli::sync::engine::{self, EngineOptions};
use skysync_cli::sync::progress::Silent;
use skysync_core::catalog::{self, Entity};
use skysync_core::host::SystemClock;
use skysync_tests::db::{Reader, TestDb};
use skysync_tests::sky::{api_client, sim_config, start_sim};
use time::OffsetDateTime;
use time::macros::datetime;

const E: &str = "gifts";

fn entities() -> Vec<&'static Entity> {
    vec![catalog::find(E).unwrap()]
}

fn row(id: &str, v: i64) -> Row {
    Row {
        id: id.to_owned(),
        date_modified: Some("2024-01-01T10:00:00Z".into()),
        data: RecordJson::new(&format!(r#"{{"id":"{id}","v":{v}}}"#)).unwrap(),
    }
}

fn rows(ids: &[&str], v: i64) -> Vec<Row> {
    ids.iter().map(|id| row(id, v)).collect()
}

const T1: OffsetDateTime = datetime!(2031-01-01 00:00:00 UTC);
const T2: OffsetDateTime = datetime!(2031-02-01 00:00:00 UTC);
const T3: OffsetDateTime = datetime!(2031-03-01 00:00:00 UTC);
const T4: OffsetDateTime = datetime!(2031-04-01 00:00:00 UTC);

/// How both databases print a time of the history table.
fn at(t: OffsetDateTime) -> String {
    let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");
    t.format(f).unwrap()
}

/// One history row: (id, v of the data, valid_from, valid_to, reason).
type Version = (String, i64, Option<String>, String, String);

struct Fixture(TestDb);

impl Fixture {
    fn sqlite() -> Fixture {
        Fixture(TestDb::sqlite("skysync.db"))
    }

    fn postgres() -> Fixture {
        Fixture(TestDb::postgres())
    }

    /// A sink keeping history, as `sync --history` opens it (`now`: the run's time).
    async fn open(&self, now: OffsetDateTime) -> Box<dyn Sink> {
        let mut s = sink::open(self.0.spec()).await.unwrap();
        s.keep_history(now).await.unwrap();
        s.prepare(&entities()).await.unwrap();
        s
    }

    /// The history of `table`, ordered by id and valid_to, read through a separate connection.
    async fn history(&self, table: &str) -> Vec<Version> {
        let r = self.0.reader().await;
        let sql =
            format!("SELECT id, data, valid_from, valid_to, reason FROM \"{table}_history\" ORDER BY id, valid_to");
        let v = |text: &str| serde_json::from_str::<Value>(text).unwrap()["v"].as_i64().unwrap_or(-1);
        match &r {
            Reader::Sqlite(c) => {
                let mut st = c.prepare(&sql).unwrap();
                st.query_map([], |r| Ok((r.get(0)?, v(&r.get::<_, String>(1)?), r.get(2)?, r.get(3)?, r.get(4)?)))
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap()
            }
            Reader::Pg(c) => {
                let ts = |col: &str| format!("to_char({col} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')");
                let sql = sql
                    .replace("data,", "data::text,")
                    .replace("valid_from,", &format!("{},", ts("valid_from")))
                    .replace("valid_to,", &format!("{},", ts("valid_to")));
                let rows = c.query(&sql, &[]).await.unwrap();
                rows.iter().map(|r| (r.get(0), v(r.get::<_, &str>(1)), r.get(2), r.get(3), r.get(4))).collect()
            }
        }
    }

    /// The `v` of record `id` as of `t`, by the query the README documents.
    async fn as_of(&self, id: &str, t: OffsetDateTime) -> Vec<i64> {
        let sql = as_of_query(E).replace(":id", &format!("'{id}'")).replace(":t", &format!("'{}'", at(t)));
        let r = self.0.reader().await;
        let v = |text: &str| serde_json::from_str::<Value>(text).unwrap()["v"].as_i64().unwrap();
        match &r {
            Reader::Sqlite(c) => {
                let mut st = c.prepare(&sql).unwrap();
                st.query_map([], |r| Ok(v(&r.get::<_, String>(0)?))).unwrap().collect::<Result<_, _>>().unwrap()
            }
            Reader::Pg(c) => {
                let sql = sql.replace("SELECT data", "SELECT data::text");
                c.query(&sql, &[]).await.unwrap().iter().map(|r| v(r.get::<_, &str>(0))).collect()
            }
        }
    }
}

/// The README's "a record as of a date" query (both databases; `:id` and `:t` are filled in).
fn as_of_query(entity: &str) -> String {
    format!(
        "SELECT data FROM {entity}_history WHERE id = :id AND valid_from <= :t AND valid_to > :t
         UNION ALL
         SELECT data FROM {entity} AS c WHERE id = :id AND (deleted_at IS NULL OR deleted_at > :t)
           AND NOT EXISTS (SELECT 1 FROM {entity}_history AS h WHERE h.id = c.id AND h.valid_to > :t)"
    )
}

fn version(id: &str, v: i64, from: OffsetDateTime, to: OffsetDateTime, reason: &str) -> Version {
    (id.to_owned(), v, Some(at(from)), at(to), reason.to_owned())
}

skysync_tests::both_backends!(
    sqlite = Fixture::sqlite(),
    postgres = Fixture::postgres();
    upserts_keep_only_real_changes_with_their_validity,
    reconcile_deletes_are_kept_as_deleted,
    a_full_resync_keeps_what_it_changed_or_dropped,
    a_page_that_does_not_commit_leaves_no_history,
    as_of_a_date_returns_the_version_of_that_date,
    the_engine_keeps_versions_replaced_by_changes_in_the_source,
);

async fn upserts_keep_only_real_changes_with_their_validity(f: Fixture) {
    let mut s = f.open(T1).await;
    s.commit_page(E, Target::Live, &rows(&["1", "2"], 1), "b1", T1).await.unwrap();
    assert_eq!(f.history(E).await, [], "new records replace nothing");
    // "1" is re-sent unchanged, "2" changes.
    s.commit_page(E, Target::Live, &[row("1", 1), row("2", 2)], "b2", T2).await.unwrap();
    assert_eq!(f.history(E).await, [version("2", 1, T1, T2, "changed")], "only the real change is kept");
    // "2" changes again: its previous version was current from T2 (when the first change landed).
    s.commit_page(E, Target::Live, &[row("2", 3)], "b3", T3).await.unwrap();
    assert_eq!(f.history(E).await, [version("2", 1, T1, T2, "changed"), version("2", 2, T2, T3, "changed")]);
}

async fn reconcile_deletes_are_kept_as_deleted(f: Fixture) {
    let mut s = f.open(T1).await;
    s.commit_page(E, Target::Live, &rows(&["1", "2", "3"], 1), "b1", T1).await.unwrap();
    s.begin_reconcile(E).await.unwrap();
    s.add_seen_ids(E, &["1".into()]).await.unwrap();
    assert_eq!(s.finish_reconcile(E, DeleteMode::Mark, T2).await.unwrap(), 2);
    let deleted = [version("2", 1, T1, T2, "deleted"), version("3", 1, T1, T2, "deleted")];
    assert_eq!(f.history(E).await, deleted);
    // Removing rows already marked deleted records them only once.
    s.begin_reconcile(E).await.unwrap();
    s.add_seen_ids(E, &["1".into()]).await.unwrap();
    s.finish_reconcile(E, DeleteMode::Remove, T3).await.unwrap();
    assert_eq!(f.history(E).await, deleted);
    // A record deleted while unmarked is kept by a removing reconciliation too.
    s.begin_reconcile(E).await.unwrap();
    s.finish_reconcile(E, DeleteMode::Remove, T4).await.unwrap();
    assert_eq!(f.history(E).await[0], version("1", 1, T1, T4, "deleted"));
    assert_eq!(f.history(E).await.len(), 3);
}

async fn a_full_resync_keeps_what_it_changed_or_dropped(f: Fixture) {
    let mut s = f.open(T1).await;
    s.commit_page(E, Target::Live, &rows(&["1", "2", "3"], 1), "b1", T1).await.unwrap();
    drop(s);
    let mut s = f.open(T2).await;
    assert_eq!(s.begin_full(E).await.unwrap(), None);
    // "1" unchanged, "2" changed, "3" gone, "4" new.
    s.commit_page(E, Target::Staging, &[row("1", 1), row("2", 2), row("4", 1)], "s1", T2).await.unwrap();
    assert_eq!(f.history(E).await, [], "staging pages replace nothing readers see");
    let swap = s.finish_full(E, "b2").await.unwrap();
    assert_eq!((swap.added, swap.changed, swap.removed), (1, 1, 1));
    assert_eq!(f.history(E).await, [version("2", 1, T1, T2, "full_resync"), version("3", 1, T1, T2, "full_resync")]);
}

/// A run killed before a page commits loses the page's history rows with its upsert: the
/// bookmark write (the transaction's last statement) is made to fail, as a kill would.
async fn a_page_that_does_not_commit_leaves_no_history(f: Fixture) {
    let mut s = f.open(T1).await;
    s.commit_page(E, Target::Live, &rows(&["1", "2"], 1), "b1", T1).await.unwrap();
    let r = f.0.reader().await;
    let trap = match &r {
        Reader::Sqlite(_) => {
            "CREATE TRIGGER fail_state BEFORE UPDATE ON sync_state \
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END;"
        }
        Reader::Pg(_) => {
            "CREATE FUNCTION fail_state() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$; \
             CREATE TRIGGER fail_state BEFORE UPDATE ON sync_state FOR EACH ROW EXECUTE FUNCTION fail_state();"
        }
    };
    r.exec(trap).await;
    let err = s.commit_page(E, Target::Live, &rows(&["1", "2"], 2), "b2", T2).await.unwrap_err();
    assert!(err.to_string().contains("injected failure"), "{err}");
    assert_eq!(f.history(E).await, [], "no history row without its upsert");
    assert!(r.rows(E).await.iter().all(|(_, data, _)| data["v"] == 1));
    r.exec(if matches!(r, Reader::Sqlite(_)) {
        "DROP TRIGGER fail_state"
    } else {
        "DROP TRIGGER fail_state ON sync_state"
    })
    .await;
    s.commit_page(E, Target::Live, &rows(&["1", "2"], 2), "b2", T2).await.unwrap();
    assert_eq!(f.history(E).await.len(), 2, "the retried page keeps both replaced versions");
}

async fn as_of_a_date_returns_the_version_of_that_date(f: Fixture) {
    let mut s = f.open(T1).await;
    s.commit_page(E, Target::Live, &rows(&["1", "2"], 1), "b1", T1).await.unwrap();
    s.commit_page(E, Target::Live, &rows(&["1"], 2), "b2", T2).await.unwrap();
    s.commit_page(E, Target::Live, &rows(&["1"], 3), "b3", T3).await.unwrap();
    s.begin_reconcile(E).await.unwrap();
    s.add_seen_ids(E, &["1".into()]).await.unwrap();
    s.finish_reconcile(E, DeleteMode::Mark, T3).await.unwrap();
    let day = time::Duration::days(1);
    assert_eq!(f.as_of("1", T1 + day).await, [1]);
    assert_eq!(f.as_of("1", T2).await, [2], "valid_to is exclusive, valid_from inclusive");
    assert_eq!(f.as_of("1", T2 + day).await, [2]);
    assert_eq!(f.as_of("1", T4).await, [3], "the live version");
    assert_eq!(f.as_of("2", T2).await, [1], "never changed, not yet deleted");
    assert_eq!(f.as_of("2", T4).await, Vec::<i64>::new(), "deleted at T3");
}

/// The engine with `history` on, against the simulator: a second run after changes keeps the
/// replaced versions, a reconciliation keeps the deleted ones, `--full` keeps nothing new when
/// nothing changed.
async fn the_engine_keeps_versions_replaced_by_changes_in_the_source(f: Fixture) {
    let sim = start_sim(sim_config(60)).await;
    let api = api_client(&sim, 0.0);
    let names = entities();
    let options = EngineOptions { page_size: Some(25), history: true, ..EngineOptions::default() };
    let run = |o: EngineOptions| {
        let (f, api, names) = (&f, &api, &names);
        async move {
            let mut s = sink::open(f.0.spec()).await.unwrap();
            let r = engine::run(api, s.as_mut(), names, &o, &SystemClock, &Silent).await.unwrap();
            assert!(r.ok(), "{:#?}", r.entities);
        }
    };
    run(options.clone()).await;
    let first = f.0.reader().await.rows(E).await;
    assert_eq!(f.history(E).await, []);

    let mut changed = sim.modify(E, 3);
    changed.sort();
    run(options.clone()).await;
    let h = f.history(E).await;
    assert_eq!(h.iter().map(|v| v.0.clone()).collect::<Vec<_>>(), changed);
    for (id, _, from, to, reason) in &h {
        assert_eq!(reason, "changed");
        assert!(from.as_deref() < Some(to.as_str()));
        let old = &first.iter().find(|r| &r.0 == id).unwrap().1;
        let kept = f.0.reader().await;
        let kept = match &kept {
            Reader::Sqlite(c) => c
                .query_row(&format!("SELECT data FROM {E}_history WHERE id = ?1"), [id], |r| r.get::<_, String>(0))
                .unwrap(),
            Reader::Pg(c) => {
                c.query_one(&format!("SELECT data::text FROM {E}_history WHERE id = $1"), &[id]).await.unwrap().get(0)
            }
        };
        assert_eq!(&serde_json::from_str::<Value>(&kept).unwrap(), old, "the replaced version is kept as it was");
    }

    let gone = sim.delete(E, 2);
    run(EngineOptions { reconcile: true, ..options.clone() }).await;
    let deleted: Vec<String> =
        f.history(E).await.into_iter().filter(|v| v.4 == "deleted").map(|v| v.0).collect::<Vec<_>>();
    let mut gone_sorted = gone.clone();
    gone_sorted.sort();
    assert_eq!(deleted, gone_sorted);

    // A full resync of an unchanged source replaces no version; one change is kept as full_resync.
    let before = f.history(E).await.len();
    run(EngineOptions { full: true, ..options.clone() }).await;
    assert_eq!(f.history(E).await.len(), before);
    let again = sim.modify(E, 1);
    run(EngineOptions { full: true, ..options.clone() }).await;
    let h = f.history(E).await;
    assert_eq!(h.len(), before + 1);
    assert!(h.iter().any(|v| v.0 == again[0] && v.4 == "full_resync"), "{h:?}");
    sim.shutdown().await;
}

/// The binary: `--history` with JSONL output is a usage error (exit 2) that writes nothing; with
/// SQLite, `history = true` in the profile's `[sync]` table turns it on like the flag.
#[tokio::test]
async fn the_cli_refuses_history_without_a_database_and_reads_it_from_the_config() {
    use skysync_tests::cli::Skysync;
    let sk = Skysync::with_sim(skysync_cli::sim::SimConfig { records: 20, ..Default::default() }).await;
    sk.seed(sk.minted_tokens(|_| {})).await;
    let out = sk.home().join("jsonl");
    let run = sk.run(&["sync", "gifts", "--history", "--format", "jsonl", "--out", out.to_str().unwrap()]).await;
    run.expect_code(2);
    assert!(run.stderr.contains("--history") && run.stderr.contains("SQLite"), "{}", run.stderr);
    assert!(!out.exists(), "nothing written");

    let db = sk.home().join("h.db");
    let db_arg = db.to_str().unwrap();
    sk.set_env("SKYSYNC_HISTORY", Some("1"));
    sk.run(&["sync", "gifts", "--db", db_arg, "--page-size", "10"]).await.expect_code(0);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let n: i64 = conn.query_row("SELECT count(*) FROM gifts_history", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 0, "the table exists, nothing replaced yet");
    sk.set_env("SKYSYNC_HISTORY", Some("0"));
    sk.run(&["sync", "funds", "--db", db_arg, "--page-size", "10"]).await.expect_code(0);
    let funds: i64 =
        conn.query_row("SELECT count(*) FROM sqlite_master WHERE name = 'funds_history'", [], |r| r.get(0)).unwrap();
    assert_eq!(funds, 0, "SKYSYNC_HISTORY=0: no history table");
}

/// The binary, SIGKILLed after a page commits, run after run: no version is ever kept twice (a
/// history row whose upsert was lost would be written again by the retried page), each history
/// row's upsert is there (the live row was written at or after its `valid_to`), and the finished
/// runs keep exactly one replaced version per changed record.
#[tokio::test]
async fn sigkilled_runs_keep_each_replaced_version_once() {
    use skysync_tests::cli::Skysync;
    let sk = Skysync::with_sim(skysync_cli::sim::SimConfig { records: 150, ..Default::default() }).await;
    sk.seed(sk.minted_tokens(|_| {})).await;
    let db = sk.home().join("kill.db");
    let db_arg = db.to_str().unwrap().to_owned();
    let sync = ["sync", "gifts", "--history", "--db", &db_arg, "--rate-limit", "20", "--page-size", "5"];
    sk.run(&sync).await.expect_code(0);
    let mut changed = sk.sim.modify("gifts", 200);
    changed.sort();

    let conn = rusqlite::Connection::open(&db).unwrap();
    let bookmark = || -> Option<String> {
        conn.query_row("SELECT bookmark FROM sync_state WHERE entity = 'gifts'", [], |r| r.get(0)).unwrap()
    };
    let check = || {
        let dupes: i64 =
            conn.query_row("SELECT count(*) - count(DISTINCT id) FROM gifts_history", [], |r| r.get(0)).unwrap();
        assert_eq!(dupes, 0, "a version was kept twice");
        let orphans: i64 = conn
            .query_row(
                "SELECT count(*) FROM gifts_history AS h JOIN gifts AS g ON g.id = h.id WHERE g.synced_at < h.valid_to",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(orphans, 0, "a history row without its upsert");
    };
    let mut kills = 0;
    for _ in 0..4 {
        let before = bookmark();
        let mut child = sk.command(&sync).spawn().expect("spawn skysync sync");
        // Poll until a page has committed (the bookmark moved) or the run ended, then SIGKILL.
        let finished = loop {
            if let Ok(Some(_)) = child.try_wait() {
                break true;
            }
            if bookmark() != before {
                break false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await; // the poll's interval
        };
        if !finished {
            child.start_kill().expect("SIGKILL");
            kills += 1;
        }
        let _ = child.wait().await;
        check();
    }
    assert!(kills > 0, "no run was killed mid-way");
    sk.run(&sync).await.expect_code(0);
    check();
    let mut kept: Vec<String> = {
        let mut st = conn.prepare("SELECT id FROM gifts_history WHERE reason = 'changed'").unwrap();
        st.query_map([], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
    };
    kept.sort();
    assert_eq!(kept, changed, "one replaced version per changed gift");
}
