#!/usr/bin/env bash
# The heavy variants of the token reliability suite (not run by scripts/test.sh), printing figures
# for RELIABILITY.md:
#   scripts/reliability-heavy.sh [CRASH_ITERATIONS] [CONCURRENCY_ROUNDS]
# Defaults: 1000 SIGKILL iterations (the suite runs 200) and 10 rounds of 32 concurrent processes
# (the suite runs one round of 24). SKYSYNC_CRASH_SEED picks the crash loop's dice.
set -euo pipefail
cd "$(dirname "$0")/.."
iterations="${1:-1000}"
rounds="${2:-10}"
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

say "build the skysync binary and the test binary"
cargo build -p skysync-cli --bin skysync --locked
export SKYSYNC_BIN="$PWD/target/debug/skysync"
cargo test -p skysync-tests --test it --locked --no-run

run() { cargo test -p skysync-tests --test it --locked -- --exact "$1" --nocapture 2>&1; }
run_all() { cargo test -p skysync-tests --test it --locked -- "$1" --nocapture 2>&1; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT

say "9.1 crash loop: $iterations iterations of SIGKILL during token / renew / sync"
SKYSYNC_CRASH_ITERATIONS="$iterations" \
  run reliability_tokens::sigkill_during_refresh_and_rotation_never_loses_a_token_silently | tee -a "$log" |
  grep -E '^RELIABILITY|test result|panicked' || true

say "9.2 concurrency: $rounds rounds of 32 processes mixing token, renew and sync"
for _ in $(seq "$rounds"); do
  SKYSYNC_CONCURRENCY_PROCESSES=32 \
    run reliability_tokens::token_renew_and_sync_processes_on_one_profile_lose_nothing | tee -a "$log" |
    grep -E '^RELIABILITY|panicked' || true
done

say "token-store compare-and-swap under contention, $rounds rounds"
for _ in $(seq "$rounds"); do
  run_all token_cas:: | tee -a "$log" | grep -E 'test result|panicked' || true
done

say "figures"
grep -E '^RELIABILITY' "$log" | sed 's/^RELIABILITY //'
if grep -qE 'panicked|test result: FAILED|test result: ok. 0 passed' "$log"; then
  say "FAILED (see above)"
  exit 1
fi
awk '/^RELIABILITY concurrency/ { for (i = 1; i <= NF; i++) { split($i, kv, "="); t[kv[1]] += kv[2] } n++ }
     END { if (n) printf "concurrency totals over %d rounds: processes=%d rotations=%d preserving_refreshes=%d replays=%d lost_rotations=%d\n",
             n, t["processes"], t["rotations"], t["preserving_refreshes"], t["replays"], t["lost_rotations"] }' "$log"
say "OK: no silent loss, no bare invalid_grant, no replay"
