#!/usr/bin/env bash
# Installs what the full test suite needs on a fresh Debian machine, skipping what is present:
# the wasm32 target, wasm-bindgen-cli at Cargo.lock's version, Chromium + ChromeDriver,
# PostgreSQL, and the pinned npm tools (wasm-opt from binaryen). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "error: need root (or sudo) to run: $*" >&2; exit 1; fi
}

# Debian packages: Chromium and its driver for browser tests, PostgreSQL for the sink tests,
# groff for the man-page test.
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v runuser >/dev/null || missing+=(util-linux)
command -v groff >/dev/null || missing+=(groff-base)  # the man-page test renders with groff
if [ ${#missing[@]} -gt 0 ]; then
  say "apt-get install ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The server must not run as a service here: tests start their own clusters on loopback.
if [ "$(id -u)" -eq 0 ] && command -v pg_ctlcluster >/dev/null; then
  for c in /etc/postgresql/*/main; do
    [ -d "$c" ] || continue
    v=$(basename "$(dirname "$c")"); pg_ctlcluster "$v" main stop >/dev/null 2>&1 || true
  done
fi

say "rust toolchain: wasm32 target, rustfmt, clippy"
rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || rustup target add wasm32-unknown-unknown
rustup component add rustfmt clippy >/dev/null 2>&1 || true

# wasm-bindgen-cli must equal the wasm-bindgen in Cargo.lock (pinned with = in Cargo.toml).
wbv=$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p')
if ! wasm-bindgen --version 2>/dev/null | grep -qx "wasm-bindgen $wbv"; then
  say "cargo install wasm-bindgen-cli $wbv"
  # Not --locked: its lockfile pins a crate version the registry mirror here lacks.
  cargo install -q wasm-bindgen-cli --version "$wbv"
fi

if [ -f tools/npm/package-lock.json ]; then
  say "npm ci (tools/npm: binaryen's wasm-opt)"
  (cd tools/npm && npm ci --no-audit --no-fund --loglevel=error)
fi
