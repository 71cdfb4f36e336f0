//! The fast test tier: `scripts/test.sh --fast` sets [`FAST_ENV`] so the tests that need
//! PostgreSQL or Chromium return early with a notice instead of starting them.
//!
//! Only the fast tier skips. In the full run (CI) the variable is unset, these tests run, and a
//! missing PostgreSQL or Chromium fails them with the command that installs it.

use std::io::Write;

/// Set to `1` by `scripts/test.sh --fast`.
pub const FAST_ENV: &str = "SKYSYNC_TEST_FAST";

/// Whether this is the fast tier.
pub fn is_fast() -> bool {
    std::env::var_os(FAST_ENV).is_some_and(|v| v == "1")
}

/// In the fast tier, prints that `test` (which needs `what`) is skipped and returns `true`;
/// otherwise returns `false` and the test runs.
pub fn skip(what: &str, test: &str) -> bool {
    if !is_fast() {
        return false;
    }
    // Straight to the process's stderr: libtest captures `eprintln!` of passing tests.
    let _ = writeln!(std::io::stderr(), "SKIPPED in the fast tier ({FAST_ENV}=1, needs {what}): {test}");
    true
}

/// Returns from the calling test in the fast tier (see the module docs): `skip_in_fast_tier!("PostgreSQL")`.
#[macro_export]
macro_rules! skip_in_fast_tier {
    ($what:expr) => {
        if $crate::tier::skip($what, ::std::thread::current().name().unwrap_or(module_path!())) {
            return;
        }
    };
}

/// Says, where the developer sees it (not captured by libtest), that `test` checked nothing
/// because this machine lacks `what`. For conditions of the machine (an IPv6 loopback), not of
/// the tier: the fast tier skips with [`skip`].
pub fn not_checked(what: &str) {
    let test = std::thread::current().name().unwrap_or("a test").to_owned();
    let _ = writeln!(std::io::stderr(), "NOT CHECKED on this machine (no {what}): {test}");
}
