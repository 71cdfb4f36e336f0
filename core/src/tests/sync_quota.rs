//! Quota-aware runs: the quota day, the ledger of calls used today, the run's allowance and the
//! call estimate from `count` probes.

use std::time::Duration;

use time::macros::datetime;
use url::Url;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::T0;
use crate::sync::catalog::find;
use crate::sync::partition::Pace;
use crate::sync::quota::{EstimatePlan, QuotaLedger, accuracy, quota_day_end, scan_calls};
use crate::sync::{Bookmark, RunMode, StoredState, SyncOptions};

fn base() -> Url {
    Url::parse("https://api.sky.blackbaud.com/").unwrap()
}

const SLOW: Pace = Pace { rate: 0.0, latency: Duration::ZERO };

#[test]
fn the_quota_day_ends_at_midnight_utc_until_a_reset_is_announced() {
    assert_eq!(quota_day_end(T0, None), datetime!(2026-01-16 00:00 UTC));
    assert_eq!(quota_day_end(datetime!(2026-01-15 23:59:59 -05:00), None), datetime!(2026-01-17 00:00 UTC));
    // A 403 said the quota replenishes at 06:30: every later day ends at 06:30.
    let reset = datetime!(2026-01-10 06:30 UTC);
    assert_eq!(quota_day_end(T0, Some(reset)), datetime!(2026-01-16 06:30 UTC));
    assert_eq!(quota_day_end(datetime!(2026-01-16 06:29 UTC), Some(reset)), datetime!(2026-01-16 06:30 UTC));
    assert_eq!(quota_day_end(datetime!(2026-01-16 06:30 UTC), Some(reset)), datetime!(2026-01-17 06:30 UTC));
    // An announced reset still ahead.
    assert_eq!(quota_day_end(T0, Some(datetime!(2026-01-15 18:00 UTC))), datetime!(2026-01-15 18:00 UTC));
}

#[test]
fn the_ledger_counts_calls_per_day_and_starts_over_the_next_day() {
    let mut l = QuotaLedger::today(None, T0);
    assert_eq!((l.calls_today, l.day_ends_at), (0, datetime!(2026-01-16 00:00 UTC)));
    l.record_run(38, 2, Some(42), T0);
    l.record_run(10, 0, None, T0 + Duration::from_secs(3600));
    assert_eq!((l.calls_today, l.last_run_calls, l.last_run_estimate), (50, Some(10), None));
    assert_eq!(l.remaining(60), 10);
    assert_eq!(l.remaining(30), 0);
    assert_eq!(QuotaLedger::today(Some(&l), T0 + Duration::from_secs(7200)), l, "same day: as stored");
    let tomorrow = QuotaLedger::today(Some(&l), datetime!(2026-01-16 00:00 UTC));
    assert_eq!((tomorrow.calls_today, tomorrow.day_ends_at), (0, datetime!(2026-01-17 00:00 UTC)));
    assert_eq!(tomorrow.last_run_calls, Some(10), "the last run's figures stay for status");
}

#[test]
fn a_quota_403_ends_the_day_when_blackbaud_says_and_uses_it_up() {
    let mut l = QuotaLedger::today(None, T0);
    l.record_run(5, 0, None, T0);
    // Retry-After counts whole seconds, and so does the reset.
    l.record_exhausted(T0 + Duration::from_millis(300), Some(Duration::from_secs(406)), Some(1000));
    assert_eq!(l.day_ends_at, T0 + Duration::from_secs(406));
    assert_eq!(l.announced_reset, Some(T0 + Duration::from_secs(406)));
    assert_eq!(l.remaining(1000), 0, "nothing left until the reset");
    let next = QuotaLedger::today(Some(&l), T0 + Duration::from_secs(406));
    assert_eq!(next.calls_today, 0);
    assert_eq!(next.day_ends_at, T0 + Duration::from_secs(406 + 86_400), "days now end at the announced time");
}

#[test]
fn accuracy_is_actual_over_estimated() {
    assert_eq!(accuracy(38, Some(40)), Some(0.95));
    assert_eq!(accuracy(3, Some(0)), None);
    assert_eq!(accuracy(3, None), None);
}

#[test]
fn a_scan_costs_its_pages_and_a_chain_its_empty_last_page() {
    let gifts = find("gifts").unwrap();
    let events = find("events").unwrap();
    assert_eq!(scan_calls(gifts, 0, 5000), 1);
    assert_eq!(scan_calls(gifts, 5000, 5000), 2);
    assert_eq!(scan_calls(gifts, 5001, 5000), 3);
    assert_eq!(scan_calls(events, 0, 100), 1);
    assert_eq!(scan_calls(events, 250, 100), 3);
    assert_eq!(scan_calls(events, 200, 100), 2);
}

#[test]
fn an_initial_run_is_probed_from_the_beginning_and_an_incremental_one_from_its_high_water() {
    let gifts = find("gifts").unwrap();
    let options = SyncOptions { page_size: Some(50), ..SyncOptions::default() };
    let plan = EstimatePlan::new(gifts, &base(), None, None, &options, T0);
    let probes = plan.probe_urls();
    assert_eq!(probes.len(), 1);
    assert_eq!(probes[0].query(), Some("limit=1&last_modified=1600-01-01T00%3A00%3A00Z"));
    let e = plan.finish(&[Some(200)], SLOW, 1);
    assert_eq!((e.mode, e.records, e.scan_calls, e.calls), (RunMode::Initial, Some(200), 5, 5));

    let chain = Bookmark::Chain {
        next_link: "https://api.sky.blackbaud.com/gift/v1/gifts?limit=50&last_modified=1600-01-01T00:00:00Z&sort_token=AAAAAAAAAAo%3d".into(),
        high_water: Some("2026-01-14T10:00:00Z".into()),
    }
    .to_json();
    let stored = StoredState { bookmark: Some(chain.clone()), ..StoredState::default() };
    let plan = EstimatePlan::new(gifts, &base(), Some(&stored), Some(&chain), &options, T0);
    let probes = plan.probe_urls();
    assert_eq!(
        probes[0].query(),
        Some("limit=1&last_modified=2026-01-14T10%3A00%3A00.000001Z"),
        "no sort_token, after the high water"
    );
    let e = plan.finish(&[Some(3)], SLOW, 8);
    assert_eq!((e.mode, e.scan_calls, e.partition_calls, e.calls), (RunMode::Incremental, 2, 0, 2));
}

#[test]
fn a_due_reconciliation_adds_its_id_scan_and_a_long_initial_scan_its_partitions() {
    let gifts = find("gifts").unwrap();
    let done = Bookmark::Chain {
        next_link:
            "https://api.sky.blackbaud.com/gift/v1/gifts?limit=50&last_modified=1600-01-01T00:00:00Z&sort_token=x"
                .into(),
        high_water: Some("2026-01-14T10:00:00Z".into()),
    }
    .to_json();
    let stored = StoredState { bookmark: Some(done.clone()), ..StoredState::default() };
    let options = SyncOptions { page_size: Some(50), reconcile: true, ..SyncOptions::default() };
    let plan = EstimatePlan::new(gifts, &base(), Some(&stored), Some(&done), &options, T0);
    let probes = plan.probe_urls();
    assert_eq!(probes.len(), 2, "the changes and the id scan");
    let e = plan.finish(&[Some(0), Some(120)], SLOW, 8);
    assert_eq!((e.scan_calls, e.reconcile_calls, e.calls), (1, 4, 5));

    // 1000 records in pages of 50 with an unpaced client: split into chains, each extra one
    // costing its probe and its overshooting page.
    let options = SyncOptions { page_size: Some(50), ..SyncOptions::default() };
    let plan = EstimatePlan::new(gifts, &base(), None, None, &options, T0);
    let e = plan.finish(&[Some(1000)], SLOW, 4);
    assert_eq!((e.scan_calls, e.partition_calls, e.calls), (21, 6, 27));
    let e = plan.finish(&[Some(1000)], SLOW, 1);
    assert_eq!(e.partition_calls, 0, "--partitions 1 never splits");
}
