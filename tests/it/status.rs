//! `sync status` in plain words and its exit codes, and the monitoring contract: every field of
//! `sync --json` and `sync status --json` (README "Monitoring contract") held by snapshots, with
//! times, durations and paths redacted, so a change to the contract fails here.

use serde_json::Value;
use skysync_cli::sim::{Fault, SimConfig};
use skysync_tests::cli::{Run, Skysync};

async fn world(records: u64) -> Skysync {
    let sk = Skysync::with_sim(SimConfig { records, ..SimConfig::default() }).await;
    sk.seed(sk.minted_tokens(|_| {})).await;
    sk
}

fn json(run: &Run) -> Value {
    serde_json::from_str(run.stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {}", run.stdout))
}

#[tokio::test]
async fn status_says_where_each_entity_stands_and_fails_when_a_last_run_failed() {
    let sk = world(100).await;
    let run = sk.run(&["sync", "status"]).await;
    run.expect_code(0);
    assert!(run.stdout.contains("never synced"), "{}", run.stdout);

    sk.run(&["sync", "gifts", "constituents", "--page-size", "50"]).await.expect_code(0);
    let run = sk.run(&["sync", "status"]).await;
    run.expect_code(0);
    for e in ["gifts (200 rows): up to date as of ", "constituents (100 rows): up to date as of "] {
        assert!(run.stdout.contains(e), "{e}: {}", run.stdout);
    }
    assert!(run.stdout.contains("the next run continues from sort_token chain"), "{}", run.stdout);
    assert!(run.stdout.contains("quota: "), "{}", run.stdout);

    // A planned stop is no failure.
    sk.sim.modify("gifts", 120);
    sk.run(&["sync", "gifts", "--page-size", "50", "--call-budget", "1"]).await.expect_code(0);
    let run = sk.run(&["sync", "status"]).await;
    run.expect_code(0);
    assert!(run.stdout.contains("gifts (200 rows): stopped as planned at "), "{}", run.stdout);

    // A failure is: `sync status` exits 11, in text and in JSON.
    sk.sim.fail_next_api(1, Fault::Status { code: 400 });
    sk.run(&["sync", "gifts", "--page-size", "50"]).await.expect_code(1);
    let run = sk.run(&["sync", "status"]).await;
    run.expect_code(11);
    assert!(run.stdout.contains("gifts (200 rows): last run failed at "), "{}", run.stdout);
    assert!(run.stdout.contains("HTTP 400"), "the reason: {}", run.stdout);
    let run = sk.run(&["sync", "status", "--json"]).await;
    run.expect_code(11);
    let v = json(&run);
    assert_eq!(v["ok"], false);
    let gifts = v["entities"].as_array().unwrap().iter().find(|e| e["entity"] == "gifts").unwrap();
    assert_eq!(gifts["health"], "failed");
    assert!(gifts["summary"].as_str().unwrap().starts_with("last run failed at "), "{gifts}");

    // The next good run clears it.
    sk.run(&["sync", "gifts", "--page-size", "50"]).await.expect_code(0);
    sk.run(&["sync", "status"]).await.expect_code(0);
}

#[tokio::test]
async fn status_offers_only_the_options_that_apply_to_it() {
    let sk = world(10).await;
    let run = sk.run(&["sync", "status", "--format", "jsonl"]).await;
    run.expect_code(2);
    assert!(run.stderr.contains("--format"), "{}", run.stderr);
    // A JSONL directory is named by itself.
    let dir = sk.home().join("out");
    let out = dir.to_str().unwrap();
    sk.run(&["sync", "gifts", "--format", "jsonl", "--out", out]).await.expect_code(0);
    let run = sk.run(&["sync", "status", "--out", out]).await;
    run.expect_code(0);
    assert!(run.stdout.contains("gifts (20 rows): up to date as of"), "{}", run.stdout);
}

/// Times, durations and the test's HOME vary from run to run; everything else is the contract.
fn redactions(s: &Skysync) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(&regex::escape(&s.home().display().to_string()), "[HOME]");
    settings.add_filter(r"\d{4}-\d\d-\d\dT[0-9:.]+(Z|[+-]\d\d:\d\d)", "[TIME]");
    settings.add_filter(r#""duration": [0-9.]+"#, r#""duration": "[SECONDS]""#);
    settings.add_filter(r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]");
    settings.add_filter(r"sort_token=[^&\\]+", "sort_token=[TOKEN]");
    settings.set_prepend_module_to_snapshot(false);
    settings
}

fn pretty(run: &Run) -> String {
    serde_json::to_string_pretty(&json(run)).unwrap()
}

#[tokio::test]
async fn the_json_contract_of_sync_and_sync_status() {
    let sk = world(100).await;
    let settings = redactions(&sk);
    let run =
        sk.run(&["sync", "gifts", "--page-size", "50", "--partitions", "1", "--json", "--daily-quota", "1000"]).await;
    run.expect_code(0);
    settings.bind(|| insta::assert_snapshot!("sync_json", pretty(&run)));
    let run = sk
        .run(&[
            "sync",
            "gifts",
            "constituents",
            "--page-size",
            "50",
            "--call-budget",
            "1",
            "--concurrency",
            "1",
            "--json",
        ])
        .await;
    run.expect_code(0);
    settings.bind(|| insta::assert_snapshot!("sync_json_planned_stop", pretty(&run)));
    let run = sk.run(&["sync", "status", "--json"]).await;
    run.expect_code(0);
    settings.bind(|| insta::assert_snapshot!("sync_status_json", pretty(&run)));
}
