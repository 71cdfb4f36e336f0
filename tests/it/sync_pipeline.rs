//! The engine's pipeline: the next page of a scan is requested while the page before it is being
//! committed (so a slow database write does not add to every page's wait), and each page is still
//! committed in order, with nothing lost or read twice.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use skysync_cli::runtime::TokioRuntime;
use skysync_cli::sim::SimHandle;
use skysync_cli::sink::{self, SinkSpec};
use skysync_cli::sync::engine::{self, EngineOptions};
use skysync_cli::sync::progress::Silent;
use skysync_core::api::ApiClient;
use skysync_core::catalog;
use skysync_core::config::ApiConfig;
use skysync_core::host::{OsEntropy, SystemClock};
use skysync_core::http::{HttpClient, HttpRequest, HttpResponse, ReqwestClient, TransportError};
use skysync_core::secret::SubscriptionKey;
use skysync_core::store::MemoryStore;
use skysync_core::token_set::RenewalPolicy;
use skysync_tests::sky::{minted_tokens, session, sim_config, start_sim};

use crate::sync::Fixture;

/// The API's HTTP transport. Before it hands over the scan's second page it waits until the first
/// page is in the database and takes the database's write lock (another connection, `BEGIN
/// IMMEDIATE`), so the second page's commit waits; the third request releases it. An engine that
/// only asks for a page after the last one is committed never sends that request while the lock is
/// held: its commit gives up after the sink's busy timeout and the run fails.
struct LockOnSecondPage {
    http: ReqwestClient,
    db: std::path::PathBuf,
    requests: Mutex<u64>,
    lock: Mutex<Option<rusqlite::Connection>>,
    /// The third request came while the second page's commit was held.
    released_by_next_request: Mutex<bool>,
}

#[async_trait::async_trait]
impl HttpClient for LockOnSecondPage {
    async fn execute(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let n = {
            let mut r = self.requests.lock().unwrap();
            *r += 1;
            *r
        };
        if n == 3
            && let Some(c) = self.lock.lock().unwrap().take()
        {
            c.execute_batch("ROLLBACK").unwrap();
            *self.released_by_next_request.lock().unwrap() = true;
        }
        let answer = self.http.execute(request).await;
        if n == 2 {
            let c = rusqlite::Connection::open(&self.db).unwrap();
            c.busy_timeout(Duration::from_secs(30)).unwrap();
            // The first page's commit may still be under way (it runs beside this request).
            while c.query_row("SELECT count(*) FROM constituents", [], |r| r.get::<_, i64>(0)).unwrap() < 50 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            c.execute_batch("BEGIN IMMEDIATE").unwrap();
            *self.lock.lock().unwrap() = Some(c);
        }
        answer
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_page_is_requested_while_the_last_one_is_committed() {
    // 300 constituents in pages of 50: 6 pages and the empty one.
    let sim = start_sim(sim_config(300)).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("skysync.db");
    let http = Arc::new(LockOnSecondPage {
        http: ReqwestClient::new().unwrap(),
        db: path.clone(),
        requests: Mutex::new(0),
        lock: Mutex::new(None),
        released_by_next_request: Mutex::new(false),
    });
    let options = EngineOptions { page_size: Some(50), partitions: 1, ..EngineOptions::default() };
    sync_constituents_through(&sim, &path, http.clone(), &options).await;
    assert!(*http.released_by_next_request.lock().unwrap(), "page 3 was requested while page 2 was committed");
    assert_eq!(sim.stats().per_entity_calls["constituents"], 7, "no page fetched twice");
}

/// Syncs the simulator's constituents into the SQLite file at `path` through `http` (unpaced),
/// and checks that the run succeeded and stored exactly the source.
async fn sync_constituents_through(sim: &SimHandle, path: &Path, http: Arc<dyn HttpClient>, options: &EngineOptions) {
    let fx = Fixture::at(SinkSpec::Sqlite(path.to_owned()));
    let mut sink = sink::open(fx.spec()).await.unwrap();
    let api = ApiClient::new(
        session(sim, Arc::new(MemoryStore::with(minted_tokens(sim))), RenewalPolicy::default()),
        http,
        Arc::new(TokioRuntime),
        Arc::new(SystemClock),
        Arc::new(OsEntropy),
        ApiConfig { base: sim.api_url(), subscription_key: SubscriptionKey::new(sim.config().subscription_key) },
        0.0,
    );
    let constituents = [catalog::find("constituents").unwrap()];
    let r = engine::run(&api, sink.as_mut(), &constituents, options, &SystemClock, &Silent).await.unwrap();
    assert!(r.ok(), "run failed: {:#?}", r.entities);
    fx.assert_equals_source(sim, "constituents").await;
}

/// The API's HTTP transport for a run split in two chains. When the first chain page is asked
/// for (the scan's first page is committed by then), it takes the database's write lock, so both
/// chains' first commits wait; the next chain page request releases it. Chains that only ask for
/// a page after their last one is committed never send that request while the lock is held: their
/// commits give up after the sink's busy timeout and the run fails.
struct LockOnFirstChainPages {
    http: ReqwestClient,
    db: std::path::PathBuf,
    /// List page requests so far, probes (`limit=1`) left out.
    pages: Mutex<u64>,
    lock: Mutex<Option<rusqlite::Connection>>,
    /// A chain page request came while both chains' first commits were held.
    released_by_next_request: Mutex<bool>,
}

#[async_trait::async_trait]
impl HttpClient for LockOnFirstChainPages {
    async fn execute(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let probe = request.url.query_pairs().any(|(k, v)| k == "limit" && v == "1");
        if !probe {
            let n = {
                let mut pages = self.pages.lock().unwrap();
                *pages += 1;
                *pages
            };
            // Page 1 is the scan's first; 2 and 3 are the two chains' first pages.
            if n == 2 {
                let c = rusqlite::Connection::open(&self.db).unwrap();
                c.busy_timeout(Duration::from_secs(30)).unwrap();
                c.execute_batch("BEGIN IMMEDIATE").unwrap();
                *self.lock.lock().unwrap() = Some(c);
            }
            if n == 4
                && let Some(c) = self.lock.lock().unwrap().take()
            {
                c.execute_batch("ROLLBACK").unwrap();
                *self.released_by_next_request.lock().unwrap() = true;
            }
        }
        self.http.execute(request).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_chain_requests_its_next_page_while_its_last_one_is_committed() {
    // 600 constituents in pages of 50: the first page, then 11 pages left, split in two chains.
    let sim = start_sim(sim_config(600)).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("skysync.db");
    let http = Arc::new(LockOnFirstChainPages {
        http: ReqwestClient::new().unwrap(),
        db: path.clone(),
        pages: Mutex::new(0),
        lock: Mutex::new(None),
        released_by_next_request: Mutex::new(false),
    });
    let options = EngineOptions { page_size: Some(50), partitions: 2, concurrency: 4, ..EngineOptions::default() };
    sync_constituents_through(&sim, &path, http.clone(), &options).await;
    assert!(
        *http.released_by_next_request.lock().unwrap(),
        "a chain's next page was requested while the chains' first pages were committed"
    );
}
