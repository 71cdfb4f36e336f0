#!/usr/bin/env bash
# Every check and every test, exactly as CI runs them (.ci/run calls this script).
#   scripts/test.sh            install what is missing, then lint, build and test everything
#   scripts/test.sh --fast     the inner loop (a few minutes): fmt, native clippy and the native
#                              tests, without the installs, the wasm and browser builds, PostgreSQL
#                              or Chromium. Not a substitute for the full run before a merge.
# Environment: SKYSYNC_SKIP_SETUP=1 skips the installs (for a machine already set up).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-always}"
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# The core with its default features must pull in no transport and no runtime, on either target
# (the reqwest client is an opt-in feature the CLI and the browser bindings turn on).
core_has_no_transport() {
  local target found=0
  for target in "" wasm32-unknown-unknown; do
    say "skysync-core's default dependencies (${target:-native}): no reqwest, hyper, tokio, mio or web-sys"
    local tree
    tree=$(cargo tree -p skysync-core -e normal --prefix none --locked ${target:+--target "$target"})
    if grep -E '^(reqwest|hyper|tokio|mio|web-sys) ' <<<"$tree" | sort -u | grep .; then
      echo "skysync-core pulls in the crates above with default features (${target:-native}); keep them behind a feature" >&2
      found=1
    fi
  done
  return "$found"
}

fast=0
case "${1:-}" in
  "") ;;
  --fast) fast=1 ;;
  *) echo "usage: scripts/test.sh [--fast]" >&2; exit 2 ;;
esac

# The tests that need PostgreSQL or Chromium read this (tests/src/tier.rs): only in the fast
# tier do they return early, with a "SKIPPED in the fast tier" line. Never inherited into the
# full run, where a missing PostgreSQL or Chromium fails them.
unset SKYSYNC_TEST_FAST

if [ "$fast" = 1 ]; then
  say "fast tier: no installs, no wasm or browser builds, no PostgreSQL or Chromium"
  say "cargo fmt --check"
  cargo fmt --all --check
  core_has_no_transport
  say "clippy (native)"
  cargo clippy --workspace --all-targets --locked -- -D warnings
  say "build the skysync binary the black-box tests run"
  cargo build -p skysync-cli --bin skysync --locked
  export SKYSYNC_BIN="$PWD/target/debug/skysync"
  say "native tests (PostgreSQL and browser tests skip, saying so)"
  SKYSYNC_TEST_FAST=1 cargo test --workspace --locked
  say "fast tier passed (run scripts/test.sh for everything CI runs)"
  exit 0
fi

[ "${SKYSYNC_SKIP_SETUP:-}" = 1 ] || scripts/setup.sh

say "cargo fmt --check"
cargo fmt --all --check

core_has_no_transport

say "clippy (native)"
cargo clippy --workspace --all-targets --locked -- -D warnings
say "clippy (wasm32: core and web)"
cargo clippy -p skysync-core -p skysync-web --target wasm32-unknown-unknown --all-targets --locked -- -D warnings
cargo clippy -p skysync-web --target wasm32-unknown-unknown --all-targets --features app-store,sync --locked -- -D warnings
# The consent page's build (web/build.sh) leaves the default features out.
cargo clippy -p skysync-web --target wasm32-unknown-unknown --lib --no-default-features --locked -- -D warnings

say "rustdoc (no broken links or stray HTML)"
RUSTDOCFLAGS="-D warnings" cargo doc -p skysync-core -p skysync-cli -p skysync-web --no-deps --locked

say "wasm32 build of skysync-core"
cargo build -p skysync-core --target wasm32-unknown-unknown --locked

say "build the consent page (web/dist)"
web/build.sh

say "build the skysync binary the black-box tests run"
cargo build -p skysync-cli --bin skysync --locked
export SKYSYNC_BIN="$PWD/target/debug/skysync"

say "native tests (unit, simulator, CLI black-box, sinks on SQLite and PostgreSQL, sync, browser end-to-end)"
cargo test --workspace --locked

say "core unit tests on wasm32 (Node)"
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
  cargo test -p skysync-core --target wasm32-unknown-unknown --locked

say "web bindings in headless Chromium"
scripts/test-web.sh

say "all checks passed"
