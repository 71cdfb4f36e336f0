#!/usr/bin/env bash
# The benchmark of the performance issue: runs every item side by side from a clean checkout,
# prints ONE table and writes the figures as JSON. Not part of scripts/test.sh.
# Machines here are noisy: read the ratios, not the absolute times.
#
#   scripts/bench.sh            # everything, release build (about 10 minutes on 2 cores, build excluded)
#   scripts/bench.sh --quick    # smoke run: small data sets, few repeats, debug build (a few minutes)
#
# Items (see BENCHMARKS.md for what each measures):
#   1 quota efficiency and 2 wall time vs the rate-limit floor (10 calls/s, 300 ms per call):
#     initial, incremental and --full runs of 30,000 constituents + 20,000 gifts (tests/it/bench.rs)
#   2 slow pages (1.5 s per call), 60,000 constituents, partitioned vs one chain (tests/it/bench_partition.rs)
#   3 the common baseline: sequential, limit 500, 1 s sleep on 429 (tests/it/bench_baseline.py)
#   4 ingest into SQLite and PostgreSQL, records/s and peak RSS     (cli/benches/ingest.rs)
#   5 `skysync token` with a cached token, median process wall time  (tests/it/bench.rs)
#   6 consent page, shipped wasm + JS, raw and gzip                  (web/build.sh)
#
# Knobs (environment):
#   SKYSYNC_BENCH_OUT            where the figures go (target/bench)
#   SKYSYNC_BENCH_PROFILE        release or debug (release; debug with --quick)
#   SKYSYNC_BENCH_CONSTITUENTS   constituents of items 1-3 (30000; 3000 with --quick)
#   SKYSYNC_BENCH_GIFTS          gifts of items 1-3 (20000; 2000 with --quick)
#   SKYSYNC_BENCH_SLOW_RECORDS   constituents of the slow-page item (60000; 15000 with --quick)
#   SKYSYNC_BENCH_INGEST_SIZES   records of each ingest run ("100000 1000000"; "20000" with --quick)
#   SKYSYNC_BENCH_TOKEN_RUNS     `skysync token` runs (41; 11 with --quick)
#   SKYSYNC_BENCH_SKIP_PG=1      no PostgreSQL figures
#   SKYSYNC_BENCH_SKIP_WEB=1     no consent page build (the default with --quick; it needs what
#                                web/build.sh needs: wasm-bindgen, `(cd tools/npm && npm ci)`)
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

missing=""
for tool in cargo python3 gzip; do
  command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
done
if [ -n "$missing" ]; then
  echo "bench.sh needs:$missing (scripts/setup.sh installs the toolchain)" >&2
  exit 1
fi

if [ "$quick" = 1 ]; then
  profile=${SKYSYNC_BENCH_PROFILE:-debug}
  constituents=${SKYSYNC_BENCH_CONSTITUENTS:-3000}; gifts=${SKYSYNC_BENCH_GIFTS:-2000}
  slow_records=${SKYSYNC_BENCH_SLOW_RECORDS:-15000}; ingest_sizes=${SKYSYNC_BENCH_INGEST_SIZES:-20000}
  token_runs=${SKYSYNC_BENCH_TOKEN_RUNS:-11}
else
  profile=${SKYSYNC_BENCH_PROFILE:-release}
  constituents=${SKYSYNC_BENCH_CONSTITUENTS:-30000}; gifts=${SKYSYNC_BENCH_GIFTS:-20000}
  slow_records=${SKYSYNC_BENCH_SLOW_RECORDS:-60000}; ingest_sizes=${SKYSYNC_BENCH_INGEST_SIZES:-100000 1000000}
  token_runs=${SKYSYNC_BENCH_TOKEN_RUNS:-41}
fi
case "$profile" in
  release) cargo_profile=(--release) ;;
  debug) cargo_profile=() ;;
  *) echo "SKYSYNC_BENCH_PROFILE must be release or debug, not '$profile'" >&2; exit 2 ;;
esac

# A step failed: say which and where its output is, then stop.
fail() {
  echo "bench.sh: $1 failed; its output is in $log" >&2
  tail -n 20 "$log" >&2
  exit 1
}

# The machine's load while the benchmark runs: /proc/loadavg every 10 s (the table reports it).
load="$out/load.txt"
: >"$load"
(while :; do cut -d' ' -f1 /proc/loadavg >>"$load" 2>/dev/null || true; sleep 10; done) &
sampler=$!

pg_dir=""
pg_bin=""
as_pg=(env)
cleanup() {
  kill "$sampler" 2>/dev/null || true
  if [ -n "$pg_dir" ]; then
    "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$pg_dir"
  fi
}
trap cleanup EXIT

echo "building ($profile; the first build takes a while)…" >&2
cargo build "${cargo_profile[@]}" --locked -p skysync-cli --bin skysync --bench ingest >>"$log" 2>&1 ||
  fail "building skysync and the ingest bench"
cargo test "${cargo_profile[@]}" --locked -p skysync-tests --test bench --no-run >>"$log" 2>&1 ||
  fail "building the test binary"
# The tests start `target/debug/skysync`; a release run points them at the release binary.
export SKYSYNC_BIN="$PWD/target/$profile/skysync"

# Items 1, 3, 5: one JSON line each, prefixed BENCH.
echo "items 1, 3, 5: quota, baseline, token ($constituents constituents + $gifts gifts)…" >&2
SKYSYNC_BENCH_CONSTITUENTS=$constituents SKYSYNC_BENCH_GIFTS=$gifts SKYSYNC_BENCH_TOKEN_RUNS=$token_runs \
  cargo test "${cargo_profile[@]}" --locked -p skysync-tests --test bench bench:: -- --ignored --nocapture --test-threads 1 \
  >"$out/items-1-3-5.out" 2>>"$log" || { cat "$out/items-1-3-5.out" >>"$log"; fail "items 1, 3 and 5"; }
cat "$out/items-1-3-5.out" >>"$log"
# The test harness prints its "test … ..." prefix on the line of a test's first output.
sed -n 's/^.*BENCH \({.*}\)$/\1/p' "$out/items-1-3-5.out" >>"$lines"

# Item 2: slow pages.
echo "item 2: slow pages ($slow_records constituents, 1.5 s per call)…" >&2
SKYSYNC_BENCH_RECORDS=$slow_records SKYSYNC_BENCH_JSON="$out/slow_pages.json" \
  cargo test "${cargo_profile[@]}" --locked -p skysync-tests --test bench bench_partition:: -- --ignored --nocapture --test-threads 1 \
  >>"$log" 2>&1 || fail "item 2"
python3 -c 'import json,sys; print(json.dumps(dict(json.load(open(sys.argv[1])), run="slow_pages")))' \
  "$out/slow_pages.json" >>"$lines"

# Item 4: ingest. PostgreSQL: a throwaway server on loopback (fsync off, as the tests run it).
pg_url=""
if [ "${SKYSYNC_BENCH_SKIP_PG:-0}" != 1 ]; then
  pg_bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)"
  if [ -n "$pg_bin" ] && [ -x "$pg_bin/initdb" ]; then
    pg_dir="$(mktemp -d)"
    if [ "$(id -u)" = 0 ]; then chown postgres "$pg_dir"; as_pg=(runuser -u postgres --); fi
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    "${as_pg[@]}" "$pg_bin/initdb" -D "$pg_dir/data" -U skysync --auth=trust -E UTF8 --no-sync >>"$log" 2>&1 ||
      fail "initdb"
    "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/log" -w \
      -o "-h 127.0.0.1 -p $port -k $pg_dir -c fsync=off" start >>"$log" 2>&1 || fail "starting PostgreSQL"
    pg_url="postgres://skysync@127.0.0.1:$port/postgres?sslmode=disable"
  else
    echo "PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin): skipping its ingest figures" >&2
  fi
fi
ingest_bin="$(ls -t target/"$profile"/deps/ingest-* | grep -v '\.d$' | head -n1)"
for records in $ingest_sizes; do
  echo "item 4: ingest $records records…" >&2
  SKYSYNC_BENCH_RECORDS=$records "$ingest_bin" 2>>"$log" | sed 's/^{/{"run":"ingest",/' >>"$lines" ||
    fail "ingest into SQLite"
  if [ -n "$pg_url" ]; then
    SKYSYNC_BENCH_RECORDS=$records SKYSYNC_BENCH_DB="$pg_url" "$ingest_bin" 2>>"$log" |
      sed 's/^{/{"run":"ingest",/' >>"$lines" || fail "ingest into PostgreSQL"
  fi
done

# Item 6: the consent page (a wasm release build: minutes, so --quick leaves it out by default).
if [ "${SKYSYNC_BENCH_SKIP_WEB:-$quick}" = 1 ]; then
  echo "item 6: skipped (SKYSYNC_BENCH_SKIP_WEB=0 builds the consent page)" >&2
else
  echo "item 6: consent page…" >&2
  if web/build.sh >"$out/web-build.out" 2>&1; then
    cat "$out/web-build.out" >>"$log"
    for f in web/dist/pkg/skysync_web_bg.wasm web/dist/pkg/skysync_web.js web/dist/app.js; do
      printf '{"run":"page","file":"%s","bytes":%d,"gzip":%d}\n' "${f#web/dist/}" "$(wc -c <"$f")" "$(gzip -9c "$f" | wc -c)"
    done >>"$lines"
  else
    cat "$out/web-build.out" >>"$log"
    echo "web/build.sh failed, skipping the page figures; it said:" >&2
    grep -iE 'error|install' "$out/web-build.out" | tail -n 5 >&2
  fi
fi

kill "$sampler" 2>/dev/null || true
python3 scripts/bench_table.py "$lines" "$out/bench.json" "$(date -u +%Y-%m-%dT%H:%MZ)" "$quick" \
  --profile "$profile" --load "$load" --command "scripts/bench.sh${1:+ $1}"
echo "figures: $out/bench.json   log: $log" >&2
