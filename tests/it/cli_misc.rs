//! Configuration, usage, help, and the secret scan at trace level.

use std::time::Duration;

use skysync_tests::cli::{Skysync, assert_no_secrets};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_documents_exit_codes_and_usage_errors_exit_2() {
    let s = Skysync::start().await;
    let help = s.run(&["--help"]).await;
    help.expect_code(0);
    for line in ["Exit codes:", "3   configuration", "4   consent needed", "5   throttled", "10  `skysync status`"] {
        assert!(help.stdout.contains(line), "missing {line:?} in\n{}", help.stdout);
    }
    s.run(&["frobnicate"]).await.expect_code(2);
    s.run(&["api"]).await.expect_code(2);
    // Secrets are not options.
    s.run(&["token", "--client-secret", "x"]).await.expect_code(2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_settings_name_the_variable_and_the_portal() {
    let s = Skysync::start().await;
    s.set_env("SKYSYNC_CLIENT_ID", None);
    let run = s.run(&["token"]).await;
    run.expect_code(3);
    assert!(run.stderr.contains("SKYSYNC_CLIENT_ID"), "{}", run.stderr);
    assert!(run.stderr.contains("developer.blackbaud.com"), "{}", run.stderr);
    s.set_env("SKYSYNC_CLIENT_ID", Some(&s.sim.config().client_id));
    s.seed(s.minted_tokens(|_| {})).await;
    s.set_env("SKYSYNC_SUBSCRIPTION_KEY", None);
    let run = s.run(&["api", "/constituent/v1/constituents"]).await;
    run.expect_code(3);
    assert!(run.stderr.contains("SKYSYNC_SUBSCRIPTION_KEY"), "{}", run.stderr);
    assert!(run.stderr.contains("Primary access key"), "{}", run.stderr);
    s.set_env("SKYSYNC_REDIRECT_URI", Some("not a url"));
    s.run(&["status"]).await.expect_code(3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_file_profiles_and_show() {
    let s = Skysync::start().await;
    let c = s.sim.config();
    let secret_file = s.home().join("secret");
    std::fs::write(&secret_file, format!("{}\n", c.client_secret)).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&secret_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let config_dir = s.home().join("config").join("skysync");
    std::fs::create_dir_all(&config_dir).unwrap();
    std::fs::write(
        config_dir.join("config.toml"),
        format!(
            "[profiles.school]\nclient_id = \"{}\"\nclient_secret_file = \"{}\"\nwarn_window_days = 400\n\n[profiles.school.sync]\nentities = [\"gifts\"]\n",
            c.client_id,
            secret_file.display()
        ),
    )
    .unwrap();
    s.set_env("SKYSYNC_CLIENT_ID", None);
    s.set_env("SKYSYNC_CLIENT_SECRET", None);
    let show = s.run(&["--profile", "school", "config", "show", "--json"]).await;
    show.expect_code(0);
    assert!(!show.stdout.contains(&c.client_secret) && !show.stdout.contains(&c.subscription_key));
    let v: serde_json::Value = serde_json::from_str(&show.stdout).unwrap();
    assert_eq!(v["profile"], "school");
    assert_eq!(v["settings"]["client_id"]["source"], "config file");
    assert_eq!(v["settings"]["client_secret"]["value"], "******** (set)");
    assert_eq!(v["settings"]["subscription_key"]["source"], "env SKYSYNC_SUBSCRIPTION_KEY");
    assert_eq!(v["settings"]["redirect_uri"]["source"], "env SKYSYNC_REDIRECT_URI");
    assert_eq!(v["settings"]["renewal_window_days"]["source"], "default");
    assert!(v["data_dir"].as_str().unwrap().ends_with("skysync/school"));

    // The profile works end to end and its state is separate from `default`.
    let tokens = s.minted_tokens(|t| t.access_expires_at = Some(s.sim.now() - time::Duration::hours(1)));
    let bundle = s.bundle_file(skysync_core::bundle::BundleContent::RefreshToken { tokens: Box::new(tokens) });
    s.run(&["--profile", "school", "import", bundle.to_str().unwrap()]).await.expect_code(0);
    s.run(&["--profile", "school", "token"]).await.expect_code(0);
    assert_eq!(s.sim.stats().token_refresh_preserve, 1);
    s.run(&["--profile", "school", "status"]).await.expect_code(10);
    assert!(!s.token_file().exists());

    // A secret file others can read is refused.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&secret_file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let run = s.run(&["--profile", "school", "status"]).await;
        run.expect_code(3);
        assert!(run.stderr.contains("chmod 600"), "{}", run.stderr);
    }
    s.run(&["--profile", "../etc", "status"]).await.expect_code(3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_appears_in_any_output_at_trace_level() {
    let s = Skysync::start().await;
    let c = s.sim.config();
    let mut secrets = vec![c.client_secret.clone(), c.subscription_key.clone()];

    // Login through the listener at -vvv, with both log formats over the run.
    let (child, authorize, stderr) =
        s.start_login(&["-vvv", "--log-format", "json", "login", "--no-browser", "--timeout", "30"]).await;
    let callback = s.consent(&authorize).await;
    let code = callback.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
    secrets.push(code);
    reqwest::get(callback).await.unwrap();
    s.finish_login(child, stderr).await.expect_code(0);
    secrets.push(s.stored_access_token());
    secrets.push(s.stored_refresh_token());

    for args in [
        &["-vvv", "status"][..],
        &["-vvv", "status", "--json"],
        &["-vvv", "config", "show"],
        &["-vvv", "config", "show", "--json"],
        &["-vvv", "renew"],
        &["-vvv", "--log-format", "json", "renew"],
        &["-vvv", "api", "/constituent/v1/constituents?limit=1"],
    ] {
        s.run(args).await.expect_code(0);
        secrets.push(s.stored_access_token());
        secrets.push(s.stored_refresh_token());
    }
    // A refresh at trace level (its stdout is the token by design; stderr must stay clean).
    let expired = s.minted_tokens(|t| t.access_expires_at = Some(s.sim.now() - time::Duration::hours(1)));
    secrets.push(expired.refresh_token.secret().to_owned());
    secrets.push(expired.access_token.as_ref().unwrap().secret().to_owned());
    s.seed(expired).await;
    let token = s.run(&["-vvv", "token"]).await;
    token.expect_code(0);
    secrets.push(s.stored_access_token());
    // Failures at trace level.
    s.sim.revoke_refresh_tokens();
    s.run(&["-vvv", "renew"]).await.expect_code(4);

    // The printed token itself is the one allowed secret. The PKCE verifier never leaves the
    // process: nothing verifier- or token-shaped may show anywhere else.
    let outputs: Vec<String> = s.all_output().into_iter().filter(|o| o != &token.stdout).collect();
    assert_no_secrets(&outputs, &secrets);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_stdout_is_not_an_error() {
    use tokio::io::AsyncBufReadExt;
    // 1000 pages of one constituent: far more than can be fetched while the reader reads a line.
    let s = Skysync::with_sim(skysync_tests::sky::sim_config(1000)).await;
    s.seed(s.minted_tokens(|_| {})).await;
    let all = "/constituent/v1/constituents?limit=1&include_inactive=true&include_deceased=true";
    let mut child = s.command(&["api", "--paginate", all]).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    assert!(lines.next_line().await.unwrap().is_some());
    drop(lines);
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output()).await.unwrap().unwrap();
    let run = s.finish(out);
    run.expect_code(0);
    assert!(!run.stderr.contains("error"), "{}", run.stderr);
    let calls = s.sim.stats().api_calls;
    assert!(calls < 1000, "stopped paging once nobody read the output, not after all 1000 pages: {calls} calls");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_appears_at_trace_level_in_paste_login_imports_and_failed_exchanges() {
    use skysync_core::bundle::BundleContent;
    use tokio::io::AsyncWriteExt;
    let s = Skysync::start().await;
    let c = s.sim.config();
    let mut secrets = vec![c.client_secret.clone(), c.subscription_key.clone()];

    // --manual: the pasted URL carries the code.
    let (mut child, authorize, stderr) =
        s.start_login(&["-vvv", "--log-format", "json", "login", "--manual", "--timeout", "30"]).await;
    let callback = s.consent(&authorize).await;
    secrets.push(callback.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned());
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(format!("{callback}\n").as_bytes()).await.unwrap();
    drop(stdin);
    s.finish_login(child, stderr).await.expect_code(0);
    secrets.push(s.stored_access_token());
    secrets.push(s.stored_refresh_token());

    // A refresh bundle (same environment, so it replaces), at trace level in both formats.
    let tokens = s.minted_tokens(|_| {});
    secrets.push(tokens.refresh_token.secret().to_owned());
    secrets.push(tokens.access_token.as_ref().unwrap().secret().to_owned());
    let bundle = s.bundle_file(BundleContent::RefreshToken { tokens: Box::new(tokens) });
    s.run(&["-vvv", "import", bundle.to_str().unwrap()]).await.expect_code(0);

    // A code bundle whose code the token endpoint refuses, and one it never issued.
    let redirect = s.redirect_uri();
    for (code, verifier) in [("forged-code-value-1234567890", "v".repeat(64)), ("another-forged-code", "w".repeat(43))]
    {
        secrets.push(code.to_owned());
        secrets.push(verifier.clone());
        let bundle = s.bundle_file(BundleContent::AuthorizationCode {
            client_id: c.client_id.clone(),
            code: skysync_core::secret::AuthorizationCode::new(code),
            code_verifier: skysync_core::secret::PkceVerifier::new(verifier),
            redirect_uri: redirect.clone(),
            obtained_at: s.sim.now(),
        });
        let before = std::fs::read(s.token_file()).unwrap();
        for (format, code) in [("text", 4), ("json", 2)] {
            // The second import of the same code is refused before any request: it was sent once.
            let run = s.run(&["-vvv", "--log-format", format, "import", bundle.to_str().unwrap()]).await;
            assert_eq!(run.code, code, "a refused code needs a new consent: {}", run.stderr);
        }
        assert_eq!(std::fs::read(s.token_file()).unwrap(), before, "a refused bundle changes nothing");
    }
    // A malformed bundle holding a token-like value.
    let run = s
        .run_with_stdin(
            &["-vvv", "import"],
            Some(r#"{"format":"skysync-token-bundle","version":1,"kind":"refresh_token","tokens":{"refresh_token":"leaky-refresh-value"}}"#),
        )
        .await;
    run.expect_code(1);
    secrets.push("leaky-refresh-value".into());

    assert_no_secrets(&s.all_output(), &secrets);
}

/// Absurd token windows are refused as configuration errors, naming the setting, instead of
/// overflowing time arithmetic later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absurd_token_windows_are_configuration_errors() {
    let s = Skysync::start().await;
    s.set_env("SKYSYNC_RENEWAL_WINDOW_DAYS", Some("99999999999"));
    let run = s.run(&["status"]).await;
    run.expect_code(3);
    assert!(run.stderr.contains("renewal_window_days") && run.stderr.contains("3650"), "{}", run.stderr);
    s.set_env("SKYSYNC_RENEWAL_WINDOW_DAYS", None);
    s.set_env("SKYSYNC_ACCESS_SKEW_SECS", Some("86401"));
    s.run(&["token"]).await.expect_code(3);
}
