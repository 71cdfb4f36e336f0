//! Quota-aware runs, black-box: the call estimate against the calls a run makes, `daily_quota`
//! stopping a run before Blackbaud's quota runs out (and the next quota day continuing), the
//! calls used today kept in SQLite and PostgreSQL, planned stops exiting 0, and Blackbaud's own
//! quota `403` reporting when it replenishes.

use std::time::Duration;

use serde_json::Value;
use skysync_cli::sim::SimConfig;
use skysync_cli::sink::SinkSpec;
use skysync_tests::cli::Skysync;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::sync::Fixture;

/// How far an estimate may be off, as actual / estimated: the README promises this bound.
const ACCURACY: std::ops::RangeInclusive<f64> = 0.8..=1.25;

async fn world(records: u64) -> Skysync {
    let sk = Skysync::with_sim(SimConfig { records, ..SimConfig::default() }).await;
    sk.seed(sk.minted_tokens(|_| {})).await;
    sk
}

fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

fn time(v: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(v.as_str().unwrap_or_else(|| panic!("not a time: {v}")), &Rfc3339).unwrap()
}

#[tokio::test]
async fn the_estimate_matches_the_calls_of_initial_and_incremental_runs() {
    let sk = world(100).await;
    let args = ["gifts", "constituents", "--page-size", "50", "--partitions", "1"];
    let dry = |extra: &'static [&'static str]| {
        let mut a = vec!["sync", "--dry-run", "--estimate", "--json"];
        a.extend(args);
        a.extend(extra);
        a
    };
    // Initial: 200 gifts and 100 constituents in pages of 50, each chain ending on an empty page.
    let run = sk.run(&dry(&[])).await;
    run.expect_code(0);
    let v = json(&run.stdout);
    assert_eq!(v["quota"]["estimated_calls"], 5 + 3, "{v}");
    assert_eq!(v["quota"]["probe_calls"], 2, "one `limit=1` probe per entity");
    assert_eq!(v["entities"][0]["estimate"]["records"], 200);
    assert_eq!(sk.sim.stats().api_calls, 2, "a dry run makes only its probes");

    let mut real = vec!["sync", "--json", "--daily-quota", "1000"];
    real.extend(args);
    let run = sk.run(&real).await;
    run.expect_code(0);
    let v = json(&run.stdout);
    let q = &v["quota"];
    assert_eq!(v["api"]["calls"], 8, "{v}");
    assert_eq!(q["estimated_calls"], 8, "{v}");
    assert!(ACCURACY.contains(&q["accuracy"].as_f64().unwrap()), "{v}");
    assert_eq!(v["entities"][0]["estimated_calls"], 5);
    assert_eq!(q["calls_today"], 2 + 2 + 8, "the dry run's probes, the run's probes and its pages");

    // Incremental: 3 gifts changed, no constituent.
    sk.sim.modify("gifts", 3);
    let run = sk.run(&dry(&[])).await;
    let v = json(&run.stdout);
    assert_eq!(v["entities"][0]["mode"], "incremental");
    assert_eq!(v["quota"]["estimated_calls"], 2 + 1, "{v}");
    let run = sk.run(&real).await;
    run.expect_code(0);
    let v = json(&run.stdout);
    assert_eq!(v["api"]["calls"], 3, "{v}");
    assert!(ACCURACY.contains(&v["quota"]["accuracy"].as_f64().unwrap()), "{v}");

    // With a reconciliation due the id scan is part of the estimate.
    let run = sk.run(&dry(&["--reconcile"])).await;
    let v = json(&run.stdout);
    let run = sk.run(&[&real[..], &["--reconcile"]].concat()).await;
    run.expect_code(0);
    let made = json(&run.stdout)["api"]["calls"].as_u64().unwrap();
    let estimated = v["quota"]["estimated_calls"].as_u64().unwrap();
    assert!(ACCURACY.contains(&(made as f64 / estimated as f64)), "estimated {estimated}, made {made}: {v}");
    assert!(estimated >= 1 + 5 + 1 + 3, "both id scans are counted: {v}");
}

async fn daily_quota_stops_before_the_day_runs_out_and_the_next_day_continues(sk: &Skysync, db: &str, fx: Fixture) {
    // Blackbaud's quota and the setting agree: skysync must never see the 403.
    sk.sim.set_quota(Some(8));
    let args = ["sync", "gifts", "constituents", "--db", db, "--page-size", "50", "--partitions", "1", "--json"];
    let with_quota = [&args[..], &["--daily-quota", "8"]].concat();
    let run = sk.run(&with_quota).await;
    run.expect_code(0);
    let v = json(&run.stdout);
    assert_eq!(v["ok"], true, "a planned stop is not a failure: {v}");
    assert_eq!(v["complete"], false);
    let stopped = &v["stopped"];
    assert_eq!(stopped["reason"], "daily_quota", "{v}");
    assert_eq!(stopped["planned"], true);
    assert!(!stopped["entities_left"].as_array().unwrap().is_empty(), "{v}");
    assert_eq!(time(&stopped["resume_at"]), time(&v["quota"]["day_ends_at"]));
    assert_eq!(sk.sim.stats().api_calls, 8, "every call the day allowed, probes included");
    assert_eq!(sk.sim.stats().quota_rejections, 0, "stopped before Blackbaud's quota ran out");
    assert_eq!(v["quota"]["calls_today"], 8);
    assert_eq!(v["quota"]["remaining_today"], 0);

    // Same day: the calls used are read back from the database, so nothing is sent.
    let run = sk.run(&with_quota).await;
    run.expect_code(0);
    assert_eq!(json(&run.stdout)["stopped"]["reason"], "daily_quota");
    assert_eq!(sk.sim.stats().api_calls, 8, "no call once the day is used up");
    assert!(!run.stderr.contains("could not be estimated"), "no estimate is tried: {}", run.stderr);
    let text = sk.run(&[&with_quota[..args.len() - 1], &["--daily-quota", "8"]].concat()).await;
    text.expect_code(0);
    assert!(
        text.stdout.contains("stopped as planned") && text.stdout.contains("left for the next run"),
        "{}",
        text.stdout
    );
    assert!(text.stdout.contains("the quota resets at"), "{}", text.stdout);
    let status = sk.run(&["sync", "status", "--db", db]).await;
    status.expect_code(0);
    assert!(status.stdout.contains("stopped as planned"), "{}", status.stdout);

    // The next quota day, on both sides: the simulator's clock moves on a day, and the day the
    // database's ledger counts ended (as it has once the real clock passes its recorded end).
    // The run continues where it stopped.
    sk.sim.advance_clock(Duration::from_secs(86_400));
    fx.exec("UPDATE skysync_quota SET day_ends_at = '2000-01-01T00:00:00Z'").await;
    sk.sim.set_quota(Some(1000));
    let run = sk.run(&with_quota[..with_quota.len() - 2]).await;
    run.expect_code(0);
    let v = json(&run.stdout);
    assert_eq!((&v["complete"], &v["stopped"]), (&Value::Bool(true), &Value::Null), "{v}");
    assert!(v["quota"]["calls_today"].as_u64().unwrap() < 8, "a fresh day: {v}");
    fx.assert_equals_source(&sk.sim, "gifts").await;
    fx.assert_equals_source(&sk.sim, "constituents").await;
}

#[tokio::test]
async fn daily_quota_on_sqlite() {
    let sk = world(100).await;
    let path = sk.data_dir().join("quota.db");
    let fx = Fixture::at(SinkSpec::Sqlite(path.clone()));
    daily_quota_stops_before_the_day_runs_out_and_the_next_day_continues(&sk, path.to_str().unwrap(), fx).await;
}

#[tokio::test]
async fn daily_quota_on_postgres() {
    skysync_tests::skip_in_fast_tier!("PostgreSQL");
    let sk = world(100).await;
    let pg = skysync_tests::pg::PgServer::start().unwrap();
    let fx = Fixture::at(SinkSpec::postgres(pg.url()));
    daily_quota_stops_before_the_day_runs_out_and_the_next_day_continues(&sk, &pg.url(), fx).await;
}

#[tokio::test]
async fn daily_quota_comes_from_the_flag_then_the_environment_then_the_file() {
    let sk = world(20).await;
    let config = sk.home().join("config/skysync/config.toml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(&config, "[profiles.default.sync]\ndaily_quota = 1\n").unwrap();
    let args = ["sync", "gifts", "--page-size", "50", "--json"];
    let reason = |run: &skysync_tests::cli::Run| json(&run.stdout)["stopped"]["reason"].clone();
    let run = sk.run(&args).await;
    run.expect_code(0);
    assert_eq!(reason(&run), "daily_quota", "the file's 1 call: {}", run.stdout);
    sk.set_env("SKYSYNC_DAILY_QUOTA", Some("1000"));
    let run = sk.run(&args).await;
    assert_eq!(reason(&run), Value::Null, "the environment over the file: {}", run.stdout);
    let run = sk.run(&[&args[..], &["--daily-quota", "1"]].concat()).await;
    assert_eq!(reason(&run), "daily_quota", "the flag over the environment: {}", run.stdout);
    sk.set_env("SKYSYNC_DAILY_QUOTA", Some("0"));
    let calls = sk.sim.stats().api_calls;
    let run = sk.run(&args).await;
    run.expect_code(2);
    assert!(run.stderr.contains("SKYSYNC_DAILY_QUOTA") && run.stderr.contains("at least 1"), "{}", run.stderr);
    assert_eq!(sk.sim.stats().api_calls, calls);
}

#[tokio::test]
async fn a_call_budget_stop_exits_0_with_its_own_field() {
    let sk = world(100).await;
    let run = sk.run(&["sync", "gifts", "--page-size", "50", "--call-budget", "2", "--json"]).await;
    run.expect_code(0);
    let v = json(&run.stdout);
    assert_eq!((&v["ok"], &v["complete"]), (&Value::Bool(true), &Value::Bool(false)), "{v}");
    assert_eq!(v["stopped"]["reason"], "call_budget");
    assert_eq!(v["stopped"]["planned"], true);
    assert_eq!(v["stopped"]["resume_at"], Value::Null, "the next run has a fresh budget");
    assert_eq!(v["stopped"]["entities_left"], serde_json::json!(["gifts"]));
    assert_eq!(sk.sim.stats().api_calls, 2);
    let run = sk.run(&["sync", "gifts", "--page-size", "50", "--call-budget", "2"]).await;
    run.expect_code(0);
    assert!(run.stdout.contains("stopped as planned") && run.stdout.contains("budget"), "{}", run.stdout);
    let run = sk.run(&["sync", "gifts", "--page-size", "50"]).await;
    run.expect_code(0);
    assert_eq!(Fixture::at(SinkSpec::Sqlite(sk.data_dir().join("skysync.db"))).count("gifts").await, 200);
}

#[tokio::test]
async fn blackbauds_quota_403_exits_5_with_resume_at() {
    // The simulator's quota day ends 6 hours after it starts; its 403's Retry-After says when.
    let day = Duration::from_secs(6 * 3600);
    let sk =
        Skysync::with_sim(SimConfig { records: 100, quota_day_ends_after: Some(day), ..SimConfig::default() }).await;
    let started = sk.sim.now();
    sk.seed(sk.minted_tokens(|_| {})).await;
    sk.sim.set_quota(Some(3));
    let run = sk.run(&["sync", "gifts", "--page-size", "50", "--json"]).await;
    run.expect_code(5);
    let v = json(&run.stdout);
    let stopped = &v["stopped"];
    assert_eq!(stopped["reason"], "quota_exhausted", "{v}");
    assert_eq!(stopped["planned"], false);
    let resume_at = time(&stopped["resume_at"]);
    let slack = time::Duration::seconds(30);
    assert!(resume_at >= started + day - slack && resume_at <= started + day + slack, "{resume_at}: {v}");
    // The announced reset is kept: later quota days end at the same time of day.
    let st = json(&sk.run(&["sync", "status", "--json"]).await.stdout);
    assert_eq!(time(&st["quota"]["day_ends_at"]), resume_at, "{st}");
}
