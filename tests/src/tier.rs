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

/// Runs each named `async fn name(backend)` of the calling module once per database:
/// `mod sqlite { name(SQLITE) }` and `mod postgres { name(POSTGRES) }`, the PostgreSQL half
/// skipped in the fast tier. The two expressions are written as in the calling module:
///
/// ```ignore
/// skysync_tests::both_backends!(sqlite = Fixture::sqlite(), postgres = Fixture::postgres();
///     upserts_count_changes, deletes_are_marked);
/// ```
#[macro_export]
macro_rules! both_backends {
    (sqlite = $sqlite:expr, postgres = $postgres:expr; $($name:ident),* $(,)?) => {
        mod sqlite {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($sqlite).await
                }
            )*
        }
        mod postgres {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    $crate::skip_in_fast_tier!("PostgreSQL");
                    super::$name($postgres).await
                }
            )*
        }
    };
}
