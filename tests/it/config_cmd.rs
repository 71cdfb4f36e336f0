//! `skysync config init|set|show` black-box, and every missing setting reported in one run.

use std::os::unix::fs::PermissionsExt;

use skysync_tests::cli::Skysync;

/// A world with nothing configured in the environment (the simulator's settings removed).
async fn unconfigured() -> Skysync {
    let s = Skysync::start().await;
    for var in ["SKYSYNC_CLIENT_ID", "SKYSYNC_CLIENT_SECRET", "SKYSYNC_SUBSCRIPTION_KEY"] {
        s.set_env(var, None);
    }
    s
}

fn config_path(s: &Skysync) -> std::path::PathBuf {
    s.home().join("config").join("skysync").join("config.toml")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_missing_setting_is_reported_in_one_run() {
    let s = unconfigured().await;
    let run = s.run(&["sync", "gifts"]).await;
    run.expect_code(3);
    assert!(run.stderr.contains("3 settings are missing for profile `default`"), "{}", run.stderr);
    for (var, key, portal) in [
        ("SKYSYNC_CLIENT_ID", "`client_id`", "\"Application ID\""),
        ("SKYSYNC_CLIENT_SECRET", "`client_secret`", "\"Primary application secret\""),
        ("SKYSYNC_SUBSCRIPTION_KEY", "`subscription_key`", "\"Primary access key\""),
    ] {
        let line = run.stderr.lines().find(|l| l.contains(var)).unwrap_or_else(|| panic!("{var}: {}", run.stderr));
        assert!(line.contains(key) && line.contains(portal) && line.contains("config.toml"), "{line}");
    }
    // Token commands need no subscription key: only the two they need.
    let run = s.run(&["token"]).await;
    run.expect_code(3);
    assert!(run.stderr.contains("2 settings are missing"), "{}", run.stderr);
    assert!(!run.stderr.contains("SKYSYNC_SUBSCRIPTION_KEY"), "{}", run.stderr);
    // One missing: the one-line message as before.
    s.set_env("SKYSYNC_CLIENT_ID", Some("app"));
    s.set_env("SKYSYNC_CLIENT_SECRET", Some("s3cr3t-value"));
    let run = s.run(&["sync", "gifts"]).await;
    run.expect_code(3);
    assert!(run.stderr.contains("missing setting `subscription_key`"), "{}", run.stderr);
    assert!(!run.stderr.contains("s3cr3t-value"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_writes_a_private_commented_config_without_secrets_and_refuses_to_overwrite() {
    let s = unconfigured().await;
    let path = config_path(&s);
    let secret = s.home().join("client_secret");
    std::fs::write(&secret, "s3cr3t-value\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let secret_arg = secret.display().to_string();
    let run = s
        .run(&[
            "config",
            "init",
            "--client-id",
            "app-123",
            "--client-secret-file",
            &secret_arg,
            "--entities",
            "constituents,funds",
        ])
        .await;
    run.expect_code(0);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(text.contains("client_id = \"app-123\""), "{text}");
    assert!(text.contains(&format!("client_secret_file = \"{secret_arg}\"")), "{text}");
    assert!(!text.contains("s3cr3t-value"), "{text}");
    assert!(text.contains("# subscription_key_file = "), "unset ones stay commented out: {text}");
    assert!(text.contains("entities = [\"constituents\", \"funds\"]"), "{text}");
    assert!(text.contains("developer.blackbaud.com"), "the comments say where values are: {text}");
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        assert!(!line.starts_with("client_secret =") && !line.starts_with("subscription_key ="), "{line}");
    }
    // What was written is what `config show` reads.
    let show = s.run(&["--json", "config", "show"]).await;
    show.expect_code(0);
    let v: serde_json::Value = serde_json::from_str(&show.stdout).unwrap();
    assert_eq!(v["settings"]["client_id"]["value"], "app-123");
    assert_eq!(v["settings"]["client_secret"]["source"], "config file");
    assert_eq!(v["settings"]["client_id"]["source"], "config file");
    assert_eq!(v["sync"]["entities"]["value"], "constituents, funds");

    // Again: refused, the file unchanged.
    let run = s.run(&["config", "init", "--client-id", "other"]).await;
    run.expect_code(2);
    assert!(
        run.stderr.contains("already has the profile `default`") && run.stderr.contains("--force"),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    // Another profile goes next to it; --force replaces only the named one.
    s.run(&["--profile", "acme", "config", "init", "--client-id", "acme-app"]).await.expect_code(0);
    s.run(&["config", "init", "--client-id", "replaced", "--force"]).await.expect_code(0);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("client_id = \"acme-app\"") && text.contains("client_id = \"replaced\""), "{text}");
    assert!(!text.contains("app-123"), "{text}");
    assert_eq!(text.matches("[profiles.default]").count(), 1, "{text}");
    // A URL with a password is a secret: refused.
    let run = s.run(&["--profile", "x", "config", "init", "--db", "postgres://u:pw@db/sky"]).await;
    run.expect_code(2);
    assert!(!std::fs::read_to_string(&path).unwrap().contains("profiles.x"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_edits_one_key_keeping_the_comments() {
    let s = unconfigured().await;
    let path = config_path(&s);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let original = "# my notes\n[profiles.default]\n# the app\nclient_id = \"old\"  # from the portal\n";
    std::fs::write(&path, original).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    s.run(&["config", "set", "client_id", "new-app"]).await.expect_code(0);
    s.run(&["config", "set", "sync.entities", "constituents,gifts,funds"]).await.expect_code(0);
    s.run(&["config", "set", "sync.rate_limit", "2.5"]).await.expect_code(0);
    s.run(&["config", "set", "sync.concurrency", "3"]).await.expect_code(0);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("# my notes\n[profiles.default]\n# the app\nclient_id = \"new-app\""), "{text}");
    assert!(text.contains("# from the portal"), "{text}");
    assert!(text.contains("entities = [\"constituents\", \"gifts\", \"funds\"]"), "{text}");
    assert!(text.contains("rate_limit = 2.5") && text.contains("concurrency = 3"), "{text}");
    let show = s.run(&["--json", "config", "show"]).await;
    let v: serde_json::Value = serde_json::from_str(&show.stdout).unwrap();
    assert_eq!(v["settings"]["client_id"]["value"], "new-app");
    assert_eq!(v["sync"]["concurrency"]["value"], "3");

    // Refused, each changing nothing: a secret as an argument, an unknown key (with the nearest
    // one), a value of the wrong type.
    let before = std::fs::read_to_string(&path).unwrap();
    let run = s.run(&["config", "set", "client_secret", "s3cr3t"]).await;
    run.expect_code(2);
    assert!(run.stderr.contains("client_secret_file") && !run.stderr.contains("s3cr3t"), "{}", run.stderr);
    let run = s.run(&["config", "set", "client_idd", "x"]).await;
    run.expect_code(2);
    assert!(run.stderr.contains("did you mean `client_id`?"), "{}", run.stderr);
    let run = s.run(&["config", "set", "sync.concurrency", "many"]).await;
    run.expect_code(2);
    assert!(run.stderr.contains("sync.concurrency"), "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_lists_the_sync_settings_and_marks_what_is_optional() {
    let s = unconfigured().await;
    s.set_env("SKYSYNC_CLIENT_ID", Some("app"));
    let run = s.run(&["config", "show"]).await;
    run.expect_code(0);
    let line = |name: &str| {
        run.stdout
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name}: {}", run.stdout))
    };
    assert!(line("client_secret").contains("(not set; required)"), "{}", run.stdout);
    assert!(line("environment_id").contains("(not set; optional)"), "{}", run.stdout);
    assert!(line("sync.rate_limit").contains("5") && line("sync.rate_limit").contains("[default]"), "{}", run.stdout);
    assert!(line("sync.call_budget").contains("(not set; optional)"), "{}", run.stdout);
    assert!(line("sync.entities").contains("constituents, gifts"), "{}", run.stdout);
    let json = s.run(&["--json", "config", "show"]).await;
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["settings"]["client_secret"]["required"], true);
    assert_eq!(v["settings"]["environment_id"]["required"], false);
    assert_eq!(v["sync"]["db"]["source"], "default");
}
