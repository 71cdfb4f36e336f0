//! `skysync import`, `token`, `renew`, `status` against the simulator.

use skysync_cli::sim::Fault;
use skysync_core::bundle::BundleContent;
use skysync_tests::cli::Skysync;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imported_refresh_bundle_is_reused_without_network_calls() {
    let s = Skysync::start().await;
    let tokens = s.minted_tokens(|_| {});
    let access = tokens.access_token.as_ref().unwrap().secret().to_owned();
    s.seed(tokens).await;
    let before = s.sim.stats();
    for _ in 0..3 {
        let run = s.run(&["token"]).await;
        run.expect_code(0);
        assert_eq!(run.stdout, format!("{access}\n"));
    }
    let header = s.run(&["token", "--header"]).await;
    assert_eq!(header.expect_code(0).stdout, format!("Authorization: Bearer {access}\n"));
    assert_eq!(s.sim.stats(), before, "a valid access token needs no network call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imported_code_bundle_is_exchanged_at_once() {
    let s = Skysync::start().await;
    let path = s.bundle_file(s.code_bundle().await);
    let run = s.run(&["import", path.to_str().unwrap()]).await;
    run.expect_code(0);
    assert!(run.stdout.contains("Imported"), "{}", run.stdout);
    assert_eq!(s.sim.stats().token_authorization_code, 1);
    s.run(&["token"]).await.expect_code(0);
    assert_eq!(s.sim.stats().token_calls, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_from_stdin_and_wrong_client_is_refused() {
    let s = Skysync::start().await;
    let tokens = s.minted_tokens(|t| t.client_id = "another-app".into());
    let path = s.bundle_file(BundleContent::RefreshToken { tokens: Box::new(tokens) });
    let text = std::fs::read_to_string(path).unwrap();
    let run = s.run_with_stdin(&["import", "-"], Some(&text)).await;
    run.expect_code(1);
    assert!(run.stderr.contains("another-app"), "{}", run.stderr);
    assert!(!s.token_file().exists());
    let empty = s.run_with_stdin(&["import"], Some("\n")).await;
    empty.expect_code(1);
    assert!(empty.stderr.contains("the bundle is empty"), "{}", empty.stderr);
    let garbage = s.run_with_stdin(&["import"], Some("not a bundle")).await;
    garbage.expect_code(1);
    assert!(garbage.stderr.contains("not a skysync token bundle"), "{}", garbage.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_access_token_is_refreshed_preserving_the_refresh_token() {
    let s = Skysync::start().await;
    let seeded = s.seed_expired_access().await;
    let old_access = seeded.access_token.as_ref().unwrap().secret().to_owned();
    let run = s.run(&["token"]).await;
    run.expect_code(0);
    assert_ne!(run.stdout.trim(), old_access);
    assert_eq!(run.stdout.trim(), s.stored_access_token());
    let stats = s.sim.stats();
    assert_eq!((stats.token_calls, stats.token_refresh_preserve, stats.token_refresh_rotate), (1, 1, 0));
    assert_eq!(s.stored_refresh_token(), seeded.refresh_token.secret(), "a routine refresh preserves");
    // The new token is valid at the API, and is reused afterwards.
    s.run(&["api", "/constituent/v1/constituents?limit=1"]).await.expect_code(0);
    s.run(&["token"]).await.expect_code(0);
    assert_eq!(s.sim.stats().token_calls, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renew_rotates_and_keeps_the_previous_file_as_backup() {
    let s = Skysync::start().await;
    let seeded = s.minted_tokens(|_| {});
    s.seed(seeded.clone()).await;
    let run = s.run(&["renew"]).await;
    run.expect_code(0);
    assert!(run.stdout.contains("new refresh token expires"), "{}", run.stdout);
    let stats = s.sim.stats();
    assert_eq!((stats.token_refresh_preserve, stats.token_refresh_rotate), (0, 1));
    assert_ne!(s.stored_refresh_token(), seeded.refresh_token.secret());
    assert!(s.stored()["tokens"]["last_rotated_at"].is_string());
    let backup: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(s.data_dir().join("tokens.json.bak")).unwrap()).unwrap();
    assert_eq!(backup["tokens"]["refresh_token"].as_str(), Some(seeded.refresh_token.secret()));
    assert_eq!(backup["generation"].as_u64().unwrap() + 1, s.stored()["generation"].as_u64().unwrap());
    // The rotated token works.
    s.run(&["renew"]).await.expect_code(0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inside_the_renewal_window_the_session_rotates() {
    let s = Skysync::start().await;
    let seeded = s.seed_expired_access().await;
    // The refresh token has ~365 days left; a 400-day window means "rotate now".
    s.set_env("SKYSYNC_RENEWAL_WINDOW_DAYS", Some("400"));
    s.run(&["token"]).await.expect_code(0);
    let stats = s.sim.stats();
    assert_eq!((stats.token_refresh_preserve, stats.token_refresh_rotate), (0, 1));
    assert_ne!(s.stored_refresh_token(), seeded.refresh_token.secret());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_concurrent_processes_make_one_token_call() {
    let s = Skysync::start().await;
    s.seed_expired_access().await;
    let children: Vec<_> = (0..16).map(|_| s.command(&["token"]).spawn().expect("spawn")).collect();
    let mut printed = Vec::new();
    for child in children {
        let out = child.wait_with_output().await.unwrap();
        let run = s.finish(out);
        run.expect_code(0);
        printed.push(run.stdout);
    }
    assert_eq!(s.sim.stats().token_calls, 1, "exactly one process refreshed; the others reused its tokens");
    assert!(printed.iter().all(|p| p == &printed[0]), "all print the same new token");
    assert_eq!(printed[0].trim(), s.stored_access_token());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_grant_exits_4_with_advice() {
    let s = Skysync::start().await;
    let before = s.seed_expired_access().await;
    let file_before = std::fs::read(s.token_file()).unwrap();
    s.sim.revoke_refresh_tokens();
    let run = s.run(&["token"]).await;
    run.expect_code(4);
    assert!(run.stderr.contains("invalid_grant"), "{}", run.stderr);
    assert!(run.stderr.contains("skysync login"), "{}", run.stderr);
    // Only the refusal is recorded; the tokens are kept as they were.
    assert_ne!(std::fs::read(s.token_file()).unwrap(), file_before);
    assert!(s.stored()["tokens"]["grant_refused_at"].is_string());
    assert_eq!(s.stored_refresh_token(), before.refresh_token.secret());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_tokens_means_consent_needed() {
    let s = Skysync::start().await;
    for cmd in [&["token"][..], &["status"], &["renew"], &["api", "/constituent/v1/constituents"]] {
        let run = s.run(cmd).await;
        run.expect_code(4);
        assert!(
            run.stderr
                .contains("no tokens are stored for this profile; run `skysync login` (or `skysync import`) first"),
            "{cmd:?}: {}",
            run.stderr
        );
    }
    assert_eq!(s.sim.stats().token_calls, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_is_offline_and_signals_the_warning_window() {
    let s = Skysync::start().await;
    s.seed_expired_access().await;
    let before = s.sim.stats();
    let run = s.run(&["status"]).await;
    run.expect_code(0);
    assert!(run.stdout.contains("Simulated Sandbox Environment"), "{}", run.stdout);
    assert!(run.stdout.contains("Days left:"));
    s.set_env("SKYSYNC_WARN_WINDOW_DAYS", Some("400"));
    let warn = s.run(&["status", "--json"]).await;
    warn.expect_code(10);
    let v: serde_json::Value = serde_json::from_str(&warn.stdout).unwrap();
    assert_eq!(v["health"], "warning");
    assert_eq!(v["access_token_valid"], false);
    assert!(v["refresh_days_left"].as_u64().unwrap() >= 364);
    assert_eq!(s.sim.stats(), before, "status makes no network call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_token_response_is_a_clear_error_and_changes_nothing() {
    let s = Skysync::start().await;
    s.seed_expired_access().await;
    let file_before = std::fs::read(s.token_file()).unwrap();
    s.sim.fail_next_token(1, Fault::Html { code: 403 });
    let run = s.run(&["token"]).await;
    run.expect_code(1);
    assert!(run.stderr.contains("text/html"), "{}", run.stderr);
    assert!(run.stderr.contains("unexpected response from the token endpoint"), "{}", run.stderr);
    assert_eq!(std::fs::read(s.token_file()).unwrap(), file_before);
    // The next run succeeds with the same refresh token.
    s.run(&["token"]).await.expect_code(0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_token_response_is_refused_and_changes_nothing() {
    let s = Skysync::start().await;
    s.seed(s.minted_tokens(|_| {})).await;
    let file_before = std::fs::read(s.token_file()).unwrap();
    let refresh_before = s.stored_refresh_token();
    s.sim.fail_next_token(1, Fault::Oversized);
    let run = s.run(&["renew"]).await;
    run.expect_code(1);
    assert!(run.stderr.contains("larger than"), "{}", run.stderr);
    // The refresh token is kept; only the rotation's intent (its outcome is unknown) is recorded.
    assert_ne!(std::fs::read(s.token_file()).unwrap(), file_before);
    assert_eq!(s.stored_refresh_token(), refresh_before);
    assert!(s.stored()["tokens"]["rotation_started_at"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_paginates_and_stops_on_quota() {
    let s = Skysync::start().await;
    s.seed(s.minted_tokens(|_| {})).await;
    let one = s.run(&["api", "/constituent/v1/constituents?limit=2"]).await;
    one.expect_code(0);
    let v: serde_json::Value = serde_json::from_str(&one.stdout).unwrap();
    assert_eq!(v["value"].as_array().unwrap().len(), 2);

    let all = s
        .run(&["api", "--paginate", "/constituent/v1/constituents?limit=7&include_inactive=true&include_deceased=true"])
        .await;
    all.expect_code(0);
    let mut ids: Vec<String> = all
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    let mut live = s.sim.live_ids("constituents");
    live.sort();
    assert_eq!(ids, live);

    s.sim.fail_next_api(1, Fault::Quota);
    let quota = s.run(&["api", "/constituent/v1/constituents?limit=1"]).await;
    quota.expect_code(5);
    assert!(quota.stderr.contains("quota"), "{}", quota.stderr);
    assert!(quota.stderr.contains("replenish"), "{}", quota.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_keeps_working_tokens_of_another_environment_unless_forced() {
    let s = Skysync::start().await;
    s.seed(s.minted_tokens(|_| {})).await;
    let before = std::fs::read(s.token_file()).unwrap();
    let other = s.minted_tokens(|t| {
        t.identity.environment_id = Some("p-otherEnvironment".into());
        t.identity.environment_name = Some("Other School".into());
    });
    let path = s.bundle_file(BundleContent::RefreshToken { tokens: Box::new(other.clone()) });
    let path = path.to_str().unwrap();
    let refused = s.run(&["import", path]).await;
    refused.expect_code(2);
    assert!(refused.stderr.contains("Other School") && refused.stderr.contains("--force"), "{}", refused.stderr);
    assert!(refused.stderr.contains("--profile"), "{}", refused.stderr);
    assert_eq!(std::fs::read(s.token_file()).unwrap(), before, "nothing changed on disk");
    // The same environment is simply replaced, and so is another one with --force.
    s.seed(s.minted_tokens(|_| {})).await;
    let forced = s.run(&["import", "--force", path]).await;
    forced.expect_code(0);
    assert!(forced.stderr.contains("replacing the tokens for Simulated Sandbox Environment"), "{}", forced.stderr);
    assert_eq!(s.stored_refresh_token(), other.refresh_token.secret());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_token_endpoint_is_retried_then_exits_5_and_changes_nothing() {
    let s = Skysync::start().await;
    s.seed_expired_access().await;
    // One 429: the preserving refresh is retried and succeeds.
    s.sim.fail_next_token(1, Fault::TooManyRequests { retry_after_secs: 1 });
    s.run(&["token"]).await.expect_code(0);
    assert_eq!(s.sim.stats().token_refresh_preserve, 1);
    // Throttled on every attempt: exit 5, tokens untouched.
    s.seed_expired_access().await;
    let before = std::fs::read(s.token_file()).unwrap();
    s.sim.fail_next_token(3, Fault::TooManyRequests { retry_after_secs: 1 });
    let run = s.run(&["token"]).await;
    run.expect_code(5);
    assert!(run.stderr.contains("429"), "{}", run.stderr);
    assert!(run.stdout.is_empty());
    assert_eq!(std::fs::read(s.token_file()).unwrap(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_code_bundle_needs_consent_and_makes_no_call() {
    let s = Skysync::start().await;
    let cfg = s.sim.config();
    let path = s.bundle_file(BundleContent::AuthorizationCode {
        client_id: cfg.client_id.clone(),
        code: skysync_core::secret::AuthorizationCode::new("a-stale-code"),
        code_verifier: skysync_core::secret::PkceVerifier::new("v".repeat(64)),
        redirect_uri: s.redirect_uri(),
        obtained_at: s.sim.now() - time::Duration::minutes(10),
    });
    let run = s.run(&["import", path.to_str().unwrap()]).await;
    run.expect_code(4);
    assert!(run.stderr.contains("has expired") && run.stderr.contains("consent again"), "{}", run.stderr);
    assert_eq!(s.sim.stats().token_calls, 0);
    assert!(!s.data_dir().exists(), "nothing written");
}

/// A rotation whose response is lost: `status` says so, and the next refresh explains the
/// consent it needs instead of a bare `invalid_grant`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_rotation_is_reported_by_status_and_explained_by_the_next_refresh() {
    let s = Skysync::start().await;
    s.seed_expired_access().await;
    s.sim.drop_response_after_rotation(1);
    let renew = s.run(&["renew"]).await;
    renew.expect_code(1);
    let status = s.run(&["status", "--json"]).await;
    let v: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert!(v["rotation_started_at"].is_string(), "{}", status.stdout);
    assert!(v["message"].as_str().unwrap().contains("never arrived"), "{}", status.stdout);
    let token = s.run(&["token"]).await;
    token.expect_code(4);
    assert!(token.stderr.contains("response never arrived"), "{}", token.stderr);
}
