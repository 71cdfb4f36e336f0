//! Config hardening (issue 9): TOML errors without the source line, unsafe config files refused,
//! secret-bearing fields need a private file, https endpoints, secrets from files and systemd
//! credentials, and config errors before token state.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use skysync_tests::cli::Skysync;

/// Writes `text` as the config file with `mode` and points the world at it.
fn config(s: &Skysync, text: &str, mode: u32) -> PathBuf {
    let path = s.home().join("skysync.toml");
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    s.set_env("SKYSYNC_CONFIG", Some(path.to_str().unwrap()));
    path
}

fn secret_file(s: &Skysync, name: &str, value: &str, mode: u32) -> PathBuf {
    let path = s.home().join(name);
    std::fs::write(&path, format!("{value}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

#[tokio::test]
async fn toml_errors_name_the_place_but_never_quote_the_secret() {
    let s = Skysync::start().await;
    let secret = "Unterminated-Secret-7f3a9c";
    let path = config(&s, &format!("[profiles.default]\nclient_id = \"app\"\nclient_secret = \"{secret}\n"), 0o600);
    let run = s.run(&["status"]).await;
    run.expect_code(3);
    assert!(run.stderr.contains(&path.display().to_string()), "{}", run.stderr);
    assert!(run.stderr.contains("line 3, column"), "{}", run.stderr);
    assert!(!run.stderr.contains(secret), "the secret leaked: {}", run.stderr);

    // A wrong type quotes the value in serde's message; it is elided too.
    config(&s, &format!("[profiles.default]\nrenewal_window_days = \"{secret}\"\n"), 0o600);
    let run = s.run(&["config", "show"]).await;
    run.expect_code(3);
    assert!(run.stderr.contains("line 2, column") && run.stderr.contains("expected"), "{}", run.stderr);
    assert!(!run.stderr.contains(secret), "the value leaked: {}", run.stderr);
}

#[tokio::test]
async fn a_config_file_others_can_change_is_refused() {
    let s = Skysync::start().await;
    let path = config(&s, "[profiles.default]\nclient_id = \"app\"\n", 0o600);
    s.run(&["config", "show"]).await.expect_code(0);
    for mode in [0o620, 0o602, 0o660] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let run = s.run(&["token"]).await;
        run.expect_code(3);
        assert!(run.stderr.contains("writable by other users"), "{mode:o}: {}", run.stderr);
    }
    // Readable by others is fine while it holds no secret.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    s.run(&["config", "show"]).await.expect_code(0);
}

#[tokio::test]
async fn a_config_file_owned_by_another_user_is_refused() {
    let s = Skysync::start().await;
    let path = config(&s, "[profiles.default]\nclient_id = \"app\"\n", 0o644);
    // Files of another user can only be made by root, which is how the test command runs.
    std::os::unix::fs::chown(&path, Some(65534), Some(65534)).expect("chown (the tests run as root)");
    let run = s.run(&["status"]).await;
    run.expect_code(3);
    assert!(run.stderr.contains("owned by another user"), "{}", run.stderr);
}

#[tokio::test]
async fn every_secret_bearing_field_needs_a_private_config_file() {
    let s = Skysync::start().await;
    let cases = [
        ("client_secret = \"s3cr3t\"", "client_secret"),
        ("subscription_key = \"k3y\"", "subscription_key"),
        ("[profiles.default.sync]\ndb = \"postgres://u:pw@db.example.org/sky\"", "db URL with a password"),
        ("[profiles.default.sync]\ndb = \"postgres://u@db.example.org/sky?password=pw\"", "db URL with a password"),
    ];
    for (line, field) in cases {
        let text = format!("[profiles.default]\nclient_id = \"app\"\n{line}\n");
        let path = config(&s, &text, 0o640);
        let run = s.run(&["config", "show"]).await;
        run.expect_code(3);
        assert!(
            run.stderr.contains(field) && run.stderr.contains("readable by other users"),
            "{field}: {}",
            run.stderr
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        s.run(&["config", "show"]).await.expect_code(0);
    }
    // A db URL without a password is no secret.
    config(&s, "[profiles.default.sync]\ndb = \"postgres://u@db.example.org/sky\"\n", 0o644);
    s.run(&["config", "show"]).await.expect_code(0);
}

#[tokio::test]
async fn plain_http_endpoints_are_refused_before_any_request_whatever_the_tokens() {
    let s = Skysync::start().await;
    for (var, value) in [
        ("SKYSYNC_TOKEN_URL", "http://sky.example.org/token"),
        ("SKYSYNC_API_URL", "http://10.0.0.5/"),
        ("SKYSYNC_AUTH_URL", "http://[2001:db8::1]/authorize"),
    ] {
        let saved = s.env_value(var);
        s.set_env(var, Some(value));
        // No tokens at all: still a configuration error, not "consent needed".
        let run = s.run(&["token"]).await;
        run.expect_code(3);
        assert!(run.stderr.contains("not https://"), "{var}: {}", run.stderr);
        s.set_env(var, saved.as_deref());
    }
    s.seed_expired_access().await;
    s.sim.reset_stats();
    s.set_env("SKYSYNC_TOKEN_URL", Some("http://sky.example.org/token"));
    s.run(&["token"]).await.expect_code(3);
    s.run(&["renew"]).await.expect_code(3);
    assert_eq!(s.sim.stats().token_calls, 0);
    // Loopback may use http (the simulator does): the same run works once the URL is loopback.
    s.set_env("SKYSYNC_TOKEN_URL", Some(s.sim.token_url().as_str()));
    s.run(&["token"]).await.expect_code(0);
}

#[tokio::test]
async fn a_missing_secret_is_a_configuration_error_before_token_state() {
    let s = Skysync::start().await;
    s.set_env("SKYSYNC_CLIENT_SECRET", None);
    // No tokens stored: exit 3 (configuration), not 4 (consent).
    s.run(&["token"]).await.expect_code(3);
    s.run(&["renew"]).await.expect_code(3);
}

#[tokio::test]
async fn secrets_come_from_files_and_systemd_credentials() {
    let s = Skysync::start().await;
    let c = s.sim.config();
    s.seed_expired_access().await;
    s.set_env("SKYSYNC_CLIENT_SECRET", None);
    s.set_env("SKYSYNC_SUBSCRIPTION_KEY", None);

    // The config file's `*_file` settings.
    let secret = secret_file(&s, "client_secret", &c.client_secret, 0o600);
    let key = secret_file(&s, "subscription_key", &c.subscription_key, 0o600);
    config(
        &s,
        &format!(
            "[profiles.default]\nclient_secret_file = \"{}\"\nsubscription_key_file = \"{}\"\n",
            secret.display(),
            key.display()
        ),
        0o644,
    );
    s.run(&["api", "/constituent/v1/constituents?limit=1"]).await.expect_code(0);
    // A secret file others can read is refused.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let run = s.run(&["api", "/constituent/v1/constituents?limit=1"]).await;
    run.expect_code(3);
    assert!(run.stderr.contains("subscription_key_file") && run.stderr.contains("readable"), "{}", run.stderr);

    // SKYSYNC_SUBSCRIPTION_KEY_FILE.
    let env_key = secret_file(&s, "env_key", &c.subscription_key, 0o600);
    s.set_env("SKYSYNC_SUBSCRIPTION_KEY_FILE", Some(env_key.to_str().unwrap()));
    s.run(&["api", "/constituent/v1/constituents?limit=1"]).await.expect_code(0);
    s.set_env("SKYSYNC_SUBSCRIPTION_KEY_FILE", None);

    // systemd credentials, with no other source of either secret.
    std::fs::remove_file(s.home().join("skysync.toml")).unwrap();
    s.set_env("SKYSYNC_CONFIG", None);
    let creds = s.home().join("credentials");
    std::fs::create_dir(&creds).unwrap();
    std::fs::write(creds.join("client_secret"), &c.client_secret).unwrap();
    std::fs::write(creds.join("subscription_key"), &c.subscription_key).unwrap();
    for f in ["client_secret", "subscription_key"] {
        std::fs::set_permissions(creds.join(f), std::fs::Permissions::from_mode(0o400)).unwrap();
    }
    s.run(&["api", "/constituent/v1/constituents?limit=1"]).await.expect_code(3);
    s.set_env("CREDENTIALS_DIRECTORY", Some(creds.to_str().unwrap()));
    s.run(&["renew"]).await.expect_code(0);
    s.run(&["api", "/constituent/v1/constituents?limit=1"]).await.expect_code(0);
    let show = s.run(&["config", "show", "--json"]).await;
    show.expect_code(0);
    let v: serde_json::Value = serde_json::from_str(&show.stdout).unwrap();
    assert_eq!(v["settings"]["client_secret"]["source"], "systemd credential client_secret");
    assert_eq!(v["settings"]["subscription_key"]["source"], "systemd credential subscription_key");
    for out in s.all_output() {
        assert!(!out.contains(&c.client_secret) && !out.contains(&c.subscription_key), "a secret leaked: {out}");
    }
}
