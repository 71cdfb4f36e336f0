//! Partitioned initial and full syncs against the simulator: one entity's scan split into chains
//! that run side by side must store exactly the source, for every number of chains, while the
//! source changes during the run, under faults, and after a SIGKILL mid-run and a rerun.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use skysync_cli::runtime::TokioRuntime;
use skysync_cli::sim::{FaultRates, SimConfig, SimHandle};
use skysync_cli::sink::{self, SinkSpec};
use skysync_cli::sync::EntityReport;
use skysync_cli::sync::engine::{self, EngineOptions, RunMode, RunReport};
use skysync_cli::sync::progress::{Phase, Progress, Silent};
use skysync_core::api::ApiClient;
use skysync_core::catalog::{self, Entity};
use skysync_core::config::ApiConfig;
use skysync_core::host::OsEntropy;
use skysync_core::host::SystemClock;
use skysync_core::http::{HttpClient, HttpRequest, HttpResponse, ReqwestClient, TransportError};
use skysync_core::secret::SubscriptionKey;
use skysync_core::store::MemoryStore;
use skysync_core::sync::Bookmark;
use skysync_core::sync::partition::PartitionTable;
use skysync_core::token_set::RenewalPolicy;
use skysync_tests::cli::Skysync;
use skysync_tests::sky::{minted_tokens, retrying_api_client, session, sim_config, start_sim};
use tempfile::TempDir;

use crate::sync::Fixture;

/// 2,000 gifts in pages of 50: 40 pages.
const GIFTS: u64 = 2000;
const PAGE: u32 = 50;

fn client(sim: &SimHandle) -> ApiClient {
    retrying_api_client(sim, 0.0)
}

fn split_into(k: usize) -> EngineOptions {
    EngineOptions { page_size: Some(PAGE), partitions: k, concurrency: 8, ..EngineOptions::default() }
}

struct Db {
    fx: Fixture,
    _dir: TempDir,
}

fn sqlite() -> Db {
    let dir = tempfile::tempdir().unwrap();
    Db { fx: Fixture::at(SinkSpec::Sqlite(dir.path().join("skysync.db"))), _dir: dir }
}

async fn run(db: &Db, api: &ApiClient, o: &EngineOptions, p: &dyn Progress) -> RunReport {
    let mut sink = sink::open(db.fx.spec()).await.unwrap();
    let gifts: Vec<&'static Entity> = vec![catalog::find("gifts").unwrap()];
    let r = engine::run(api, sink.as_mut(), &gifts, o, &SystemClock, p).await.unwrap();
    assert!(r.ok(), "run failed: stopped={:?} entities={:#?}", r.stopped, r.entities);
    r
}

fn gift_calls(sim: &SimHandle) -> u64 {
    sim.stats().per_entity_calls.get("gifts").copied().unwrap_or(0)
}

/// The stored bookmark, raw.
async fn stored_bookmark(spec: &SinkSpec) -> Option<String> {
    let mut s = sink::open(spec).await.unwrap();
    s.state("gifts").await.unwrap().and_then(|s| s.bookmark)
}

/// Calls `f(pages)` after every committed page.
struct Hook<F: Fn(u64) + Send + Sync>(F);

impl<F: Fn(u64) + Send + Sync> Progress for Hook<F> {
    fn started(&self, _: &Entity, _: RunMode) {}
    fn page(&self, _: &Entity, _: Phase, _records: u64, pages: u64, _expected: Option<u64>) {
        (self.0)(pages)
    }
    fn finished(&self, _: &Entity, _: &EntityReport) {}
}

#[tokio::test]
async fn every_number_of_chains_stores_exactly_the_source() {
    let sim = start_sim(sim_config(GIFTS / 2)).await;
    let api = client(&sim);
    for k in [1, 2, 4, 8] {
        let db = sqlite();
        let before = gift_calls(&sim);
        let r = run(&db, &api, &split_into(k), &Silent).await;
        let calls = gift_calls(&sim) - before;
        db.fx.assert_equals_source(&sim, "gifts").await;
        assert_eq!(db.fx.count("gifts").await, GIFTS as usize, "k={k}: no duplicates");
        assert_eq!(r.entities[0].mode, RunMode::Initial);
        // One chain: 40 pages and the empty one. K chains: the same pages, the probes (one per
        // cut), at most one overshoot page per chain and the last chain's final empty page.
        if k == 1 {
            assert_eq!(calls, 41, "k=1 is one chain");
        } else {
            assert!(calls > 41 && calls <= 41 + 2 * k as u64, "k={k}: split with bounded waste: {calls} calls");
        }
        // The scan's end is a plain chain bookmark: the next run costs one call and reads nothing.
        let b = stored_bookmark(db.fx.spec()).await.unwrap();
        assert!(matches!(Bookmark::from_json(&b), Ok(Bookmark::Chain { .. })), "k={k}: {b}");
        let before = gift_calls(&sim);
        let r = run(&db, &api, &split_into(k), &Silent).await;
        assert_eq!((r.entities[0].mode, r.entities[0].records), (RunMode::Incremental, 0));
        assert_eq!(gift_calls(&sim) - before, 1, "k={k}: the bookmark is the end of the source");
    }
}

#[tokio::test]
async fn changes_during_a_partitioned_run_are_all_stored() {
    let sim = start_sim(sim_config(GIFTS / 2)).await;
    let api = client(&sim);
    let db = sqlite();
    // Edits and additions land among the chains while they run, read or not yet read.
    let edits = AtomicU64::new(0);
    let hook = Hook(|pages| {
        if pages % 6 == 0 {
            sim.modify("gifts", 15);
            sim.add("gifts", 3);
            edits.fetch_add(1, Ordering::SeqCst);
        }
    });
    run(&db, &api, &split_into(4), &hook).await;
    assert!(edits.load(Ordering::SeqCst) >= 3, "the source changed during the run");
    db.fx.assert_equals_source(&sim, "gifts").await;

    // A partitioned `--full` resync while the source changes: the swapped-in set is the source.
    edits.store(0, Ordering::SeqCst);
    let full = EngineOptions { full: true, ..split_into(4) };
    let r = run(&db, &api, &full, &hook).await;
    assert_eq!(r.entities[0].mode, RunMode::Full);
    assert!(edits.load(Ordering::SeqCst) >= 3);
    db.fx.assert_equals_source(&sim, "gifts").await;
    assert_eq!(db.fx.count("gifts").await, sim.live_ids("gifts").len(), "no duplicates");
}

#[tokio::test]
async fn partitioned_initial_and_full_runs_into_postgres_store_exactly_the_source() {
    let sim = start_sim(sim_config(GIFTS / 2)).await;
    let api = client(&sim);
    let db = Db { fx: Fixture::postgres(), _dir: tempfile::tempdir().unwrap() };
    let hook = Hook(|pages| {
        if pages % 8 == 0 {
            sim.modify("gifts", 10);
            sim.add("gifts", 2);
        }
    });
    let before = gift_calls(&sim);
    run(&db, &api, &split_into(4), &hook).await;
    assert!(gift_calls(&sim) - before > 41, "split");
    db.fx.assert_equals_source(&sim, "gifts").await;
    let r = run(&db, &api, &EngineOptions { full: true, ..split_into(4) }, &hook).await;
    assert_eq!(r.entities[0].mode, RunMode::Full);
    db.fx.assert_equals_source(&sim, "gifts").await;
    assert_eq!(db.fx.count("gifts").await, sim.live_ids("gifts").len(), "no duplicates");
}

#[tokio::test]
async fn a_partitioned_run_under_faults_stores_exactly_the_source() {
    let sim = start_sim(sim_config(GIFTS / 2)).await;
    sim.set_fault_rates(FaultRates {
        api_500: 0.10,
        api_429: 0.05,
        api_drop: 0.02,
        api_truncated: 0.03,
        ..FaultRates::default()
    });
    let api = client(&sim);
    let db = sqlite();
    let before = gift_calls(&sim);
    run(&db, &api, &split_into(4), &Silent).await;
    assert!(gift_calls(&sim) - before > 41, "split");
    let stats = sim.stats();
    assert!(stats.server_errors + stats.rate_limited + stats.dropped + stats.truncated > 0, "{stats:?}");
    db.fx.assert_equals_source(&sim, "gifts").await;
    assert_eq!(db.fx.count("gifts").await, GIFTS as usize);
}

#[tokio::test]
async fn quota_exhaustion_mid_partitioned_run_keeps_every_chain_and_the_next_run_resumes_them() {
    let sim = start_sim(sim_config(GIFTS / 2)).await;
    let api = client(&sim);
    let db = sqlite();
    // The first page, the probes and a few chain pages, then the day's quota is gone.
    sim.set_quota(Some(14));
    let mut sink = sink::open(db.fx.spec()).await.unwrap();
    let gifts: Vec<&'static Entity> = vec![catalog::find("gifts").unwrap()];
    let r = engine::run(&api, sink.as_mut(), &gifts, &split_into(4), &SystemClock, &Silent).await.unwrap();
    drop(sink);
    assert!(r.stopped.as_ref().is_some_and(|e| e.to_string().contains("quota")), "{:?}", r.stopped);
    let table = PartitionTable::from_json(&stored_bookmark(db.fx.spec()).await.unwrap()).expect("a chain table");
    assert!(!table.finished() && table.partitions.len() > 1);
    let kept = db.fx.count("gifts").await as u64;
    assert!(kept > PAGE as u64 && kept < GIFTS, "pages of several chains kept: {kept}");

    sim.set_quota(None);
    let r = run(&db, &api, &split_into(4), &Silent).await;
    let e = &r.entities[0];
    assert_eq!(e.mode, RunMode::Initial, "resuming a split initial scan is still the initial run");
    assert_eq!((e.changed, e.added), (0, GIFTS - kept), "every chain resumed where it stopped");
    db.fx.assert_equals_source(&sim, "gifts").await;
    let b = stored_bookmark(db.fx.spec()).await.unwrap();
    assert!(matches!(Bookmark::from_json(&b), Ok(Bookmark::Chain { .. })), "{b}");
}

#[tokio::test]
async fn a_tie_block_holding_several_quantiles_lands_in_one_chain() {
    // 60% of the gifts share one date_modified: every middle quantile falls inside the block.
    let sim = start_sim(SimConfig { date_modified_ties: GIFTS * 6 / 10, ..sim_config(GIFTS / 2) }).await;
    let api = client(&sim);
    for k in [2, 4, 8] {
        let db = sqlite();
        let before = gift_calls(&sim);
        let r = run(&db, &api, &split_into(k), &Silent).await;
        let calls = gift_calls(&sim) - before;
        db.fx.assert_equals_source(&sim, "gifts").await;
        assert_eq!(db.fx.count("gifts").await, GIFTS as usize, "k={k}: no duplicates");
        assert_eq!(r.entities[0].mode, RunMode::Initial);
        // Ties are in date order: no chain reads the scan again; cuts that would split the block
        // are dropped, so the waste stays within the bound of k chains.
        assert!(calls >= 41 && calls <= 41 + 2 * k as u64, "k={k}: bounded waste: {calls} calls");
        let b = stored_bookmark(db.fx.spec()).await.unwrap();
        assert!(matches!(Bookmark::from_json(&b), Ok(Bookmark::Chain { .. })), "k={k}: {b}");
    }
}

#[tokio::test]
async fn a_list_out_of_date_order_on_its_first_page_is_not_split() {
    let sim = start_sim(SimConfig { unordered_from: Some(0), ..sim_config(GIFTS / 2) }).await;
    let api = client(&sim);
    let db = sqlite();
    let before = gift_calls(&sim);
    let r = run(&db, &api, &split_into(4), &Silent).await;
    assert_eq!(gift_calls(&sim) - before, 41, "one chain: the first page showed the order");
    assert_eq!(r.entities[0].mode, RunMode::Initial);
    db.fx.assert_equals_source(&sim, "gifts").await;
    assert_eq!(db.fx.count("gifts").await, GIFTS as usize);
}

#[tokio::test]
async fn a_chain_meeting_the_list_out_of_date_order_folds_the_scan_into_one_chain() {
    // The first half of the list is in date order (so the scan splits), the second is not.
    let sim = start_sim(SimConfig { unordered_from: Some(GIFTS / 2), ..sim_config(GIFTS / 2) }).await;
    let api = client(&sim);
    for full in [false, true] {
        let db = sqlite();
        let before = gift_calls(&sim);
        let o = EngineOptions { full, ..split_into(4) };
        run(&db, &api, &o, &Silent).await;
        let calls = gift_calls(&sim) - before;
        db.fx.assert_equals_source(&sim, "gifts").await;
        assert_eq!(db.fx.count("gifts").await, GIFTS as usize, "full={full}: no duplicates");
        // The split, then one chain over the whole list again: at most one more scan's calls.
        assert!(calls > 41 + 2 && calls <= 2 * 41 + 2 * 4, "full={full}: folded once: {calls} calls");
        let b = stored_bookmark(db.fx.spec()).await.unwrap();
        assert!(matches!(Bookmark::from_json(&b), Ok(Bookmark::Chain { .. })), "full={full}: {b}");
        // The folded scan's end is the end of the list: the next run reads nothing.
        let before = gift_calls(&sim);
        let r = run(&db, &api, &split_into(4), &Silent).await;
        assert_eq!((r.entities[0].mode, r.entities[0].records), (RunMode::Incremental, 0));
        assert_eq!(gift_calls(&sim) - before, 1);
    }
}

/// The API's HTTP transport, counting the requests in flight.
#[derive(Default)]
struct InFlight {
    now: AtomicUsize,
    most: AtomicUsize,
    http: Option<ReqwestClient>,
}

#[async_trait::async_trait]
impl HttpClient for InFlight {
    async fn execute(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(n, Ordering::SeqCst);
        let answer = self.http.as_ref().expect("a transport").execute(request).await;
        self.now.fetch_sub(1, Ordering::SeqCst);
        answer
    }
}

/// The most requests in flight at once during a partitioned run with `concurrency`.
async fn most_in_flight(concurrency: usize) -> usize {
    let sim = start_sim(sim_config(GIFTS / 2)).await;
    // Slow answers, so that requests sent side by side overlap.
    sim.set_fault_rates(FaultRates { api_slow: 1.0, slow_ms: 40, ..FaultRates::default() });
    let http = Arc::new(InFlight { http: Some(ReqwestClient::new().unwrap()), ..InFlight::default() });
    let store = Arc::new(MemoryStore::with(minted_tokens(&sim)));
    let config =
        ApiConfig { base: sim.api_url(), subscription_key: SubscriptionKey::new(sim.config().subscription_key) };
    let api = ApiClient::new(
        session(&sim, store, RenewalPolicy::default()),
        http.clone(),
        Arc::new(TokioRuntime),
        Arc::new(SystemClock),
        Arc::new(OsEntropy),
        config,
        0.0,
    );
    let db = sqlite();
    run(&db, &api, &EngineOptions { concurrency, ..split_into(8) }, &Silent).await;
    db.fx.assert_equals_source(&sim, "gifts").await;
    http.most.load(Ordering::SeqCst)
}

#[tokio::test]
async fn chains_run_side_by_side_within_the_concurrency_bound() {
    assert_eq!(most_in_flight(2).await, 2, "--concurrency 2 bounds the requests in flight");
    let most = most_in_flight(8).await;
    assert!((3..=8).contains(&most), "eight chains run side by side: {most} in flight at most");
}

/// The table stored in the SQLite file the binary writes, read through a separate connection.
fn stored_table(path: &Path) -> Option<PartitionTable> {
    let c = rusqlite::Connection::open(path).ok()?;
    let b: String = c.query_row("SELECT bookmark FROM sync_state WHERE entity = 'gifts'", [], |r| r.get(0)).ok()?;
    PartitionTable::from_json(&b)
}

#[tokio::test]
async fn sigkill_mid_partitioned_run_then_rerun_resumes_every_chain() {
    let sk = Skysync::with_sim(SimConfig { records: GIFTS / 2, ..SimConfig::default() }).await;
    let tokens = sk.minted_tokens(|_| {});
    sk.seed(tokens).await;
    // Slow answers keep the run going long enough to be killed with every chain under way.
    sk.sim.set_fault_rates(FaultRates { api_slow: 1.0, slow_ms: 60, ..FaultRates::default() });
    let path = sk.data_dir().join("skysync.db");
    let args = ["sync", "gifts", "--page-size", "50", "--rate-limit", "off", "--partitions", "4", "--concurrency", "4"];
    let mut child = sk.command(&args).spawn().expect("spawn skysync sync");
    // Kill once every chain has committed a page and none has ended.
    let mut seen = None;
    for _ in 0..1200 {
        if let Some(t) = stored_table(&path)
            && t.partitions.len() >= 2
            && t.partitions.iter().all(|c| c.high_water.is_some() && !c.done)
        {
            seen = Some(t);
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the run ended before every chain was under way: {status}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.start_kill().expect("SIGKILL");
    assert!(!child.wait().await.unwrap().success(), "killed, not finished");
    let seen = seen.expect("every chain was under way");
    let killed = stored_table(&path).expect("the chain table is stored");
    assert!(!killed.finished());
    let kept = sk_count(&path);
    assert!(kept < GIFTS as usize, "killed mid-run: {kept} rows");

    // `sync status` and `--dry-run` say where the scan stands (no API calls).
    let status = sk.run(&["sync", "status"]).await;
    status.expect_code(0);
    assert!(status.stdout.contains("partitioned scan in progress"), "{}", status.stdout);
    let calls = sk.sim.stats().api_calls;
    let dry = sk.run(&["sync", "gifts", "--dry-run"]).await;
    dry.expect_code(0);
    assert!(dry.stdout.contains("resumes a partitioned scan"), "{}", dry.stdout);
    assert_eq!(sk.sim.stats().api_calls, calls);

    // The rerun resumes every chain: nothing read before the kill is read again.
    sk.sim.set_fault_rates(FaultRates::default());
    let run = sk.run(&["sync", "gifts", "--page-size", "50", "--rate-limit", "off", "--json"]).await;
    run.expect_code(0);
    let v: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    let e = &v["entities"][0];
    assert_eq!(
        e["changed"].as_u64().unwrap(),
        0,
        "no committed page is fetched again ({} chains seen)",
        seen.partitions.len()
    );
    assert_eq!(e["added"].as_u64().unwrap() as usize, GIFTS as usize - kept);
    let db = Fixture::at(SinkSpec::Sqlite(path.clone()));
    db.assert_equals_source(&sk.sim, "gifts").await;
    assert_eq!(db.count("gifts").await, GIFTS as usize, "no duplicates");
    let b = stored_bookmark(db.spec()).await.unwrap();
    assert!(matches!(Bookmark::from_json(&b), Ok(Bookmark::Chain { .. })), "{b}");
}

fn sk_count(path: &Path) -> usize {
    let c = rusqlite::Connection::open(path).unwrap();
    c.query_row("SELECT count(*) FROM gifts", [], |r| r.get::<_, i64>(0)).unwrap() as usize
}

/// The two-entity scenario at a fiftieth of the page size: 300 constituents and 200
/// gifts in pages of 50 are 7 + 5 pages. Five pages left after the first are not worth a split
/// (a probe and an overshoot page would save about one page's wait), so with splitting on the run
/// takes the ideal `ceil(records/limit) + 1` calls per entity, and stores exactly the source.
#[tokio::test]
async fn a_split_that_would_save_less_than_it_costs_is_not_made() {
    let sim = start_sim(sim_config(300)).await;
    let gifts = sim.live_ids("gifts").len() as u64;
    sim.delete("gifts", gifts - 200);
    let api = client(&sim);
    let db = sqlite();
    let both: Vec<&'static Entity> = vec![catalog::find("constituents").unwrap(), catalog::find("gifts").unwrap()];
    let mut sink = sink::open(db.fx.spec()).await.unwrap();
    let r = engine::run(&api, sink.as_mut(), &both, &split_into(8), &SystemClock, &Silent).await.unwrap();
    assert!(r.ok(), "run failed: {:#?}", r.entities);
    let calls = sim.stats().per_entity_calls;
    assert_eq!((calls["constituents"], calls["gifts"]), (7, 5), "one chain each: the ideal calls");
    db.fx.assert_equals_source(&sim, "constituents").await;
    db.fx.assert_equals_source(&sim, "gifts").await;
}
