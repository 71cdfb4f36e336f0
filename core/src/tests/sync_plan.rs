//! The entity plan and the run schedule: responses in, next steps and commits out.

use std::time::Duration;

use url::Url;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::T0;
use super::fake::json;
use crate::api::ApiError;
use crate::sync::catalog::find;
use crate::sync::{
    Bookmark, Commit, EntityPlan, Next, PageOutcome, Phase, PlanError, RunMode, RunStop, StoredState, SyncOptions,
    page_high_water, reconcile_due, record_keys, stops_run,
};

const DAY: Duration = Duration::from_secs(86_400);

fn base() -> Url {
    Url::parse("https://api.sky.blackbaud.com/").unwrap()
}

fn small() -> SyncOptions {
    SyncOptions { page_size: Some(2), ..SyncOptions::default() }
}

fn synced(bookmark: &Bookmark) -> StoredState {
    StoredState { bookmark: Some(bookmark.to_json()), ..StoredState::default() }
}

/// Fetches the plan's next page with `body` as the answer.
fn feed(plan: &mut EntityPlan, body: &str) -> PageOutcome {
    assert_eq!(plan.next().unwrap(), Next::Fetch);
    let url = plan.request_url().unwrap();
    plan.page(&url, &json(200, body)).unwrap()
}

fn committed(outcome: PageOutcome) -> (Vec<String>, Bookmark) {
    match outcome.commit {
        Commit::Records { records, bookmark } => {
            (records.into_iter().map(|r| r.id).collect(), Bookmark::from_json(&bookmark).unwrap())
        }
        Commit::SeenIds(ids) => panic!("expected records, got ids {ids:?}"),
    }
}

const LINK: &str = "https://api.sky.blackbaud.com/gift/v1/gifts?limit=2&last_modified=1600-01-01T00%3a00%3a00Z&sort_token=AAAAAAAC%2bI4%3d";

#[test]
fn an_incremental_run_commits_each_page_with_the_bookmark_that_covers_it() {
    let gifts = find("gifts").unwrap();
    let mut plan = EntityPlan::new(gifts, &base(), None, &small(), T0).unwrap();
    assert_eq!((plan.mode(), plan.reconciles()), (RunMode::Initial, false));
    let first = feed(
        &mut plan,
        &format!(
            r#"{{"count":3,"next_link":"{LINK}","value":[{{"id":"1","date_modified":"2024-01-02T00:00:00Z"}},{{"id":2,"date_modified":"2024-01-01T00:00:00Z"}}]}}"#
        ),
    );
    assert_eq!((first.phase, first.done, first.expected), (Phase::Sync, 2, Some(3)));
    let (ids, bookmark) = committed(first);
    assert_eq!(ids, ["1", "2"]);
    assert_eq!(bookmark, Bookmark::Chain { next_link: LINK.into(), high_water: Some("2024-01-02T00:00:00Z".into()) });
    assert_eq!(plan.request_url().unwrap().as_str(), LINK, "the next_link is requested verbatim");
    let end = LINK.replace("I4", "I5");
    let last = feed(&mut plan, &format!(r#"{{"count":9,"next_link":"{end}","value":[]}}"#));
    assert_eq!((last.done, last.expected), (2, Some(3)), "progress keeps the first page's count");
    let (ids, bookmark) = committed(last);
    assert!(ids.is_empty(), "the empty page commits its link as the bookmark");
    assert_eq!(bookmark, Bookmark::Chain { next_link: end.clone(), high_water: Some("2024-01-02T00:00:00Z".into()) });
    assert_eq!(plan.next().unwrap(), Next::Done);

    // The next run resumes from that link.
    let again = EntityPlan::new(gifts, &base(), Some(&synced(&bookmark)), &small(), T0 + DAY).unwrap();
    assert_eq!(again.mode(), RunMode::Incremental);
    assert_eq!(again.request_url().unwrap().as_str(), end);
}

#[test]
fn a_due_reconciliation_follows_the_pages_with_an_id_scan() {
    let constituents = find("constituents").unwrap();
    let options = SyncOptions { reconcile: true, ..small() };
    let stored = synced(&Bookmark::Chain {
        next_link: LINK.replace("gift/v1/gifts", "constituent/v1/constituents"),
        high_water: None,
    });
    let mut plan = EntityPlan::new(constituents, &base(), Some(&stored), &options, T0).unwrap();
    assert!(plan.reconciles());
    feed(&mut plan, r#"{"count":0,"value":[]}"#);
    assert_eq!(plan.next().unwrap(), Next::StartReconcile);
    assert!(plan.request_url().is_err(), "no page before the seen set is ready");
    plan.reconcile_started(T0).unwrap();
    let q = plan.request_url().unwrap();
    assert!(q.query().unwrap().contains("fields=id"), "{q}");
    let link = "https://api.sky.blackbaud.com/constituent/v1/constituents?limit=2&sort_token=x";
    let scan = feed(&mut plan, &format!(r#"{{"count":3,"next_link":"{link}","value":[{{"id":"1"}},{{"id":"2"}}]}}"#));
    assert_eq!((scan.phase, scan.done, scan.expected), (Phase::Reconcile, 2, Some(3)));
    assert!(matches!(scan.commit, Commit::SeenIds(ref ids) if ids == &["1", "2"]));
    feed(&mut plan, &format!(r#"{{"count":3,"next_link":"{link}2","value":[{{"id":"3"}}]}}"#));
    feed(&mut plan, &format!(r#"{{"count":3,"next_link":"{link}3","value":[]}}"#));
    assert_eq!(plan.next().unwrap(), Next::FinishReconcile);
    plan.reconcile_finished().unwrap();
    assert_eq!(plan.next().unwrap(), Next::Done);
}

#[test]
fn an_id_scan_that_saw_fewer_ids_than_promised_ends_with_an_error_after_its_last_page() {
    let events = find("events").unwrap();
    let options = SyncOptions { reconcile: true, ..small() };
    let mut plan = EntityPlan::new(events, &base(), None, &options, T0).unwrap();
    feed(&mut plan, r#"{"count":1,"value":[{"id":"e1"}]}"#);
    plan.reconcile_started(T0).unwrap();
    feed(&mut plan, r#"{"count":3,"value":[{"id":"e1"},{"id":"e2"}]}"#);
    // A delete behind the offset scan shifted the last page: the count moved.
    let last = feed(&mut plan, r#"{"count":2,"value":[]}"#);
    assert!(matches!(last.commit, Commit::SeenIds(ref ids) if ids.is_empty()), "the last page is committed first");
    let err = plan.next().unwrap_err();
    assert!(matches!(err, PlanError::ScanIncomplete { seen: 2, expected: 2, .. }), "{err:?}");
    assert!(err.to_string().contains("events: the list changed during the id scan (2 ids seen, 2 expected)"), "{err}");
    assert!(plan.reconcile_finished().is_err(), "nothing is deleted on an incomplete scan");
}

#[test]
fn a_full_resync_fills_staging_then_swaps_it_in_with_the_chains_end() {
    let gifts = find("gifts").unwrap();
    let options = SyncOptions { full: true, reconcile: true, ..small() };
    let stored = synced(&Bookmark::Chain { next_link: "not even a url".into(), high_water: None });
    let mut plan = EntityPlan::new(gifts, &base(), Some(&stored), &options, T0).unwrap();
    assert_eq!((plan.mode(), plan.reconciles()), (RunMode::Full, false), "the swap handles deletes");
    assert_eq!(plan.next().unwrap(), Next::OpenStaging);
    // An interrupted resync resumes from its staging bookmark.
    let staged = Bookmark::Chain { next_link: LINK.into(), high_water: None };
    plan.staging_opened(Some(&staged.to_json()), T0).unwrap();
    assert_eq!(plan.request_url().unwrap().as_str(), LINK);
    let page = feed(
        &mut plan,
        r#"{"count":1,"next_link":"https://api.sky.blackbaud.com/gift/v1/gifts?sort_token=mid","value":[{"id":"9"}]}"#,
    );
    assert_eq!(page.phase, Phase::Full);
    feed(
        &mut plan,
        r#"{"count":1,"next_link":"https://api.sky.blackbaud.com/gift/v1/gifts?sort_token=end","value":[]}"#,
    );
    match plan.next().unwrap() {
        Next::SwapStaging { bookmark } => assert!(bookmark.contains("sort_token=end"), "{bookmark}"),
        other => panic!("{other:?}"),
    }
    plan.staging_swapped().unwrap();
    assert_eq!(plan.next().unwrap(), Next::Done);
}

#[test]
fn unreadable_bookmarks_records_without_ids_and_steps_out_of_order_are_errors() {
    let gifts = find("gifts").unwrap();
    let bad = StoredState { bookmark: Some("{".into()), ..StoredState::default() };
    let err = EntityPlan::new(gifts, &base(), Some(&bad), &small(), T0).unwrap_err();
    assert!(err.to_string().starts_with("gifts: unreadable bookmark"), "{err}");

    let mut plan = EntityPlan::new(gifts, &base(), None, &small(), T0).unwrap();
    let url = plan.request_url().unwrap();
    let err = plan.page(&url, &json(200, r#"{"value":[{"id":null}]}"#)).unwrap_err();
    assert!(matches!(err, PlanError::Record { entity: "gifts", .. }), "{err:?}");
    assert!(plan.staging_opened(None, T0).is_err());
    assert!(plan.staging_swapped().is_err());
    assert!(plan.reconcile_started(T0).is_err());
    let err = plan.page(&url, &json(200, r#"{"count":1}"#)).unwrap_err();
    assert!(matches!(err, PlanError::Page(_)), "{err:?}");
}

#[test]
fn the_high_water_mark_is_the_newest_parseable_date_modified() {
    let gifts = find("gifts").unwrap();
    let body = r#"{"value":[{"id":"1","date_modified":"garbage"},{"id":"2","date_modified":"2024-01-01T00:00:00+01:00"},{"id":"3","date_modified":"2023-12-31T23:30:00Z"},{"id":"4"}]}"#;
    let page = crate::sync::parse_page(&base(), &json(200, body)).unwrap();
    assert_eq!(page_high_water(&record_keys(&page, "id").unwrap()).as_deref(), Some("2023-12-31T23:30:00Z"));
    let unreadable = crate::sync::parse_page(&base(), &json(200, r#"{"value":[{"id":"1","date_modified":"x"}]}"#));
    assert_eq!(page_high_water(&record_keys(&unreadable.unwrap(), "id").unwrap()), None);
    let mut plan = EntityPlan::new(gifts, &base(), None, &small(), T0).unwrap();
    let (_, bookmark) = committed(feed(&mut plan, body));
    assert_eq!(bookmark.high_water(), Some("2023-12-31T23:30:00Z"));
    // The chain ended without a link: the next run restarts from it, minus the overlap.
    let again = EntityPlan::new(gifts, &base(), Some(&synced(&bookmark)), &small(), T0).unwrap();
    assert!(again.request_url().unwrap().as_str().contains("last_modified=2023-12-31T23%3A00%3A00Z"));
}

#[test]
fn reconciliation_is_due_when_asked_interrupted_or_the_interval_passed() {
    let mut st = StoredState::default();
    let every = SyncOptions { reconcile_every: Some(7 * DAY), ..SyncOptions::default() };
    assert!(!reconcile_due(&every, None, T0), "a first sync has nothing to reconcile");
    assert!(!reconcile_due(&every, Some(&st), T0), "no bookmark yet");
    st.bookmark = Some("{}".into());
    assert!(reconcile_due(&every, Some(&st), T0), "synced, never reconciled");
    st.last_reconcile_at = Some(T0 - DAY);
    assert!(!reconcile_due(&every, Some(&st), T0));
    st.last_reconcile_at = Some(T0 - 8 * DAY);
    assert!(reconcile_due(&every, Some(&st), T0));
    st.last_reconcile_at = Some(T0);
    st.reconcile_in_progress = true;
    assert!(reconcile_due(&SyncOptions::default(), Some(&st), T0), "an interrupted scan restarts");
    let full = SyncOptions { full: true, reconcile: true, ..SyncOptions::default() };
    assert!(!reconcile_due(&full, Some(&st), T0), "--full replaces the table instead");
    let asked = SyncOptions { reconcile: true, ..SyncOptions::default() };
    assert!(reconcile_due(&asked, None, T0));
}

#[test]
fn quota_budget_and_consent_stop_the_run_and_the_first_reason_is_kept() {
    let quota = ApiError::QuotaExhausted { retry_after: Some(DAY), message: "Out of call volume quota.".into() };
    let budget = ApiError::BudgetSpent { budget: 5 };
    let http = ApiError::Http { method: "GET", url: "/x".into(), status: 404, message: "not found".into() };
    assert!(stops_run(&quota) && stops_run(&budget) && !stops_run(&http));
    let mut stop = RunStop::default();
    assert!(!stop.note(&http));
    assert!(stop.reason().is_none(), "an entity-local error does not stop the run");
    assert!(stop.note(&quota));
    assert!(stop.note(&budget));
    assert!(matches!(stop.into_reason(), Some(ApiError::QuotaExhausted { .. })));
}
