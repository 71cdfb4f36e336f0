#!/usr/bin/env bash
# Benchmarks of the performance issue that exist so far. Not part of scripts/test.sh.
#
# Item 2, slow pages: the first sync of one large entity (60,000 constituents, every call 1.5 s,
# 10 calls/s) split into chains against one chain; prints calls against the ideal
# ceil(records/5000)+1 and wall time, and writes the figures as JSON.
#
# Knobs: SKYSYNC_BENCH_RECORDS (60000), SKYSYNC_BENCH_SLOW_MS (1500), SKYSYNC_BENCH_PARTITIONS (8),
# SKYSYNC_BENCH_JSON (target/bench/slow_pages.json), SKYSYNC_BENCH_PROFILE (dev; `release` for
# ingest-bound figures). Machines here are noisy: read the ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
export SKYSYNC_BENCH_JSON="${SKYSYNC_BENCH_JSON:-$PWD/target/bench/slow_pages.json}"
mkdir -p "$(dirname "$SKYSYNC_BENCH_JSON")"
profile=()
if [ "${SKYSYNC_BENCH_PROFILE:-dev}" = release ]; then profile=(--release); fi
cargo test "${profile[@]}" -p skysync-tests --test it bench_partition:: -- --ignored --nocapture --test-threads 1
echo "figures: $SKYSYNC_BENCH_JSON"
