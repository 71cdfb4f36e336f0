//! Exit codes no other test reaches, black-box: a real code exchanged with the wrong PKCE
//! verifier (4), consent lost in the middle of a sync (4), 429s until the retries run out (5),
//! `status` with an expired refresh token (4), and `consent-page` failures (1).

use skysync_cli::sim::Fault;
use skysync_core::bundle::BundleContent;
use skysync_core::secret::PkceVerifier;
use skysync_tests::cli::Skysync;
use skysync_tests::sky::sim_config;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_code_with_the_wrong_pkce_verifier_exits_4_and_stores_nothing() {
    let s = Skysync::start().await;
    let (pending, code) = s.real_code().await;
    let wrong = PkceVerifier::new("w".repeat(64));
    let path = s.bundle_file(BundleContent::AuthorizationCode {
        client_id: s.sim.config().client_id,
        code,
        code_verifier: wrong,
        redirect_uri: pending.redirect_uri,
        obtained_at: s.sim.now(),
    });
    let run = s.run(&["import", path.to_str().unwrap()]).await;
    run.expect_code(4);
    assert!(run.stderr.contains("invalid_grant"), "{}", run.stderr);
    let stats = s.sim.stats();
    assert_eq!((stats.token_calls, stats.token_authorization_code), (1, 0), "one refused exchange: {stats:?}");
    assert!(!s.token_file().exists(), "nothing stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_lost_in_the_middle_of_a_sync_exits_4_and_keeps_the_committed_pages() {
    let s = Skysync::with_sim(sim_config(100)).await;
    s.seed(s.minted_tokens(|_| {})).await;
    let before = std::fs::read(s.token_file()).unwrap();
    // The first page commits; then the API refuses the access token and the refresh token has
    // been revoked (an admin removed the app while the sync ran).
    s.sim.fail_next_api(1, Fault::Slow { ms: 0 });
    s.sim.fail_next_api(1, Fault::InvalidGrant);
    s.sim.revoke_refresh_tokens();
    let run = s.run(&["sync", "gifts", "--page-size", "50"]).await;
    run.expect_code(4);
    assert!(run.stderr.contains("skysync login"), "says how to consent again: {}", run.stderr);
    let tokens = |bytes: &[u8]| serde_json::from_slice::<serde_json::Value>(bytes).unwrap()["tokens"].clone();
    let (before, after) = (tokens(&before), tokens(&std::fs::read(s.token_file()).unwrap()));
    assert_eq!(after["refresh_token"], before["refresh_token"], "the stored refresh token is kept");
    assert!(after["grant_refused_at"].is_string(), "the refusal is recorded: {after}");
    let db = rusqlite::Connection::open(s.data_dir().join("skysync.db")).unwrap();
    let rows: i64 = db.query_row("SELECT count(*) FROM gifts", [], |r| r.get(0)).unwrap();
    assert_eq!(rows, 50, "the page committed before the refusal is kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_429s_until_the_retries_run_out_exit_5() {
    let s = Skysync::start().await;
    s.seed(s.minted_tokens(|_| {})).await;
    s.sim.fail_next_api(100, Fault::TooManyRequests { retry_after_secs: 0 });
    let run = s.run(&["api", "/constituent/v1/constituents?limit=1"]).await;
    run.expect_code(5);
    assert!(run.stderr.contains("429") || run.stderr.contains("rate"), "{}", run.stderr);
    assert!(run.stdout.is_empty());
    let stats = s.sim.stats();
    assert!(stats.rate_limited > 1 && stats.rate_limited < 100, "retried, then gave up: {stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_with_an_expired_refresh_token_exits_4_without_a_call() {
    let s = Skysync::start().await;
    s.seed(s.minted_tokens(|t| {
        t.refresh_expires_at = s.sim.now() - time::Duration::days(1);
        t.access_expires_at = Some(s.sim.now() - time::Duration::days(1));
    }))
    .await;
    let before = s.sim.stats();
    let run = s.run(&["status", "--json"]).await;
    run.expect_code(4);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout));
    assert_eq!(v["health"], "expired", "{v}");
    assert_eq!(s.sim.stats(), before, "status makes no call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_page_without_a_built_page_or_with_its_port_taken_exits_1() {
    let s = Skysync::start().await;
    let empty = tempfile::tempdir().unwrap();
    let run = s.run(&["consent-page", "--dir", empty.path().to_str().unwrap(), "--port", "0"]).await;
    run.expect_code(1);
    assert!(run.stderr.contains("does not hold a built consent page"), "{}", run.stderr);

    // A complete-looking page directory, and the port already held by someone else.
    let page = tempfile::tempdir().unwrap();
    std::fs::write(page.path().join("index.html"), "<!doctype html>").unwrap();
    std::fs::create_dir(page.path().join("pkg")).unwrap();
    std::fs::write(page.path().join("pkg/skysync_web_bg.wasm"), b"\0asm").unwrap();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let run = s.run(&["consent-page", "--dir", page.path().to_str().unwrap(), "--port", &port]).await;
    run.expect_code(1);
    assert!(run.stderr.contains(&format!("cannot listen on 127.0.0.1:{port}")), "{}", run.stderr);
}
