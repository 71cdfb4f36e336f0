//! Benchmark item 2 of the performance issue, slow pages: the first sync of one large entity when
//! every call takes 1.5 s, split into chains against one chain, at 10 calls/s (client pace and
//! simulator limit). Prints calls and wall time and writes them as JSON. A benchmark, not a test
//! of speed: it is ignored in the suite and run by `scripts/bench.sh`; its only assertions are
//! that both runs stored the whole source.

use std::time::Duration;

use serde_json::json;
use skysync_cli::sim::{FaultRates, SimConfig};
use skysync_cli::sink::{self, SinkSpec};
use skysync_cli::sync::engine::{self, EngineOptions};
use skysync_cli::sync::progress::Silent;
use skysync_core::api::RetryPolicy;
use skysync_core::catalog;
use skysync_core::host::{Clock, SystemClock};
use skysync_tests::sky::{api_client, sim_config, start_sim};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

const RATE: f64 = 10.0;

/// One initial sync of `records` constituents with at most `partitions` chains: (calls, seconds).
async fn initial_sync(records: u64, slow_ms: u64, partitions: usize) -> (u64, f64) {
    let sim = start_sim(SimConfig { rate_limit_per_sec: Some(RATE as u32), ..sim_config(records) }).await;
    sim.set_fault_rates(FaultRates { api_slow: 1.0, slow_ms, ..FaultRates::default() });
    let api = api_client(&sim, RATE).with_retry(RetryPolicy {
        max_attempts: 10,
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(2),
        ..RetryPolicy::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let mut sink = sink::open(&SinkSpec::Sqlite(dir.path().join("bench.db"))).await.unwrap();
    let options = EngineOptions { partitions, concurrency: 16, rate_limit: RATE, ..EngineOptions::default() };
    let constituents = [catalog::find("constituents").unwrap()];
    let started = SystemClock.now();
    let report = engine::run(&api, sink.as_mut(), &constituents, &options, &SystemClock, &Silent).await.unwrap();
    let seconds = (SystemClock.now() - started).as_seconds_f64();
    assert!(report.ok(), "{:#?}", report.entities);
    assert_eq!(report.entities[0].row_count, Some(sim.live_ids("constituents").len() as u64), "the whole source");
    (sim.stats().per_entity_calls["constituents"], seconds)
}

/// The item's figures: one chain's `(calls, seconds)` against `(partitions, calls, seconds)`.
pub(crate) fn slow_pages_figures(
    records: u64,
    slow_ms: u64,
    (one_calls, one_secs): (u64, f64),
    (partitions, k_calls, k_secs): (usize, u64, f64),
) -> serde_json::Value {
    let ideal = records.div_ceil(5000) + 1;
    // The floor of one chain: every call after the last, each taking the latency.
    let floor = (one_calls as f64 / RATE).max(one_calls as f64 * slow_ms as f64 / 1000.0);
    json!({
        "run": "slow_pages",
        "records": records,
        "slow_ms": slow_ms,
        "rate": RATE,
        "ideal_calls": ideal,
        "one_chain": { "calls": one_calls, "seconds": one_secs, "floor_seconds": floor },
        "partitioned": { "max_partitions": partitions, "calls": k_calls, "seconds": k_secs },
        "time_ratio": k_secs / one_secs,
        "call_ratio": k_calls as f64 / ideal as f64,
    })
}

#[tokio::test]
#[ignore = "benchmark: run by scripts/bench.sh"]
async fn slow_pages_partitioned_against_one_chain() {
    let records = env_u64("SKYSYNC_BENCH_RECORDS", 60_000);
    let slow_ms = env_u64("SKYSYNC_BENCH_SLOW_MS", 1500);
    let partitions = env_u64("SKYSYNC_BENCH_PARTITIONS", 8) as usize;
    let ideal = records.div_ceil(5000) + 1;
    let (one_calls, one_secs) = initial_sync(records, slow_ms, 1).await;
    let (k_calls, k_secs) = initial_sync(records, slow_ms, partitions).await;
    println!("slow pages: {records} constituents, {slow_ms} ms per call, {RATE} calls/s");
    println!("{:<22} {:>6} {:>8} {:>10} {:>10}", "run", "calls", "x ideal", "wall (s)", "x 1 chain");
    println!(
        "{:<22} {:>6} {:>8.2} {:>10.1} {:>10.2}",
        "one chain",
        one_calls,
        one_calls as f64 / ideal as f64,
        one_secs,
        1.0
    );
    println!(
        "{:<22} {:>6} {:>8.2} {:>10.1} {:>10.2}",
        format!("partitions <= {partitions}"),
        k_calls,
        k_calls as f64 / ideal as f64,
        k_secs,
        k_secs / one_secs
    );
    let out = slow_pages_figures(records, slow_ms, (one_calls, one_secs), (partitions, k_calls, k_secs));
    println!("{out}");
    if let Ok(path) = std::env::var("SKYSYNC_BENCH_JSON") {
        std::fs::write(&path, format!("{out:#}\n")).unwrap();
    }
}
