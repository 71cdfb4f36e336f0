//! Snapshots of the stable human outputs. Paths, ports and times relative to now are redacted,
//! so the snapshots hold what a change to the wording or layout would alter, and nothing else.
//! One-line errors that other tests already check exactly (no tokens: `cli_tokens`; logout
//! without `--yes`: `cli_store`) have no snapshot here.

use skysync_tests::cli::{Run, Skysync};
use time::macros::datetime;

/// Insta settings that redact this world's variable parts.
fn redactions(s: &Skysync) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(&regex::escape(&s.home().display().to_string()), "[HOME]");
    // Ports vary in length, so the padding after them is redacted with them.
    settings.add_filter(r"127\.0\.0\.1:\d+(\S*)\s+\[", "127.0.0.1:[PORT]$1 [");
    settings.add_filter(r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]");
    settings.add_filter(r"\((in|expired) [0-9][^)]*\)", "([RELATIVE])");
    settings.add_filter(r"expired [0-9][^(]* ago", "expired [RELATIVE]");
    settings.add_filter(r"(Days left:\s+)\d+", "$1[DAYS]");
    settings.set_prepend_module_to_snapshot(false);
    settings
}

fn shown(run: &Run) -> String {
    format!("exit: {}\n--- stdout\n{}--- stderr\n{}", run.code, run.stdout, run.stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help() {
    let s = Skysync::start().await;
    let run = s.run(&["--help"]).await;
    redactions(&s).bind(|| insta::assert_snapshot!("help", shown(&run)));
    let run = s.run(&["import", "--help"]).await;
    redactions(&s).bind(|| insta::assert_snapshot!("import_help", shown(&run)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_of_a_fixed_token_set() {
    let s = Skysync::start().await;
    s.seed(s.minted_tokens(|t| {
        t.consented_at = datetime!(2025-03-01 09:30:00 UTC);
        t.refresh_obtained_at = datetime!(2025-03-01 09:30:00 UTC);
        t.refresh_expires_at = datetime!(2099-03-01 09:30:00 UTC);
        t.access_expires_at = Some(datetime!(2025-03-01 10:30:00 UTC));
        t.last_refreshed_at = Some(datetime!(2025-03-02 02:30:00 UTC));
        t.last_rotated_at = None;
    }))
    .await;
    let run = s.run(&["status"]).await;
    run.expect_code(0);
    redactions(&s).bind(|| insta::assert_snapshot!("status", shown(&run)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_show_masks_secrets() {
    let s = Skysync::start().await;
    let run = s.run(&["config", "show"]).await;
    run.expect_code(0);
    let c = s.sim.config();
    assert!(!run.stdout.contains(&c.client_secret) && !run.stdout.contains(&c.subscription_key));
    redactions(&s).bind(|| insta::assert_snapshot!("config_show", shown(&run)));
    s.set_env("SKYSYNC_CLIENT_ID", None);
    let run = s.run(&["config", "show"]).await;
    redactions(&s).bind(|| insta::assert_snapshot!("config_show_missing_client_id", shown(&run)));
}

/// The `--json` field names are an interface (README "JSON output"): a rename shows here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_field_names() {
    let s = Skysync::start().await;
    let tokens = s.minted_tokens(|_| {});
    let bundle = s.bundle_file(skysync_core::bundle::BundleContent::RefreshToken { tokens: Box::new(tokens) });
    let mut shown = String::new();
    for args in [
        &["--json", "import", bundle.to_str().unwrap()][..],
        &["--json", "status"],
        &["--json", "token"],
        &["--json", "renew"],
        &["--json", "config", "show"],
        &["--json", "logout", "--yes"],
    ] {
        let run = s.run(args).await;
        run.expect_code(0);
        let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("one JSON object");
        let mut keys: Vec<&str> = v.as_object().expect("an object").keys().map(String::as_str).collect();
        keys.sort_unstable();
        shown.push_str(&format!("{}: {}\n", args[1..].join(" "), keys.join(", ")));
    }
    redactions(&s).bind(|| insta::assert_snapshot!("json_field_names", shown));
}
