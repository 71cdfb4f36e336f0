//! Benchmark items 1, 3 and 5 of the performance issue (item 2 is `bench_partition`, item 4 the
//! `ingest` bench of skysync-cli, item 6 `web/build.sh`). Ignored in the suite, run by
//! `scripts/bench.sh`; each prints one JSON line (`BENCH {...}`) that the script collects. Its
//! only assertions are that every run stored the whole source: figures are not checked.
//!
//! - quota: initial, incremental (after changes) and `--full` runs of constituents and gifts
//!   (30,000 and 20,000 by default, the issue's two-entity scenario; `SKYSYNC_BENCH_CONSTITUENTS`,
//!   `SKYSYNC_BENCH_GIFTS`) against the simulator at 10 calls/s with 300 ms per call, with the
//!   CLI's defaults (`--concurrency 4 --partitions 8 --rate-limit 10`): calls against the ideal
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

/// A simulator with `constituents` and `gifts` enforcing 10 calls/s, every call taking 300 ms.
async fn paced_sim(constituents: u64, gifts: u64) -> SimHandle {
    let sim = start_sim(SimConfig { rate_limit_per_sec: Some(RATE as u32), ..sim_config(constituents) }).await;
    // The simulator starts with two gifts per constituent: delete the surplus (deleted rows are
    // not listed), or add the shortfall (added rows share the current time).
    let initial = sim.live_ids("gifts").len() as u64;
    if initial > gifts {
        sim.delete("gifts", initial - gifts);
    } else if initial < gifts {
        sim.add("gifts", gifts - initial);
    }
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
    // The CLI's defaults for `skysync sync constituents gifts --rate-limit 10`.
    let options = EngineOptions { full, concurrency: 4, partitions: 8, rate_limit: RATE, ..EngineOptions::default() };
    let started = SystemClock.now();
    let report = engine::run(api, sink.as_mut(), &entities(), &options, &SystemClock, &Silent).await.unwrap();
    let seconds = (SystemClock.now() - started).as_seconds_f64();
    assert!(report.ok(), "{:#?}", report.entities);
    (report, seconds)
}

/// The figures of one run against what it had to read.
fn figures(name: &str, report: &RunReport, seconds: f64, records: &[u64; 2]) -> serde_json::Value {
    let calls: Vec<u64> = report.entities.iter().map(|e| e.requests).collect();
    run_figures(name, &calls, report.token_calls, seconds, records)
}

/// The figures of one run: `calls` per entity, against the ideal and the rate-limit floor.
fn run_figures(name: &str, calls: &[u64], token_calls: u64, seconds: f64, records: &[u64; 2]) -> serde_json::Value {
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
        "token_calls": token_calls,
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
    let constituents = env_u64("SKYSYNC_BENCH_CONSTITUENTS", 30_000);
    let gifts = env_u64("SKYSYNC_BENCH_GIFTS", 20_000);
    let changed = (constituents / 100).max(1);
    let sim = paced_sim(constituents, gifts).await;
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
    emit(&baseline_figures(&sizes, &base, base_secs, sky_calls, initial_secs));
}

/// The baseline client's figures (`base`: what it printed) against skysync's initial run.
fn baseline_figures(
    sizes: &[u64; 2],
    base: &serde_json::Value,
    base_secs: f64,
    sky_calls: u64,
    sky_secs: f64,
) -> serde_json::Value {
    let base_calls = base["calls"].as_u64().unwrap();
    json!({
        "run": "baseline",
        "records": sizes,
        "calls": base_calls,
        "read": base["records"],
        "sleeps_429": base["sleeps_429"],
        "seconds": base_secs,
        "skysync_calls": sky_calls,
        "skysync_seconds": sky_secs,
        "skysync_calls_ratio": sky_calls as f64 / base_calls as f64,
        "skysync_time_ratio": sky_secs / base_secs,
        "baseline_x_skysync_time": base_secs / sky_secs,
    })
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
    emit(&token_figures(times, s.sim.stats().token_calls));
}

/// Median, min and max of `times` (ms, at least one).
fn token_figures(mut times: Vec<f64>, token_endpoint_calls: u64) -> serde_json::Value {
    times.sort_by(f64::total_cmp);
    let runs = times.len();
    json!({
        "run": "token",
        "runs": runs,
        "median_ms": times[runs / 2],
        "min_ms": times[0],
        "max_ms": times[runs - 1],
        "token_endpoint_calls": token_endpoint_calls,
    })
}

/// `scripts/bench_table.py` reads every line the benchmark writes (these figures are made up,
/// in the shapes the items emit) into its table and JSON file. Runs in the suite: the script
/// breaking, or an item's line changing shape without the script, fails here.
#[test]
fn the_table_script_reads_every_item() {
    let dir = tempfile::tempdir().unwrap();
    let sizes = [30_000, 20_000];
    let base = json!({ "calls": 101, "records": 49_000, "sleeps_429": 3 });
    let lines = [
        run_figures("initial", &[7, 5], 0, 2.52, &sizes),
        run_figures("incremental", &[2, 2], 0, 0.7, &[300, 300]),
        run_figures("full", &[8, 5], 1, 3.1, &sizes),
        crate::bench_partition::slow_pages_figures(60_000, 1500, (13, 21.0), (8, 17, 9.5)),
        baseline_figures(&sizes, &base, 30.0, 12, 2.52),
        json!({ "run": "ingest", "db": "sqlite", "records": 100_000, "page_size": 5000, "json_mib": 81.0,
                "seconds": 1.5, "records_per_s": 66_667.0, "peak_rss_mib": 18.5 }),
        token_figures(vec![4.0, 3.0, 9.0], 0),
        json!({ "run": "page", "file": "pkg/skysync_web_bg.wasm", "bytes": 468_141, "gzip": 201_524 }),
        json!({ "run": "page", "file": "app.js", "bytes": 21_709, "gzip": 7_515 }),
    ];
    let jsonl: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(dir.path().join("lines.jsonl"), jsonl).unwrap();
    std::fs::write(dir.path().join("load.txt"), "2.5\n3.5\n").unwrap();
    let out = std::process::Command::new("python3")
        .arg(workspace_root().join("scripts/bench_table.py"))
        .args(["lines.jsonl", "bench.json", "2026-11-30T10:00Z", "0", "--load", "load.txt"])
        .current_dir(dir.path())
        .output()
        .expect("python3 runs scripts/bench_table.py");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{table}\n{}", String::from_utf8_lossy(&out.stderr));
    for expected in [
        "initial sync, 30000 + 20000 records",
        "12 calls (ideal 12: 7 + 5), 0 token calls",
        "1.00x ideal calls",
        "2.52 s (floor 2.10 s)",
        "1.20x floor",
        "the same, split into <= 8 chains",
        "0.45x one chain's time, 1.31x ideal calls",
        "skysync: 0.119x calls, 0.084x time (11.9x faster)",
        "sqlite, 100000 records",
        "66667 records/s",
        "median 4.0 ms",
        "total shipped (wasm + JS + app.js)",
        "489850 B",
        "209039 B gzip",
        "min 2.5, mean 3.0, max 3.5",
    ] {
        assert!(table.contains(expected), "{expected:?} missing from\n{table}");
    }
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("bench.json")).unwrap()).unwrap();
    assert_eq!(written["results"].as_array().map(Vec::len), Some(lines.len()));
}
