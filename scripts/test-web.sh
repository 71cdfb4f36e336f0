#!/usr/bin/env bash
# The web bindings' wasm-bindgen tests in headless Chromium, against a simulator on loopback.
# Needs Chromium, chromedriver and wasm-bindgen-test-runner: when one is missing, scripts/setup.sh
# (idempotent) installs what the test suite needs first.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null || ! command -v "${CHROMEDRIVER:-chromedriver}" >/dev/null \
  || ! command -v wasm-bindgen-test-runner >/dev/null; then
  scripts/setup.sh
fi

cargo build -p skysync-cli --bin skysync --locked
log=$(mktemp)
# Port 0: the simulator binds a free port itself and prints its address, so nothing is assumed
# about 8330 (or any port) being free or ours. The tests use the simulator's default client id,
# secret and subscription key (the test runner's origin, the redirect URI, has a port chosen at
# run time, so loopback redirects are allowed), so none of the caller's SKYSYNC_* or PG* variables reach it.
env $(env | sed -n 's/^\(SKYSYNC_[A-Za-z0-9_]*\|PG[A-Za-z0-9_]*\)=.*/-u \1/p') \
  target/debug/skysync sim --port 0 --records 50 --any-loopback-redirect >"$log" 2>&1 &
sim=$!
trap 'kill $sim 2>/dev/null || true; rm -f "$log"' EXIT
url=
for _ in $(seq 300); do
  url=$(sed -n 's/^SKY API simulator listening on \(http:[^ ]*\).*/\1/p' "$log" | head -n1)
  [ -n "$url" ] && break
  kill -0 "$sim" 2>/dev/null || { echo "error: the simulator did not start:" >&2; cat "$log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$url" ] || { echo "error: the simulator did not print its address within 30 s:" >&2; cat "$log" >&2; exit 1; }
case "$url" in */) ;; *) url="$url/" ;; esac

SKYSYNC_SIM_URL="$url" \
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
CHROMEDRIVER="${CHROMEDRIVER:-$(command -v chromedriver)}" \
  cargo test -p skysync-web --target wasm32-unknown-unknown --locked
