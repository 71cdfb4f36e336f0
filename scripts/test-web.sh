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

port="${SKYSYNC_SIM_PORT:-8330}"
cargo build -p skysync-cli --bin skysync --locked
log=$(mktemp)
# The tests use the simulator's default client id, secret and subscription key; the test runner's
# origin (the redirect URI) has a port chosen at run time, so loopback redirects are allowed.
env -u SKYSYNC_SIM_CLIENT_SECRET -u SKYSYNC_SIM_SUBSCRIPTION_KEY \
  target/debug/skysync sim --port "$port" --records 50 --any-loopback-redirect >"$log" 2>&1 &
sim=$!
trap 'kill $sim 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  kill -0 "$sim" 2>/dev/null || { echo "error: the simulator did not start:" >&2; cat "$log" >&2; exit 1; }
  sleep 0.1
done

SKYSYNC_SIM_URL="http://127.0.0.1:$port/" \
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
CHROMEDRIVER="${CHROMEDRIVER:-$(command -v chromedriver)}" \
  cargo test -p skysync-web --target wasm32-unknown-unknown --locked
