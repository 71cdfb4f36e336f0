//! Paging fidelity against the ways Blackbaud may differ from what the client assumes: `next_link`
//! without the first request's filters, actions paged by `continuation_token`, and lists that lag
//! ~30 minutes behind edits. Black-box: the real binary against the in-process simulator.

use std::path::PathBuf;
use std::time::Duration;

use skysync_cli::sim::{ActionsPaging, SimConfig};
use skysync_cli::sink::SinkSpec;
use skysync_tests::cli::Skysync;

use crate::sync::Fixture;

async fn world(cfg: SimConfig) -> Skysync {
    let sk = Skysync::with_sim(cfg).await;
    let tokens = sk.minted_tokens(|_| {});
    sk.seed(tokens).await;
    sk
}

fn db(sk: &Skysync) -> Fixture {
    Fixture::at(SinkSpec::Sqlite(sk.data_dir().join("skysync.db")))
}

fn write_sync_config(sk: &Skysync, sync_table: &str) -> PathBuf {
    let dir = sk.home().join("config").join("skysync");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("config.toml");
    std::fs::write(&path, format!("[profiles.default.sync]\n{sync_table}\n")).unwrap();
    path
}

/// Rows whose stored record has `field: true`.
async fn flagged(fx: &Fixture, table: &str, field: &str) -> usize {
    fx.rows(table).await.values().filter(|(data, deleted)| !deleted && data[field] == true).count()
}

async fn three_page_sync_holds_every_record(keeps_filters: bool) {
    // 60 constituents in pages of 20: three full pages and the chain's empty end.
    let sk = world(SimConfig { records: 60, next_link_keeps_filters: keeps_filters, ..SimConfig::default() }).await;
    let run = sk.run(&["sync", "constituents", "--page-size", "20"]).await;
    run.expect_code(0);
    let fx = db(&sk);
    fx.assert_equals_source(&sk.sim, "constituents").await;
    assert!(flagged(&fx, "constituents", "inactive").await > 0, "inactive constituents are kept");
    assert!(flagged(&fx, "constituents", "deceased").await > 0, "deceased constituents are kept");
    assert_eq!(sk.sim.stats().per_entity_calls.get("constituents"), Some(&4), "three pages and the empty end");

    // A delete reconciliation (an id scan along its own chain) must not take hidden rows for deleted.
    sk.sim.modify("constituents", 5);
    let run = sk.run(&["sync", "constituents", "--page-size", "20", "--reconcile", "--json"]).await;
    run.expect_code(0);
    let v: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(v["entities"][0]["removed"], 0, "{v}");
    fx.assert_equals_source(&sk.sim, "constituents").await;
}

#[tokio::test]
async fn a_three_page_sync_holds_inactive_and_deceased_records_when_next_link_drops_filters() {
    three_page_sync_holds_every_record(false).await;
}

#[tokio::test]
async fn a_three_page_sync_holds_inactive_and_deceased_records_when_next_link_keeps_filters() {
    three_page_sync_holds_every_record(true).await;
}

async fn actions_sync_and_resync(paging: ActionsPaging) {
    // 100 constituents → 50 actions, pages of 15: four pages.
    let sk = world(SimConfig { records: 100, actions_paging: paging, ..SimConfig::default() }).await;
    let run = sk.run(&["sync", "actions", "--page-size", "15"]).await;
    run.expect_code(0);
    let fx = db(&sk);
    fx.assert_equals_source(&sk.sim, "actions").await;
    let calls = sk.sim.stats().per_entity_calls.get("actions").copied().unwrap_or(0);
    assert!(calls >= 4, "paged, not one big request: {calls} calls");
    // Changes and additions arrive on the next run, whatever cursor ended the last one.
    sk.sim.advance_clock(Duration::from_secs(3600));
    sk.sim.modify("actions", 4);
    sk.sim.add("actions", 20);
    sk.run(&["sync", "actions", "--page-size", "15"]).await.expect_code(0);
    fx.assert_equals_source(&sk.sim, "actions").await;
}

#[tokio::test]
async fn actions_page_by_sort_token_next_link() {
    actions_sync_and_resync(ActionsPaging::SortToken).await;
}

#[tokio::test]
async fn actions_page_by_a_continuation_token_in_next_link() {
    actions_sync_and_resync(ActionsPaging::NextLinkContinuation).await;
}

#[tokio::test]
async fn actions_page_by_a_continuation_token_in_the_body() {
    actions_sync_and_resync(ActionsPaging::BodyContinuation).await;
}

/// A record changed within the list lag is not listed by the run right after the change; the next
/// run after the lag lists it, along the sort_token chain (constituents: a documented 30m list).
#[tokio::test]
async fn a_record_changed_within_the_list_lag_arrives_on_the_next_run() {
    let lag = Duration::from_secs(30 * 60);
    let sk = world(SimConfig { records: 40, list_lag: Some(lag), ..SimConfig::default() }).await;
    sk.run(&["sync", "constituents"]).await.expect_code(0);
    let fx = db(&sk);
    fx.assert_equals_source(&sk.sim, "constituents").await;
    let changed = sk.sim.modify("constituents", 3);
    let added = sk.sim.add("constituents", 2);
    sk.run(&["sync", "constituents"]).await.expect_code(0);
    let rows = fx.rows("constituents").await;
    assert!(added.iter().all(|id| !rows.contains_key(id)), "not listed within the lag");
    for id in &changed {
        assert_ne!(rows[id].0, sk.sim.record("constituents", id).unwrap(), "change not listed within the lag");
    }
    sk.sim.advance_clock(lag + Duration::from_secs(60));
    sk.run(&["sync", "constituents"]).await.expect_code(0);
    fx.assert_equals_source(&sk.sim, "constituents").await;
}

/// Offset scans (events) restart from the previous run's start minus the overlap: a change made
/// just before a run and hidden by the lag is caught by the next run only thanks to the overlap.
async fn lagged_offset_scan(overlap_minutes: u64) -> (Skysync, Vec<String>) {
    let lag = Duration::from_secs(10 * 60);
    let sk = world(SimConfig { records: 1000, list_lag: Some(lag), list_lag_everywhere: true, ..SimConfig::default() })
        .await;
    write_sync_config(&sk, &format!("overlap_minutes = {overlap_minutes}"));
    sk.run(&["sync", "events"]).await.expect_code(0);
    let changed = sk.sim.modify("events", 2);
    sk.run(&["sync", "events"]).await.expect_code(0);
    sk.sim.advance_clock(lag + Duration::from_secs(60));
    sk.run(&["sync", "events"]).await.expect_code(0);
    (sk, changed)
}

#[tokio::test]
async fn the_overlap_catches_changes_hidden_by_the_list_lag() {
    let (sk, _) = lagged_offset_scan(30).await;
    db(&sk).assert_equals_source(&sk.sim, "events").await;
}

#[tokio::test]
async fn without_an_overlap_a_change_hidden_by_the_list_lag_is_missed() {
    // The control experiment: proves the scenario above depends on the overlap.
    let (sk, changed) = lagged_offset_scan(0).await;
    let rows = db(&sk).rows("events").await;
    let stale = changed.iter().filter(|id| rows[*id].0 != sk.sim.record("events", id).unwrap()).count();
    assert_eq!(stale, changed.len(), "with overlap 0 the lagged changes are never listed");
}
