#!/usr/bin/env bash
# The benchmark of the performance issue: runs every item side by side from a clean checkout
# (release build), prints ONE table and writes the figures as JSON. Not part of scripts/test.sh.
# Machines here are noisy: read the ratios, not the absolute times.
#
#   scripts/bench.sh            # everything (about 10 minutes on 2 cores, build excluded)
#   scripts/bench.sh --quick    # smoke run: small data sets, few repeats (a minute or two)
#
# Items (see BENCHMARKS.md for what each measures):
#   1 quota efficiency and 2 wall time vs the rate-limit floor (10 calls/s, 300 ms per call):
#     initial, incremental and --full runs of N constituents + 2N gifts   (tests/it/bench.rs)
#   2 slow pages (1.5 s per call), one large entity, partitioned vs one chain (tests/it/bench_partition.rs)
#   3 the common baseline: sequential, limit 500, 1 s sleep on 429 (tests/it/bench_baseline.py)
#   4 ingest into SQLite and PostgreSQL, records/s and peak RSS     (cli/benches/ingest.rs)
#   5 `skysync token` with a cached token, median process wall time  (tests/it/bench.rs)
#   6 consent page, shipped wasm + JS, raw and gzip                  (web/build.sh)
#
# Knobs: SKYSYNC_BENCH_OUT (target/bench), SKYSYNC_BENCH_N (10000 constituents for item 1),
# SKYSYNC_BENCH_SKIP_PG=1 (no PostgreSQL), SKYSYNC_BENCH_SKIP_WEB=1 (no wasm build).
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
[ "${1:-}" = "--quick" ] && quick=1
out="${SKYSYNC_BENCH_OUT:-$PWD/target/bench}"
mkdir -p "$out"
log="$out/bench.log"
: >"$log"
lines="$out/lines.jsonl"
: >"$lines"

if [ "$quick" = 1 ]; then
  n=${SKYSYNC_BENCH_N:-1000}; slow_records=15000; ingest_sizes="20000"; token_runs=11
else
  n=${SKYSYNC_BENCH_N:-10000}; slow_records=60000; ingest_sizes="100000 1000000"; token_runs=41
fi

echo "building (release)…" >&2
cargo build --release --locked -p skysync-cli --bin skysync >>"$log" 2>&1
cargo bench --locked -p skysync-cli --bench ingest --no-run >>"$log" 2>&1
cargo test --release --locked -p skysync-tests --test it --no-run >>"$log" 2>&1

# Items 1, 3, 5: one JSON line each, prefixed BENCH.
echo "items 1, 3, 5: quota, baseline, token…" >&2
SKYSYNC_BENCH_N=$n SKYSYNC_BENCH_TOKEN_RUNS=$token_runs \
  cargo test --release --locked -p skysync-tests --test it bench:: -- --ignored --nocapture --test-threads 1 2>>"$log" |
  sed -n 's/^BENCH //p' >>"$lines"

# Item 2: slow pages.
echo "item 2: slow pages…" >&2
SKYSYNC_BENCH_RECORDS=$slow_records SKYSYNC_BENCH_JSON="$out/slow_pages.json" \
  cargo test --release --locked -p skysync-tests --test it bench_partition:: -- --ignored --nocapture --test-threads 1 \
  >>"$log" 2>&1
python3 -c 'import json,sys; print(json.dumps(dict(json.load(open(sys.argv[1])), run="slow_pages")))' \
  "$out/slow_pages.json" >>"$lines"

# Item 4: ingest. PostgreSQL: a throwaway server on loopback (fsync off, as the tests run it).
pg_url=""
pg_dir=""
pg_bin=""
as_pg=(env)
stop_pg() {
  if [ -n "$pg_dir" ]; then
    "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$pg_dir"
  fi
}
trap stop_pg EXIT
if [ "${SKYSYNC_BENCH_SKIP_PG:-0}" != 1 ]; then
  pg_bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)"
  if [ -x "$pg_bin/initdb" ]; then
    pg_dir="$(mktemp -d)"
    if [ "$(id -u)" = 0 ]; then chown postgres "$pg_dir"; as_pg=(runuser -u postgres --); fi
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    "${as_pg[@]}" "$pg_bin/initdb" -D "$pg_dir/data" -U skysync --auth=trust -E UTF8 --no-sync >>"$log" 2>&1
    "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/log" -w \
      -o "-h 127.0.0.1 -p $port -k $pg_dir -c fsync=off" start >>"$log" 2>&1
    pg_url="postgres://skysync@127.0.0.1:$port/postgres?sslmode=disable"
  else
    echo "PostgreSQL not installed: skipping its ingest figures" >&2
  fi
fi
ingest_bin="$(ls -t target/release/deps/ingest-* | grep -v '\.d$' | head -n1)"
for records in $ingest_sizes; do
  echo "item 4: ingest $records records…" >&2
  SKYSYNC_BENCH_RECORDS=$records "$ingest_bin" 2>>"$log" | sed 's/^{/{"run":"ingest",/' >>"$lines"
  if [ -n "$pg_url" ]; then
    SKYSYNC_BENCH_RECORDS=$records SKYSYNC_BENCH_DB="$pg_url" "$ingest_bin" 2>>"$log" | sed 's/^{/{"run":"ingest",/' >>"$lines"
  fi
done

# Item 6: the consent page.
if [ "${SKYSYNC_BENCH_SKIP_WEB:-0}" != 1 ]; then
  echo "item 6: consent page…" >&2
  if web/build.sh >>"$log" 2>&1; then
    for f in web/dist/pkg/skysync_web_bg.wasm web/dist/pkg/skysync_web.js web/dist/app.js; do
      printf '{"run":"page","file":"%s","bytes":%d,"gzip":%d}\n' "${f#web/dist/}" "$(wc -c <"$f")" "$(gzip -9c "$f" | wc -c)"
    done >>"$lines"
  else
    echo "web/build.sh failed (see $log): skipping the page figures" >&2
  fi
fi

python3 scripts/bench_table.py "$lines" "$out/bench.json" "$(date -u +%Y-%m-%dT%H:%MZ)" "$quick"
echo "figures: $out/bench.json   log: $log" >&2
