//! The engine against a scripted transport: every request it makes is checked against the script
//! and answered from it (no server), with a fixed clock and a real SQLite sink in a temp dir.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use skysync_core::api::{ApiClient, ApiError};
use skysync_core::config::{ApiConfig, OAuthConfig};
use skysync_core::host::testing::{FixedClock, SeededEntropy};
use skysync_core::host::{BoxFuture, Runtime};
use skysync_core::http::{HttpClient, HttpRequest, HttpResponse, Method, TransportError};
use skysync_core::secret::{AccessToken, ClientSecret, RefreshToken, SubscriptionKey};
use skysync_core::session::{Session, SessionParts};
use skysync_core::store::MemoryStore;
use skysync_core::sync::{Bookmark, Entity, find};
use skysync_core::token::{Identity, TokenResponse};
use skysync_core::token_set::{RenewalPolicy, TokenSet};
use time::OffsetDateTime;
use time::macros::datetime;
use url::Url;

use crate::sink::{EntityState, Sink, SqliteSink};
use crate::sync::engine::{self, EngineOptions, RunMode, RunReport};
use crate::sync::progress::Silent;

const T0: OffsetDateTime = datetime!(2026-01-15 12:00:00 UTC);
const API: &str = "https://api.sky.blackbaud.com";
const GIFTS_FIRST: &str = "/gift/v1/gifts?limit=2&last_modified=1600-01-01T00%3A00%3A00Z";

/// Answers each request with the next scripted response, after checking the request's URL.
#[derive(Default)]
struct Script {
    steps: Mutex<VecDeque<(Method, String, HttpResponse)>>,
    sent: Mutex<Vec<HttpRequest>>,
}

impl Script {
    /// The next request must be `method` to exactly `url` (a path is taken below the API host).
    fn expect(&self, method: Method, url: &str, status: u16, body: &str) -> &Self {
        let url = if url.starts_with('/') { format!("{API}{url}") } else { url.to_owned() };
        let response = HttpResponse {
            status,
            headers: vec![("content-type".into(), "application/json; charset=utf-8".into())],
            body: body.as_bytes().to_vec(),
        };
        self.steps.lock().unwrap().push_back((method, url, response));
        self
    }

    fn get(&self, url: &str, body: &str) -> &Self {
        self.expect(Method::Get, url, 200, body)
    }

    fn finished(&self) -> bool {
        self.steps.lock().unwrap().is_empty()
    }

    fn bearer(&self, i: usize) -> String {
        let sent = self.sent.lock().unwrap();
        let auth = sent[i].headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("authorization"));
        auth.map(|(_, v)| v.clone()).unwrap_or_default()
    }
}

#[async_trait::async_trait]
impl HttpClient for Script {
    async fn execute(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let step = self.steps.lock().unwrap().pop_front();
        let (method, url, response) = step.unwrap_or_else(|| panic!("unscripted request to {}", request.url));
        assert_eq!((request.method, request.url.as_str()), (method, url.as_str()), "request out of script");
        self.sent.lock().unwrap().push(request);
        Ok(response)
    }
}

/// Spawns on tokio; a wait (pacing, back-off) is recorded, not slept.
struct NoWait;

impl Runtime for NoWait {
    fn spawn(&self, task: BoxFuture<'static, ()>) {
        tokio::spawn(task);
    }
    fn sleep(&self, _: Duration) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }
}

struct Rig {
    script: Arc<Script>,
    api: ApiClient,
    sink: SqliteSink,
    _dir: tempfile::TempDir,
}

fn tokens() -> TokenSet {
    let response = TokenResponse {
        access_token: AccessToken::new("at0"),
        token_type: "bearer".into(),
        expires_in: Some(Duration::from_secs(3600)),
        refresh_token: Some(RefreshToken::new("rt0")),
        refresh_token_expires_in: Some(Duration::from_secs(365 * 86_400)),
        identity: Identity::default(),
    };
    TokenSet::from_exchange("app-id", response, T0).unwrap()
}

async fn rig() -> Rig {
    let script = Arc::new(Script::default());
    let clock = Arc::new(FixedClock::new(T0));
    let runtime = Arc::new(NoWait);
    let oauth =
        OAuthConfig::new("app-id", Some(ClientSecret::new("s3cret")), Url::parse("http://localhost:1/cb").unwrap());
    let session = Session::new(SessionParts {
        oauth,
        policy: RenewalPolicy::default(),
        http: script.clone(),
        store: Arc::new(MemoryStore::with(tokens())),
        clock: clock.clone(),
        runtime: runtime.clone(),
    });
    let config =
        ApiConfig { base: Url::parse(&format!("{API}/")).unwrap(), subscription_key: SubscriptionKey::new("k") };
    let api = ApiClient::new(session, script.clone(), runtime, clock, Arc::new(SeededEntropy::new(1)), config, 0.0);
    let dir = tempfile::tempdir().unwrap();
    let sink = SqliteSink::open(dir.path().join("sync.db")).await.unwrap();
    Rig { script, api, sink, _dir: dir }
}

impl Rig {
    async fn run(&mut self, names: &[&str], options: &EngineOptions) -> RunReport {
        let entities: Vec<&'static Entity> = names.iter().map(|n| find(n).unwrap()).collect();
        let report =
            engine::run(&self.api, &mut self.sink, &entities, options, &FixedClock::new(T0), &Silent).await.unwrap();
        assert!(self.script.finished(), "scripted requests were not made");
        report
    }

    async fn state(&mut self, entity: &str) -> EntityState {
        self.sink.state(entity).await.unwrap().unwrap()
    }
}

fn pages_of(size: u32) -> EngineOptions {
    EngineOptions { page_size: Some(size), concurrency: 1, ..EngineOptions::default() }
}

fn gift(id: u32) -> String {
    format!(r#"{{"id":"{id}","amount":{{"value":{id}}},"date_modified":"2025-0{id}-01T00:00:00Z"}}"#)
}

fn page(count: u32, next_link: Option<&str>, records: &[String]) -> String {
    let link = next_link.map(|l| format!(r#","next_link":"{API}{l}""#)).unwrap_or_default();
    format!(r#"{{"count":{count}{link},"value":[{}]}}"#, records.join(","))
}

fn link(token: &str) -> String {
    format!("/gift/v1/gifts?limit=2&last_modified=1600-01-01T00%3a00%3a00Z&sort_token={token}")
}

/// Scripts a first gifts run of three records over two pages and the empty end page.
fn three_gifts(script: &Script) {
    script
        .get(GIFTS_FIRST, &page(3, Some(&link("A")), &[gift(1), gift(2)]))
        .get(&link("A"), &page(3, Some(&link("B")), &[gift(3)]))
        .get(&link("B"), &page(3, Some(&link("C")), &[]));
}

#[tokio::test]
async fn incremental_pages_commit_their_bookmark_and_the_next_run_resumes_from_the_last_link() {
    let mut r = rig().await;
    three_gifts(&r.script);
    let report = r.run(&["gifts"], &pages_of(2)).await;
    assert!(report.ok(), "{report:?}");
    let g = &report.entities[0];
    assert_eq!((g.mode, g.records, g.pages, g.added, g.requests), (RunMode::Initial, 3, 3, 3, 3));
    let state = r.state("gifts").await;
    assert_eq!(state.row_count, 3);
    let expected_bookmark =
        Bookmark::Chain { next_link: format!("{API}{}", link("C")), high_water: Some("2025-03-01T00:00:00Z".into()) };
    assert_eq!(Bookmark::from_json(state.bookmark.as_deref().unwrap()).unwrap(), expected_bookmark);

    // The next run starts at the empty page's link, verbatim, and finds one change.
    r.script.get(&link("C"), &page(1, Some(&link("D")), &[gift(2)])).get(&link("D"), &page(1, None, &[]));
    let report = r.run(&["gifts"], &pages_of(2)).await;
    let g = &report.entities[0];
    assert_eq!((g.mode, g.records, g.added, g.changed), (RunMode::Incremental, 1, 0, 1));
}

#[tokio::test]
async fn a_next_link_without_the_first_requests_filters_gets_them_back() {
    let mut r = rig().await;
    let first = "/constituent/v1/constituents?limit=2&last_modified=1600-01-01T00%3A00%3A00Z&include_inactive=true&include_deceased=true";
    let bare = "/constituent/v1/constituents?limit=2&sort_token=X";
    r.script
        .get(first, &page(2, Some(bare), &[r#"{"id":"c1"}"#.into(), r#"{"id":"c2"}"#.into()]))
        .get(&format!("{bare}&include_inactive=true&include_deceased=true"), r#"{"count":2,"value":[]}"#);
    let report = r.run(&["constituents"], &pages_of(2)).await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(report.entities[0].records, 2);
}

#[tokio::test]
async fn a_full_resync_swaps_in_the_new_set_and_counts_what_readers_lost() {
    let mut r = rig().await;
    three_gifts(&r.script);
    r.run(&["gifts"], &pages_of(2)).await;
    // Gift 2 is gone from SKY; a full resync walks the chain from the beginning into staging.
    r.script.get(GIFTS_FIRST, &page(2, Some(&link("F")), &[gift(1), gift(3)])).get(&link("F"), &page(2, None, &[]));
    let report = r.run(&["gifts"], &EngineOptions { full: true, ..pages_of(2) }).await;
    assert!(report.ok(), "{report:?}");
    let g = &report.entities[0];
    assert_eq!((g.mode, g.records, g.added, g.changed, g.removed), (RunMode::Full, 2, 0, 0, 1));
    let state = r.state("gifts").await;
    assert_eq!((state.row_count, state.staging_bookmark), (2, None));
    assert!(state.bookmark.unwrap().contains("last_modified"), "the next run restarts after the newest change");
}

#[tokio::test]
async fn a_reconciliation_scans_every_id_and_marks_the_missing_rows() {
    let mut r = rig().await;
    three_gifts(&r.script);
    r.run(&["gifts"], &pages_of(2)).await;
    let scan = |t: &str| format!("/gift/v1/gifts?limit=2&last_modified=1600-01-01T00%3a00%3a00Z&sort_token=S{t}");
    r.script
        .get(&link("C"), &page(0, Some(&link("C")), &[]))
        // The id scan: a chain from the beginning of time (gifts have no fields=id).
        .get(GIFTS_FIRST, &page(2, Some(&scan("1")), &[gift(1), gift(3)]))
        .get(&scan("1"), &page(2, Some(&scan("2")), &[]));
    let report = r.run(&["gifts"], &EngineOptions { reconcile: true, ..pages_of(2) }).await;
    assert!(report.ok(), "{report:?}");
    let g = &report.entities[0];
    assert_eq!((g.removed, g.reconciled, g.pages, g.requests), (1, true, 3, 3));
    let state = r.state("gifts").await;
    assert_eq!((state.row_count, state.reconcile_in_progress), (2, false));
}

#[tokio::test]
async fn an_id_scan_that_misses_ids_deletes_nothing() {
    let mut r = rig().await;
    three_gifts(&r.script);
    r.run(&["gifts"], &pages_of(2)).await;
    r.script
        .get(&link("C"), &page(0, Some(&link("C")), &[]))
        .get(GIFTS_FIRST, &page(3, Some(&link("S")), &[gift(1)]))
        .get(&link("S"), &page(3, Some(&link("T")), &[]));
    let report = r.run(&["gifts"], &EngineOptions { reconcile: true, ..pages_of(2) }).await;
    let g = &report.entities[0];
    assert!(g.error.as_deref().unwrap().contains("the list changed during the id scan (1 ids seen, 3 expected)"));
    assert!(!g.halted && report.stopped.is_none(), "one entity's problem");
    let state = r.state("gifts").await;
    assert_eq!((state.row_count, state.reconcile_in_progress), (3, true), "retried next run");
}

const QUOTA: &str =
    r#"{"statusCode":403,"message":"Out of call volume quota. Quota will be replenished in 05:00:00."}"#;

#[tokio::test]
async fn a_quota_stop_ends_the_whole_run_and_later_entities_do_not_start() {
    let mut r = rig().await;
    r.script.get(GIFTS_FIRST, &page(3, Some(&link("A")), &[gift(1), gift(2)])).expect(
        Method::Get,
        &link("A"),
        403,
        QUOTA,
    );
    let report = r.run(&["gifts", "constituents"], &pages_of(2)).await;
    assert!(
        matches!(report.stopped, Some(ApiError::QuotaExhausted { retry_after: Some(d), .. }) if d.as_secs() == 5 * 3600)
    );
    let (gifts, constituents) = (&report.entities[0], &report.entities[1]);
    assert!(gifts.halted && gifts.error.as_deref().unwrap().contains("quota"), "{gifts:?}");
    assert_eq!((gifts.records, gifts.requests), (2, 2), "the committed page is kept");
    assert!(constituents.halted && constituents.requests == 0, "{constituents:?}");
    assert!(constituents.error.as_deref().unwrap().starts_with("stopped: out of SKY API call quota"));
    let state = r.state("gifts").await;
    assert_eq!(state.row_count, 2);
    assert!(state.bookmark.unwrap().contains("sort_token=A"), "the next run resumes at the refused page");
}

#[tokio::test]
async fn an_entity_local_error_fails_that_entity_and_the_others_go_on() {
    let mut r = rig().await;
    r.script.expect(Method::Get, GIFTS_FIRST, 404, r#"{"message":"Resource not found"}"#).get(
        "/fundraising/v1/funds?limit=2&last_modified=1600-01-01T00%3A00%3A00Z&include_inactive=true",
        r#"{"count":1,"value":[{"id":"f1"}]}"#,
    );
    let report = r.run(&["gifts", "funds"], &pages_of(2)).await;
    assert!(report.stopped.is_none());
    let (gifts, funds) = (&report.entities[0], &report.entities[1]);
    assert!(!gifts.halted && gifts.error.as_deref().unwrap().contains("HTTP 404"), "{gifts:?}");
    assert!(funds.error.is_none() && funds.records == 1, "{funds:?}");
    assert_eq!(r.state("gifts").await.last_error.as_deref(), gifts.error.as_deref());
}

const REFRESHED: &str = r#"{"access_token":"at1","token_type":"bearer","expires_in":3600,"refresh_token":"rt0","refresh_token_expires_in":31536000}"#;

#[tokio::test]
async fn a_401_mid_run_refreshes_once_and_the_refused_page_is_fetched_again() {
    let mut r = rig().await;
    r.script
        .get(GIFTS_FIRST, &page(3, Some(&link("A")), &[gift(1), gift(2)]))
        .expect(Method::Get, &link("A"), 401, r#"{"message":"Unauthorized"}"#)
        .expect(Method::Post, "https://oauth2.sky.blackbaud.com/token", 200, REFRESHED)
        .get(&link("A"), &page(3, Some(&link("B")), &[gift(3)]))
        .get(&link("B"), &page(3, None, &[]));
    let report = r.run(&["gifts"], &pages_of(2)).await;
    assert!(report.ok(), "{report:?}");
    assert_eq!((report.token_calls, report.api.unauthorized, report.api.calls), (1, 1, 4));
    assert_eq!((report.entities[0].records, report.entities[0].requests), (3, 4));
    assert_eq!(r.script.bearer(1), "Bearer at0");
    assert_eq!(r.script.bearer(3), "Bearer at1", "the page is re-sent with the new token");
}

#[tokio::test]
async fn a_401_after_a_fresh_token_stops_the_run() {
    let mut r = rig().await;
    r.script
        .expect(Method::Get, GIFTS_FIRST, 401, r#"{"message":"Unauthorized"}"#)
        .expect(Method::Post, "https://oauth2.sky.blackbaud.com/token", 200, REFRESHED)
        .expect(Method::Get, GIFTS_FIRST, 401, r#"{"message":"Unauthorized"}"#);
    let report = r.run(&["gifts", "funds"], &pages_of(2)).await;
    assert!(matches!(report.stopped, Some(ApiError::Unauthorized { .. })), "{report:?}");
    assert!(report.entities.iter().all(|e| e.halted));
}
