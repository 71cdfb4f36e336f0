//! The sync engine against the in-process SKY simulator over loopback, into a real SQLite file and
//! a real PostgreSQL server. Every behaviour runs on both backends.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;
use skysync_cli::sim::{Fault, FaultRates, SimHandle};
use skysync_cli::sink::{self, DeleteMode, Sink, SinkSpec};
use skysync_cli::sync::EntityReport;
use skysync_cli::sync::engine::{self, EngineOptions, RunMode, RunReport};
use skysync_cli::sync::progress::{Phase, Progress, Silent};
use skysync_core::api::{ApiClient, ApiError};
use skysync_core::catalog::{self, Entity};
use skysync_core::host::SystemClock;
use skysync_core::sync::Bookmark;
use skysync_tests::db::TestDb;
use skysync_tests::sky::{retrying_api_client, sim_config, start_sim};

/// A sim with `records` constituents (gifts = 2x, events = max(10, n/100)).
async fn sim(records: u64) -> SimHandle {
    start_sim(sim_config(records)).await
}

/// An API client for `sim`, as `skysync login` would leave it: tokens from a consent, pacing off.
fn client(sim: &SimHandle, budget: Option<u64>) -> ApiClient {
    paced_client(sim, budget, 0.0)
}

/// [`client`] with the shared pacer at `per_second` calls per second.
fn paced_client(sim: &SimHandle, budget: Option<u64>, per_second: f64) -> ApiClient {
    retrying_api_client(sim, per_second).with_budget(budget)
}

fn entities(names: &[&str]) -> Vec<&'static Entity> {
    names.iter().map(|n| catalog::find(n).unwrap()).collect()
}

fn opts(page_size: u32) -> EngineOptions {
    EngineOptions { page_size: Some(page_size), ..EngineOptions::default() }
}

#[derive(Clone, Copy, Debug)]
enum Db {
    Sqlite,
    Postgres,
}

/// A fresh database of one backend.
pub(crate) struct Fixture(TestDb);

impl Fixture {
    /// A reader of an existing database (e.g. one the `skysync` binary wrote).
    pub(crate) fn at(spec: SinkSpec) -> Fixture {
        Fixture(TestDb::at(spec))
    }

    /// A fresh PostgreSQL database, for tests that hand its URL to the binary.
    pub(crate) fn postgres() -> Fixture {
        Fixture(TestDb::postgres())
    }

    /// The sink description.
    pub(crate) fn spec(&self) -> &SinkSpec {
        self.0.spec()
    }

    /// Runs `sql` through a separate connection.
    pub(crate) async fn exec(&self, sql: &str) {
        self.0.reader().await.exec(sql).await
    }

    fn new(db: Db) -> Fixture {
        match db {
            Db::Sqlite => Fixture(TestDb::sqlite("skysync.db")),
            Db::Postgres => Fixture::postgres(),
        }
    }

    async fn sink(&self) -> Box<dyn Sink> {
        sink::open(self.0.spec()).await.unwrap()
    }

    /// One run with a fresh sink connection, as a new process would.
    async fn run(&self, api: &ApiClient, names: &[&str], o: &EngineOptions, p: &dyn Progress) -> RunReport {
        let mut sink = self.sink().await;
        engine::run(api, sink.as_mut(), &entities(names), o, &SystemClock, p).await.unwrap()
    }

    /// (id → (data, deleted)) of a table, read through a separate connection.
    pub(crate) async fn rows(&self, table: &str) -> BTreeMap<String, (Value, bool)> {
        let rows = self.0.reader().await.rows(table).await;
        rows.into_iter().map(|(id, data, deleted)| (id, (data, deleted))).collect()
    }

    /// Number of rows of a table (deleted ones included: a duplicate would show here).
    pub(crate) async fn count(&self, table: &str) -> usize {
        self.rows(table).await.len()
    }

    pub(crate) async fn bookmark(&self, entity: &str) -> Option<Bookmark> {
        let mut s = self.sink().await;
        s.state(entity).await.unwrap().and_then(|s| s.bookmark).map(|b| Bookmark::from_json(&b).unwrap())
    }

    /// The live (not deleted) rows equal the simulator's live records exactly.
    pub(crate) async fn assert_equals_source(&self, sim: &SimHandle, entity: &str) {
        let rows = self.rows(entity).await;
        let mut live: Vec<&String> = rows.iter().filter(|(_, (_, deleted))| !deleted).map(|(id, _)| id).collect();
        live.sort();
        let mut source = sim.live_ids(entity);
        source.sort();
        let source_refs: Vec<&String> = source.iter().collect();
        assert_eq!(live.len(), source.len(), "{entity}: row count differs from the source");
        assert_eq!(live, source_refs, "{entity}: ids differ from the source");
        for id in &source {
            let want = sim.record(entity, id).unwrap();
            assert!(same_json(&rows[id].0, &want), "{entity} {id}: stored data differs from the source");
        }
    }
}

/// JSON equality that treats 40 and 40.0 alike (jsonb normalizes numbers).
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_json(a, b)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

fn report<'a>(r: &'a RunReport, entity: &str) -> &'a EntityReport {
    r.entities.iter().find(|e| e.entity == entity).unwrap()
}

fn assert_ok(r: &RunReport) {
    assert!(r.ok(), "run failed: stopped={:?} entities={:#?}", r.stopped, r.entities);
}

/// Calls `f(entity, phase, pages)` after every committed page.
struct Hook<F: Fn(&Entity, Phase, u64) + Send + Sync>(F);

impl<F: Fn(&Entity, Phase, u64) + Send + Sync> Progress for Hook<F> {
    fn started(&self, _: &Entity, _: RunMode) {}
    fn page(&self, e: &Entity, phase: Phase, _records: u64, pages: u64, _expected: Option<u64>) {
        (self.0)(e, phase, pages)
    }
    fn finished(&self, _: &Entity, _: &EntityReport) {}
}

fn calls(sim: &SimHandle, entity: &str) -> u64 {
    sim.stats().per_entity_calls.get(entity).copied().unwrap_or(0)
}

async fn first_sync_equals_source_then_only_changes(db: Db) {
    let sim = sim(300).await;
    let fx = Fixture::new(db);
    let api = client(&sim, None);
    let names = ["constituents", "gifts", "events"];
    let r = fx.run(&api, &names, &opts(50), &Silent).await;
    assert_ok(&r);
    for e in names {
        fx.assert_equals_source(&sim, e).await;
        assert_eq!(report(&r, e).mode, RunMode::Initial);
    }
    let g = report(&r, "gifts");
    assert_eq!((g.added, g.changed), (600, 0));
    assert_eq!(g.pages, 13, "12 full pages of 50 and the chain's empty last page");
    assert!(matches!(fx.bookmark("gifts").await, Some(Bookmark::Chain { .. })));

    // Change a few records; the next run fetches only those.
    let changed = sim.modify("gifts", 7);
    sim.modify("constituents", 3);
    sim.modify("events", 2);
    let added = sim.add("gifts", 4);
    let before = calls(&sim, "gifts");
    let r = fx.run(&api, &names, &opts(50), &Silent).await;
    assert_ok(&r);
    let g = report(&r, "gifts");
    assert_eq!(g.mode, RunMode::Incremental);
    assert_eq!((g.added, g.changed), (added.len() as u64, changed.len() as u64), "only changed records are fetched");
    assert_eq!(calls(&sim, "gifts") - before, 2, "one page of changes and the empty page that ends the chain");
    assert_eq!(report(&r, "constituents").changed, 3);
    assert!(report(&r, "events").records >= 2, "events rescan from the last run minus the overlap");
    for e in names {
        fx.assert_equals_source(&sim, e).await;
    }
    assert_eq!(fx.count("gifts").await, 604, "no duplicates");

    // Nothing changed: each entity costs one call (sort_token chains) or one short scan.
    let before = calls(&sim, "gifts");
    let r = fx.run(&api, &names, &opts(50), &Silent).await;
    assert_ok(&r);
    assert_eq!(calls(&sim, "gifts") - before, 1);
    assert_eq!(report(&r, "gifts").records, 0);
}

async fn faults_500_429_and_drops_still_converge(db: Db) {
    let sim = sim(300).await;
    sim.set_fault_rates(FaultRates { api_500: 0.10, api_429: 0.05, api_drop: 0.02, ..FaultRates::default() });
    let fx = Fixture::new(db);
    let api = client(&sim, None);
    let names = ["constituents", "gifts", "addresses"];
    let r = fx.run(&api, &names, &opts(50), &Silent).await;
    assert_ok(&r);
    let stats = sim.stats();
    assert!(stats.server_errors > 0 && stats.rate_limited > 0, "faults were injected: {stats:?}");
    assert!(r.api.retries > 0 && r.api.rate_limited > 0);
    // Every attempt is counted against the entity that made it, so the entities add up to the run.
    let requests: u64 = r.entities.iter().map(|e| e.requests).sum();
    let pages: u64 = r.entities.iter().map(|e| e.pages).sum();
    assert_eq!(requests, r.api.calls, "per-entity requests add up to the run's calls");
    assert_eq!(requests, pages + r.api.retries + r.api.rate_limited + r.api.unauthorized);
    for e in names {
        fx.assert_equals_source(&sim, e).await;
    }
    sim.modify("gifts", 20);
    let r = fx.run(&api, &names, &opts(50), &Silent).await;
    assert_ok(&r);
    for e in names {
        fx.assert_equals_source(&sim, e).await;
    }
}

/// Retries, 429s and the re-try after a 401 count in the requests of the entity that made them.
async fn per_entity_requests_count_every_attempt(db: Db) {
    let sim = sim(100).await;
    let fx = Fixture::new(db);
    let api = client(&sim, None);
    sim.fail_next_api(2, Fault::Status { code: 500 });
    sim.fail_next_api(1, Fault::Drop);
    sim.fail_next_api(1, Fault::TooManyRequests { retry_after_secs: 0 });
    sim.fail_next_api(1, Fault::InvalidGrant);
    let r = fx.run(&api, &["gifts"], &opts(50), &Silent).await;
    assert_ok(&r);
    let g = report(&r, "gifts");
    assert_eq!(g.pages, 5, "4 pages of 50 and the empty page that ends the chain");
    assert_eq!((r.api.retries, r.api.rate_limited, r.api.unauthorized), (3, 1, 1));
    assert_eq!(g.requests, 5 + 5, "every page plus the 5 failed attempts");
    assert_eq!(g.requests, r.api.calls);
    assert_eq!(sim.stats().api_calls, r.api.calls, "calls the simulator received");
    fx.assert_equals_source(&sim, "gifts").await;
}

async fn quota_exhaustion_keeps_pages_and_next_run_completes(db: Db) {
    let sim = sim(300).await;
    let fx = Fixture::new(db);
    let api = client(&sim, None);
    let names = ["constituents", "gifts"];
    sim.set_quota(Some(5));
    let r = fx.run(&api, &names, &opts(50), &Silent).await;
    assert!(matches!(r.stopped, Some(ApiError::QuotaExhausted { retry_after: Some(_), .. })), "{:?}", r.stopped);
    let committed: u64 = r.entities.iter().map(|e| e.pages).sum();
    assert_eq!(committed, 5, "every call the quota allowed landed as a committed page");
    for e in &r.entities {
        assert!(e.error.is_some(), "{} reports the stop", e.entity);
    }
    let kept = fx.count("gifts").await + fx.count("constituents").await;
    assert_eq!(kept, 250, "the 5 committed pages of 50 are kept");
    let mut s = fx.sink().await;
    let st = s.state("gifts").await.unwrap().unwrap();
    assert!(st.last_error.unwrap().contains("quota"));
    drop(s);

    sim.set_quota(None);
    let r = fx.run(&api, &names, &opts(50), &Silent).await;
    assert_ok(&r);
    for e in names {
        fx.assert_equals_source(&sim, e).await;
        assert_eq!(report(&r, e).mode, RunMode::Incremental, "resumed from the committed bookmark");
    }
    let mut s = fx.sink().await;
    assert_eq!(s.state("gifts").await.unwrap().unwrap().last_error, None);
}

async fn call_budget_stops_cleanly_and_resumes(db: Db) {
    let sim = sim(300).await;
    let fx = Fixture::new(db);
    let r = fx.run(&client(&sim, Some(4)), &["gifts"], &opts(50), &Silent).await;
    assert!(matches!(r.stopped, Some(ApiError::BudgetSpent { budget: 4 })), "{:?}", r.stopped);
    assert_eq!(report(&r, "gifts").pages, 4);
    assert_eq!(fx.count("gifts").await, 200);
    let r = fx.run(&client(&sim, None), &["gifts"], &opts(50), &Silent).await;
    assert_ok(&r);
    assert_eq!(report(&r, "gifts").added, 400, "the rest, nothing twice");
    fx.assert_equals_source(&sim, "gifts").await;
}

async fn call_budget_holds_across_concurrent_entities(db: Db) {
    let sim = sim(300).await;
    let fx = Fixture::new(db);
    // With pacing, every entity waits for its slot: the budget must be taken before that wait,
    // or each waiting entity sends one call past it.
    let api = paced_client(&sim, Some(5), 50.0);
    let names = ["constituents", "gifts", "addresses", "phones", "notes", "actions"];
    let o = EngineOptions { concurrency: 6, ..opts(50) };
    let r = fx.run(&api, &names, &o, &Silent).await;
    assert!(matches!(r.stopped, Some(ApiError::BudgetSpent { budget: 5 })), "{:?}", r.stopped);
    assert_eq!(sim.stats().api_calls, 5, "calls the simulator received");
    assert_eq!(r.api.calls, 5, "calls the run reports");
}

async fn access_token_expiring_mid_run_refreshes_once(db: Db) {
    let sim = sim(300).await;
    let fx = Fixture::new(db);
    let api = client(&sim, None);
    let moved = AtomicU64::new(0);
    let sim2 = sim.clone();
    // After the third page the simulator's clock jumps two hours: the access token the client
    // still believes valid is now expired there, so the next call gets a 401.
    let hook = Hook(|_: &Entity, _, pages| {
        if pages == 3 && moved.fetch_add(1, Ordering::SeqCst) == 0 {
            sim2.advance_clock(Duration::from_secs(2 * 3600));
        }
    });
    let r = fx.run(&api, &["gifts"], &opts(50), &hook).await;
    assert_ok(&r);
    assert_eq!(moved.load(Ordering::SeqCst), 1);
    let stats = sim.stats();
    assert_eq!(stats.token_refresh_preserve, 1, "exactly one refresh: {stats:?}");
    assert_eq!(r.api.unauthorized, 1);
    assert_eq!(r.token_calls, 1);
    fx.assert_equals_source(&sim, "gifts").await;
}

async fn deletes_reconciled_mark(db: Db) {
    deletes_reconciled(db, DeleteMode::Mark).await;
}

async fn deletes_reconciled_remove(db: Db) {
    deletes_reconciled(db, DeleteMode::Remove).await;
}

async fn deletes_reconciled(db: Db, mode: DeleteMode) {
    let sim = sim(300).await;
    let fx = Fixture::new(db);
    let api = client(&sim, None);
    let names = ["constituents", "gifts"];
    assert_ok(&fx.run(&api, &names, &opts(50), &Silent).await);
    let gone = sim.delete("gifts", 9);
    let gone_c = sim.delete("constituents", 4);
    // An incremental run alone cannot see deletes.
    assert_ok(&fx.run(&api, &names, &opts(50), &Silent).await);
    assert!(fx.rows("gifts").await.iter().filter(|(_, (_, d))| *d).count() == 0);
    let o = EngineOptions { reconcile: true, deletes: mode, ..opts(50) };
    let r = fx.run(&api, &names, &o, &Silent).await;
    assert_ok(&r);
    assert_eq!(report(&r, "gifts").removed, 9);
    assert_eq!(report(&r, "constituents").removed, 4);
    assert!(report(&r, "gifts").reconciled);
    for e in names {
        fx.assert_equals_source(&sim, e).await;
    }
    let rows = fx.rows("gifts").await;
    for id in &gone {
        match mode {
            DeleteMode::Mark => assert!(rows[id].1, "{id} is marked deleted"),
            DeleteMode::Remove => assert!(!rows.contains_key(id), "{id} is removed"),
        }
    }
    let c = fx.rows("constituents").await;
    assert_eq!(gone_c.iter().filter(|id| c.contains_key(*id)).count(), if mode == DeleteMode::Mark { 4 } else { 0 });
    let mut s = fx.sink().await;
    let st = s.state("gifts").await.unwrap().unwrap();
    assert!(st.last_reconcile_at.is_some() && !st.reconcile_in_progress);
}

async fn reconciliation_falls_due_after_the_configured_interval(db: Db) {
    let sim = sim(100).await;
    let fx = Fixture::new(db);
    let api = client(&sim, None);
    let o = EngineOptions { reconcile_every: Some(Duration::from_secs(7 * 86_400)), ..opts(50) };
    let r = fx.run(&api, &["gifts"], &o, &Silent).await;
    assert!(!report(&r, "gifts").reconciled, "nothing to reconcile on a first sync");
    sim.delete("gifts", 2);
    let r = fx.run(&api, &["gifts"], &o, &Silent).await;
    assert!(report(&r, "gifts").reconciled, "never reconciled before: due");
    assert_eq!(report(&r, "gifts").removed, 2);
    sim.delete("gifts", 2);
    let r = fx.run(&api, &["gifts"], &o, &Silent).await;
    assert!(!report(&r, "gifts").reconciled, "reconciled a moment ago: not due");
}

async fn full_resync_keeps_old_rows_until_done(db: Db) {
    let sim = sim(300).await;
    let fx = Fixture::new(db);
    let api = client(&sim, None);
    assert_ok(&fx.run(&api, &["gifts"], &opts(50), &Silent).await);
    let o = EngineOptions { full: true, ..opts(50) };
    // A full resync of an unchanged table changes nothing that readers see, and says so.
    let r = fx.run(&api, &["gifts"], &o, &Silent).await;
    assert_ok(&r);
    let g = report(&r, "gifts");
    assert_eq!((g.mode, g.records), (RunMode::Full, 600));
    assert_eq!((g.added, g.changed, g.removed, g.row_count), (0, 0, 0, Some(600)));

    let gone = sim.delete("gifts", 5);
    let modified = sim.modify("gifts", 5);
    let new = sim.add("gifts", 3);
    // While the full resync runs, readers still see the old, complete table.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
    let hook = Hook(move |_: &Entity, phase, pages| {
        if phase == Phase::Full {
            let _ = tx.send(pages);
        }
    });
    let mut sink = fx.sink().await;
    let gifts = entities(&["gifts"]);
    let run = engine::run(&api, sink.as_mut(), &gifts, &o, &SystemClock, &hook);
    tokio::pin!(run);
    let mut checked = 0;
    let r = loop {
        tokio::select! {
            r = &mut run => break r.unwrap(),
            Some(pages) = rx.recv() => {
                if pages == 3 {
                    // The engine awaits nothing while we read, so this is the mid-run state.
                    let rows = fx.rows("gifts").await;
                    assert_eq!(rows.len(), 600, "old rows stay visible during --full");
                    assert!(new.iter().all(|id| !rows.contains_key(id)));
                    assert!(gone.iter().all(|id| rows.contains_key(id)));
                    checked += 1;
                }
            }
        }
    };
    assert_eq!(checked, 1);
    assert_ok(&r);
    let g = report(&r, "gifts");
    assert_eq!(g.mode, RunMode::Full);
    assert_eq!(g.records, 598);
    assert!(modified.iter().all(|id| !gone.contains(id)), "the sim modified live records");
    assert_eq!((g.added, g.changed, g.removed, g.row_count), (3, 5, 5, Some(598)));
    fx.assert_equals_source(&sim, "gifts").await;
    assert_eq!(fx.count("gifts").await, 598);
    // The swap leaves a chain bookmark: the next run is incremental and cheap.
    let before = calls(&sim, "gifts");
    let r = fx.run(&api, &["gifts"], &opts(50), &Silent).await;
    assert_eq!(report(&r, "gifts").mode, RunMode::Incremental);
    assert_eq!(calls(&sim, "gifts") - before, 1);
}

async fn interrupted_run_resumes_without_loss_or_duplicates(db: Db) {
    let sim = sim(300).await;
    let fx = Fixture::new(db);
    let api = client(&sim, None);
    // The 5th page request (fetched while the 4th page is committed) waits at the simulator, so
    // the run is stopped (its future dropped) with exactly four pages committed and none pending.
    sim.fail_next_api(4, Fault::Slow { ms: 0 });
    sim.fail_next_api(1, Fault::Hold);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
    let hook = Hook(move |_: &Entity, _, pages| {
        let _ = tx.send(pages);
    });
    {
        let mut sink = fx.sink().await;
        let (gifts, o) = (entities(&["gifts"]), opts(50));
        let run = engine::run(&api, sink.as_mut(), &gifts, &o, &SystemClock, &hook);
        tokio::pin!(run);
        // Until the 4th commit is reported and the 5th request waits at the latch (polled while
        // the run goes on).
        let mut committed = 0;
        while committed < 4 || sim.stats().held == 0 {
            tokio::select! {
                _ = &mut run => panic!("the run should have been interrupted"),
                Some(pages) = rx.recv() => committed = pages,
                _ = tokio::time::sleep(Duration::from_millis(10)) => {}
            }
        }
        assert_eq!(committed, 4, "no page after the held one");
    }
    assert_eq!(fx.count("gifts").await, 200, "exactly the four pages reported committed");
    sim.release_held();
    let r = fx.run(&api, &["gifts"], &opts(50), &Silent).await;
    assert_ok(&r);
    let g = report(&r, "gifts");
    assert_eq!((g.added, g.changed), (400, 0), "the rest, from the 5th page on, each once: {g:?}");
    fx.assert_equals_source(&sim, "gifts").await;
}

async fn many_entities_run_concurrently_through_one_client(db: Db) {
    let sim = sim(200).await;
    let fx = Fixture::new(db);
    let api = client(&sim, None);
    let all: Vec<&str> = catalog::CATALOG.iter().map(|e| e.name).collect();
    let o = EngineOptions { concurrency: 6, ..opts(100) };
    let r = fx.run(&api, &all, &o, &Silent).await;
    assert_ok(&r);
    // Per-parent lists are keyed `{parent}:{id}`; tests/it/participants.rs checks them.
    for e in all.iter().filter(|e| catalog::find(e).is_some_and(|x| x.parent.is_none())) {
        fx.assert_equals_source(&sim, e).await;
    }
    let requests: u64 = r.entities.iter().map(|e| e.requests).sum();
    assert_eq!(requests, r.api.calls, "no retries without faults: every call is a page");
}

/// A reconciliation whose id scan meets deletes and adds on pages it has already read must not
/// mark (or remove) live records that the shifted pages skipped.
async fn reconcile_while_the_list_changes(db: Db, mode: DeleteMode) {
    let sim = Arc::new(sim(300).await);
    let fx = Fixture::new(db);
    let api = client(&sim, None);
    assert_ok(&fx.run(&api, &["gifts"], &opts(50), &Silent).await);
    let reconcile_pages = AtomicU64::new(0);
    let s = Arc::clone(&sim);
    let hook = Hook(|_: &Entity, phase, _| {
        if phase == Phase::Reconcile && reconcile_pages.fetch_add(1, Ordering::SeqCst) == 2 {
            // Offset pages would now shift left past the rows deleted behind the scan.
            s.delete("gifts", 40);
            s.add("gifts", 40);
        }
    });
    let o = EngineOptions { reconcile: true, deletes: mode, ..opts(50) };
    let r = fx.run(&api, &["gifts"], &o, &hook).await;
    assert!(
        reconcile_pages.load(Ordering::SeqCst) > 3,
        "the list changed in the middle of the id scan (after its third page): {:?}",
        report(&r, "gifts")
    );
    let rows = fx.rows("gifts").await;
    let live = sim.live_ids("gifts");
    let wrongly = live
        .iter()
        .filter(|id| {
            rows.get(*id).is_some_and(|(_, d)| *d) || (id.parse::<u64>().unwrap() <= 600 && !rows.contains_key(*id))
        })
        .count();
    assert_eq!(
        wrongly,
        0,
        "live records marked or removed by a reconciliation that raced changes: {:?}",
        report(&r, "gifts")
    );
    // The next run picks up the adds, and a quiet reconciliation the deletes it could not see.
    let r = fx.run(&api, &["gifts"], &o, &Silent).await;
    assert_ok(&r);
    fx.assert_equals_source(&sim, "gifts").await;
}

async fn reconcile_of_an_offset_list_gives_up_when_the_count_changes_mid_scan(db: Db) {
    let sim = Arc::new(sim(300).await);
    let fx = Fixture::new(db);
    let api = client(&sim, None);
    assert_ok(&fx.run(&api, &["events"], &opts(3), &Silent).await);
    let reconcile_pages = AtomicU64::new(0);
    let s = Arc::clone(&sim);
    let hook = Hook(|_: &Entity, phase, _| {
        if phase == Phase::Reconcile && reconcile_pages.fetch_add(1, Ordering::SeqCst) == 0 {
            s.delete("events", 5);
        }
    });
    let o = EngineOptions { reconcile: true, ..opts(3) };
    let r = fx.run(&api, &["events"], &o, &hook).await;
    assert!(reconcile_pages.load(Ordering::SeqCst) >= 1, "the events changed during the id scan");
    let rows = fx.rows("events").await;
    let wrongly: Vec<String> =
        sim.live_ids("events").into_iter().filter(|id| rows.get(id).is_none_or(|(_, d)| *d)).collect();
    assert!(wrongly.is_empty(), "live events {wrongly:?} marked deleted: {:?}", report(&r, "events"));
    assert!(report(&r, "events").error.as_deref().is_some_and(|e| e.contains("changed during the id scan")));
    let r = fx.run(&api, &["events"], &o, &Silent).await;
    assert_ok(&r);
    fx.assert_equals_source(&sim, "events").await;
}

async fn reconcile_is_safe_while_the_list_changes_mark(db: Db) {
    reconcile_while_the_list_changes(db, DeleteMode::Mark).await;
}

async fn reconcile_is_safe_while_the_list_changes_remove(db: Db) {
    reconcile_while_the_list_changes(db, DeleteMode::Remove).await;
}

// Every behaviour above, as one test per backend: `sqlite::<name>` and `postgres::<name>`.
skysync_tests::both_backends!(
    sqlite = Db::Sqlite,
    postgres = Db::Postgres;
    first_sync_equals_source_then_only_changes,
    faults_500_429_and_drops_still_converge,
    per_entity_requests_count_every_attempt,
    quota_exhaustion_keeps_pages_and_next_run_completes,
    call_budget_stops_cleanly_and_resumes,
    call_budget_holds_across_concurrent_entities,
    access_token_expiring_mid_run_refreshes_once,
    deletes_reconciled_mark,
    deletes_reconciled_remove,
    reconciliation_falls_due_after_the_configured_interval,
    full_resync_keeps_old_rows_until_done,
    interrupted_run_resumes_without_loss_or_duplicates,
    many_entities_run_concurrently_through_one_client,
    reconcile_is_safe_while_the_list_changes_mark,
    reconcile_is_safe_while_the_list_changes_remove,
    reconcile_of_an_offset_list_gives_up_when_the_count_changes_mid_scan,
);
