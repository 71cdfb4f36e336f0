//! Event participants, a per-parent list (`/event/v1/events/{event_id}/participants`), against
//! the simulator into SQLite and a real PostgreSQL server: one chain per event, later runs only
//! for the events that changed, a killed run resumed, deleted events' participants reconciled,
//! and the simulator's knobs for what Blackbaud does not document.

use std::collections::BTreeMap;

use serde_json::Value;
use skysync_cli::sim::{SimConfig, SimHandle};
use skysync_cli::sink;
use skysync_cli::sync::engine::{self, EngineOptions, RunMode, RunReport};
use skysync_cli::sync::progress::Silent;
use skysync_core::api::ApiClient;
use skysync_core::catalog;
use skysync_core::host::SystemClock;
use skysync_tests::cli::Skysync;
use skysync_tests::db::TestDb;
use skysync_tests::sky::{api_client, sim_config, start_sim};

const CHILD: &str = "event_participants";
/// 2000 constituents: 20 events with 6 participants each.
const RECORDS: u64 = 2000;

async fn run_with(db: &TestDb, api: &ApiClient, o: &EngineOptions) -> RunReport {
    let mut s = sink::open(db.spec()).await.unwrap();
    let entities: Vec<_> = ["events", CHILD].iter().map(|n| catalog::find(n).unwrap()).collect();
    engine::run(api, s.as_mut(), &entities, o, &SystemClock, &Silent).await.unwrap()
}

async fn run(db: &TestDb, api: &ApiClient, o: &EngineOptions) -> RunReport {
    let r = run_with(db, api, o).await;
    assert!(r.ok(), "{:#?}", r.entities);
    r
}

fn child_report(r: &RunReport) -> &engine::EntityReport {
    r.entities.iter().find(|e| e.entity == CHILD).unwrap()
}

/// Participant calls per event since the last `reset_stats`.
fn calls_per_event(sim: &SimHandle) -> BTreeMap<String, u64> {
    let prefix = format!("{CHILD}/");
    sim.stats()
        .per_parent_calls
        .into_iter()
        .filter_map(|(k, v)| k.strip_prefix(&prefix).map(|e| (e.to_owned(), v)))
        .collect()
}

/// The live participant rows equal what the simulator lists for every live event, under
/// `{event_id}:{participant_id}`.
async fn assert_equals_source(db: &TestDb, sim: &SimHandle) {
    let rows: BTreeMap<String, Value> =
        db.reader().await.rows(CHILD).await.into_iter().filter(|r| !r.2).map(|r| (r.0, r.1)).collect();
    let mut want = BTreeMap::new();
    for event in sim.live_ids("events") {
        for p in sim.live_ids_under(CHILD, &event) {
            want.insert(format!("{event}:{p}"), sim.record(CHILD, &p).unwrap());
        }
    }
    assert!(!want.is_empty());
    assert_eq!(rows.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>(), "participant ids differ");
    for (id, data) in &want {
        assert_eq!(&rows[id], data, "participant {id}: stored data differs from the source");
    }
}

async fn participants_sync_per_changed_event(db: TestDb) {
    let sim = start_sim(sim_config(RECORDS)).await;
    let api = api_client(&sim, 0.0);
    let o = EngineOptions { page_size: Some(4), ..EngineOptions::default() };
    let r = run(&db, &api, &o).await;
    let events = sim.live_ids("events");
    assert_eq!(events.len(), 20);
    assert_equals_source(&db, &sim).await;
    let child = child_report(&r);
    assert_eq!((child.mode, child.parent_chains), (RunMode::Initial, Some((20, 20))));
    assert_eq!(child.added, 120);
    let calls = calls_per_event(&sim);
    assert_eq!(calls.len(), 20, "one chain per event");
    assert!(calls.values().all(|&c| c == 2), "6 participants, 4 a page: {calls:?}");

    // Participants of two events change: the next run visits those two events only.
    sim.reset_stats();
    let changed = [events[3].clone(), events[11].clone()];
    for e in &changed {
        sim.modify_under(CHILD, e, 2);
    }
    let r = run(&db, &api, &o).await;
    let child = child_report(&r);
    assert_eq!((child.mode, child.parent_chains), (RunMode::Incremental, Some((2, 20))));
    assert_eq!(calls_per_event(&sim).keys().cloned().collect::<Vec<_>>(), {
        let mut c = changed.to_vec();
        c.sort();
        c
    });
    // Each event's list is filtered from the newest participant held for it (minus the overlap):
    // the two changed ones and that newest one come back, not all six.
    assert_eq!(child.records, 6, "last_modified per event");
    assert_equals_source(&db, &sim).await;
    sim.shutdown().await;
}

async fn a_stopped_run_resumes_at_its_page(db: TestDb) {
    // With `last_modified` ignored, only the stored offset keeps the resumed event from starting
    // over (a filter from the newest participant held would otherwise cover for it).
    let sim = start_sim(SimConfig { child_lists_ignore_last_modified: true, ..sim_config(RECORDS) }).await;
    let o = EngineOptions { page_size: Some(4), ..EngineOptions::default() };
    // 5 pages of events, then 15 of the 40 participant pages.
    let stopped = run_with(&db, &api_client(&sim, 0.0).with_budget(Some(20)), &o).await;
    assert!(child_report(&stopped).error.is_some(), "{:#?}", stopped.entities);
    let rows = db.reader().await.rows(CHILD).await.len();
    assert_eq!(rows, 7 * 6 + 4, "15 pages landed before the stop: 7 events and the first page of the 8th");
    run(&db, &api_client(&sim, 0.0), &o).await;
    assert_equals_source(&db, &sim).await;
    let calls = calls_per_event(&sim);
    assert_eq!(calls.len(), 20);
    assert!(calls.values().all(|&c| c == 2), "no event's pages were fetched twice: {calls:?}");
    sim.shutdown().await;
}

async fn a_deleted_events_participants_are_reconciled(db: TestDb) {
    let sim = start_sim(sim_config(RECORDS)).await;
    let api = api_client(&sim, 0.0);
    let o = EngineOptions::default();
    run(&db, &api, &o).await;
    let gone = sim.delete("events", 1).remove(0);
    let r = run(&db, &api, &EngineOptions { reconcile: true, ..o }).await;
    let child = child_report(&r);
    assert!(child.reconciled);
    assert_eq!(child.removed, 6, "the deleted event's participants");
    let rows = db.reader().await.rows(CHILD).await;
    let prefix = format!("{gone}:");
    let of_gone: Vec<_> = rows.iter().filter(|r| r.0.starts_with(&prefix)).collect();
    assert_eq!(of_gone.len(), 6);
    assert!(of_gone.iter().all(|r| r.2), "marked deleted: {of_gone:?}");
    assert_equals_source(&db, &sim).await;
    sim.shutdown().await;
}

/// Knob: participant changes do not bump the event. An incremental run cannot see them (the
/// documented trade-off); `--full` visits every event and does.
#[tokio::test]
async fn changes_that_do_not_bump_the_event_wait_for_a_full_run() {
    let db = TestDb::sqlite("skysync.db");
    let sim = start_sim(SimConfig { participant_changes_bump_parent: false, ..sim_config(RECORDS) }).await;
    let api = api_client(&sim, 0.0);
    let o = EngineOptions::default();
    run(&db, &api, &o).await;
    let event = sim.live_ids("events")[5].clone();
    sim.modify_under(CHILD, &event, 3);
    sim.reset_stats();
    let r = run(&db, &api, &o).await;
    assert_eq!(child_report(&r).parent_chains, Some((0, 20)), "no event changed");
    assert!(calls_per_event(&sim).is_empty());
    let r = run(&db, &api, &EngineOptions { full: true, ..o }).await;
    let child = child_report(&r);
    assert_eq!((child.mode, child.parent_chains, child.changed), (RunMode::Full, Some((20, 20)), 3));
    assert_equals_source(&db, &sim).await;
    sim.shutdown().await;
}

/// Knob: the participants list ignores `last_modified`. Each changed event's whole list comes
/// back; the rows still equal the source.
#[tokio::test]
async fn a_participants_list_that_ignores_last_modified_still_syncs() {
    let db = TestDb::sqlite("skysync.db");
    let sim = start_sim(SimConfig { child_lists_ignore_last_modified: true, ..sim_config(RECORDS) }).await;
    let api = api_client(&sim, 0.0);
    let o = EngineOptions::default();
    run(&db, &api, &o).await;
    let event = sim.live_ids("events")[7].clone();
    sim.modify_under(CHILD, &event, 2);
    let r = run(&db, &api, &o).await;
    let child = child_report(&r);
    assert_eq!((child.parent_chains, child.records, child.changed), (Some((1, 20)), 6, 6));
    assert_equals_source(&db, &sim).await;
    sim.shutdown().await;
}

async fn cli_world() -> Skysync {
    let sk = Skysync::with_sim(SimConfig { records: RECORDS, ..SimConfig::default() }).await;
    let tokens = sk.minted_tokens(|_| {});
    sk.seed(tokens).await;
    sk
}

#[tokio::test]
async fn participants_need_their_events_synced_first() {
    let sk = cli_world().await;
    let run = sk.run(&["sync", CHILD]).await;
    run.expect_code(2);
    assert!(run.stderr.contains("sync events first"), "{}", run.stderr);
    assert_eq!(sk.sim.stats().api_calls, 0);
    let run = sk.run(&["sync", CHILD, "--format", "jsonl", "--out", "-"]).await;
    run.expect_code(2);
    assert!(run.stderr.contains("SQLite"), "{}", run.stderr);
}

#[tokio::test]
async fn dry_run_counts_the_parent_chains() {
    let sk = cli_world().await;
    let run = sk.run(&["sync", "--dry-run", "--json", "events", CHILD]).await;
    run.expect_code(0);
    let v: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(v["entities"][1]["parent_chains"], 0, "no events stored yet: {v}");
    sk.run(&["sync", "events", CHILD]).await.expect_code(0);
    let event = sk.sim.live_ids("events")[2].clone();
    sk.sim.modify_under(CHILD, &event, 1);
    sk.run(&["sync", "events"]).await.expect_code(0);
    let calls = sk.sim.stats().api_calls;
    let run = sk.run(&["sync", "--dry-run", CHILD, "--reconcile", "--estimate"]).await;
    run.expect_code(0);
    assert!(run.stdout.contains("1 parent chain"), "{}", run.stdout);
    let run = sk.run(&["sync", "--dry-run", "--json", CHILD, "--reconcile", "--estimate"]).await;
    let v: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    let p = &v["entities"][0];
    assert_eq!((p["parent_chains"].as_u64(), p["parents"].as_u64()), (Some(1), Some(20)), "{v}");
    assert_eq!(p["estimate"]["calls"], 21, "one chain and an id scan of every event: {v}");
    assert_eq!(sk.sim.stats().api_calls, calls, "no participant is probed");
}

/// `v_event_participants` carries each participant's `event_id` (from the row id), so it joins
/// `v_events`.
async fn the_participant_view_joins_events(db: TestDb) {
    let sim = start_sim(sim_config(RECORDS)).await;
    run(&db, &api_client(&sim, 0.0), &EngineOptions::default()).await;
    let reader = db.reader().await;
    let per_event = reader
        .count(
            "SELECT count(*) FROM (SELECT p.event_id FROM v_event_participants AS p \
             JOIN v_events AS e ON e.id = p.event_id GROUP BY p.event_id HAVING count(*) = 6) AS q",
        )
        .await;
    assert_eq!(per_event, 20, "every event joins its 6 participants");
    let mismatched = reader
        .count(
            "SELECT count(*) FROM v_event_participants AS p JOIN event_participants AS t \
             ON t.id = p.event_id || ':' || p.participant_id AND t.id = p.id",
        )
        .await;
    assert_eq!(mismatched, 120, "the view's (event_id, id) is the row id");
    sim.shutdown().await;
}

// Every behaviour above, as one test per backend: `sqlite::<name>` and `postgres::<name>`.
skysync_tests::both_backends!(
    sqlite = TestDb::sqlite("skysync.db"),
    postgres = TestDb::postgres();
    participants_sync_per_changed_event,
    a_stopped_run_resumes_at_its_page,
    a_deleted_events_participants_are_reconciled,
    the_participant_view_joins_events,
);
