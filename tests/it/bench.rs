//! Benchmark items 1, 3 and 5 of the performance issue (item 2 is `bench_partition`, item 4 the
//! `ingest` bench of skysync-cli, item 6 `web/build.sh`). Ignored in the suite, run by
//! `scripts/bench.sh`; each prints one JSON line (`BENCH {...}`) that the script collects. Its
//! only assertions are that every run stored the whole source: figures are not checked.
//!
//! - quota: initial, incremental (after changes) and `--full` runs of constituents and gifts
//!   against the simulator at 10 calls/s with 300 ms per call: calls against the ideal
//!   `ceil(records/5000)+1` per entity, token calls, wall time against the rate-limit floor
//!   `max(calls/rate, longest chain x latency)`;
//! - baseline: the common client pattern (sequential, `limit=500`, a fixed 1 s sleep on 429),
//!   written in Python (tests/it/bench_baseline.py), against the same simulator;
//! - token: `skysync token` with a cached token, process wall time, median of many runs.

use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use skysync_cli::sim::{FaultRates, SimConfig, SimHandle};
use skysync_cli::sink::{self, SinkSpec};
use skysync_cli::sync::engine::{self, EngineOptions, RunReport};
use skysync_cli::sync::progress::Silent;
use skysync_core::api::{ApiClient, RetryPolicy};
use skysync_core::catalog::{self, Entity};
use skysync_core::host::{Clock, SystemClock};
use skysync_tests::cli::{Skysync, workspace_root};
use skysync_tests::sky::{api_client, sim_config, start_sim};

const RATE: f64 = 10.0;
const LATENCY_MS: u64 = 300;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn ideal(records: u64) -> u64 {
    records.div_ceil(5000) + 1
}

/// A simulator enforcing 10 calls/s, every call taking 300 ms.
async fn paced_sim(records: u64) -> SimHandle {
    let sim = start_sim(SimConfig { rate_limit_per_sec: Some(RATE as u32), ..sim_config(records) }).await;
    sim.set_fault_rates(FaultRates { api_slow: 1.0, slow_ms: LATENCY_MS, ..FaultRates::default() });
    sim
}

fn client(sim: &SimHandle) -> ApiClient {
    api_client(sim, RATE).with_retry(RetryPolicy {
        max_attempts: 10,
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(2),
        ..RetryPolicy::default()
    })
}

fn entities() -> Vec<&'static Entity> {
    vec![catalog::find("constituents").unwrap(), catalog::find("gifts").unwrap()]
}

/// One run: the report and its wall time.
async fn timed_run(api: &ApiClient, spec: &SinkSpec, full: bool) -> (RunReport, f64) {
    let mut sink = sink::open(spec).await.unwrap();
    let options = EngineOptions { full, concurrency: 16, partitions: 8, rate_limit: RATE, ..EngineOptions::default() };
    let started = SystemClock.now();
    let report = engine::run(api, sink.as_mut(), &entities(), &options, &SystemClock, &Silent).await.unwrap();
    let seconds = (SystemClock.now() - started).as_seconds_f64();
    assert!(report.ok(), "{:#?}", report.entities);
    (report, seconds)
}

/// The figures of one run against what it had to read.
fn figures(name: &str, report: &RunReport, seconds: f64, records: &[u64; 2]) -> serde_json::Value {
    let calls: Vec<u64> = report.entities.iter().map(|e| e.requests).collect();
    let ideal_calls: Vec<u64> = records.iter().map(|r| ideal(*r)).collect();
    let total: u64 = calls.iter().sum();
    // Entities run side by side: the longest one chain is the longest entity's calls.
    let longest = *ideal_calls.iter().max().unwrap();
    let floor = (total as f64 / RATE).max(longest as f64 * LATENCY_MS as f64 / 1000.0);
    json!({
        "run": name,
        "records": records,
        "calls": calls,
        "ideal_calls": ideal_calls,
        "calls_x_ideal": total as f64 / ideal_calls.iter().sum::<u64>() as f64,
        "token_calls": report.token_calls,
        "seconds": seconds,
        "floor_seconds": floor,
        "x_floor": seconds / floor,
    })
}

fn emit(value: &serde_json::Value) {
    println!("BENCH {value}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run by scripts/bench.sh"]
async fn quota_efficiency_and_the_baseline() {
    // N constituents and 2N gifts (the simulator's ratio).
    let n = env_u64("SKYSYNC_BENCH_N", 10_000);
    let changed = (n / 100).max(1);
    let sim = paced_sim(n).await;
    let api = client(&sim);
    let dir = tempfile::tempdir().unwrap();
    let spec = SinkSpec::Sqlite(dir.path().join("bench.db"));
    let sizes = [sim.live_ids("constituents").len() as u64, sim.live_ids("gifts").len() as u64];

    let (initial, initial_secs) = timed_run(&api, &spec, false).await;
    emit(&figures("initial", &initial, initial_secs, &sizes));
    sim.modify("constituents", changed);
    sim.modify("gifts", changed);
    let (incremental, incremental_secs) = timed_run(&api, &spec, false).await;
    assert_eq!(incremental.entities.iter().map(|e| e.records).sum::<u64>(), 2 * changed);
    emit(&figures("incremental", &incremental, incremental_secs, &[changed, changed]));
    let (full, full_secs) = timed_run(&api, &spec, true).await;
    emit(&figures("full", &full, full_secs, &sizes));

    // The baseline client, against the same simulator (its own token: minted by the simulator).
    let tokens = sim.issue_tokens();
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let paths: Vec<&str> = entities().iter().map(|e| e.path).collect();
    let script = workspace_root().join("tests/it/bench_baseline.py");
    let started = SystemClock.now();
    let out = tokio::process::Command::new("python3")
        .arg(&script)
        .arg(sim.api_url().as_str())
        .args(&paths)
        .env("SKY_ACCESS_TOKEN", &access)
        .env("SKY_SUBSCRIPTION_KEY", &sim.config().subscription_key)
        .stderr(Stdio::inherit())
        .output()
        .await
        .expect("python3 runs the baseline client");
    let base_secs = (SystemClock.now() - started).as_seconds_f64();
    assert!(out.status.success(), "baseline client failed");
    let base: serde_json::Value = serde_json::from_slice(&out.stdout).expect("baseline JSON");
    // Without include_inactive/include_deceased the baseline reads a little less than the sync.
    assert!(base["records"].as_u64().unwrap_or(0) > sizes.iter().sum::<u64>() * 9 / 10, "the baseline read the lists");
    let sky_calls: u64 = initial.entities.iter().map(|e| e.requests).sum();
    let base_calls = base["calls"].as_u64().unwrap();
    emit(&json!({
        "run": "baseline",
        "records": sizes,
        "calls": base_calls,
        "read": base["records"],
        "sleeps_429": base["sleeps_429"],
        "seconds": base_secs,
        "skysync_calls_ratio": sky_calls as f64 / base_calls as f64,
        "skysync_time_ratio": initial_secs / base_secs,
        "baseline_x_skysync_time": base_secs / initial_secs,
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run by scripts/bench.sh"]
async fn token_with_a_cached_token() {
    let runs = env_u64("SKYSYNC_BENCH_TOKEN_RUNS", 41).max(1) as usize;
    let s = Skysync::start().await;
    let tokens = s.minted_tokens(|_| {});
    s.seed(tokens).await;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let mut cmd = s.command(&["token"]);
        let started = SystemClock.now();
        let out = cmd.output().await.unwrap();
        times.push((SystemClock.now() - started).as_seconds_f64() * 1000.0);
        assert!(out.status.success());
    }
    times.sort_by(f64::total_cmp);
    emit(&json!({
        "run": "token",
        "runs": runs,
        "median_ms": times[runs / 2],
        "min_ms": times[0],
        "max_ms": times[runs - 1],
        "token_endpoint_calls": s.sim.stats().token_calls,
    }));
}
