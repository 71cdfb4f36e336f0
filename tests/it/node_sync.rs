//! `web/examples/node-sync.mjs` through the packed npm package, black-box against the simulator:
//! `skysync export` hands a profile's tokens over, the example syncs every constituent with
//! `SkySync` (its tokens in a file store seeded from the bundle, its bookmark in a file), and a
//! second run after changes in the simulator receives only the changes. The CLI's profile says
//! where its tokens went (exit 4). Also the `SkyTokenStore` contract (web/tests/store-contract.mjs)
//! in Node: a compare-and-swap conflict, a save that fails after a rotation, a lost rotation.

use std::time::Duration;

use skysync_cli::sim::Fault;
use skysync_tests::cli::Skysync;

use crate::node_app::{handed_over_app, install_package, node_env, path_str, run, run_ok};

fn api_calls(s: &Skysync, entity: &str) -> u64 {
    s.sim.stats().per_entity_calls.get(entity).copied().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_sync_gets_every_constituent_then_only_the_changes() {
    skysync_tests::skip_in_fast_tier!("Node and web/build.sh");
    let (s, bundle, app) = handed_over_app().await;

    // The CLI's profile handed its tokens over: it refuses to use them, naming the export.
    let token = s.run(&["token"]).await;
    token.expect_code(4);
    assert!(token.stderr.contains("handed over to") && token.stderr.contains(path_str(&bundle)), "{}", token.stderr);
    let env = node_env(&s);
    let args = ["node-sync.mjs", path_str(&bundle)];
    let sync = || run_ok("node", &args, &app, &env);
    let all = s.sim.live_ids("constituents").len();
    let token_calls = s.sim.stats().token_calls;
    assert_eq!(sync().await.trim(), format!("synced {all} constituents"));
    assert_eq!(s.sim.stats().token_calls, token_calls + 1, "one refresh of the expired access token");
    assert!(app.join("constituents.bookmark").exists(), "the bookmark was kept");

    // The bundle is no longer needed: the tokens live in the example's store now.
    std::fs::remove_file(&bundle).unwrap();
    let changed = s.sim.modify("constituents", 3);
    let added = s.sim.add("constituents", 2);
    let before = api_calls(&s, "constituents");
    assert_eq!(sync().await.trim(), format!("synced {} constituents", changed.len() + added.len()));
    assert_eq!(api_calls(&s, "constituents") - before, 2, "one page of changes and the empty page ending the chain");

    let before = api_calls(&s, "constituents");
    assert_eq!(sync().await.trim(), "synced 0 constituents");
    assert_eq!(api_calls(&s, "constituents") - before, 1);
    s.run(&["token"]).await.expect_code(4);
}

/// A bookmark that is not one SkySync handed out is refused with a `BookmarkError`, and nothing
/// is fetched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_sync_refuses_a_foreign_bookmark_by_name() {
    skysync_tests::skip_in_fast_tier!("Node and web/build.sh");
    let (s, bundle, app) = handed_over_app().await;
    std::fs::write(app.join("constituents.bookmark"), "2024-01-01").unwrap();
    let before = api_calls(&s, "constituents");
    let out = run("node", &["node-sync.mjs", path_str(&bundle)], &app, &node_env(&s)).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.starts_with("BookmarkError: "), "{stderr}");
    assert_eq!(api_calls(&s, "constituents"), before);
}

/// Two token records inside the renewal window with an expired access token (the next refresh
/// rotates), as `SkyAuth.storeRecord` writes them.
pub fn rotating_records(s: &Skysync) -> serde_json::Value {
    let now = s.sim.now();
    let record = || {
        let tokens = s.minted_tokens(|t| {
            t.access_expires_at = Some(now - time::Duration::hours(1));
            t.refresh_expires_at = now + time::Duration::days(2);
        });
        serde_json::to_string(&tokens).unwrap()
    };
    serde_json::json!({ "conflict": record(), "unsaved": record() })
}

/// Checks, on the simulator's side, what `storeContract` (web/tests/store-contract.mjs) returned.
pub fn assert_store_contract(s: &Skysync, result: &serde_json::Value, token_calls_before: u64) {
    let known = |field: &serde_json::Value| s.sim.refresh_token_expiry(field.as_str().unwrap()).is_some();
    let conflict = &result["conflict"];
    assert!(known(&conflict["storedRefreshToken"]), "the store holds writer B's rotated token");
    assert!(!known(&conflict["originalRefreshToken"]), "B's rotation retired the original");
    let unsaved = &result["unsaved"];
    assert!(known(&unsaved["rotatedRefreshToken"]), "exportBundle() kept the live refresh token");
    assert!(!known(&unsaved["originalRefreshToken"]));
    // B's rotation; A's rotation whose save failed; the later process's refused one. A sent
    // nothing after its conflict, and the rescued tokens needed no refresh.
    assert_eq!(s.sim.stats().token_calls, token_calls_before + 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_js_token_store_contract_holds_in_node() {
    skysync_tests::skip_in_fast_tier!("Node and web/build.sh");
    let s = Skysync::start().await;
    let app = install_package(&s).await;
    let records = app.join("records.json");
    std::fs::write(&records, rotating_records(&s).to_string()).unwrap();
    let token_calls = s.sim.stats().token_calls;
    let out = run_ok("node", &["store-contract-node.mjs", path_str(&records)], &app, &node_env(&s)).await;
    let result: serde_json::Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_store_contract(&s, &result, token_calls);
}

/// The SKY API's part is skysync's: a 429, a 500 and a 401 (the simulator's clock moved past the
/// access token's life, the app's did not) within one run are ridden out with one refresh; an
/// exhausted quota stops the run with `QuotaExhaustedError`, and the bookmark stays where it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_sync_rides_out_429_500_and_401_and_stops_on_the_quota_by_name() {
    skysync_tests::skip_in_fast_tier!("Node and web/build.sh");
    let (s, bundle, app) = handed_over_app().await;
    let env = node_env(&s);
    let args = ["node-sync.mjs", path_str(&bundle)];
    let all = s.sim.live_ids("constituents").len();
    assert_eq!(run_ok("node", &args, &app, &env).await.trim(), format!("synced {all} constituents"));

    s.sim.advance_clock(Duration::from_secs(2 * 3600));
    let added = s.sim.add("constituents", 4);
    s.sim.fail_next_api(1, Fault::TooManyRequests { retry_after_secs: 1 });
    s.sim.fail_next_api(1, Fault::Status { code: 500 });
    let before = s.sim.stats();
    assert_eq!(run_ok("node", &args, &app, &env).await.trim(), format!("synced {} constituents", added.len()));
    let after = s.sim.stats();
    assert_eq!(after.rate_limited - before.rate_limited, 1);
    assert_eq!(after.server_errors - before.server_errors, 1);
    assert_eq!(after.unauthorized - before.unauthorized, 1, "the stale access token was refused once");
    assert_eq!(after.token_calls - before.token_calls, 1, "one refresh for the 401");

    let bookmark = std::fs::read_to_string(app.join("constituents.bookmark")).unwrap();
    s.sim.add("constituents", 1);
    s.sim.fail_next_api(1, Fault::Quota);
    let out = run("node", &args, &app, &env).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.starts_with("QuotaExhaustedError: "), "{stderr}");
    assert_eq!(std::fs::read_to_string(app.join("constituents.bookmark")).unwrap(), bookmark);
    assert_eq!(run_ok("node", &args, &app, &env).await.trim(), "synced 1 constituents");
}
