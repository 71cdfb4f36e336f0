#!/usr/bin/env bash
# Runs the tests that depend on an IPv6 loopback in a network namespace without IPv6, and checks
# that each one says so: the login test reports "NOT CHECKED", the listener tests fail with "needs ::1".
# A test that passed silently here would be one that cannot tell a machine without IPv6 from a pass.
# Needs root (unshare -n). Not part of scripts/test.sh: the CI machine has IPv6 on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "scripts/check-no-ipv6.sh needs root (unshare -n)" >&2; exit 2; }
cargo build -p skysync-cli --bin skysync --locked
cargo test -p skysync-tests --test it --locked --no-run
export SKYSYNC_BIN="$PWD/target/debug/skysync"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
unshare -n sh -c '
  ip link set lo up
  sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.lo.disable_ipv6=1
  cargo test -p skysync-tests --test it --locked -- \
    cli_login::login_listens_on_both_loopback_families_for_localhost \
    security_listeners:: 2>&1
' >"$out" || true
fail=0
grep -q "NOT CHECKED on this machine (no IPv6 loopback): cli_login::login_listens_on_both_loopback_families_for_localhost" "$out" \
  || { echo "the login test did not say it checked nothing without IPv6" >&2; fail=1; }
if grep -q "needs ::1" "$out"; then :; else echo "no listener test said it needs ::1" >&2; fail=1; fi
grep -E "^test |test result" "$out" >&2
[ "$fail" = 0 ] && echo "without IPv6, every IPv6 test says so (NOT CHECKED or a failure naming ::1)"
exit "$fail"
