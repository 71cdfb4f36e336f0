#!/usr/bin/env bash
# Heavy variant of reliability item 9.4 (not run by scripts/test.sh): `skysync sync` under 10% 500s,
# 5% 429s, 2% dropped connections, 3% truncated bodies, 3% slow answers and random SIGKILLs, with
# the source changing between runs; after reruns the database must equal the simulator's data.
#   scripts/reliability-sync-heavy.sh            40 runs over 1,000 constituents, SQLite and PostgreSQL
#   RUNS=100 RECORDS=3000 PAGE_SIZE=200 SEED=7 scripts/reliability-sync-heavy.sh
#   BACKENDS=sqlite scripts/reliability-sync-heavy.sh
# Prints one figures line per backend: runs, kills, faults injected by kind, API calls, mismatches.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${RUNS:-40}"
records="${RECORDS:-1000}"
seed="${SEED:-$(date +%s)}"
backends="${BACKENDS:-sqlite postgres}"

cargo build -p skysync-cli --bin skysync --locked
status=0
for backend in $backends; do
    echo "==> reliability 9.4 on $backend: runs=$runs records=$records seed=$seed" >&2
    log="$(mktemp)"
    if ! SKYSYNC_RELIABILITY_RUNS="$runs" SKYSYNC_RELIABILITY_RECORDS="$records" SKYSYNC_RELIABILITY_SEED="$seed" \
        SKYSYNC_RELIABILITY_PAGE_SIZE="${PAGE_SIZE:-100}" \
        cargo test -p skysync-tests --test it --locked \
        "reliability_sync::sync_converges_under_faults_and_sigkills_$backend" -- --exact --nocapture 2>&1 | tee "$log"; then
        status=1
    fi
    echo "$backend: $(grep -o 'reliability-sync: .*' "$log" | tail -n 1 || echo 'no figures (the test failed before the end)')"
    rm -f "$log"
done
exit "$status"
