#!/usr/bin/env bash
# Builds the consent page into web/dist/: the skysync-web crate for wasm32 (size profile),
# wasm-bindgen (--target web) at exactly Cargo.lock's version, wasm-opt -Oz from the npm package
# pinned in tools/npm, and the static files of web/www. Prints the shipped sizes.
# Also the npm package web/dist/npm/ (`npm pack` it there): the same module and wasm, a Node
# entry (web/npm/node.js: reads the wasm synchronously, no init()), TypeScript types, a README.
#
#   web/build.sh                      # from anywhere in the repository
#   SKYSYNC_CSP_CONNECT_SRC_EXTRA="https://sso.example.org" web/build.sh
#                                     # allow the page to call another token/API origin
#
# Needs: rustup target wasm32-unknown-unknown; `cargo install wasm-bindgen-cli --version <lock>`;
# `(cd tools/npm && npm ci)`. Each missing piece is reported with the command that installs it.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
dist="web/dist"
wasm_opt="tools/npm/node_modules/.bin/wasm-opt"

lock_version="$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p')"
if ! command -v wasm-bindgen >/dev/null || [ "$(wasm-bindgen --version)" != "wasm-bindgen $lock_version" ]; then
  echo "error: wasm-bindgen $lock_version is needed (Cargo.lock); found: $(wasm-bindgen --version 2>/dev/null || echo none)" >&2
  echo "  install it with: cargo install wasm-bindgen-cli --version $lock_version" >&2
  exit 1
fi
if [ ! -x "$wasm_opt" ]; then
  echo "error: $wasm_opt is missing; install the pinned tools with: (cd tools/npm && npm ci)" >&2
  exit 1
fi
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  echo "error: the wasm32 target is missing; install it with: rustup target add wasm32-unknown-unknown" >&2
  exit 1
fi

# The page's wasm links ASCII-only IDNA: `idna_adapter` 1.0 (the `url` crate's documented switch)
# instead of the Unicode tables of 1.2, which are the largest part of the module. A non-ASCII host
# name is then refused on the page (the page only talks to the configured ASCII origins). Cargo
# keeps one version per lock file, so the page is built with its own lock: the committed one with
# that single pin, restored (with its timestamp) right after. The CLI, the npm package and the
# wasm tests keep full IDNA (core's http tests check the native side).
lock_saved="$(mktemp)"
cp -p Cargo.lock "$lock_saved"
restore_lock() { if [ -s "$lock_saved" ]; then cp -p "$lock_saved" Cargo.lock; rm -f "$lock_saved"; fi; }
trap restore_lock EXIT
cargo update --quiet -p idna_adapter --precise 1.0.0
cargo build -p skysync-web --lib --target wasm32-unknown-unknown --profile wasm-release --locked --no-default-features
restore_lock
trap - EXIT

rm -rf "$dist"
mkdir -p "$dist/pkg"
wasm-bindgen --target web --out-dir "$dist/pkg" \
  target/wasm32-unknown-unknown/wasm-release/skysync_web.wasm
"$wasm_opt" -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
  --enable-mutable-globals --enable-reference-types --enable-multivalue \
  -o "$dist/pkg/skysync_web_bg.wasm" "$dist/pkg/skysync_web_bg.wasm"
cp web/www/index.html web/www/app.js web/www/style.css "$dist/"

# The npm package: the crate again with the features `app-store` (SkyAuth.withStore) and `sync`
# (SkySync), which the page does not use, so the page's wasm does not carry them. One bindgen output serves browsers
# and bundlers (`default`, with init()) and Node 18+ (`node`: node.js instantiates the same wasm
# from the package directory).
npm_dir="$dist/npm"
mkdir -p "$npm_dir"
cargo build -p skysync-web --lib --target wasm32-unknown-unknown --profile wasm-release --locked --features app-store,sync
wasm-bindgen --target web --out-dir "$npm_dir" \
  target/wasm32-unknown-unknown/wasm-release/skysync_web.wasm
"$wasm_opt" -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
  --enable-mutable-globals --enable-reference-types --enable-multivalue \
  -o "$npm_dir/skysync_web_bg.wasm" "$npm_dir/skysync_web_bg.wasm"
cp web/npm/node.js web/npm/node.d.ts web/npm/README.md "$npm_dir/"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)"
cat >"$npm_dir/package.json" <<JSON
{
  "name": "skysync-web",
  "version": "$version",
  "description": "Blackbaud SKY API OAuth (consent, unattended refresh, API calls) in WebAssembly, for browsers, bundlers and Node 18+",
  "license": "MIT OR Apache-2.0",
  "type": "module",
  "main": "./node.js",
  "module": "./skysync_web.js",
  "types": "./skysync_web.d.ts",
  "exports": {
    ".": {
      "node": { "types": "./node.d.ts", "default": "./node.js" },
      "types": "./skysync_web.d.ts",
      "default": "./skysync_web.js"
    },
    "./skysync_web_bg.wasm": "./skysync_web_bg.wasm",
    "./package.json": "./package.json"
  },
  "files": ["skysync_web.js", "skysync_web.d.ts", "skysync_web_bg.wasm", "skysync_web_bg.wasm.d.ts", "node.js", "node.d.ts", "README.md"],
  "sideEffects": ["./node.js"],
  "engines": { "node": ">=18" }
}
JSON

if [ -n "${SKYSYNC_CSP_CONNECT_SRC_EXTRA:-}" ]; then
  case "$SKYSYNC_CSP_CONNECT_SRC_EXTRA" in
    *[\;\"\'\<\>]*) echo "error: SKYSYNC_CSP_CONNECT_SRC_EXTRA must be a space-separated list of origins" >&2; exit 1 ;;
  esac
  sed -i "s|connect-src 'self' |connect-src 'self' ${SKYSYNC_CSP_CONNECT_SRC_EXTRA} |" "$dist/index.html"
fi

echo
echo "web/dist (shipped sizes, raw and gzip -9):"
for f in "$dist"/pkg/skysync_web_bg.wasm "$dist"/pkg/skysync_web.js "$dist"/app.js "$dist"/index.html "$dist"/style.css; do
  printf '  %-32s %9d B  %9d B gz\n' "${f#"$dist"/}" "$(wc -c <"$f")" "$(gzip -9c "$f" | wc -c)"
done
f="$npm_dir/skysync_web_bg.wasm"
printf '  %-32s %9d B  %9d B gz   (npm package %s; `cd %s && npm pack`)\n' "npm/skysync_web_bg.wasm" \
  "$(wc -c <"$f")" "$(gzip -9c "$f" | wc -c)" "$version" "$npm_dir"
echo
echo "Serve it with: skysync consent-page   (or any static host; register the page URL as a redirect URI)"
